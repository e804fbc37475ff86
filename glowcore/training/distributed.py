"""Training on several processes under ``torchrun`` (DistributedDataParallel: NCCL on GPUs, gloo
on CPUs), and the same calls as no-ops in a single process.

Each rank takes its share of every global batch (:class:`~glowcore.training.train.Trainer`), so the
data order and the schedule do not depend on the number of processes; only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

__all__ = ["Distributed", "init_distributed", "default_device", "barrier", "agreed", "wrap"]


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    enabled: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_pref: Optional[str]) -> tuple[Distributed, torch.device]:
    """This process's place (from torchrun's environment) and the device it trains on."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        dev = torch.device(device_pref) if device_pref else default_device()
        return Distributed(), dev
    import torch.distributed as dist

    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and (device_pref is None or device_pref.startswith("cuda"))
    if use_cuda:
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Distributed(rank, world, local, True), dev


def default_device() -> torch.device:
    from ..io.checkpoint import default_device

    return default_device()


def barrier(d: Distributed) -> None:
    if d.enabled:
        import torch.distributed as dist

        dist.barrier()


def agreed(d: Distributed, flags: list[bool], device: torch.device) -> list[bool]:
    """``flags`` OR-ed over all ranks (time-based decisions must be the same on every rank)."""
    if not d.enabled:
        return flags
    import torch.distributed as dist

    t = torch.tensor([float(f) for f in flags], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def wrap(d: Distributed, net: nn.Module, device: torch.device) -> nn.Module:
    """``net`` under DistributedDataParallel when there are several ranks, else ``net`` itself."""
    if not d.enabled:
        return net
    import inspect
    import warnings

    from torch.nn.parallel import DistributedDataParallel as DDP

    # oneDNN returns 1x1-conv weight grads in another memory layout on CPU; harmless.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")

    # Buffers (ActNorm flags, LU permutations) are constant after initialisation: sync them
    # once at construction (from rank 0), not at every forward.
    params_ok = inspect.signature(DDP.__init__).parameters
    sync_kw = {"forward_sync_buffers": False} if "forward_sync_buffers" in params_ok else {"broadcast_buffers": False}
    return DDP(net, device_ids=[device.index] if device.type == "cuda" else None, **sync_kw)
