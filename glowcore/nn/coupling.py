"""Couplings: the network (:class:`CouplingNet`, with its bfloat16 fast path) and the affine and additive
couplings built on one template (:class:`Coupling`)."""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..base import modes
from .flows import CHANNELS_LAST, EvalCached, FlowLayer, _at_least_float32, _sum_per_item

__all__ = ["ZeroConv2d", "CouplingNet", "Coupling", "AffineCoupling", "AdditiveCoupling", "COUPLINGS", "make_coupling", "FAST_MIN_PIXELS", "fast_networks_supported"]


class ZeroConv2d(EvalCached):
    """3x3 convolution initialised to zero, output scaled by ``exp(3 * logs)`` (Glow paper).

    Its output is float32 even under autocast: it feeds the invertible arithmetic.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.logs = nn.Parameter(torch.zeros(out_channels))

    def folded(self) -> tuple[Tensor, Tensor]:
        def build() -> tuple[Tensor, Tensor]:
            s = torch.exp(self.logs * 3.0)
            w = (self.conv.weight * s.view(-1, 1, 1, 1)).contiguous(memory_format=CHANNELS_LAST)
            return w, self.conv.bias * s

        return self._cached("folded", (self.conv.weight, self.conv.bias, self.logs), build)  # type: ignore

    def forward(self, x: Tensor) -> Tensor:
        w, b = self.folded()
        return _at_least_float32(F.conv2d(x, w, b, padding=1))


class CouplingNet(EvalCached):
    """The coupling network: conv3x3 - ReLU - conv1x1 - ReLU - ZeroConv3x3."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, hidden, 1)
        self.out = ZeroConv2d(hidden, out_channels)
        for conv in (self.conv1, self.conv2):
            nn.init.normal_(conv.weight, 0.0, 0.05)
            nn.init.zeros_(conv.bias)

    def _weights(self) -> tuple[Tensor, Tensor]:
        def build() -> tuple[Tensor, Tensor]:
            return (
                self.conv1.weight.contiguous(memory_format=CHANNELS_LAST),
                self.conv2.weight.contiguous(memory_format=CHANNELS_LAST),
            )

        return self._cached("weights", (self.conv1.weight, self.conv2.weight), build)  # type: ignore[return-value]

    def forward(self, x: Tensor) -> Tensor:
        if (
            modes.fast_networks_on()
            and not self.training
            and not torch.is_grad_enabled()
            and x.device.type == "cpu"
            and x.shape[2] * x.shape[3] >= FAST_MIN_PIXELS
        ):
            return self._forward_bf16(x)
        w1, w2 = self._weights()
        h = F.relu(F.conv2d(x, w1, self.conv1.bias, padding=1), inplace=True)
        h = F.relu(F.conv2d(h, w2, self.conv2.bias), inplace=True)
        return self.out(h)

    def _bf16_weights(self, size: tuple[int, int], packed: bool) -> list[tuple[Tensor, Tensor, list[int]]]:
        """bfloat16 weights and biases of the three convolutions (ZeroConv2d's scale folded in),
        pre-packed for oneDNN for images of ``size`` when ``packed``."""

        def build() -> list[tuple[Tensor, Tensor, list[int]]]:
            w3, b3 = self.out.folded()
            layers = []
            for w, b in ((self.conv1.weight, self.conv1.bias), (self.conv2.weight, self.conv2.bias), (w3, b3)):
                pad = w.shape[-1] // 2
                wb = w.detach().to(torch.bfloat16)
                if packed:
                    wb = torch._C._nn.mkldnn_reorder_conv2d_weight(  # type: ignore[attr-defined]
                        wb.to_mkldnn(), [pad, pad], [1, 1], [1, 1], 1, [1, w.shape[1], *size]
                    )
                else:
                    wb = wb.contiguous(memory_format=CHANNELS_LAST)
                layers.append((wb, b.detach().to(torch.bfloat16), [pad, pad]))
            return layers

        sources = (self.conv1.weight, self.conv1.bias, self.conv2.weight, self.conv2.bias, self.out.conv.weight, self.out.conv.bias, self.out.logs)
        # packed for one image size (oneDNN picks the weight layout for it)
        return self._cached(f"bf16_{size[0]}x{size[1]}{'_packed' if packed else ''}", sources, build)  # type: ignore[return-value]

    def _forward_bf16(self, x: Tensor) -> Tensor:
        # TorchScript cannot hold oneDNN's packed weights: a traced graph (glowcore.decoding.compiled)
        # gets plain bf16 convolutions, which run as fast once frozen
        packed = _packed_conv_available() and not modes.is_tracing()
        (w1, b1, p1), (w2, b2, p2), (w3, b3, p3) = self._bf16_weights((x.shape[2], x.shape[3]), packed)
        h = x.to(dtype=torch.bfloat16, memory_format=CHANNELS_LAST)  # one copy
        if packed:
            conv = torch.ops.mkldnn._convolution_pointwise
            h = conv(h, w1, b1, p1, [1, 1], [1, 1], 1, "relu", [], "")
            h = conv(h, w2, b2, p2, [1, 1], [1, 1], 1, "relu", [], "")
            h = conv(h, w3, b3, p3, [1, 1], [1, 1], 1, "none", [], "")
        else:
            h = F.relu(F.conv2d(h, w1, b1, padding=p1), inplace=True)
            h = F.relu(F.conv2d(h, w2, b2, padding=p2), inplace=True)
            h = F.conv2d(h, w3, b3, padding=p3)
        return h.float()


