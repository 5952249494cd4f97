"""The size and titles of the pictures the image commands write: the largest picture that fits
:data:`alae_fast.limits.MAX_PICTURE_PIXELS`, checked from the writers' own layout before any work,
and the column and row titles of ``interpolate``, ``style-mix``, ``edit`` and ``reconstruct``."""

from __future__ import annotations

from pathlib import Path

from .._words import plural as _plural
from ..errors import UserError
from ..limits import MAX_PICTURE_PIXELS


def _display_scale(res: int) -> int:
    """:func:`alae_fast.inference.pictures.display_scale` (imported when a command runs: the
    CLI's module level stays torch-free)."""
    from ..inference.pictures import display_scale

    return display_scale(res)


def _fits(size: tuple[int, int]) -> bool:
    return size[0] * size[1] <= MAX_PICTURE_PIXELS


def _largest_fitting(size_of, low: int, high: int) -> int | None:
    """The largest ``v`` in ``[low, high]`` whose picture ``size_of(v)`` (width, height) fits in
    :data:`MAX_PICTURE_PIXELS`, or None when not even ``low``'s does (or ``high < low``). A
    picture grows with ``v``, so a bisection finds it in log2(high - low) sizes."""
    if high < low or not _fits(size_of(low)):
        return None
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if _fits(size_of(mid)) else (low, mid - 1)
    return low


def _check_picture_size(given: str, picture: str, size: tuple[int, int], ways=(), hint: str = "",
                        exact: bool = True, otherwise=()) -> None:
    """UserError, before any image is made or file written, when the picture a command is about
    to write holds more than :data:`MAX_PICTURE_PIXELS`.

    ``size`` is its (width, height) as the writer lays it out - from
    :func:`alae_fast.inference.pictures.grid_size`, ``pairs_grid_size`` or ``labelled_grid_size``,
    the writers' own arithmetic, enlargement and padding included - or, with ``exact=False``, a
    lower bound already over the limit (said "at least"). ``given``: the flags as the user gave
    them; ``picture``: what the picture is. ``ways``: ``(text, size_of, low, value)`` for each
    flag that could be lowered: the line says ``text.format(v)`` for the largest ``v`` in
    ``[low, value)`` whose picture ``size_of(v)`` fits (``text`` may be a function of ``v``
    instead, for a plural); ``otherwise``: ways, as ``ways``, said when none of those fits (two
    flags each too large for any value of the other). ``hint``: another way out."""
    if _fits(size):
        return

    def said(options) -> list[str]:
        found = []
        for text, size_of, low, value in options:
            most = _largest_fitting(size_of, low, value - 1)
            if most is not None:
                found.append(text(most) if callable(text) else text.format(most))
        return found

    fitting = said(ways) or said(otherwise)
    width, height = size
    raise UserError(f"{given}: {picture} would be {'' if exact else 'at least '}{width}x{height} pixels "
                    f"({width * height:,}), more than the {MAX_PICTURE_PIXELS:,} (2**26) one picture may hold; "
                    + (f"at most {', or '.join(fitting)}" if fitting else "no smaller value fits at this resolution")
                    + (f" ({hint})" if hint else ""))


def _labelled_size(rows: int, cols: int, titles, res: int, scale: int,
                   padding: int = 4) -> tuple[tuple[int, int], bool]:
    """((width, height), exact) of a ``save_labelled_grid`` table of ``rows`` x ``cols`` images of
    ``res`` x ``res`` enlarged ``scale`` times, ``padding`` pixels apart (default 4, the
    writer's), its titles ``titles()`` (row, column): past 4096 titles, a table whose tiles alone
    are too large is sized by that lower bound (exact False, :func:`_bounded_size`), its titles
    never made (--steps 10**9 would need gigabytes)."""
    from ..inference.pictures import labelled_grid_size

    return _bounded_size(rows, cols, res, scale, padding,
                         lambda: labelled_grid_size(*titles(), res, res, scale, padding))


def _bounded_size(rows: int, cols: int, res: int, scale: int, padding: int,
                  exact) -> tuple[tuple[int, int], bool]:
    """((width, height), exact) of a titled table of ``rows`` x ``cols`` tiles: ``exact()``, the
    writer's own measure, or past 4096 titles, where its tiles alone are too large, their lower
    bound (exact False). Each title is measured (~0.3 ms, Pillow), and a refusal sizes many
    counts in its search for one that fits: 10**6 titles would take minutes to refuse."""
    from ..inference.pictures import labelled_grid_bound

    bound = labelled_grid_bound(rows, cols, res, res, scale, padding)
    if not _fits(bound) and rows + cols > 4096:
        return bound, False
    return exact(), True


def _tiles_said(count: int, res: int, scale: int, gap: int = 2) -> str:
    """How the picture commands draw ``count`` images of ``res`` x ``res``, for a size refusal."""
    larger = f", drawn {scale} times larger" if scale != 1 else ""
    return f"{_plural(count, 'image')} of {res}x{res}{larger}, {gap} pixels apart"


