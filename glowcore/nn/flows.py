"""Invertible layers of a Glow normalizing flow (Kingma & Dhariwal, 2018).

Every layer follows one contract, stated on :class:`FlowLayer`:

* ``forward(x) -> (y, logdet)`` maps data toward the latent; ``logdet`` has one entry per batch
  item and is ``log |det dy/dx|``.
* ``reverse(y) -> x`` is the exact inverse of ``forward``.

Layers whose weights are constant at inference (ActNorm, the 1x1 convolutions, the fused
ActNorm + 1x1 pair inside :class:`FlowStep`, the coupling network's zero-initialised output
scale) cache what they derive from those weights while the module is in eval mode. The cache is
keyed on the identity and version counter of every tensor it derives from, so an optimizer step,
``load_state_dict`` or ``.to(device)`` invalidates it, and ``train()`` drops it. In eval mode the
cached tensors are constants: gradients still flow to the *inputs* (inpainting uses this), not to
the parameters. Train in train mode.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from typing import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..decoding.compiled import is_tracing

__all__ = [
    "FlowLayer",
    "ActNorm",
    "InvConv1x1",
    "InvConv1x1LU",
    "ZeroConv2d",
    "CouplingNet",
    "AffineCoupling",
    "AdditiveCoupling",
    "Squeeze",
    "FlowStep",
    "SplitPrior",
    "TopPrior",
    "squeeze2d",
    "unsqueeze2d",
    "fast_networks",
    "fast_networks_supported",
]


class EvalCached(nn.Module):
    """Memoises tensors derived from weights while the module is in eval mode (see module doc)."""

    def train(self, mode: bool = True):
        for m in self.modules():
            m.__dict__.pop("_eval_cache", None)
        return super().train(mode)

    def _cached(self, name: str, sources: Iterable[Tensor], build: Callable[[], object]) -> object:
        """Return ``build()``, memoised in eval mode on the identity and version of ``sources``."""
        if self.training:
            return build()
        sources = tuple(sources)
        key = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in sources)
        cache: dict = self.__dict__.setdefault("_eval_cache", {})
        hit = cache.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        # Build outside inference mode so the cached tensors can be used later in autograd
        # (e.g. optimizing a latent through decode), and without tracking parameter grads.
        with torch.inference_mode(False), torch.no_grad():
            value = build()
        cache[name] = (key, value)
        return value


class FlowLayer(EvalCached):
    """Base class of every invertible layer.

    Contract:

    * ``forward(x) -> (y, logdet)`` maps data toward the latent. ``logdet`` is a tensor of shape
      ``(batch,)`` holding ``log |det dy/dx|`` for each batch item (the Jacobian of the whole
      item, all pixels and channels).
    * ``reverse(y) -> x`` inverts ``forward`` exactly (up to floating-point rounding).

    The reverse log-determinant is ``-logdet`` of the forward pass at the same point; layers do
    not return it from ``reverse`` because decoding never needs it.

    Mixed precision: under ``torch.autocast`` only the coupling and prior networks run in the
    lower precision; the invertible arithmetic and every log-determinant stay in float32.
    """

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def reverse(self, y: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def _full_precision_conv1x1(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """A 1x1 convolution that autocast never lowers to bf16/fp16 (it must stay invertible)."""
    if torch.is_autocast_enabled(x.device.type):
        with torch.autocast(x.device.type, enabled=False):
            x = _at_least_float32(x)
            return F.conv2d(x, weight.to(x.dtype), None if bias is None else bias.to(x.dtype))
    return F.conv2d(x, weight, bias)


def _full_precision(method):
    """Run a weight-deriving method with autocast off (its matrices must stay exact)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        device_type = next(self.parameters()).device.type
        if torch.is_autocast_enabled(device_type):
            with torch.autocast(device_type, enabled=False):
                return method(self, *args, **kwargs)
        return method(self, *args, **kwargs)

    return wrapper


def _at_least_float32(t: Tensor) -> Tensor:
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


CHANNELS_LAST = torch.channels_last


