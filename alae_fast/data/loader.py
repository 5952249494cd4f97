"""An endless, rank-sharded, exactly resumable stream of training batches.

The data order is one infinite *global stream*: epoch ``e`` is a permutation of
``range(len(dataset))`` drawn from a ``torch.Generator`` seeded with
``seed * 1_000_003 + e`` (or the identity when ``shuffle=False``), and the epochs are
concatenated. Batches may straddle an epoch boundary; nothing is dropped or padded.

Each training step consumes the next ``global_batch`` positions of that stream; rank ``r``
of ``world_size`` takes the contiguous slice ``[r * b, (r + 1) * b)`` of them with
``b = global_batch / world_size``. So:

- concatenating the per-rank batches in rank order gives exactly the batch one process
  would get with the same global batch (what a DDP equivalence test needs);
- the whole state is one integer, ``position`` (global samples consumed), identical on
  every rank, so rank 0 alone can checkpoint it, and a run resumed from it, even with a
  different world size or after a batch-size change, sees the same data it would have seen;
- ``position`` advances only when a batch is handed to the caller, so worker prefetching
  never makes the saved state run ahead of what training used.

This plays the role of ``torch.utils.data.DistributedSampler`` (sharding by rank), with an
exact position instead of only an epoch number.

Random horizontal flips (``flip=True``, as the official ALAE's ``DATASET.FLIP_IMAGES``, on by
default there: each image of a batch mirrored with probability 1/2, dataloader.py at 42bcf2e)
follow the same rule: whether stream position ``p`` is mirrored is bit ``p mod n`` of an epoch's
``n`` fair coin flips, drawn from a ``torch.Generator`` seeded with
``2 * (seed * 1_000_003 + e) + 1`` (:func:`stream_flips`). A position's flip therefore depends
only on (seed, position): not on the batch size, the world size or a resume.
"""

from __future__ import annotations

import signal
from functools import lru_cache
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["stream_indices", "stream_flips", "ShardedStreamSampler", "DataStream"]


@lru_cache(maxsize=4)  # consecutive steps hit the same epoch; callers only read the result
def _epoch_permutation(n: int, epoch: int, seed: int, shuffle: bool) -> torch.Tensor:
    if not shuffle:
        return torch.arange(n, dtype=torch.int64)
    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % (1 << 63))
    return torch.randperm(n, generator=g, dtype=torch.int64)


@lru_cache(maxsize=4)
def _epoch_flips(n: int, epoch: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed((2 * (seed * 1_000_003 + epoch) + 1) % (1 << 63))
    return torch.randint(0, 2, (n,), generator=g, dtype=torch.int64).bool()


def _stream_slice(n: int, start: int, count: int, dtype: torch.dtype, epoch_values) -> torch.Tensor:
    """Positions ``start .. start + count - 1`` of the stream whose epoch ``e`` is the ``[n]``
    tensor ``epoch_values(e)``, epochs concatenated (``[count]`` of ``dtype``). Raises ValueError
    for ``n <= 0`` or a negative ``start``/``count``."""
    if n <= 0:
        raise ValueError(f"n: expected a positive dataset length, got {n}")
    if start < 0 or count < 0:
        raise ValueError(f"start/count: expected non-negative ints, got {start}, {count}")
    out = torch.empty(count, dtype=dtype)
    pos, filled = start, 0
    while filled < count:
        epoch, offset = divmod(pos, n)
        take = min(n - offset, count - filled)
        out[filled:filled + take] = epoch_values(epoch)[offset:offset + take]
        filled += take
        pos += take
    return out


def stream_flips(n: int, start: int, count: int, seed: int = 0) -> torch.Tensor:
    """Whether global stream positions ``start .. start + count - 1`` are mirrored (bool ``[count]``).

    ``n`` is the dataset length (the epoch length of the stream); each position is a fair coin,
    independent of the others, fixed by (seed, position) alone (see the module docstring).
    Raises ValueError for ``n <= 0`` or a negative ``start``/``count``.
    """
    return _stream_slice(n, start, count, torch.bool, lambda epoch: _epoch_flips(n, epoch, seed))


def stream_indices(n: int, start: int, count: int, seed: int = 0, shuffle: bool = True) -> torch.Tensor:
    """Dataset indices at global stream positions ``start .. start + count - 1`` (int64 ``[count]``).

    Raises ValueError for ``n <= 0`` or a negative ``start``/``count``."""
    return _stream_slice(n, start, count, torch.int64, lambda epoch: _epoch_permutation(n, epoch, seed, shuffle))


class ShardedStreamSampler(Sampler[int]):
    """Yields rank ``rank``'s indices of the global stream, endlessly, from position ``start``.

    Meant for ``DataLoader(dataset, batch_size=per_rank_batch, sampler=...)``: every
    ``per_rank_batch`` consecutive indices it yields form this rank's share of one step.
    """

    def __init__(self, dataset_len: int, per_rank_batch: int, rank: int = 0, world_size: int = 1,
                 seed: int = 0, shuffle: bool = True, start: int = 0):
        _check_sharding(per_rank_batch * world_size, rank, world_size)
        self.n, self.b, self.rank, self.world = int(dataset_len), int(per_rank_batch), int(rank), int(world_size)
        self.seed, self.shuffle, self.start = int(seed), bool(shuffle), int(start)

    def __iter__(self) -> Iterator[int]:
        pos = self.start
        while True:
            idx = stream_indices(self.n, pos + self.rank * self.b, self.b, self.seed, self.shuffle)
            yield from idx.tolist()
            pos += self.b * self.world


def _check_sharding(global_batch: int, rank: int, world_size: int) -> None:
    if not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size: expected a positive int, got {world_size!r}")
    if not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"rank: expected an int in [0, {world_size}), got {rank!r}")
    if not isinstance(global_batch, int) or global_batch < 1 or global_batch % world_size:
        raise ValueError(f"batch_size: expected a positive multiple of world_size={world_size}, got {global_batch!r}")


