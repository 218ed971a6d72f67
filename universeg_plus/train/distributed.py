"""Multi-process training helpers: torchrun environment, process group, DDP wrapping.

Run with ``torchrun --nproc_per_node N -m universeg_plus train --config ...``; each process gets
``RANK``/``LOCAL_RANK``/``WORLD_SIZE`` from torchrun. The backend is NCCL on CUDA and gloo on CPU.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistInfo", "all_reduce_max", "all_reduce_mean", "cleanup", "setup", "wrap_model"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: rank, world size, its device, and whether a group is active."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    active: bool

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the process that logs, validates and writes files)."""
        return self.rank == 0


def _resolve_device(device: str, local_rank: int) -> torch.device:
    if device == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"train.device={device!r} but CUDA is not available; use 'auto' or 'cpu'")
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
    return dev


def setup(device: str = "auto") -> DistInfo:
    """Initialise the process group if launched by torchrun (``WORLD_SIZE > 1``), else single-process.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:K"``; with ``"auto"``/``"cuda"`` each
            process uses ``cuda:LOCAL_RANK``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _resolve_device(device, local)
    if world <= 1:
        return DistInfo(0, 1, 0, dev, False)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if not dist.is_initialized():
        kw = {"device_id": dev} if dev.type == "cuda" else {}
        dist.init_process_group(backend=backend, **kw)
    log.info("process group: rank %d/%d, backend %s, device %s", rank, world, backend, dev)
    return DistInfo(rank, world, local, dev, True)


def wrap_model(model: nn.Module, info: DistInfo) -> nn.Module:
    """``DistributedDataParallel`` when a group is active, else the model itself.

    In split mode the last decoder block's support conv never contributes to the output, so DDP
    must be told that some parameters get no gradient (``find_unused_parameters=True``).
    """
    if not info.active:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [info.device.index] if info.device.type == "cuda" else None
    return DDP(model, device_ids=ids, find_unused_parameters=True)


def all_reduce_mean(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean of a tensor over processes (identity without a group)."""
    if not info.active:
        return x
    y = x.clone()
    dist.all_reduce(y, op=dist.ReduceOp.SUM)
    return y / info.world_size


def all_reduce_max(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Max of a tensor over processes (identity without a group)."""
    if not info.active:
        return x
    y = x.clone()
    dist.all_reduce(y, op=dist.ReduceOp.MAX)
    return y


def cleanup(info: DistInfo) -> None:
    """Destroy the process group if this module created one."""
    if info.active and dist.is_initialized():
        dist.destroy_process_group()
