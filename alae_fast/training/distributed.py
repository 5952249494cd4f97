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

How a job ends on an error (:func:`end_job_with_error`, called by the CLI's error boundary on
every rank that stops with an exception): the rank records its end in the job's store (the one
torchrun hosts, through which the process group met), waits for the other ranks to record
theirs (at most :data:`ERROR_WAIT_SECONDS`), and every rank then exits with the same code; the
error's one line is said once, by rank 0 (or, when rank 0 cannot say it, by the rank that met
it). :meth:`DistributedContext.barrier` waits through the store too and raises
:class:`PeerFailed` when another rank ended with an error, so ranks that wait while rank 0
alone writes files do not wait for a rank that is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Iterable

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistributedContext", "init_distributed", "shutdown_distributed", "pick_device", "PeerFailed",
           "JobEnd", "end_job_with_error", "job_rank", "warnings_said_once", "ERROR_WAIT_SECONDS"]

# How long a rank that stops with an error waits for the others to stop too (they meet the same
# error a moment later when it comes from what every rank reads: the command line, --data, --out).
# Below torchrun's 30 s between its SIGTERM and its SIGKILL, so that a rank told to stop by
# torchrun meanwhile still exits on its own, with the job's code.
ERROR_WAIT_SECONDS = 15.0

# The job's key-value store (torchrun's, or the process group's), kept past the group's end: the
# error path uses it after shutdown_distributed has destroyed the group.
_store: Any = None
_barriers = 0


_QUIET = False  # warnings_said_once is in effect in this process