def _ignore_stop_signals(worker_id: int) -> None:
    """A loading worker ignores SIGINT and SIGTERM: Ctrl-C and a scheduler's SIGTERM reach the
    whole process group, and the main process owns the stop (it checkpoints, then shuts the
    workers down). A forked worker would otherwise run the trainer's inherited handler (and
    say "stopping" once per worker) or die, which the DataLoader reports as a crash."""
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)


class DataStream:
    """Endless per-rank batches of ``dataset``, resumable from ``state_dict()``.

    Args:
        dataset: a map-style dataset whose items are ``(image, label)`` tensors (all of
            ``alae_fast.data``'s are).
        batch_size: the GLOBAL batch per step; must be a multiple of ``world_size``.
            Each call of ``next()`` returns this rank's ``batch_size // world_size`` items.
        rank, world_size: this process's place in a DDP job (0 and 1 alone).
        seed: picks the shuffling; ``shuffle=False`` walks the data in order.
        num_workers: 0 (default) loads in this process, using the dataset's batched
            ``get_batch`` when it has one (fast for in-memory data); > 0 uses a
            ``DataLoader`` with that many worker processes.
        pin_memory: passed to the ``DataLoader`` (workers only).
        position: global stream position to start from (normally set by ``load_state_dict``).
        flip: mirror each image horizontally with probability 1/2, decided by its stream
            position (:func:`stream_flips`; default False).

    ``next()`` returns ``(images [b, C, R, R] float32, labels [b] int64)`` on the CPU.
    """

    def __init__(self, dataset: Dataset, batch_size: int, rank: int = 0, world_size: int = 1, seed: int = 0,
                 shuffle: bool = True, num_workers: int = 0, pin_memory: bool = False, position: int = 0,
                 flip: bool = False):
        _check_sharding(batch_size, rank, world_size)
        if len(dataset) == 0:
            raise ValueError("dataset: is empty")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers: expected an int >= 0, got {num_workers!r}")
        self.dataset = dataset
        self.rank, self.world_size = rank, world_size
        self.seed, self.shuffle, self.flip = int(seed), bool(shuffle), bool(flip)
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.batch_size = batch_size
        self.position = int(position)
        self._iter = None

    @property
    def per_rank_batch(self) -> int:
        return self.batch_size // self.world_size

    def set_batch_size(self, batch_size: int) -> None:
        """Change the global batch from the next step on (e.g. at a level-of-detail switch)."""
        _check_sharding(batch_size, self.rank, self.world_size)
        if batch_size != self.batch_size:
            self.batch_size = batch_size
            self._iter = None

    def _indices(self) -> torch.Tensor:
        b = self.per_rank_batch
        return stream_indices(len(self.dataset), self.position + self.rank * b, b, self.seed, self.shuffle)

    def _load_direct(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self._indices()
        get_batch = getattr(self.dataset, "get_batch", None)
        if get_batch is not None:
            return get_batch(idx)
        items = [self.dataset[int(i)] for i in idx]
        return torch.stack([torch.as_tensor(x) for x, _ in items]), torch.stack([torch.as_tensor(y) for _, y in items])

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's share of the next global batch; advances ``position`` by the global batch."""
        if self.num_workers == 0:
            batch = self._load_direct()
        else:
            if self._iter is None:
                sampler = ShardedStreamSampler(len(self.dataset), self.per_rank_batch, self.rank, self.world_size,
                                               self.seed, self.shuffle, start=self.position)
                loader = DataLoader(self.dataset, batch_size=self.per_rank_batch, sampler=sampler,
                                    num_workers=self.num_workers, pin_memory=self.pin_memory, drop_last=True,
                                    worker_init_fn=_ignore_stop_signals)
                # iter() draws the workers' base seed from torch's default generator, which also
                # draws G's noise: a resumed run (a new iterator) and a run with workers took other
                # noise than a straight run and one without. The loading itself draws nothing.
                with torch.random.fork_rng(devices=[]):
                    self._iter = iter(loader)
            x, y = next(self._iter)
            batch = (x, y)
        if self.flip:
            batch = (self._mirror(batch[0]), batch[1])
        self.position += self.batch_size
        return batch

    def _mirror(self, x: torch.Tensor) -> torch.Tensor:
        b = self.per_rank_batch
        flips = stream_flips(len(self.dataset), self.position + self.rank * b, b, self.seed)
        return torch.where(flips.view(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)

    def __iter__(self):
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.next()

    def state_dict(self) -> dict:
        """``{"position", "seed", "shuffle", "flip", "dataset_len"}``: plain ints/bools, the same on
        every rank."""
        return {"position": self.position, "seed": self.seed, "shuffle": self.shuffle, "flip": self.flip,
                "dataset_len": len(self.dataset)}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a saved ``state_dict()``. The dataset length must match (else the
        saved position would point at other images) - a ``ValueError`` says so."""
        if int(state["dataset_len"]) != len(self.dataset):
            raise ValueError(f"state: saved for a dataset of {state['dataset_len']} items, "
                             f"this one has {len(self.dataset)} (did the data change?)")
        self.position = int(state["position"])
        self.seed = int(state["seed"])
        self.shuffle = bool(state["shuffle"])
        self.flip = bool(state.get("flip", False))  # saved before flips existed: none
        self._iter = None
