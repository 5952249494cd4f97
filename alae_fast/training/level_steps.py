"""Which levels of a schedule a run's iterations reach: a global batch longer than a compressed
level (``--kimg`` shorter than a preset's way to its final resolution) steps over it, and its
fade-in, without one iteration there (celeba-128 at ``--kimg 1``: one iteration at 4x4 of 512
images, then 128x128 fully faded in). The trainer advances ``images_seen`` by the global batch of
the level ``schedule.phase(images_seen)`` gives; these functions count the same way."""

from __future__ import annotations

from .schedule import LODSchedule, fit_schedule

__all__ = ["iterations", "unstepped", "shortest_stepped", "said_lods"]


def iterations(schedule: LODSchedule, total: int) -> tuple[list[int], list[int]]:
    """Iterations per level, and per level's fade-in, of a run of ``total`` images from the start
    of ``schedule`` (lists indexed by lod), counted as the trainer steps: each iteration takes
    ``schedule.phase(images_seen)`` and adds its global batch, until ``images_seen >= total``."""
    steps, fades = [0] * (schedule.max_lod + 1), [0] * (schedule.max_lod + 1)
    seen = start = 0
    # level by level rather than iteration by iteration (a paper preset runs 10^5 of them, and the
    # shortest --kimg is searched over many lengths), with phase()'s own comparisons
    for lod in range(schedule.start_lod, schedule.max_lod + 1):
        end = min(total, start + schedule.images_at(lod)) if lod < schedule.max_lod else total
        batch = schedule.batch_at(lod)
        count = max(0, -((seen - end) // batch))
        fade = schedule.fade_images(lod)
        if fade > 0 and count:
            faded = min(count, max(0, int(-((seen - start - fade) // batch))))
            while faded and not (seen + (faded - 1) * batch - start) / fade < 1.0:
                faded -= 1
            while faded < count and (seen + faded * batch - start) / fade < 1.0:
                faded += 1
            fades[lod] = faded
        steps[lod] = count
        seen += count * batch
        start += schedule.images_at(lod)
    return steps, fades


def unstepped(schedule: LODSchedule, total: int) -> tuple[list[int], list[int]]:
    """The levels of ``schedule`` that a run of ``total`` images gives no iteration, and the
    other levels whose fade-in gets none."""
    steps, fades = iterations(schedule, total)
    levels = [lod for lod in range(schedule.start_lod, schedule.max_lod + 1) if not steps[lod]]
    faded = schedule.fade_fraction > 0  # fade_fraction 0: no level fades in
    return levels, [lod for lod in range(schedule.start_lod + 1, schedule.max_lod + 1)
                    if faded and steps[lod] and not fades[lod]]


def shortest_stepped(schedule: LODSchedule, fraction: float) -> int | None:
    """The fewest images from which on (at every length up to the schedule's own way to its final
    level) ``schedule`` compressed by :func:`fit_schedule` gives every level and fade-in at least
    one iteration; None when no compressed length does."""
    below = int(round(schedule.kimg_to_reach(schedule.max_lod) * 1000))  # from there on it is not compressed

    def fitted(images: int) -> LODSchedule:
        return fit_schedule(schedule, images / 1000, fraction)

    def wide(images: int) -> bool:
        # Each level's fade-in (its whole length where levels do not fade in) at least as long as
        # the batch before it: the first iteration of a level then lands in its fade-in. This grows
        # with the length; whether the last level's first iteration comes before the end is left
        # to the count.
        s = fitted(images)
        return all((s.fade_images(lod) if s.fade_fraction > 0 else s.images_at(lod)) >= s.batch_at(lod - 1)
                   for lod in range(s.start_lod + 1, s.max_lod + 1))

    def stepped(images: int) -> bool:
        return unstepped(fitted(images), images) == ([], [])

    if below <= 1 or not wide(below - 1):
        return None
    lo, hi = 1, below - 1  # the shortest wide length, by bisection (wide() only grows with it)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if wide(mid) else (mid + 1, hi)
    while hi < below and not stepped(hi):
        hi += 1
    if hi >= below:
        return None
    # shorter lengths can work too, but not all of them: a level only a little longer than a batch
    # can be jumped over where a shorter one is not, so the answer is the start of the run that works
    while hi > 1 and stepped(hi - 1):
        hi -= 1
    return hi


def said_lods(lods: list[int]) -> str:
    """``[1, 2, 3, 5]`` as 'lods 1-3, 5' (one: 'lod 5')."""
    runs: list[list[int]] = []
    for lod in lods:
        if runs and lod == runs[-1][-1] + 1:
            runs[-1].append(lod)
        else:
            runs.append([lod])
    said = ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in runs)
    return f"lod{'s' * (len(lods) > 1)} {said}"
