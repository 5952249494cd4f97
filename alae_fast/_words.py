"""Counts as a sentence says them ("1 image", "2 images"), for the messages users read."""

from __future__ import annotations

__all__ = ["plural", "word_for"]


def word_for(count: int, word: str, many: str | None = None) -> str:
    """``word`` in the form ``count`` of it takes, without the count: "field" for 1, "fields"
    otherwise (a list that follows says which); a verb too: ``word_for(n, "is", "are")``.

    ``many``: the plural when it is not ``word`` + "s".
    """
    return word if count == 1 else many or word + "s"


def plural(count: int, word: str, many: str | None = None) -> str:
    """``count`` and ``word`` as a line says them: "1 image", "0 images", "2 images".

    ``many``: the plural when it is not ``word`` + "s" ("run folder" -> default, "is" -> "are").
    """
    return f"{count} {word_for(count, word, many)}"
