"""A --kimg that compresses a preset's schedule so far that a global batch steps over whole
levels or fade-ins: the run says which, and the shortest --kimg from which every level and
fade-in gets an iteration (counted as the trainer steps, checked here one iteration at a time)."""

import pytest

from alae_fast.training.distributed import DistributedContext
from alae_fast.training.level_steps import iterations as _iterations
from alae_fast.training.level_steps import said_lods as _lods
from alae_fast.training.level_steps import shortest_stepped as _shortest_stepped
from alae_fast.training.plan import _fit_to_length, _plan, pick_setup
from alae_fast.training.run import TrainOptions
from alae_fast.training.schedule import LODSchedule, fit_schedule


def _stepped(schedule: LODSchedule, total: int) -> tuple[list[int], list[int]]:
    """Iterations per level and per fade-in, as ALAETrainer.step and the run loop count them: the
    phase at images_seen, then images_seen += its global batch, while images_seen < total."""
    steps, fades = [0] * (schedule.max_lod + 1), [0] * (schedule.max_lod + 1)
    seen = 0
    while seen < total:
        phase = schedule.phase(seen)
        steps[phase.lod] += 1
        fades[phase.lod] += phase.in_transition
        seen += phase.batch
    return steps, fades


def _every_level_stepped(schedule: LODSchedule, total: int) -> bool:
    steps, fades = _stepped(schedule, total)
    levels = range(schedule.start_lod, schedule.max_lod + 1)
    return all(steps[lod] for lod in levels) and all(fades[lod] for lod in levels if lod > schedule.start_lod)


def _fitted(name: str, kimg: float) -> tuple[LODSchedule, str | None]:
    setup, note = _fit_to_length(pick_setup(name), kimg, False)
    return setup.schedule, note


def _fraction(name: str) -> float:
    setup = pick_setup(name)
    return min(1.0, setup.schedule.kimg_to_reach(setup.schedule.max_lod) / setup.kimg)


@pytest.mark.parametrize("name, kimgs", [("celeba-128", (1, 5, 9.101, 20)), ("digits-32", (0.016, 0.05, 0.2, 62)),
                                         ("ffhq-1024", (3, 12.797)), ("photos-32", (0.016, 0.158))])
def test_levels_are_counted_as_the_trainer_steps(name, kimgs):
    for kimg in kimgs:
        schedule, _ = _fitted(name, kimg)
        total = int(round(kimg * 1000))
        assert _iterations(schedule, total) == _stepped(schedule, total), (name, kimg)
    # a fade end that is not a whole image (7/15 of a level, as the official 15-epoch levels)
    odd = LODSchedule(max_lod=3, base_resolution=4, lod_kimg=(0.031, 0.047, 0.029), lod_batch=(16, 8, 4),
                      lod_lr=(0.002,), fade_fraction=7 / 15)
    for total in range(1, 200):
        assert _iterations(odd, total) == _stepped(odd, total), total


def test_the_trial_celeba_128_at_one_kimg_says_the_levels_a_batch_of_512_steps_over(tmp_path):
    said = []
    _plan(TrainOptions(preset="celeba-128", kimg=1.0, out=str(tmp_path / "r")), DistributedContext(), said.append)
    note = next(s for s in said if s.startswith("note: --kimg 1 is shorter"))
    assert note.endswith("so that 128x128 is fully faded in at 0.412 kimg; but at its global batches (lod_batch "
                         "[512, 256, 128, 64, 32, 32]) lods 1-4 get no iteration and the fade-in of lod 5 gets no "
                         "iteration: --kimg 9.101 or more gives every level and fade-in at least one iteration"), note
    schedule, _ = _fitted("celeba-128", 1.0)
    assert _stepped(schedule, 1000) == ([1, 0, 0, 0, 0, 16], [0] * 6)  # log.jsonl's step 2 at lod 5, blend 1


@pytest.mark.parametrize("name, kimg, shortest", [("celeba-128", 1, 9101), ("digits-32", 0.05, 143),
                                                  ("digits-32", 0.016, 143), ("photos-32", 0.016, 158),
                                                  ("ffhq-1024", 3, 12797)])
def test_the_shortest_kimg_said_is_the_first_from_which_every_level_and_fade_in_is_stepped(name, kimg, shortest):
    assert _shortest_stepped(pick_setup(name).schedule, _fraction(name)) == shortest
    _, note = _fitted(name, kimg)
    assert f"--kimg {shortest / 1000:g} or more gives every level and fade-in at least one iteration" in note, note
    # checked one iteration at a time: one image shorter steps over a level or fade-in, and from
    # there on (a stretch of lengths) none is
    fraction = _fraction(name)
    for total in (shortest - 1, *range(shortest, shortest + 300)):
        fitted = fit_schedule(pick_setup(name).schedule, total / 1000, fraction)
        assert _every_level_stepped(fitted, total) == (total >= shortest), total
        _, note = _fitted(name, total / 1000)
        assert ("no iteration" in note) == (total < shortest), (total, note)


def test_a_compressed_digits_32_run_says_the_fade_ins_it_steps_over():
    schedule, note = _fitted("digits-32", 0.05)
    # compressed to lod_kimg [3.2, 27.4, 9.7, 9.7] images: lod 1's fade-in starts at 3.2 and lasts 13.7,
    # so the second batch (images 16-31) is in it; lod 3's 4.8-image fade-in falls inside one batch
    assert _stepped(schedule, 50) == ([1, 1, 1, 1], [0, 1, 1, 0])
    assert ("at its global batches (lod_batch [16, 16, 16, 32]) the fade-in of lod 3 gets no iteration: "
            "--kimg 0.143 or more") in note, note
    # the many tests' --kimg 0.016 on the default preset still train, with the note
    schedule, note = _fitted("digits-32", 0.016)
    assert "lods 1-3 get no iteration" in note and _stepped(schedule, 16) == ([1, 0, 0, 0], [0] * 4)


@pytest.mark.parametrize("name", ["digits-32", "ffhq-1024", "celeba-128", "photos-32"])
def test_a_preset_at_its_own_length_steps_every_level_and_says_nothing(name, tmp_path):
    setup = pick_setup(name)
    assert _fit_to_length(setup, setup.kimg, False) == (setup, None)
    said = []
    plan = _plan(TrainOptions(preset=name, out=str(tmp_path / name)), DistributedContext(), said.append)
    assert not any("iteration" in s for s in said), said
    steps, fades = _iterations(plan.schedule, plan.total)
    assert all(steps) and all(fades[1:]), (steps, fades)
    if name in ("digits-32", "photos-32"):  # short enough to step one iteration at a time
        assert _every_level_stepped(plan.schedule, plan.total)


def test_levels_are_said_in_runs():
    assert _lods([5]) == "lod 5"
    assert _lods([1, 2, 3, 4]) == "lods 1-4"
    assert _lods([1, 3, 4, 6]) == "lods 1, 3-4, 6"


def test_batches_longer_than_any_compressed_level_say_no_kimg_under_the_schedule_does():
    setup = pick_setup("digits-32", schedule_overrides={"lod_batch": [8192]})  # lods 2-3's 6000-image fade-ins: shorter
    _, note = _fit_to_length(setup, 1.0, False)
    assert note.endswith("(lod_batch [8192, 8192, 8192, 8192]) lods 1-3 get no iteration: no --kimg under 56 gives "
                         "every level and fade-in an iteration"), note