def _sum_per_item(t: Tensor) -> Tensor:
    return t.flatten(1).sum(1)


# ---------------------------------------------------------------------------------- ActNorm
class ActNorm(FlowLayer):
    """Per-channel affine normalisation ``y = (x + bias) * exp(logs)``.

    Initialised from the first batch seen in training mode so that the output has zero mean and
    unit variance per channel. The ``initialized`` flag is a registered buffer, saved with the
    weights, so a loaded model is never re-initialised.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.logs = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Data-dependent initialisation from a batch ``x`` of shape (B, C, H, W)."""
        flat = x.detach().transpose(0, 1).reshape(x.shape[1], -1).to(torch.float64)
        mean = flat.mean(1)
        std = flat.std(1, unbiased=False)
        self.bias.copy_((-mean).to(self.bias.dtype))
        self.logs.copy_(torch.log(1.0 / (std + 1e-6)).to(self.logs.dtype))
        self.initialized.fill_(1)
        self.__dict__["_seen_initialized"] = True

    def maybe_initialize(self, x: Tensor) -> None:
        # Reading the buffer is a host sync on a GPU: remember once it has been seen set.
        if not self.training or self.__dict__.get("_seen_initialized", False):
            return
        if bool(self.initialized):
            self.__dict__["_seen_initialized"] = True
        else:
            self.initialize(x)

    def _load_from_state_dict(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.__dict__.pop("_seen_initialized", None)
        super()._load_from_state_dict(*args, **kwargs)

    def logdet_per_pixel(self) -> Tensor:
        return self.logs.sum()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        self.maybe_initialize(x)
        y = (x + self.bias.view(1, -1, 1, 1)) * torch.exp(self.logs).view(1, -1, 1, 1)
        ld = (self.logdet_per_pixel() * (x.shape[2] * x.shape[3])).expand(x.shape[0])
        return y, ld

    def reverse(self, y: Tensor) -> Tensor:
        return y * torch.exp(-self.logs).view(1, -1, 1, 1) - self.bias.view(1, -1, 1, 1)


# --------------------------------------------------------------------------- 1x1 convolution
class _InvConvBase(FlowLayer):
    """Shared code of the invertible 1x1 convolutions: ``y = W x`` at every pixel."""

    def weight_and_logdet(self) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        """The (C, C) matrix and ``log|det W|`` (per pixel), differentiable in training."""
        raise NotImplementedError

    def _sources(self) -> tuple[Tensor, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def inverse_weight(self) -> Tensor:
        """``W^-1`` computed in float64, cached in eval mode."""

        def build() -> Tensor:
            w, _ = self.weight_and_logdet()
            return torch.linalg.inv(w.detach().to(torch.float64)).to(w.dtype)

        return self._cached("inverse", self._sources(), build)  # type: ignore[return-value]

    def forward_weight(self) -> tuple[Tensor, Tensor]:
        return self._cached("forward", self._sources(), self.weight_and_logdet)  # type: ignore

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        w, ld = self.forward_weight()
        y = _full_precision_conv1x1(x, w.unsqueeze(-1).unsqueeze(-1))
        return y, (ld * (x.shape[2] * x.shape[3])).expand(x.shape[0])

    def reverse(self, y: Tensor) -> Tensor:
        return _full_precision_conv1x1(y, self.inverse_weight().unsqueeze(-1).unsqueeze(-1))


def _random_rotation(channels: int, generator: torch.Generator | None = None) -> Tensor:
    q, _ = torch.linalg.qr(torch.randn(channels, channels, generator=generator, dtype=torch.float64))
    return q


class InvConv1x1(_InvConvBase):
    """Invertible 1x1 convolution with a free (C, C) weight, initialised to a random rotation."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(_random_rotation(channels).float())

    def _sources(self) -> tuple[Tensor, ...]:
        return (self.weight,)

    @_full_precision
    def weight_and_logdet(self) -> tuple[Tensor, Tensor]:
        w = self.weight
        ld = torch.linalg.slogdet(w.to(torch.float64))[1].to(w.dtype)
        return w, ld


class InvConv1x1LU(_InvConvBase):
    """Invertible 1x1 convolution in LU form ``W = P L (U + diag(sign * exp(log_s)))``.

    ``P`` (a permutation) and ``sign`` are fixed buffers; ``L`` (unit lower), ``U`` (strict upper)
    and ``log_s`` are learned, which makes ``log|det W| = sum(log_s)`` free to compute.
    """

    def __init__(self, channels: int):
        super().__init__()
        w = _random_rotation(channels)
        p, lower, upper = torch.linalg.lu(w)
        s = torch.diagonal(upper)
        self.register_buffer("perm", p.float())
        self.register_buffer("sign_s", torch.sign(s).float())
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.lower = nn.Parameter((lower * torch.tril(torch.ones_like(lower), -1)).float())
        self.upper = nn.Parameter(torch.triu(upper, 1).float())
        self.log_s = nn.Parameter(torch.log(torch.abs(s)).float())

    def _sources(self) -> tuple[Tensor, ...]:
        return (self.lower, self.upper, self.log_s, self.perm, self.sign_s)

    @_full_precision
    def weight_and_logdet(self) -> tuple[Tensor, Tensor]:
        eye = torch.eye(self.lower.shape[0], device=self.lower.device, dtype=self.lower.dtype)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        w = self.perm @ lower @ upper
        return w, self.log_s.sum()


# ------------------------------------------------------------------------------- couplings
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
            getattr(FAST_NETWORKS, "value", False)
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
        packed = _packed_conv_available() and not is_tracing()
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

#: Thread-local switch for the fast inference path (see :func:`fast_networks`).
FAST_NETWORKS = threading.local()


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


@contextlib.contextmanager
def thread_setting(local: threading.local, value: object) -> Iterator[None]:
    """Within the block, ``local.value`` is ``value`` on this thread; restored after it."""
    previous = getattr(local, "value", None)
    local.value = value
    try:
        yield
    finally:
        local.value = previous


def fast_networks(enabled: bool = True) -> contextlib.AbstractContextManager[None]:
    """Context manager: inside it (on this thread), in eval mode without autograd on the CPU, the
    coupling networks run in bfloat16 with pre-packed weights (1.2-1.9x faster per network on
    AVX512-BF16 CPUs). The invertible arithmetic stays float32, so this is what training with
    ``--precision bf16`` computes; outputs differ from float32 by a few thousandths (measured in
    docs/benchmarks.md). Not for exact round trips: ``encode`` and the exact ``decode`` stay in
    float32. ``fast_networks(False)`` turns it off inside an enclosing one."""
    return thread_setting(FAST_NETWORKS, bool(enabled))


#: Thread-local damping of :meth:`AffineCoupling.reverse` (``None``: exact). Only
#: :mod:`glowcore.decoding.stable` sets it, to re-decode latents whose exact decoding blew up.
REVERSE_DAMPING = threading.local()


class AffineCoupling(FlowLayer):
    """Affine coupling: the second half of the channels is shifted and scaled by functions of
    the first half. ``scale = sigmoid(raw + 2)``, as in the Glow paper's code.

    ``reverse`` divides by ``scale``; far from the training data ``scale`` can underflow, so the
    reverse pass bounds it below by ``min_scale`` (far below anything seen on data, where the
    layer stays exactly invertible) and keeps activations finite.
    """

    min_scale: float = 1e-4
    max_abs_activation: float = 1e4
    _min_raw: float = -math.log(1.0 / min_scale - 1.0)  # sigmoid(_min_raw) == min_scale

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        if channels % 2:
            raise ValueError(f"coupling needs an even number of channels, got {channels}")
        self.net = CouplingNet(channels // 2, hidden, channels)

    def _shift_scale(self, xa: Tensor) -> tuple[Tensor, Tensor]:
        h = self.net(xa)
        shift, raw = h.chunk(2, dim=1)
        return shift, raw + 2.0

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        xa, xb = x.chunk(2, dim=1)
        shift, raw = self._shift_scale(xa)
        log_scale = F.logsigmoid(raw)
        yb = (xb + shift) * torch.exp(log_scale)
        return torch.cat([xa, yb], dim=1), _sum_per_item(log_scale)

    def reverse(self, y: Tensor) -> Tensor:
        ya, yb = y.chunk(2, dim=1)
        shift, raw = self._shift_scale(ya)
        damping = getattr(REVERSE_DAMPING, "value", None)  # set by glowcore.decoding.stable (this thread only)
        min_raw = self._min_raw if damping is None else damping.min_raw
        # 1 / sigmoid(raw) = 1 + exp(-raw), with the scale bounded below by min_scale
        inv_scale = torch.exp(raw.clamp_min(min_raw).neg()) + 1.0
        xb = yb * inv_scale - shift
        bound = self.max_abs_activation
        xb = torch.nan_to_num(xb, nan=0.0, posinf=bound, neginf=-bound).clamp(-bound, bound)
        if damping is not None:
            xb = damping.soft_clamp(xb)
        return torch.cat([ya, xb], dim=1)


class AdditiveCoupling(FlowLayer):
    """Additive (volume-preserving) coupling: ``yb = xb + shift(xa)``."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        if channels % 2:
            raise ValueError(f"coupling needs an even number of channels, got {channels}")
        self.net = CouplingNet(channels // 2, hidden, channels // 2)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        xa, xb = x.chunk(2, dim=1)
        yb = xb + self.net(xa)
        return torch.cat([xa, yb], dim=1), x.new_zeros(x.shape[0])

    def reverse(self, y: Tensor) -> Tensor:
        ya, yb = y.chunk(2, dim=1)
        return torch.cat([ya, yb - self.net(ya)], dim=1)


# ------------------------------------------------------------------------ squeeze and steps
def squeeze2d(x: Tensor) -> Tensor:
    b, c, h, w = x.shape
    x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * 4, h // 2, w // 2)


def unsqueeze2d(x: Tensor) -> Tensor:
    b, c, h, w = x.shape
    x = x.view(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c // 4, h * 2, w * 2)


class Squeeze(FlowLayer):
    """Space-to-depth: (B, C, H, W) -> (B, 4C, H/2, W/2), log-determinant 0."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.shape[2] % 2 or x.shape[3] % 2:
            raise ValueError(f"squeeze needs even height and width, got {tuple(x.shape[2:])}")
        return squeeze2d(x), x.new_zeros(x.shape[0])

    def reverse(self, y: Tensor) -> Tensor:
        return unsqueeze2d(y)


class FlowStep(FlowLayer):
    """One step of flow: ActNorm, invertible 1x1 convolution, coupling.

    ActNorm and the 1x1 convolution are applied as one fused 1x1 convolution with a bias
    (``y = W diag(s) x + W diag(s) b``), in training as well as at inference; in eval mode the fused
    weight, its float64 inverse and the log-determinant are computed once and cached.
    """

    def __init__(self, channels: int, hidden: int, coupling: str = "affine", lu: bool = True):
        super().__init__()
        self.actnorm = ActNorm(channels)
        self.invconv = InvConv1x1LU(channels) if lu else InvConv1x1(channels)
        if coupling == "affine":
            self.coupling: FlowLayer = AffineCoupling(channels, hidden)
        elif coupling == "additive":
            self.coupling = AdditiveCoupling(channels, hidden)
        else:
            raise ValueError(f"coupling must be 'affine' or 'additive', got {coupling!r}")

    def _sources(self) -> tuple[Tensor, ...]:
        return (self.actnorm.bias, self.actnorm.logs) + self.invconv._sources()

    @_full_precision
    def _fused(self) -> tuple[Tensor, Tensor, Tensor]:
        w, ld_w = self.invconv.weight_and_logdet()
        s = torch.exp(self.actnorm.logs)
        a = w * s.view(1, -1)
        c = a @ self.actnorm.bias
        return a[:, :, None, None], c, ld_w + self.actnorm.logdet_per_pixel()

    def _fused_inverse(self) -> tuple[Tensor, Tensor]:
        def build() -> tuple[Tensor, Tensor]:
            w, _ = self.invconv.weight_and_logdet()
            w64 = w.to(torch.float64)
            s64 = torch.exp(self.actnorm.logs.to(torch.float64))
            inv = torch.linalg.inv(w64) / s64.view(-1, 1)  # (W diag(s))^-1 = diag(1/s) W^-1
            dtype = self.actnorm.logs.dtype
            # x = A^-1 y - b: one 1x1 convolution with a bias
            return inv.to(dtype)[:, :, None, None], -self.actnorm.bias.detach().clone()

        return self._cached("inverse", self._sources(), build)  # type: ignore[return-value]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        self.actnorm.maybe_initialize(x)
        a, c, ld = self._cached("fused", self._sources(), self._fused)  # type: ignore[misc]
        y = _full_precision_conv1x1(x, a, c)
        y, ld_c = self.coupling(y)
        return y, ld * (x.shape[2] * x.shape[3]) + ld_c

    def reverse(self, y: Tensor) -> Tensor:
        x = self.coupling.reverse(y)
        inv, bias = self._fused_inverse()
        return _full_precision_conv1x1(x, inv, bias)


# ----------------------------------------------------------------------------------- priors
class SplitPrior(FlowLayer):
    """Standardises the second half of the channels under a Gaussian conditioned on the first.

    The mean and log-scale come from a zero-initialised 3x3 convolution of the first half (Glow),
    plus, with ``hidden > 0``, a conv3x3-ReLU-conv1x1-ReLU-ZeroConv3x3 network of that width.

    ``forward([z1, z2]) = [z1, (z2 - mean(z1)) * exp(-logs(z1))]`` with ``logdet = -sum(logs)``:
    the output's second half is the level's eps, standard normal under the learned prior.
    """

    def __init__(self, channels: int, hidden: int = 0):
        super().__init__()
        if channels % 2:
            raise ValueError(f"split needs an even number of channels, got {channels}")
        self.conv = ZeroConv2d(channels // 2, channels)
        # hidden > 0: a coupling-style network adds to the linear 3x3 prediction. Its output
        # convolution starts at zero, so adding it to a trained model changes nothing at first
        # (Glow.with_prior_networks grows a trained model this way).
        self.net: CouplingNet | None = CouplingNet(channels // 2, hidden, channels) if hidden else None

    def _params(self, z1: Tensor) -> tuple[Tensor, Tensor]:
        p = self.conv(z1)
        if self.net is not None:
            p = p + self.net(z1)
        mean, logs = p.chunk(2, dim=1)
        return mean, logs

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z1, z2 = x.chunk(2, dim=1)
        mean, logs = self._params(z1)
        eps = (z2 - mean) * torch.exp(-logs)
        return torch.cat([z1, eps], dim=1), -_sum_per_item(logs)

    def reverse(self, y: Tensor) -> Tensor:
        z1, eps = y.chunk(2, dim=1)
        mean, logs = self._params(z1)
        return torch.cat([z1, eps * torch.exp(logs) + mean], dim=1)


class TopPrior(FlowLayer):
    """Standardises the top level under a learned Gaussian (one mean and log-scale per unit)."""

    def __init__(self, channels: int, size: int):
        super().__init__()
        self.mean = nn.Parameter(torch.zeros(channels, size, size))
        self.logs = nn.Parameter(torch.zeros(channels, size, size))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        eps = (x - self.mean) * torch.exp(-self.logs)
        return eps, (-self.logs.sum()).expand(x.shape[0])

    def reverse(self, y: Tensor) -> Tensor:
        return y * torch.exp(self.logs) + self.mean


LOG_2PI = math.log(2 * math.pi)


def standard_normal_logp(eps: Tensor) -> Tensor:
    """Per-item log density of ``eps`` under N(0, I)."""
    return -0.5 * _sum_per_item(eps * eps + LOG_2PI)
