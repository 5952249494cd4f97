"""The training's progress display: tqdm on a terminal, plain lines in a log file or pipe."""

import io

import pytest

from alae_fast.training.progress import _PlainProgress, _progress


class _Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_plain_progress_writes_one_line_per_interval_and_at_close():
    clock, out = _Clock(), io.StringIO()
    p = _PlainProgress(total=68000, initial=0, file=out, every_s=30.0, clock=clock)
    for _ in range(100):  # 100 updates within 10 s: nothing written yet
        clock.t += 0.1
        p.update(16)
    assert out.getvalue() == ""
    p.set_postfix_str("img/s 160 lod 1")
    clock.t += 25.0  # 35 s after the start
    p.update(16)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "\r" not in out.getvalue()
    # 1616 images in 35 s: 46.2 img/s, (68000 - 1616) / 46.17 = 1437.8 s left
    assert lines[0] == "1.6/68.0 kimg (2%), 35 s, 1438 s left: img/s 160 lod 1"
    p.close()
    p.close()  # a second close writes nothing more
    assert len(out.getvalue().splitlines()) == 2


def test_plain_progress_after_resume_counts_rate_from_its_start():
    clock, out = _Clock(), io.StringIO()
    p = _PlainProgress(total=10000, initial=8000, file=out, every_s=30.0, clock=clock)
    clock.t += 40.0
    p.update(2000)
    # the last images are said once, by close, with the last step's losses (a torchrun trial saw
    # "100%" twice, the first with the previous window's losses)
    assert out.getvalue() == ""
    p.set_postfix_str("Ld 1.224")
    p.close()
    assert out.getvalue().splitlines() == ["10.0/10.0 kimg (100%), 40 s: Ld 1.224"]


def test_plain_progress_of_a_short_run_reads_in_images():
    # under 10 kimg, tenths of a kimg would print a 100-image run as 0.0/0.1
    clock, out = _Clock(), io.StringIO()
    p = _PlainProgress(total=100, initial=0, file=out, every_s=30.0, clock=clock)
    clock.t += 31.0
    p.update(16)
    assert out.getvalue().splitlines() == ["0.016/0.100 kimg (16%), 31 s, 163 s left"]


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_chooses_by_terminal():
    assert _progress(100, 0, enabled=False) is None
    assert isinstance(_progress(100, 0, enabled=True, file=io.StringIO()), _PlainProgress)
    tqdm = pytest.importorskip("tqdm")
    bar = _progress(100, 0, enabled=True, file=_Tty())
    try:
        assert isinstance(bar, tqdm.tqdm)
    finally:
        bar.close()


# --- the time left, level by level (alae_fast.training.eta) -----------------------------------------

def _three_levels():
    from alae_fast.training.schedule import LODSchedule

    # levels of 1000 and 2000 images, then the last level to the end (6000 in all)
    return LODSchedule(max_lod=2, base_resolution=4, lod_kimg=(1.0, 2.0, 3.0), lod_batch=(10,), lod_lr=(0.001,),
                       channels=1)


def test_remaining_time_uses_each_levels_pace_and_scales_the_unreached_ones(monkeypatch):
    import alae_fast.training.eta as eta_module
    from alae_fast.training.eta import RemainingTime

    monkeypatch.setattr(eta_module, "SETTLING", 0)
    clock = _Clock()
    cost = {0: 1.0, 1: 3.0, 2: 6.0}
    eta = RemainingTime(_three_levels(), 6000, cost, 0, clock=clock)
    assert eta.seconds_left() is None  # no pace yet
    for _ in range(50):  # level 0 at 2 ms an image: 500 images in 1 s
        clock.t += 0.02
        eta.update(eta.n + 10)
    # level 0: 500 images left at 2 ms; level 1: 2000 at 2 ms x 3; level 2: 3000 at 2 ms x 6
    assert eta.seconds_left() == pytest.approx(500 * 0.002 + 2000 * 0.006 + 3000 * 0.012)
    for _ in range(50):
        clock.t += 0.02
        eta.update(eta.n + 10)
    for _ in range(100):  # level 1 measured at 5 ms an image, less than the arithmetic's 6 ms
        clock.t += 0.05
        eta.update(eta.n + 10)
    # 1000 images of level 1 left at its own pace; level 2 on the line through the two levels measured
    # (the same batch: 2 ms at cost 1, 5 ms at cost 3, so 9.5 ms at cost 6), not 5 ms x 6 / 3
    assert eta.n == 2000 and eta.seconds_left() == pytest.approx(1000 * 0.005 + 3000 * 0.0095)


def test_the_first_iterations_of_a_level_are_left_out_of_its_pace():
    from alae_fast.training.eta import SETTLING, RemainingTime

    clock = _Clock()
    eta = RemainingTime(_three_levels(), 6000, {0: 1.0, 1: 3.0, 2: 6.0}, 0, clock=clock)
    for _ in range(SETTLING):  # warming up: 50 ms an image
        clock.t += 0.5
        eta.update(eta.n + 10)
    assert eta.seconds_left() is None
    for _ in range(20):  # then 2 ms an image
        clock.t += 0.02
        eta.update(eta.n + 10)
    assert eta.seconds_left() == pytest.approx((1000 - eta.n) * 0.002 + 2000 * 0.006 + 3000 * 0.012)


