"""Counts as a sentence says them ("1 image", "2 images"), for the messages users read."""

from __future__ import annotations

__all__ = ["plural"]


def plural(count: int, word: str, many: str | None = None) -> str:
    """``count`` and ``word`` as a line says them: "1 image", "0 images", "2 images".

    ``many``: the plural when it is not ``word`` + "s" ("run folder" -> default, "is" -> "are").
    """
    return f"{count} {word if count == 1 else many or word + 's'}"
