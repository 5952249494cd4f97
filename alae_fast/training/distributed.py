"""Data-parallel training across processes started by ``torchrun``, through ``torch.distributed``.

    torchrun --nproc_per_node 8 -m alae_fast.cli train --preset celeba-128 --data /data/celeba

torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init_distributed` reads them and joins the process group: NCCL when the processes
run on CUDA GPUs (one GPU per process, ``cuda:LOCAL_RANK``), gloo on the CPU. Without those
variables it returns a single-process context and nothing here communicates.

How the replicas stay identical (the same scheme StyleGAN2-ADA uses, rather than wrapping
modules in ``DistributedDataParallel``): every rank builds the model from the same seed and
then receives rank 0's weights (:meth:`DistributedContext.broadcast_module`); after each
backward, the gradients of the parameters being stepped are averaged over ranks in one
flat all-reduce (:meth:`DistributedContext.average_gradients`), so every rank applies the
same Adam update. The ALAE iteration runs three optimisation steps on different parameter
subsets and the first one differentiates through a gradient (R1, ``create_graph=True``),
which ``DistributedDataParallel``'s bucketed hooks do not support; an explicit all-reduce
after each backward is exact for all three.

The per-rank batch is ``global batch / world size``; data are sharded by rank by
:class:`alae_fast.data.DataStream` (rank ``r`` takes slice ``r`` of each global batch).
Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistributedContext", "init_distributed", "shutdown_distributed", "pick_device"]


def pick_device(device: str | torch.device | None = None, local_rank: int = 0) -> torch.device:
    """``'auto'``/None: ``cuda:local_rank`` when CUDA is available, else the CPU; otherwise ``device``."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
    return dev


@dataclass
class DistributedContext:
    """Where this process stands in the job.

    rank, world_size, local_rank: as set by torchrun (0, 1, 0 alone); device: the device
    this process trains on; backend: 'nccl', 'gloo' or None (single process).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        """True in a multi-process job."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that writes files and prints."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    @torch.no_grad()
    def broadcast_module(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers into every rank's ``module``."""
        if not self.enabled:
            return
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)

    @torch.no_grad()
    def average_gradients(self, params: Iterable[torch.Tensor]) -> None:
        """Replace each ``.grad`` of ``params`` (those that have one) by its mean over ranks.

        All ranks must pass the same parameters with gradients in the same order (they do: they
        run the same code). One flat all-reduce: fewer, larger messages.
        """
        if not self.enabled:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat.div_(self.world_size)
        offset = 0
        for g in grads:
            n = g.numel()
            g.copy_(flat[offset:offset + n].view_as(g))
            offset += n

    @torch.no_grad()
    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """The mean over ranks of a tensor of the same shape on every rank (a new tensor)."""
        if not self.enabled:
            return t.clone()
        out = t.detach().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out.div_(self.world_size)

    def all_gather_object(self, obj: Any) -> list[Any]:
        """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` alone)."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out



def init_distributed(device: str | torch.device | None = "auto") -> DistributedContext:
    """Join the torchrun job described by the environment, or return a single-process context.

    Args:
        device: 'auto' (default: the local GPU when CUDA is available, else the CPU), 'cpu',
            'cuda' or a specific device. The backend follows it: NCCL for CUDA, gloo for the CPU.

    A process group that is already initialised (e.g. by a test harness) is reused.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    if dist.is_available() and dist.is_initialized():
        world_size, rank = dist.get_world_size(), dist.get_rank()
    dev = pick_device(device, local_rank)
    if world_size <= 1:
        return DistributedContext(0, 1, 0, dev, None)
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    else:
        backend = dist.get_backend()
    return DistributedContext(rank, world_size, local_rank, dev, backend)


def shutdown_distributed(ctx: DistributedContext) -> None:
    """Leave the process group (no-op alone)."""
    if ctx.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