#: The fast path is used for images of at least this many pixels (16x16): below, a bf16
#: convolution's fixed cost (~30 us per call) outweighs its speed, and float32 is faster
#: (benchmarks/conv_shapes.py).
FAST_MIN_PIXELS = 256

@functools.cache
def _packed_conv_available() -> bool:
    """Whether oneDNN's pre-packed bfloat16 convolution (what ``torch.compile`` uses on CPU) works
    here; checked once against the plain convolution. Else the fast path uses ``F.conv2d``."""
    try:
        with torch.inference_mode(False), torch.no_grad():
            g = torch.Generator().manual_seed(0)
            w = torch.randn(8, 4, 3, 3, generator=g).to(torch.bfloat16)
            b = torch.randn(8, generator=g).to(torch.bfloat16)
            x = torch.randn(2, 4, 5, 5, generator=g).to(torch.bfloat16).contiguous(memory_format=CHANNELS_LAST)
            packed = torch._C._nn.mkldnn_reorder_conv2d_weight(w.to_mkldnn(), [1, 1], [1, 1], [1, 1], 1, [1, 4, 16, 16])  # type: ignore[attr-defined]
            y = torch.ops.mkldnn._convolution_pointwise(x, packed, b, [1, 1], [1, 1], [1, 1], 1, "relu", [], "")
            ref = F.relu(F.conv2d(x.float(), w.float(), b.float(), padding=1))
            return tuple(y.shape) == tuple(ref.shape) and bool(torch.allclose(y.float(), ref, atol=0.1, rtol=0.05))
    except Exception:  # an op missing from this build of torch, or no oneDNN: use the plain path
        return False