@contextlib.contextmanager
def warnings_said_once(rank: int | None = None):
    """Inside it, a job's warnings are said once: by rank 0 (``rank``; default :func:`job_rank`'s).

    Every rank scans the same data folder and reads the same checkpoint, so their warnings (files
    left out, notes on the images, an older checkpoint taken) were said once per rank. Ranks
    other than 0 say only warnings of the class :class:`~alae_fast.data.folder.DecodeWarning`,
    about images they decode themselves, prefixed ``rank R:``. Nested uses are one."""
    global _QUIET
    if rank is None:
        rank = (job_rank() or (0, 1))[0]
    if rank == 0 or _QUIET:
        yield
        return
    from ..data.folder import DecodeWarning

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        shown(f"rank {rank}: {message}", category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        warnings.filterwarnings("default", category=DecodeWarning)
        warnings.showwarning = show
        _QUIET = True
        try:
            yield
        finally:
            _QUIET = False


def job_rank() -> tuple[int, int] | None:
    """(rank, world_size) of this process in a multi-process job (the process group's, else
    torchrun's ``RANK`` and ``WORLD_SIZE``); None alone."""
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        try:
            rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        except ValueError:
            return None
    return (rank, world) if world > 1 and 0 <= rank < world else None


def _key(name: str) -> str:
    # torchrun keeps its store across restarts (--max-restarts): each attempt has its own keys
    return f"alae_fast/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/{name}"


def _remember_store() -> None:
    global _store
    try:
        _store = dist.distributed_c10d._get_default_store()
    except Exception:  # a torch without it: barriers go through the process group, errors are said per rank
        _store = None


def _job_store(rank: int, world: int) -> Any:
    """The job's store: the one kept from the process group, else torchrun's (``MASTER_ADDR``,
    ``MASTER_PORT``), reached as the process group would reach it; None when there is none."""
    global _store
    if _store is None and dist.is_available():
        if dist.is_initialized():
            _remember_store()
        elif os.environ.get("MASTER_ADDR") and os.environ.get("MASTER_PORT"):
            try:
                _store = next(dist.rendezvous("env://", rank=rank, world_size=world, timeout=timedelta(seconds=30)))[0]
            except Exception:
                _store = None
    return _store


class PeerFailed(RuntimeError):
    """Raised on a rank that stops because another rank of the job ended with an error (by
    :meth:`DistributedContext.barrier`). ``rank``: the rank that met it; ``kind``: 'usage' (the
    user's mistake, one line) or 'bug'; ``message``: its one line."""

    def __init__(self, rank: int, kind: str, message: str):
        super().__init__(f"rank {rank} stopped with an error: {message}")
        self.rank, self.kind, self.message = rank, kind, message


@dataclass
class JobEnd:
    """How a rank ends a job that stopped with an error (:func:`end_job_with_error`).

    code: the exit status every rank uses (2 for a user's mistake, 1 for a bug); reraise: True
    on a rank whose own exception is a bug the job stops for (it keeps its traceback); said:
    whether this rank said the error's line."""

    code: int
    reraise: bool
    said: bool


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
        """Wait until every rank has come here. Through the job's store when there is one: a rank
        that ended with an error meanwhile (rank 0 writing the run's files, say) ends the wait
        with :class:`PeerFailed` instead of leaving the others waiting for it."""
        if not self.enabled:
            return
        store = _job_store(self.rank, self.world_size)
        if store is None:
            dist.barrier()
            return
        global _barriers
        _barriers += 1
        key = _key(f"barrier/{_barriers}")
        store.add(key, 1)
        pause = 0.001
        while store.add(key, 0) < self.world_size:
            failed = _first_failure(store, self.world_size, self.rank)
            if failed is not None:
                raise PeerFailed(*failed)
            time.sleep(pause)
            pause = min(2 * pause, 0.05)

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
    _remember_store()
    return DistributedContext(rank, world_size, local_rank, dev, backend)


def shutdown_distributed(ctx: DistributedContext) -> None:
    """Leave the process group (no-op alone): after a barrier, or, while an exception is on its
    way out (called from a ``finally``), at once: the other ranks may never come to a barrier,
    and the group's end makes those waiting in a collective (gloo) stop instead of waiting."""
    if ctx.enabled and dist.is_initialized():
        if sys.exc_info()[1] is None:
            ctx.barrier()
        dist.destroy_process_group()


def _records(store, world: int) -> dict[int, dict]:
    """rank -> how it ended, of the ranks that have recorded their end: {'kind': 'usage', 'bug'
    or 'peer' (stopped by another rank's error: 'root', 'root_kind'), 'message'}."""
    out = {}
    for r in range(world):
        key = _key(f"end/{r}")
        if store.check([key]):
            out[r] = json.loads(store.get(key).decode())
    return out


def _root(records: dict[int, dict]) -> tuple[int, str, str] | None:
    """(rank, kind, message) of the error the job stops for: the lowest rank's user error, else
    the lowest rank's bug (a rank stopped by a peer only passes that peer's on)."""
    for kind in ("usage", "bug"):
        for r in sorted(records):
            if records[r]["kind"] == kind:
                return r, kind, records[r]["message"]
    for r in sorted(records):
        rec = records[r]
        if rec["kind"] == "peer" and rec.get("root") is not None:
            return rec["root"], rec["root_kind"], rec["message"]
    return None


def _first_failure(store, world: int, rank: int) -> tuple[int, str, str] | None:
    """:func:`_root` of the other ranks that have ended with an error; None while none has."""
    if store.add(_key("ended"), 0) == 0:
        return None
    return _root({r: rec for r, rec in _records(store, world).items() if r != rank})


def end_job_with_error(error: BaseException, usage: bool, say: Callable[[str], None],
                       wait: float = ERROR_WAIT_SECONDS) -> JobEnd | None:
    """The error boundary's part in a multi-process job (the CLI's ``main`` calls it on every
    rank that stops with an exception); None alone, or when the job has no store to meet in
    (the caller then says the error and exits as a single process would).

    Args:
        error: the exception this rank stops with; a :class:`PeerFailed` is another rank's.
        usage: whether ``error`` is the user's mistake (said as one line, exit status 2) rather
            than a bug (its traceback, exit status 1).
        say: called with the one line to say (the error's message, with ``rank R:`` before it
            when R, not rank 0, met it), on at most one rank.
        wait: seconds to wait for the other ranks to stop too (default
            :data:`ERROR_WAIT_SECONDS`, 15); a rank busy elsewhere (in a collective with the
            rank that stopped) is then left to torchrun.

    This rank records how it ends in the job's store and waits until every rank has recorded
    its end or ``wait`` has passed. Rank 0 says a user error it met itself at once, and another
    rank's once it knows it; any other rank says its own only when rank 0 has not said one by
    then. Every rank returns the code of the job's error (the lowest rank's user error, else the
    lowest rank's bug), so torchrun reports the same status for each; SIGTERM is ignored from
    here on (torchrun sends it to the ranks still running when the first one exits), so that a
    rank still exits on its own, with that code. A rank whose bug is the job's error is told to
    re-raise it (its traceback); a bug that follows another rank's error (a collective broken by
    that rank's exit) is not said.
    """
    job = job_rank()
    if job is None:
        return None
    rank, world = job
    store = _job_store(rank, world)
    if store is None:
        return None
    if isinstance(error, PeerFailed):
        record = {"kind": "peer", "root": error.rank, "root_kind": error.kind, "message": error.message}
    else:  # a user error as it is said alone; a bug by its first line (its traceback is its rank's to print)
        text = str(error).strip()
        record = {"kind": "usage" if usage else "bug",
                  "message": (text if usage else text.splitlines()[0]) if text else type(error).__name__}
    try:
        store.set(_key(f"end/{rank}"), json.dumps(record))
        store.add(_key("ended"), 1)
    except Exception:  # the store went away (torchrun is ending the job): say it here, as alone
        return None
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def say_once(r: int, message: str) -> bool:
        say(message if r == 0 else f"rank {r}: {message}")
        try:
            store.set(_key("said"), str(rank))
        except Exception:
            pass
        return True

    said = False
    if rank == 0 and record["kind"] == "usage":
        said = say_once(0, record["message"])
    elif rank == 0 and record["kind"] == "peer" and record["root_kind"] == "usage":
        said = say_once(record["root"], record["message"])
    deadline = time.monotonic() + wait
    pause = 0.001
    try:
        while store.add(_key("ended"), 0) < world and time.monotonic() < deadline:
            time.sleep(pause)
            pause = min(2 * pause, 0.05)
        everyone = store.add(_key("ended"), 0) >= world
        root = _root(_records(store, world))
        if rank == 0 and not said and root is not None and root[1] == "usage":
            said = say_once(root[0], root[2])
        elif rank != 0 and record["kind"] == "usage" and root is not None and root[0] == rank:
            # rank 0 says it when it is still there to (it has recorded its end, so it is about to)
            later = time.monotonic() + (5.0 if everyone else 0.0)
            while not store.check([_key("said")]) and time.monotonic() < later:
                time.sleep(0.01)
            if not store.check([_key("said")]):
                said = say_once(rank, record["message"])
    except KeyboardInterrupt:  # Ctrl-C while waiting: stop waiting, end as this rank knows
        root = None
    except Exception:  # the store went away meanwhile (torchrun is ending the job)
        root = None
    if root is None:
        root = (rank, record["kind"], record["message"]) if record["kind"] != "peer" else (
            record["root"], record["root_kind"], record["message"])
    code = 2 if root[1] == "usage" else 1
    return JobEnd(code=code, reraise=record["kind"] == "bug" and root == (rank, "bug", record["message"]),
                  said=said)