def test_the_fitted_line_shares_an_iterations_overhead_by_the_levels_batch(monkeypatch):
    import alae_fast.training.eta as eta_module
    from alae_fast.training.eta import RemainingTime

    monkeypatch.setattr(eta_module, "SETTLING", 0)
    from alae_fast.training.schedule import LODSchedule

    # 10 ms an iteration plus 1 ms per unit of cost and image; the last level's batch is twice
    schedule = LODSchedule(max_lod=2, base_resolution=4, lod_kimg=(1.0, 1.0, 1.0), lod_batch=(10, 10, 20),
                           lod_lr=(0.001,), channels=1)
    cost = {0: 1.0, 1: 2.0, 2: 4.0}
    clock = _Clock()
    eta = RemainingTime(schedule, 3000, cost, 0, clock=clock)
    for lod in (0, 1):
        for _ in range(100):
            clock.t += 0.010 + 10 * 0.001 * cost[lod]
            eta.update(eta.n + 10)
    assert eta.n == 2000 and eta.seconds_left() == pytest.approx(1000 * (0.010 / 20 + 0.001 * 4))
    # a line that would not grow with the arithmetic is not used: the nearest level's pace, scaled
    clock = _Clock()
    eta = RemainingTime(schedule, 3000, cost, 0, clock=clock)
    for lod, ms in ((0, 3.0), (1, 2.0)):
        for _ in range(100):
            clock.t += ms / 1000 * 10
            eta.update(eta.n + 10)
    assert eta.seconds_left() == pytest.approx(1000 * 0.002 * 2)


def test_remaining_time_of_a_resumed_run_counts_from_where_it_resumed(monkeypatch):
    import alae_fast.training.eta as eta_module
    from alae_fast.training.eta import RemainingTime

    monkeypatch.setattr(eta_module, "SETTLING", 0)  # one update each: every iteration counts

    clock = _Clock()
    eta = RemainingTime(_three_levels(), 6000, {0: 1.0, 1: 3.0, 2: 6.0}, 4000, clock=clock)
    clock.t += 1.0
    eta.update(4100)  # 10 ms an image at the last level: 1900 left
    assert eta.seconds_left() == pytest.approx(1900 * 0.01)
    # a run longer than its schedule trains the extra images at the last level
    eta = RemainingTime(_three_levels(), 10000, {0: 1.0, 1: 3.0, 2: 6.0}, 500, clock=clock)
    clock.t += 1.0
    eta.update(1000)  # 2 ms an image at level 0
    assert eta.seconds_left() == pytest.approx(2000 * 0.006 + 7000 * 0.012)


def test_the_plain_line_says_the_level_by_level_time_left(monkeypatch):
    import alae_fast.training.eta as eta_module
    from alae_fast.training.eta import RemainingTime

    monkeypatch.setattr(eta_module, "SETTLING", 0)  # one update each: every iteration counts

    clock, out = _Clock(), io.StringIO()
    eta = RemainingTime(_three_levels(), 6000, {0: 1.0, 1: 3.0, 2: 6.0}, 0, clock=clock)
    p = _PlainProgress(total=6000, initial=0, file=out, every_s=30.0, clock=clock, eta=eta)
    clock.t += 31.0
    p.update(500)  # 62 ms an image at level 0; the speed so far would say 5500 x 62 ms = 341 s
    assert out.getvalue().splitlines() == ["0.500/6.000 kimg (8%), 31 s, 1519 s left"]  # 31 + 372 + 1116
    tqdm = pytest.importorskip("tqdm")
    eta = RemainingTime(_three_levels(), 6000, {0: 1.0, 1: 3.0, 2: 6.0}, 0, clock=clock)
    bar = _progress(6000, 0, enabled=True, file=_Tty(), eta=eta)
    try:
        clock.t += 31.0
        bar.update(500)
        assert bar.format_dict["rate"] == pytest.approx(5500 / 1519, rel=1e-3)  # tqdm shows 5500 / rate
        assert "25:19" in str(bar)  # 1519 s
    finally:
        bar.close()