def _interpolation_titles(steps: int) -> list[str]:
    """Column titles of interpolate's strip: A, each decoded point's t in [0, 1], B."""
    digits = max(2, len(str(steps - 1)))  # distinct titles past 101 steps
    return ["A"] + [f"t={k / (steps - 1):.{digits}f}" for k in range(steps)] + ["B"]


def _style_mix_labels(rows: int, cols: int, num_ws: int, same_b: bool = False) -> tuple[list[str], list[str]]:
    """The row and column titles of style-mix's table: sources A, then ``rows`` destinations B
    for each range of :func:`alae_fast.inference.sampling.style_ranges`, in the order of
    ``style_mix_tiles`` (``same_b``: the same ``rows`` images B in every range, B1 ... B``rows``
    each time, as ``style_mix_images`` mixes them); columns B, A1 ... A``cols``. ASCII only:
    Pillow's default font (Aileron) has no arrows, they came out as empty boxes."""
    from ..inference.sampling import style_ranges

    ranges = style_ranges(num_ws)
    names = [n for n in ranges for _ in range(rows)]
    row_labels = ["sources A"] + [f"B{(i % rows if same_b else i) + 1} with A's\n{n} styles "
                                  f"({ranges[n][0]}-{ranges[n][1] - 1})" for i, n in enumerate(names)]
    return row_labels, ["B"] + [f"A{k + 1}" for k in range(cols)]


def _edit_titles(amounts: dict[str, float], steps: int, width: int = 12, first: str | None = None) -> list[str]:
    """Column titles of edit's strips: each column's amount of every direction (t * AMOUNT, t
    from :func:`alae_fast.edit.commands.strip_fractions`), one line a direction, ``NAME: AMOUNT``
    (a colon, so that a digit pair's amount does not read as part of it: ``3-8: -2``, not
    ``3-8 -2``; ASCII, as the picture's font has no arrow), its name cut in the middle past
    ``width`` characters (a title wider than its tile would run into the next). Enough
    significant digits that no two columns read alike. ``first``: the title of a column before
    the strip's (``"input"``, the image edited), or None."""
    from ..edit.commands import strip_fractions

    digits = max(3, len(str(steps - 1)) + 1)
    names = {k: _cut_middle(k, width) for k in amounts}
    # + 0.0: the middle column of a negative amount is +0, not -0
    return ([] if first is None else [first]) + [
        "\n".join(f"{names[k]}: {t * a + 0.0:+.{digits}g}" for k, a in amounts.items())
        for t in strip_fractions(steps)]


def _cut_middle(text: str, width: int) -> str:
    """``text``, or its first and last characters around "..." in ``width`` characters."""
    return text if len(text) <= width else text[:width // 2 - 1] + "..." + text[-(width - width // 2 - 2):]


def _file_titles(images: list[str], width: int = 20) -> list[str]:
    """Row titles of the pictures of IMAGES (``edit``'s strips, ``reconstruct``'s pairs), one
    for each and no two alike: each file's name, with as many of its parent folders as tell it
    from the others of that name (``x/a.png``, ``y/a.png``), its middle cut past ``width``
    characters; titles still alike (a file given twice, a cut that made two alike) are numbered
    ``(1)``, ``(2)``, ... with numbers no other title has."""
    import collections

    # the folders below the anchor ("/" of an absolute path, which a join would double)
    parts = [tuple(p for p in Path(i).parts if p != Path(i).anchor) or (i,) for i in images]
    depth = [1] * len(images)
    while True:
        # the shortest tail of each path that no other path of the same title shares: the
        # folders of files of one name, not a number that says nothing of which file it is
        titles = ["/".join(p[-d:]) for p, d in zip(parts, depth)]
        paths: dict[str, set] = collections.defaultdict(set)
        for t, p in zip(titles, parts):
            paths[t].add(p)
        # only where another path has the title: one file given twice is not told apart by folders
        longer = [i for i, t in enumerate(titles) if len(paths[t]) > 1 and depth[i] < len(parts[i])]
        if not longer:
            break
        for i in longer:
            depth[i] += 1
    titles = [_cut_middle(t, width) for t in titles]
    shared, taken = collections.Counter(titles), set(titles)
    for i, t in enumerate(titles):
        if shared[t] > 1:
            # a number no title has yet ("a.png (1)" may be a file's own name)
            k = 1
            while f"{t} ({k})" in taken:
                k += 1
            titles[i] = f"{t} ({k})"
            taken.add(titles[i])
    return titles


def _rows_legend(titles: list[str], images: list[str]) -> str | None:
    """A line that gives each file-titled row's file, top to bottom, where a title does not say it
    in full: one cut, numbered or shortened to its name, or one with characters beyond ASCII,
    which the picture's font may lack (CJK, emoji: empty boxes). None where every title is its
    file's path as given, in ASCII."""
    if all(t == i and t.isascii() for t, i in zip(titles, images)):
        return None
    return "rows, top to bottom: " + "; ".join(f"{k} {t!r}: {i}" for k, (t, i) in enumerate(zip(titles, images), 1))
