"""The multi-scale Glow model and its configuration (it encodes to a :class:`~glowcore.latent.Latent`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .nn.dequant import Dequantizer
from .nn.actnorm import ActNorm
from .nn.coupling import COUPLINGS
from .nn.flows import FlowLayer
from .nn.priors import FittedNoise, SplitPrior, TopPrior, standard_normal_logp
from .nn.squeeze import squeeze2d, unsqueeze2d
from .nn.step import FlowStep
from .base.images import to_tensor, to_uint8
from .base.limits import MAX_LEVELS
from .base.progress import CancelToken
from .latent import Latent

__all__ = ["GlowConfig", "Glow", "DEFAULT_TEMPERATURE", "DEFAULT_DETAIL_TEMPERATURE"]

# What `glow sample` (and seed:N inputs) and the explorer draw when no temperature is given: the
# coarse levels at 0.7, the finest half at 0.85. Measured on the bundled model, 2,000 samples of
# seeds the choice had not seen (docs/sampling.md): against 0.7 everywhere, the Frechet distance in
# the judge's features 7.7% lower (15% in its texture features), recall 0.034 vs 0.027, precision
# the same (0.939 vs 0.941). The API's own defaults stay one temperature (`sample_latent`).
DEFAULT_TEMPERATURE = 0.7
DEFAULT_DETAIL_TEMPERATURE = 0.85


@dataclass(frozen=True)
class GlowConfig:
    """Architecture and preprocessing of a Glow model.

    ``image_size`` is the side of the square input, ``levels`` the number of scales (L), ``steps``
    the flow steps per level (K), ``hidden`` the coupling networks' width, ``n_bits`` the bit depth
    the data is quantised to before dequantisation noise. ``prior_hidden`` is the width of a network
    in each split prior (0: the paper's single zero-initialised 3x3 convolution).
    ``dequant_hidden`` is the width of a learned dequantisation noise distribution
    (:class:`~glowcore.nn.dequant.Dequantizer`, used for training and bits/dim only; 0: uniform noise).
    """

    image_size: int = 64
    channels: int = 3
    levels: int = 4
    steps: int = 8
    hidden: int = 128
    coupling: str = "affine"
    lu: bool = True
    n_bits: int = 5
    prior_hidden: int = 0
    dequant_hidden: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ValueError(f"invalid Glow config: {msg}")

        for name in ("image_size", "channels", "levels", "steps", "hidden", "n_bits", "prior_hidden", "dequant_hidden"):
            value = getattr(self, name)
            need(isinstance(value, int) and not isinstance(value, bool), f"{name} must be an integer, got {value!r}")
        need(self.channels >= 1, f"channels must be >= 1, got {self.channels}")
        need(self.levels >= 1, f"levels must be >= 1, got {self.levels}")
        need(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        need(self.hidden >= 1, f"hidden must be >= 1, got {self.hidden}")
        need(self.prior_hidden >= 0, f"prior_hidden must be >= 0 (0: no prior network), got {self.prior_hidden}")
        need(self.dequant_hidden >= 0, f"dequant_hidden must be >= 0 (0: uniform dequantisation noise), got {self.dequant_hidden}")
        need(1 <= self.n_bits <= 8, f"n_bits must be between 1 and 8, got {self.n_bits}")
        need(self.coupling in COUPLINGS, f"coupling must be one of {tuple(COUPLINGS)}, got {self.coupling!r}")
        need(isinstance(self.lu, bool), f"lu must be true or false, got {self.lu!r}")
        need(self.levels <= MAX_LEVELS, f"levels must be at most {MAX_LEVELS}, got {self.levels}")
        factor = 2**self.levels
        need(
            self.image_size >= factor and self.image_size % factor == 0,
            f"image_size {self.image_size} cannot be halved {self.levels} times "
            f"(it must be a multiple of 2**levels = {factor}); "
            f"use image_size {max(factor, self.image_size // factor * factor)} or fewer levels",
        )

    @property
    def dim(self) -> int:
        return self.channels * self.image_size * self.image_size

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        # the paper's priors and uniform noise: files stay readable by earlier versions
        for key in ("prior_hidden", "dequant_hidden"):
            if not d[key]:
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "GlowConfig":
        if not isinstance(d, dict):
            raise ValueError(f"architecture must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown architecture field(s): {', '.join(unknown)}")
        return cls(**d)


# ----------------------------------------------------------------------------------- Glow
class _Level(nn.Module):
    def __init__(self, channels: int, size: int, config: GlowConfig, top: bool):
        super().__init__()
        self.steps = nn.ModuleList(
            FlowStep(channels, config.hidden, config.coupling, config.lu) for _ in range(config.steps)
        )
        self.prior: FlowLayer = TopPrior(channels, size) if top else SplitPrior(channels, config.prior_hidden)


class Glow(nn.Module):
    """A multi-scale Glow (Kingma & Dhariwal, 2018).

    As a flow, ``forward(x) -> (Latent, logdet)`` maps a preprocessed image tensor ``x`` in
    ``[-0.5, 0.5]`` to every level's standardised eps, and ``reverse(latent) -> x`` inverts it.
    ``logdet`` includes the priors' standardisation, so ``log p(x) = log N(eps; 0, I) + logdet``.

    The user-facing API takes images (uint8 arrays or float tensors in [0, 1], see
    :mod:`glowcore.base.images`): :meth:`encode`, :meth:`decode`, :meth:`sample`, :meth:`log_prob`,
    :meth:`bits_per_dim`.
    """

    def __init__(self, config: GlowConfig):
        super().__init__()
        config.validate()
        self.config = config
        # Named edit directions (flat vectors of length ``dim``) and what is known about each.
        self.directions: dict[str, Tensor] = {}
        self.direction_info: dict[str, dict] = {}
        # Free-form metadata saved with the model (training run, metrics, card).
        self.metadata: dict = {}
        # Where real faces put the top level's noise, to sample it from (see sample_latent); None: N(0, I).
        self.sampling_prior: FittedNoise | None = None
        self.source_path = None
        levels = []
        shapes = []
        c, size = config.channels, config.image_size
        for i in range(config.levels):
            c, size = c * 4, size // 2
            top = i == config.levels - 1
            levels.append(_Level(c, size, config, top))
            if top:
                shapes.append((c, size, size))
            else:
                shapes.append((c // 2, size, size))
                c = c // 2
        self.levels = nn.ModuleList(levels)
        self.dequantizer: Dequantizer | None = Dequantizer(config.channels, config.dequant_hidden) if config.dequant_hidden else None
        self.latent_shapes: tuple[tuple[int, int, int], ...] = tuple(shapes)

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dim(self) -> int:
        return self.config.dim

    @property
    def n_bins(self) -> int:
        return 2**self.config.n_bits

    @property
    def initialized(self) -> bool:
        return all(bool(m.initialized) for m in self.modules() if isinstance(m, ActNorm))

    def _check_input(self, x: Tensor) -> None:
        c, s = self.config.channels, self.config.image_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (c, s, s):
            raise ValueError(f"expected images of shape (batch, {c}, {s}, {s}), got {tuple(x.shape)}")

    # ------------------------------------------------------------------ the flow
    def forward(self, x: Tensor) -> tuple[Latent, Tensor]:  # type: ignore[override]
        self._check_input(x)
        logdet = x.new_zeros(x.shape[0])
        eps_levels = []
        h = x
        for level in self.levels:
            # channels-last activations: oneDNN's convolutions are markedly faster on them
            h = squeeze2d(h).contiguous(memory_format=torch.channels_last)
            for step in level.steps:
                h, ld = step(h)
                logdet = logdet + ld
            h, ld = level.prior(h)
            logdet = logdet + ld
            if isinstance(level.prior, SplitPrior):
                h, eps = h.chunk(2, dim=1)
                eps_levels.append(eps.contiguous())
            else:
                eps_levels.append(h.contiguous())
        return Latent(eps_levels), logdet

    def reverse(self, latent: Latent, cancel: CancelToken | None = None) -> Tensor:
        """Latent -> preprocessed image tensor in (about) [-0.5, 0.5]. Differentiable.

        ``cancel`` is checked between levels (an interactive render drops a stale picture early:
        ``cancel.check()`` raises :class:`glowcore.base.progress.Cancelled`)."""
        if latent.shapes != self.latent_shapes:
            raise ValueError(f"latent shapes {latent.shapes} do not match this model's {self.latent_shapes}")
        h = None
        for i in range(len(self.levels) - 1, -1, -1):
            if cancel is not None and h is not None:
                cancel.check()
            h = self.reverse_level(i, h, latent.levels[i])
        assert h is not None
        return h

    def reverse_level(self, i: int, h: Tensor | None, eps: Tensor) -> Tensor:
        """Level ``i`` of :meth:`reverse`: ``h`` from the level above (``None`` at the top) and this
        level's eps -> the input of the level below (the image after level 0)."""
        level = self.levels[i]
        if h is None:
            h = eps.contiguous(memory_format=torch.channels_last)
        else:
            h = torch.cat([h, eps], dim=1)
        h = level.prior.reverse(h)
        for step in reversed(level.steps):
            h = step.reverse(h)
        h = unsqueeze2d(h)
        if i > 0:
            h = h.contiguous(memory_format=torch.channels_last)
        return h

    def log_density(self, x: Tensor) -> Tensor:
        """Per-item log density (nats) of a preprocessed tensor ``x`` in [-0.5, 0.5]."""
        latent, logdet = self(x)
        return sum(standard_normal_logp(e) for e in latent.levels) + logdet

    # ------------------------------------------------------------------ preprocessing
    def quantize(self, images) -> Tensor:
        """The images' bins ``k`` in ``0 .. 2**n_bits - 1`` (float tensor on the model's device)."""
        x = to_tensor(images, self.config.channels)
        levels = torch.round(x * 255.0)  # the 8-bit values
        return torch.floor(levels / 2 ** (8 - self.config.n_bits)).to(self.device)

    def _noise(self, shape: torch.Size, generator: torch.Generator | None, normal: bool) -> Tensor:
        device = self.device if generator is None else generator.device
        draw = torch.randn if normal else torch.rand
        return draw(shape, generator=generator, device=device).to(self.device)

    def preprocess(self, images, noise: bool = True, generator: torch.Generator | None = None) -> Tensor:
        """Quantise to ``n_bits``, add uniform dequantisation noise (or the bin centre when
        ``noise`` is false) and scale to [-0.5, 0.5]."""
        k = self.quantize(images)
        u = self._noise(k.shape, generator, normal=False) if noise else torch.full_like(k, 0.5)
        return (k + u) / self.n_bins - 0.5

    def log_prob(self, images, noise: bool = True, generator: torch.Generator | None = None, variational: bool = True) -> Tensor:
        """Per-image discrete log-likelihood in nats (a lower bound): ``log p(x) - D log(2**n_bits)``,
        where x is the dequantised image, minus ``log q(u | k)`` when the noise comes from the
        model's learned :class:`~glowcore.nn.dequant.Dequantizer` (``variational=False``: uniform
        noise even then). ``noise=False`` puts every value at its bin centre instead (the value
        of one point, not a bound). Differentiable (use it as a training loss)."""
        const = self.dim * math.log(self.n_bins)
        if noise and variational and self.dequantizer is not None:
            k = self.quantize(images)
            eps = self._noise(k.shape, generator, normal=True)
            u, log_q = self.dequantizer((k + 0.5) / self.n_bins - 0.5, eps)
            return self.log_density((k + u) / self.n_bins - 0.5) - log_q - const
        return self.log_density(self.preprocess(images, noise=noise, generator=generator)) - const

    def bits_per_dim(self, images, noise: bool = True, generator: torch.Generator | None = None, variational: bool = True) -> Tensor:
        """Per-image bits per dimension at this model's bit depth ``n_bits`` (see :meth:`log_prob`)."""
        return -self.log_prob(images, noise=noise, generator=generator, variational=variational) / (self.dim * math.log(2.0))

    # ------------------------------------------------------------------ images <-> latents
    @torch.inference_mode()
    def encode(self, images, batch_size: int = 256) -> Latent:
        """Images -> Latent, deterministic (no dequantisation noise): ``x = image - 0.5``."""
        x = to_tensor(images, self.config.channels)
        out = []
        for i in range(0, x.shape[0], batch_size):
            latent, _ = self(x[i : i + batch_size].to(self.device) - 0.5)
            out.append(latent)
        return Latent.cat(out)

    def decode_tensor(self, latent: Latent) -> Tensor:
        """Latent -> float images (B, C, H, W) in [0, 1]; differentiable, never NaN or Inf."""
        x = self.reverse(latent.to(self.device))
        return torch.nan_to_num(x + 0.5, nan=0.5).clamp(0.0, 1.0)

    @torch.inference_mode()
    def decode(self, latent: Latent, batch_size: int = 256, fast: bool = False, cancel: CancelToken | None = None) -> Tensor:
        """Latent -> float images (B, C, H, W) in [0, 1], never NaN or Inf; regions that blow up far
        from the data are re-decoded with a damped reverse pass (``glowcore.decoding.stable``).

        ``fast=True`` runs the coupling networks in bfloat16 on the CPU
        (:func:`glowcore.base.modes.fast_networks`, for live display: faster where the CPU has
        AVX512-BF16, pixels within a few thousandths of the exact float32 decoding); the default
        is the exact float32 decoding, inverse of :meth:`encode`. ``cancel`` is checked between
        levels (see :meth:`reverse`).
        """
        from .base.modes import fast_networks
        from .decoding.stable import stable_reverse

        latent = latent.to(self.device)
        with fast_networks(fast):
            outs = [stable_reverse(self, latent[i : i + batch_size], cancel) for i in range(0, latent.batch_size, batch_size)]
        return (torch.cat(outs, dim=0) + 0.5).clamp(0.0, 1.0)

    def decode_uint8(self, latent: Latent, fast: bool = False) -> np.ndarray:
        """Latent -> uint8 images (B, H, W, C)."""
        return to_uint8(self.decode(latent, fast=fast))

    @property
    def detail_levels(self) -> int:
        """How many of the finest levels ``detail_temperature`` sets: half of them (at least one)."""
        return max(1, self.config.levels // 2)

    def level_temperatures(self, temperature: float | Sequence[float] = 0.7,
                           detail_temperature: float | None = None) -> list[float]:
        """One temperature per level, finest first: ``temperature`` everywhere (or one per level),
        with the finest :attr:`detail_levels` at ``detail_temperature`` when it is given.
        ``ValueError`` for a temperature that is not a finite number >= 0."""
        n = self.config.levels
        if isinstance(temperature, (int, float)) or (isinstance(temperature, Tensor) and temperature.ndim == 0):
            temps = [float(temperature)] * n
        else:
            temps = [float(t) for t in temperature]
            if len(temps) != n:
                raise ValueError(f"give one temperature per level ({n}, finest first), got {len(temps)}")
        if detail_temperature is not None:
            temps[: self.detail_levels] = [float(detail_temperature)] * self.detail_levels
        for t in temps:
            if not (math.isfinite(t) and t >= 0):
                raise ValueError(f"temperature must be a finite number >= 0, got {t}")
        return temps

    def sample_latent(self, n: int = 1, temperature: float | Sequence[float] = 0.7, seed: int | None = None,
                      detail_temperature: float | None = None, detail_seed: int | None = None,
                      fitted_prior: bool = True) -> Latent:
        """Standard-normal eps on every level, scaled by the level's temperature (see
        :meth:`level_temperatures`: one for all levels, one per level, or a separate
        ``detail_temperature`` for the finest levels, which carry texture, while the coarse ones
        carry pose and identity).

        The noise is drawn on the CPU from ``seed``, so a seed gives the same faces on any device.
        With ``detail_seed`` the finest levels' noise comes from that seed instead: the same face
        with other fine detail. A model with a :attr:`sampling_prior` (``scripts/fit_sampling_prior.py``)
        draws its top level from that fitted Gaussian instead of N(0, I) unless ``fitted_prior``
        is False; the other levels' noise is the same either way.
        """
        temps = self.level_temperatures(temperature, detail_temperature)
        gen = torch.Generator()
        if seed is None:
            gen.seed()
        else:
            gen.manual_seed(int(seed))
        eps = [torch.randn((n, *s), generator=gen) for s in self.latent_shapes]
        levels = [e * t for e, t in zip(eps, temps)]
        prior = self.sampling_prior if fitted_prior else None
        if prior is not None:  # drawn after every level's eps: the seeds' other levels stay as they were
            levels[-1] = prior.sample(eps[-1], torch.randn((n, prior.rank), generator=gen), temps[-1])
        if detail_seed is not None:
            dgen = torch.Generator()
            dgen.manual_seed(int(detail_seed))
            levels[: self.detail_levels] = [torch.randn((n, *s), generator=dgen) * t for s, t in zip(self.latent_shapes[: self.detail_levels], temps)]
        return Latent(levels).to(self.device)

    @torch.inference_mode()
    def sample(self, n: int = 1, temperature: float | Sequence[float] = 0.7, seed: int | None = None, fast: bool = False,
               detail_temperature: float | None = None, detail_seed: int | None = None, fitted_prior: bool = True) -> Tensor:
        """``n`` images (B, C, H, W) in [0, 1] at ``temperature`` (see :meth:`sample_latent`);
        reproducible with ``seed`` (``fast``: see :meth:`decode`)."""
        return self.decode(self.sample_latent(n, temperature, seed, detail_temperature, detail_seed, fitted_prior), fast=fast)

    # ------------------------------------------------------------------ misc
    def with_prior_networks(self, hidden: int) -> "Glow":
        """A copy of this model whose split priors gain networks of width ``hidden`` (see
        :class:`~glowcore.nn.priors.SplitPrior`). Their output convolutions start at zero, so the copy
        computes exactly what this model computes until it is trained further: a trained model
        grows capacity where decoding is cheap without starting again."""
        if self.config.prior_hidden:
            raise ValueError(f"this model's split priors already have networks (width {self.config.prior_hidden})")
        return self._grown(dataclasses.replace(self.config, prior_hidden=hidden), ".prior.net.")

    def with_dequantizer(self, hidden: int) -> "Glow":
        """A copy of this model with a learned dequantisation noise distribution of width ``hidden``
        (:class:`~glowcore.nn.dequant.Dequantizer`). It starts as exactly uniform noise, so the copy's
        bits/dim are this model's until it is trained further; decoding never uses it."""
        if self.config.dequant_hidden:
            raise ValueError(f"this model already has a learned dequantiser (width {self.config.dequant_hidden})")
        return self._grown(dataclasses.replace(self.config, dequant_hidden=hidden), "dequantizer.")

    def _grown(self, config: GlowConfig, new_part: str) -> "Glow":
        """A copy of this model with ``config``, whose only new tensors are those named ``new_part``."""
        grown = Glow(config).to(self.device)
        missing, unexpected = grown.load_state_dict(self.state_dict(), strict=False)
        assert not unexpected and all(new_part in k for k in missing), (missing, unexpected)
        grown.train(self.training)
        grown.directions = dict(self.directions)
        grown.direction_info = {k: dict(v) for k, v in self.direction_info.items()}
        grown.metadata = dict(self.metadata)
        grown.sampling_prior = self.sampling_prior
        return grown

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def initialize(self, images) -> None:
        """Run ActNorm's data-dependent initialisation on a batch of images (train mode)."""
        was_training = self.training
        self.train()
        self.log_prob(images)
        self.train(was_training)

    def describe(self) -> str:
        c = self.config
        return (
            f"Glow {c.image_size}x{c.image_size}x{c.channels}, L={c.levels} K={c.steps} hidden={c.hidden}, "
            + (f"prior networks {c.prior_hidden} wide, " if c.prior_hidden else "")
            + (f"learned dequantisation {c.dequant_hidden} wide, " if c.dequant_hidden else "")
            + f"{c.coupling} coupling, {'LU' if c.lu else 'plain'} 1x1 conv, {c.n_bits}-bit, "
            f"{self.num_parameters():,} parameters"
            + (f", top level sampled from a fitted Gaussian (rank {self.sampling_prior.rank})" if self.sampling_prior is not None else "")
        )
