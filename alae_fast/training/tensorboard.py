"""TensorBoard event files beside ``log.jsonl``, when the ``tensorboard`` package is installed.

NVlabs' training scripts write both a JSONL log and TensorBoard events; so does ``alae-fast
train``: :func:`open_event_writer` returns a writer of the run folder's ``events.out.tfevents.*``
(through ``torch.utils.tensorboard``), or None when tensorboard is not installed: it is an
optional extra (``pip install '.[tensorboard]'``), never required.
"""

from __future__ import annotations

import math
import os

__all__ = ["EventWriter", "open_event_writer"]


class EventWriter:
    """Writes each numeric field of a log record as a scalar ``<group>/<field>`` at step
    ``images seen`` (kimg x 1000), as NVlabs' ``Loss/...``, ``Progress/...`` tags group them."""

    GROUPS = {"loss_d": "Loss", "loss_g": "Loss", "loss_ae": "Loss", "d_real": "Loss", "d_fake": "Loss",
              "r1": "Loss", "lod": "Progress", "blend": "Progress", "batch": "Progress", "lr": "Progress",
              "images_per_s": "Timing", "time_s": "Timing"}

    def __init__(self, folder: str | os.PathLike):
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(folder))

    def add(self, record: dict) -> None:
        step = int(round(float(record.get("kimg", 0.0)) * 1000))
        for key, value in record.items():
            if key in ("kimg", "step") or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                self._writer.add_scalar(f"{self.GROUPS.get(key, 'Metrics')}/{key}", value, step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def open_event_writer(folder: str | os.PathLike) -> EventWriter | None:
    """An :class:`EventWriter` for ``folder``, or None when tensorboard is not installed."""
    try:
        return EventWriter(folder)
    except ImportError:
        return None