def test_a_slow_stretch_counts_while_it_lasts_and_leaves_the_estimate_when_it_ends():
    # A new user's default run shared the cores for about a minute (img/s 10 against 261) and a
    # minute after that still said 1199 s left for 159: the mean over a level had kept the slow
    # stretch. Level 0 at 2 ms an image, level 1 at 5 ms, then 25 times slower for 500 images, then
    # at 5 ms again; level 2 is on the line (2 ms at cost 1, 5 ms at cost 3: 9.5 ms at cost 6).
    from alae_fast.training.eta import RECENT_S, RemainingTime
    from alae_fast.training.schedule import LODSchedule

    schedule = LODSchedule(max_lod=2, base_resolution=4, lod_kimg=(1.0, 6.0, 3.0), lod_batch=(10,),
                           lod_lr=(0.001,), channels=1)  # 1000, 6000 and 3000 images
    clock = _Clock()
    eta = RemainingTime(schedule, 10000, {0: 1.0, 1: 3.0, 2: 6.0}, 0, clock=clock)

    def run(iterations, seconds_per_image):
        for _ in range(iterations):
            clock.t += 10 * seconds_per_image
            eta.update(eta.n + 10)

    run(100, 0.002)
    run(50, 0.005)
    assert eta.seconds_left() == pytest.approx(5500 * 0.005 + 3000 * 0.0095)
    assert eta.slowdown() == pytest.approx(1.0)
    run(50, 0.125)  # other work takes the cores: the estimate follows at once
    assert eta.slowdown() == pytest.approx(25.0)
    assert eta.seconds_left() == pytest.approx(25.0 * (5000 * 0.005 + 3000 * 0.0095))
    run(int(RECENT_S / 0.05) + 1, 0.005)  # a little more than RECENT_S seconds undisturbed again
    assert eta.n == 4010 and eta.slowdown() == pytest.approx(1.0)
    assert eta.seconds_left() == pytest.approx(2990 * 0.005 + 3000 * 0.0095)
    # the mean over level 1, which the estimate used before, holds the slow stretch: 4.5 times
    # the level's own pace, and the line through it would put level 2 at 47 ms an image
    assert eta.seconds[1] / eta.images[1] > 4.5 * 0.005


def test_a_slow_stretch_at_a_levels_end_is_not_carried_into_the_next_level():
    # the review's case: level 0 ends 25 times slower; level 1's settling iterations had been
    # estimated with that slowdown (1798 s left for about 58)
    from alae_fast.training.eta import SETTLING, RemainingTime

    clock = _Clock()
    eta = RemainingTime(_three_levels(), 6000, {0: 1.0, 1: 3.0, 2: 6.0}, 0, clock=clock)
    for spi in [0.002] * 60 + [0.05] * 40:
        clock.t += 10 * spi
        eta.update(eta.n + 10)
    assert eta.n == 1000 and eta.slowdown() > 10
    clock.t += 0.03
    eta.update(eta.n + 10)  # level 1's first iteration
    assert eta.slowdown() == 1.0
    for _ in range(SETTLING):
        clock.t += 10 * 0.005
        eta.update(eta.n + 10)
    assert eta.slowdown() == pytest.approx(1.0)


def test_a_run_slow_from_its_start_is_estimated_at_its_own_pace():
    # shared cores all along, 20 and 30 ms an image in turn: the estimate is the run's own pace
    # (25 ms at level 0, scaled by the arithmetic for the levels not reached), not its best moments
    from alae_fast.training.eta import RemainingTime

    clock = _Clock()
    eta = RemainingTime(_three_levels(), 6000, {0: 1.0, 1: 3.0, 2: 6.0}, 0, clock=clock)
    for i in range(90):
        clock.t += 10 * (0.020 if i % 2 else 0.030)
        eta.update(eta.n + 10)
    assert eta.seconds_left() == pytest.approx(100 * 0.025 + 2000 * 0.075 + 3000 * 0.15, rel=0.03)


@pytest.mark.parametrize("preset", ["digits-32", "photos-32", "digits-mlp", "celeba-128"])
def test_flops_per_image_grow_with_the_level_and_leave_the_model_and_random_state_alone(preset):
    import torch

    from alae_fast.training.eta import flops_per_image
    from alae_fast.training.setups import resolve_setup

    from alae_fast.models import build_model

    setup = resolve_setup(preset)
    model = build_model(setup.model_config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.random.get_rng_state()
    cost = flops_per_image(model, setup.schedule)
    assert torch.equal(torch.random.get_rng_state(), state)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())
    s = setup.schedule
    assert sorted(cost) == list(range(s.start_lod, s.max_lod + 1))
    values = [cost[lod] for lod in sorted(cost)]
    assert all(v > 0 for v in values) and values == sorted(values), values
    if preset == "digits-32":  # the 32x32 level: G's and E's convolutions, 2 multiply-adds each
        assert 15e6 < cost[3] < 30e6, cost


def test_a_run_with_its_progress_shown_trains_bit_identically_to_one_without(tmp_path):
    """The progress display counts each level's FLOPs on the training model (on the meta device)
    and times every iteration: the weights, optimisers and random states it ends with are those of
    a run with --no-progress."""
    from alae_fast.cli import main
    from alae_fast.training.checkpoint import list_checkpoints, load_checkpoint
    from alae_fast_tests_support import assert_same_training_state, one_thread, toy

    toy()
    args = ["train", "--preset", "toy-pg", "--kimg", "0.048", "--no-eval", "--threads", "1",
            "--schedule", "lod_kimg=[0.016]", "--schedule", "lod_batch=[8]"]
    with one_thread():
        assert main([*args, "--out", str(tmp_path / "shown")]) == 0  # stderr is no terminal: plain lines
        assert main([*args, "--out", str(tmp_path / "quiet"), "--no-progress"]) == 0
    last = [load_checkpoint(list_checkpoints(tmp_path / name / "checkpoints")[-1][1]) for name in ("shown", "quiet")]
    assert_same_training_state(*last)