def fast_networks_supported() -> bool:
    """Whether this CPU computes bfloat16 convolutions natively (AVX512-BF16 or AMX); only then
    is the fast path faster than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


class Coupling(FlowLayer):
    """The template of a coupling: the channels are split in halves ``(a, b)``; ``a`` passes
    through, ``b`` is transformed by functions of ``a`` computed by one :class:`CouplingNet`.

    A subclass says how many values per channel of ``b`` its network predicts
    (:attr:`net_outputs`) and how they transform ``b`` (:meth:`couple` and :meth:`uncouple`).
    """

    #: values per channel of the transformed half the network predicts (a shift; a shift and a scale)
    net_outputs: int = 1

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        if channels % 2:
            raise ValueError(f"coupling needs an even number of channels, got {channels}")
        self.net = CouplingNet(channels // 2, hidden, channels // 2 * self.net_outputs)

    def couple(self, xa: Tensor, xb: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        """``(yb, logdet)`` of the forward direction."""
        raise NotImplementedError

    def uncouple(self, ya: Tensor, yb: Tensor) -> Tensor:  # pragma: no cover - abstract
        """``xb``: the inverse of :meth:`couple`."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        xa, xb = x.chunk(2, dim=1)
        yb, logdet = self.couple(xa, xb)
        return torch.cat([xa, yb], dim=1), logdet

    def reverse(self, y: Tensor) -> Tensor:
        ya, yb = y.chunk(2, dim=1)
        return torch.cat([ya, self.uncouple(ya, yb)], dim=1)


class AffineCoupling(Coupling):
    """Affine coupling: the second half of the channels is shifted and scaled by functions of
    the first half. ``scale = sigmoid(raw + 2)``, as in the Glow paper's code.

    ``reverse`` divides by ``scale``; far from the training data ``scale`` can underflow, so the
    reverse pass bounds it below by ``min_scale`` (far below anything seen on data, where the
    layer stays exactly invertible) and keeps activations finite.
    """

    net_outputs = 2
    min_scale: float = 1e-4
    max_abs_activation: float = 1e4
    _min_raw: float = -math.log(1.0 / min_scale - 1.0)  # sigmoid(_min_raw) == min_scale

    def _shift_scale(self, xa: Tensor) -> tuple[Tensor, Tensor]:
        h = self.net(xa)
        shift, raw = h.chunk(2, dim=1)
        return shift, raw + 2.0

    def couple(self, xa: Tensor, xb: Tensor) -> tuple[Tensor, Tensor]:
        shift, raw = self._shift_scale(xa)
        log_scale = F.logsigmoid(raw)
        return (xb + shift) * torch.exp(log_scale), _sum_per_item(log_scale)

    def uncouple(self, ya: Tensor, yb: Tensor) -> Tensor:
        shift, raw = self._shift_scale(ya)
        damping = modes.damping()  # set by glowcore.decoding.stable (this thread only)
        min_raw = self._min_raw if damping is None else damping.min_raw
        # 1 / sigmoid(raw) = 1 + exp(-raw), with the scale bounded below by min_scale
        inv_scale = torch.exp(raw.clamp_min(min_raw).neg()) + 1.0
        xb = yb * inv_scale - shift
        bound = self.max_abs_activation
        xb = torch.nan_to_num(xb, nan=0.0, posinf=bound, neginf=-bound)
        if damping is not None:
            # the soft clamp bounds xb itself: beyond ``bound`` its tanh is 1.0 in float32 either
            # way, so clamping first changed nothing (tests/glowcore/test_stable.py) and cost one
            # operation per coupling in the damped graphs
            return damping.soft_clamp(xb)
        return xb.clamp(-bound, bound)


class AdditiveCoupling(Coupling):
    """Additive (volume-preserving) coupling: ``yb = xb + shift(xa)``."""

    net_outputs = 1

    def couple(self, xa: Tensor, xb: Tensor) -> tuple[Tensor, Tensor]:
        return xb + self.net(xa), xa.new_zeros(xa.shape[0])

    def uncouple(self, ya: Tensor, yb: Tensor) -> Tensor:
        return yb - self.net(ya)


#: The couplings by the name a :class:`~glowcore.model.GlowConfig` gives.
COUPLINGS: dict[str, type[Coupling]] = {"affine": AffineCoupling, "additive": AdditiveCoupling}


def make_coupling(kind: str, channels: int, hidden: int) -> Coupling:
    """The coupling named ``kind`` (a key of :data:`COUPLINGS`)."""
    if kind not in COUPLINGS:
        raise ValueError(f"coupling must be {' or '.join(map(repr, COUPLINGS))}, got {kind!r}")
    return COUPLINGS[kind](channels, hidden)
