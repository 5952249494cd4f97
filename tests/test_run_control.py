"""A training run under outside control: checkpoints by wall time, SIGTERM/SIGINT (checkpoint at the
next iteration's end, exit 0, --resume bit-identical; a second signal kills at once), a --kimg
shorter than the schedule (compressed to reach the final level), the data's channels, and a
folder's held-out split in the final report."""

import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

# The lent GPU machines have no PIL: skip this module there instead of failing collection.
pytest.importorskip("PIL.Image")
import torch
from PIL import Image

from alae_fast.data import find_image_files, split_files
from alae_fast.training.checkpoint import list_checkpoints, load_checkpoint
from alae_fast.training.run import TrainOptions, run_training
from alae_fast.training.schedule import LODSchedule, fit_schedule
from alae_fast_tests_support import TINY, assert_same_training_state, one_thread, toy

HERE = Path(__file__).parent
pytestmark = pytest.mark.usefixtures("one_thread")


# --- checkpoints by wall time ---------------------------------------------------------------------

def test_checkpoint_minutes_writes_checkpoints_by_wall_time(tmp_path, monkeypatch):
    toy()
    base = dict(preset="toy-pg", progress=False, evaluate=False, checkpoint_kimg=1000.0, image_kimg=1000.0,
                keep=100, seed=1, kimg=0.08, schedule_overrides={"lod_kimg": [0.016], "lod_batch": [8]})
    # by images only: the interval is longer than the run, so the final checkpoint alone
    run_training(TrainOptions(out=str(tmp_path / "images"), checkpoint_minutes=None, **base))
    assert [s for s, _ in list_checkpoints(tmp_path / "images" / "checkpoints")] == [80]
    # a clock that advances 1 s per reading: with 1/60 minute (1 s), a checkpoint after every step
    import alae_fast.training.run as run_mod

    ticks = iter(range(10 ** 6))
    monkeypatch.setattr(run_mod, "_clock", lambda: float(next(ticks)))
    run_training(TrainOptions(out=str(tmp_path / "clock"), checkpoint_minutes=1 / 60, **base))
    assert [s for s, _ in list_checkpoints(tmp_path / "clock" / "checkpoints")] == list(range(8, 81, 8))
    with pytest.raises(ValueError, match="checkpoint_minutes"):
        run_training(TrainOptions(out=str(tmp_path / "bad"), checkpoint_minutes=0, **base))


# --- signals ------------------------------------------------------------------------------------

_ARGS = ["train", "--preset", "digits-mlp", "--kimg", "0.96", "--checkpoint-kimg", "0.48", "--image-kimg", "1",
         "--no-eval", "--seed", "5", *TINY]


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    from alae_fast.cli import main

    out = tmp_path_factory.mktemp("straight") / "run"
    with one_thread():
        assert main([*_ARGS, "--out", str(out)]) == 0
    return load_checkpoint(list_checkpoints(out / "checkpoints")[-1][1])


def _start(out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "alae_fast", *_ARGS, "--log-steps", "1", "--out", str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_training(proc: subprocess.Popen, out: Path, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        log = out / "log.jsonl"
        if log.exists() and log.read_text().count("\n") >= 2:
            return
        time.sleep(0.01)
    raise AssertionError(f"training did not start: rc {proc.poll()}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_signal_checkpoints_exits_0_and_resume_is_bit_identical(tmp_path, sig, straight_run):
    from alae_fast.cli import main

    out = tmp_path / "signalled run"  # a space: the printed command must still be pasteable
    proc = _start(out)
    try:
        _wait_for_training(proc, out)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-2000:]
    ckpts = list_checkpoints(out / "checkpoints")
    assert ckpts and 0 < ckpts[-1][0] < 960, (ckpts, stdout)
    line = [s for s in stdout.splitlines() if s.startswith("stopped by")]
    assert line and sig.name in line[0] and str(ckpts[-1][1]) in line[0] and "--resume" in line[0], stdout
    assert shlex.split(line[0].split("continue with: ", 1)[1]) == ["alae-fast", "train", "--resume", "--out", str(out), "--log-steps", "1", "--no-eval"]
    assert main([*_ARGS, "--out", str(out), "--resume"]) == 0
    assert_same_training_state(load_checkpoint(list_checkpoints(out / "checkpoints")[-1][1]), straight_run)


def test_signal_while_starting_up_stops_before_the_first_iteration(tmp_path, monkeypatch, capsys):
    """A signal during start-up (data, checkpoint, model) lets it finish, trains nothing, writes no
    checkpoint and returns normally with a line: for a new run, that nothing was written; for a
    resume, that its checkpoint is untouched and how to continue."""
    import alae_fast.training.run as run_mod

    toy()
    base = dict(preset="toy-pg", progress=False, evaluate=False, checkpoint_kimg=1000.0, image_kimg=1000.0,
                keep=100, seed=1, schedule_overrides={"lod_kimg": [0.016], "lod_batch": [8]})
    real_start = run_mod._start
    handler_before = signal.getsignal(signal.SIGTERM)

    def start_then_signal(*a, **kw):
        os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler's preemption notice would arrive
        time.sleep(0.05)
        return real_start(*a, **kw)

    monkeypatch.setattr(run_mod, "_start", start_then_signal)
    out = tmp_path / "new"
    summary = run_training(TrainOptions(out=str(out), kimg=0.016, **base))
    printed = capsys.readouterr()
    assert summary["stopped"] == "SIGTERM" and summary["steps"] == 0
    assert list_checkpoints(out / "checkpoints") == []
    assert "stopped by SIGTERM before training began: nothing trained and no checkpoint written" in printed.out
    assert "stopping before the first iteration" in printed.err  # the signal's own line, at once
    # nothing was written that keeps the same command from starting the run afresh
    monkeypatch.setattr(run_mod, "_start", real_start)
    run_training(TrainOptions(out=str(out), kimg=0.016, **base))
    (step, path), = list_checkpoints(out / "checkpoints")
    before = path.read_bytes()
    capsys.readouterr()
    monkeypatch.setattr(run_mod, "_start", start_then_signal)
    summary = run_training(TrainOptions(out=str(out), kimg=0.032, resume=True, **base))
    printed = capsys.readouterr().out
    assert summary["stopped"] == "SIGTERM" and summary["kimg"] == step / 1000
    assert [p for _, p in list_checkpoints(out / "checkpoints")] == [path] and path.read_bytes() == before
    line = [ln for ln in printed.splitlines() if ln.startswith("stopped by")]
    assert line and f"nothing trained since checkpoint {path}" in line[0], printed
    said = shlex.split(line[0].split("continue with: ", 1)[1])
    # the flags a checkpoint does not carry come with it (a trial's --keep 40 had been pruned to 3)
    assert said[:5] == ["alae-fast", "train", "--resume", "--out", str(out)] and "--no-eval" in said[5:], said
    assert signal.getsignal(signal.SIGTERM) == handler_before  # the run's handler is gone


@pytest.mark.parametrize("own_signal", [True, False])
def test_a_rank_stopped_for_another_names_its_own_signal_when_it_came_later(tmp_path, monkeypatch, capsys, own_signal):
    # torchrun forwards its SIGTERM to the ranks one after another: CI saw rank 0 agree to stop on
    # rank 1's signal, get its own during the checkpoint, print its notice and still say "stopped
    # by a signal to another rank". The agreement is faked here (one process) to make that order sure.
    import alae_fast.training.run as run_mod

    toy()
    real_agree, calls = run_mod._agree, []

    def agree(ctx, stop_signal, late):
        calls.append(stop_signal)
        if len(calls) == 3:  # the second iteration's decision: another rank was signalled
            if own_signal:
                os.kill(os.getpid(), signal.SIGTERM)  # this rank's own, just after the agreement
                time.sleep(0.05)
            return run_mod._BY_ANOTHER_RANK, late
        return real_agree(ctx, stop_signal, late)

    monkeypatch.setattr(run_mod, "_agree", agree)
    out = tmp_path / "run"
    summary = run_training(TrainOptions(out=str(out), kimg=0.08, preset="toy-pg", progress=False, evaluate=False,
                                        checkpoint_kimg=1000.0, image_kimg=1000.0, seed=1,
                                        schedule_overrides={"lod_kimg": [0.016], "lod_batch": [8]}))
    printed = capsys.readouterr().out
    said = "SIGTERM" if own_signal else "a signal to another rank"
    assert calls[:3] == [None, None, None] and summary["stopped"] == said and summary["kimg"] == 0.016, (calls, summary)
    (step, path), = list_checkpoints(out / "checkpoints")  # the stop's checkpoint, after 2 iterations
    assert step == 16 and f"stopped by {said} at 0.016 kimg (lod 0); checkpoint {path}; continue with: " in printed, printed


def test_second_signal_exits_at_once(tmp_path):
    script = textwrap.dedent("""
        import os, signal, sys, time
        from alae_fast.training.stop import StopRequest
        with StopRequest() as stop:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
            assert stop.requested == "SIGTERM", stop.requested
            print("first signal noted", flush=True)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)
        print("not reached", flush=True)
    """)
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGINT, proc.stderr
    assert "first signal noted" in proc.stdout and "not reached" not in proc.stdout
    assert "SIGTERM" in proc.stderr and time.time() - t0 < 25


def test_stop_request_restores_the_previous_handlers():
    from alae_fast.training.stop import StopRequest

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with StopRequest() as stop:
        assert signal.getsignal(signal.SIGTERM) == stop._handle
        assert stop.requested is None
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


# --- a --kimg shorter than the schedule ----------------------------------------------------------

def test_fit_schedule_reaches_the_final_level_at_the_asked_fraction():
    s = LODSchedule(max_lod=3, base_resolution=4, lod_kimg=(2.0, 3.0, 5.0, 14.0), lod_batch=(32,), lod_lr=(0.002,))
    f = fit_schedule(s, 6.0, 0.5)
    assert f.kimg_to_reach(3) == pytest.approx(3.0, abs=1e-3)
    ratios = np.array(f.lod_kimg) / np.array(s.lod_kimg)
    assert np.allclose(ratios, ratios[0])
    end = f.phase(6000)
    assert end.lod == 3 and end.blend == 1.0 and not end.in_transition
    short = LODSchedule(max_lod=2, base_resolution=4, lod_kimg=(4.0,), lod_batch=(8,), lod_lr=(0.002,))
    assert fit_schedule(short, 1.0, 1.0).lod_kimg == pytest.approx((0.4, 0.4, 0.4))
    one = LODSchedule(max_lod=0, base_resolution=32, lod_kimg=(1.0,), lod_batch=(8,), lod_lr=(0.002,))
    assert fit_schedule(one, 0.1, 0.5) is one
    for bad in (dict(total_kimg=0, reach_fraction=0.5), dict(total_kimg=1, reach_fraction=0),
                dict(total_kimg=1, reach_fraction=1.5)):
        with pytest.raises(ValueError):
            fit_schedule(s, **bad)


def test_a_kimg_shorter_than_any_level_has_no_fade_to_divide_by():
    """--kimg 0.001 fits every level to under one image: the run starts at the last level, fully
    faded in (it divided by a level's zero length before)."""
    s = LODSchedule(max_lod=3, base_resolution=4, lod_kimg=(4.0, 34.0, 12.0, 18.0), lod_batch=(16,), lod_lr=(0.003,))
    tiny = fit_schedule(s, 0.001, 0.5)
    assert [tiny.images_at(lod) for lod in range(4)] == [0, 0, 0, 0]
    for seen in (0, 1, 32):
        phase = tiny.phase(seen)
        assert (phase.lod, phase.blend, phase.in_transition) == (3, 1.0, False)


def test_short_kimg_compresses_the_preset_schedule_but_keeps_a_given_one(tmp_path, capsys):
    toy()
    base = dict(preset="toy-pg", progress=False, evaluate=False, seed=2, kimg=0.04)
    # toy-pg's own schedule reaches 16 px at 0.08 kimg: a 0.04 kimg run is compressed and ends there
    summary = run_training(TrainOptions(out=str(tmp_path / "fit"), **base))
    out = capsys.readouterr().out
    assert "compressed" in out and "16x16" in out
    assert summary["lod"] == 2
    state = load_checkpoint(list_checkpoints(tmp_path / "fit" / "checkpoints")[-1][1])
    assert LODSchedule.from_dict(state["schedule"]).phase(40).blend == 1.0
    # a lod_kimg the user gave is kept, and the note says where the run ends
    summary = run_training(TrainOptions(out=str(tmp_path / "given"), schedule_overrides={"lod_kimg": [0.032]}, **base))
    out = capsys.readouterr().out
    assert summary["lod"] == 1 and "ends at lod 1 (8x8, mid fade-in)" in out


# --- the data's channels and a folder's held-out split ---------------------------------------------

def _folder(path: Path, n: int, colour: bool, size: int = 20) -> Path:
    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        arr = rng.integers(0, 256, (size, size, 3) if colour else (size, size), dtype=np.uint8)
        Image.fromarray(arr).save(path / f"img{i:03d}.png")
    return path


def test_colour_folder_trains_a_grey_preset_in_colour_and_reports_held_out(tmp_path, capsys):
    toy()
    data = _folder(tmp_path / "photos", 30, colour=True)
    base = dict(preset="toy-pg", progress=False, data=str(data), seed=0, kimg=0.016,
                schedule_overrides={"lod_batch": [8]})
    summary = run_training(TrainOptions(out=str(tmp_path / "colour"), **base))
    out = capsys.readouterr().out
    assert "colour" in out and "channels=3" in out
    config = json.loads((tmp_path / "colour" / "config.json").read_text())
    assert config["model"]["channels"] == 3 and config["schedule"]["channels"] == 3
    ev = summary["eval"]
    assert ev["reconstruction_split"] == "held-out" and ev["reconstruction_images"] == 3
    assert "on 3 held-out images" in out
    assert "data: 27 training images, 3 held out for the evaluation (10% of the files" in out
    ident = ev["reconstruction_identification"]
    assert set(ident) == {"reconstructions", "mean_colour", "chance", "mean_colour_mse"}
    assert ident["chance"] == pytest.approx(1 / 3) and ident["mean_colour_mse"] > 0
    assert all(0.0 <= ident[k] <= 1.0 for k in ("reconstructions", "mean_colour"))
    assert "matched back to their own input among the 3 held-out images" in out
    # the user's own channels win, with a warning that the images are converted
    run_training(TrainOptions(out=str(tmp_path / "grey"), model_overrides={"channels": 1}, **base))
    out = capsys.readouterr().out
    assert "warning: the data are colour" in out and "converted to greyscale" in out
    # one image: nothing to hold out, and the report says the MSE is on training images
    one = _folder(tmp_path / "one", 1, colour=False)
    summary = run_training(TrainOptions(out=str(tmp_path / "single"), **{**base, "data": str(one)}))
    assert summary["eval"]["reconstruction_split"] == "training"
    assert summary["eval"]["reconstruction_identification"] is None  # one image: nothing to tell apart
    out = capsys.readouterr().out
    assert "TRAINING (no usable held-out split)" in out
    assert "data: 1 training image and none held out" in out


def test_unreadable_files_of_both_splits_are_said_once_at_the_start(tmp_path, capsys):
    toy()
    data = _folder(tmp_path / "photos", 20, colour=True)
    bad = {"broken.png": b"not a png", "empty.jpg": b""}
    # names that put one unreadable file in each split (the split hashes the names)
    for i in range(200):
        names = [f"b{i}_broken.png", f"b{i}_empty.jpg"]
        for n in names:
            (data / n).write_bytes(bad[n.split("_", 1)[1]])
        held = {f.name for f in split_files(find_image_files(data), data, "test")}
        if len(held & set(names)) == 1:
            break
        for n in names:
            (data / n).unlink()
    else:
        pytest.fail("no names split the two unreadable files")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_training(TrainOptions(out=str(tmp_path / "run"), preset="toy-pg", progress=False, data=str(data),
                                  seed=0, kimg=0.016, schedule_overrides={"lod_batch": [8]}))
    said = sorted(str(w.message) for w in caught if "unreadable" in str(w.message))
    # once per split, though the run opens each split again to evaluate
    assert len(said) == 2, said
    assert "(training split)" in said[1] and "(held-out split)" in said[0]
    out = capsys.readouterr().out
    assert "1 held out for the evaluation" in out  # 2 of 22 files held out, one unreadable


# --- resuming runs written before a config field existed ------------------------------------------

def test_resume_a_checkpoint_written_before_a_model_field_existed(tmp_path):
    """A checkpoint whose stored model config lacks a field added since (pixel_range) resumes:
    the field takes its default, what that run trained with. A --set of another value is refused."""
    toy()
    base = dict(preset="toy-pg", progress=False, evaluate=False, checkpoint_kimg=1000.0, image_kimg=1000.0,
                keep=100, seed=1, schedule_overrides={"lod_kimg": [0.016], "lod_batch": [8]})
    out = tmp_path / "old"
    run_training(TrainOptions(out=str(out), kimg=0.016, **base))
    (step, path), = list_checkpoints(out / "checkpoints")
    state = torch.load(path, weights_only=False)
    del state["model_config"]["pixel_range"]  # as every checkpoint before the field existed
    torch.save(state, path)
    summary = run_training(TrainOptions(out=str(out), kimg=0.032, resume=True, **base))
    assert summary["kimg"] >= 0.032
    from alae_fast.errors import UserError

    latent = state["model_config"]["latent_size"]
    with pytest.raises(UserError, match=f"--set latent_size: checkpoint {latent}, now {latent + 1}"):
        run_training(TrainOptions(out=str(out), kimg=0.048, resume=True, model_overrides={"latent_size": latent + 1},
                                  **base))


def test_resume_on_other_data_is_refused(tmp_path):
    """--resume --data OTHER is refused in one line: a resumed run continues its own data stream
    (a different folder of the same size was read silently; another size failed deep in the stream)."""
    import numpy as np
    from PIL import Image

    toy()
    base = dict(preset="toy-pg", progress=False, evaluate=False, checkpoint_kimg=1000.0, image_kimg=1000.0,
                keep=100, seed=1, schedule_overrides={"lod_kimg": [0.016], "lod_batch": [8]})
    out = tmp_path / "run"
    run_training(TrainOptions(out=str(out), kimg=0.016, **base))
    folder = tmp_path / "mine"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(20):
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(folder / f"{i}.png")
    from alae_fast.errors import UserError

    with pytest.raises(UserError, match=f"the run was trained on the embedded digits, not the image folder '{folder}'"):
        run_training(TrainOptions(out=str(out), kimg=0.032, resume=True, data=str(folder), **base))
    run_training(TrainOptions(out=str(out), kimg=0.032, resume=True, **base))  # its own data: fine


def test_signal_during_the_final_evaluation_abandons_it(tmp_path, monkeypatch, capsys):
    # it killed the process (rc 143, no line): the training was complete and saved, but the
    # scheduler's log said "killed"
    import alae_fast.training.run as run_module
    from alae_fast.cli import main

    def evaluate_until_signalled(run):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)  # the signal's exception ends this at once
        raise AssertionError("the evaluation was not interrupted")

    def uncaught(signum, frame):  # a regression fails this test instead of killing pytest
        raise AssertionError("SIGTERM reached the handler outside the run")

    out = tmp_path / "run"
    monkeypatch.setattr(run_module, "_evaluate", evaluate_until_signalled)
    previous = signal.signal(signal.SIGTERM, uncaught)
    try:
        t0 = time.time()
        assert main(["train", "--preset", "digits-mlp", "--kimg", "0.064", "--seed", "5", *TINY, "--out",
                     str(out)]) == 0
        # the handlers are back: the next signal would not be caught by a finished run
        assert signal.getsignal(signal.SIGTERM) is uncaught
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert time.time() - t0 < 25
    stdout = capsys.readouterr().out
    line = [s for s in stdout.splitlines() if s.startswith("stopped by SIGTERM before the final evaluation")]
    last = list_checkpoints(out / "checkpoints")[-1]
    assert line and last[0] == 64 and str(last[1]) in line[0], stdout
    assert shlex.split(line[0].split("evaluate with: ", 1)[1]) == ["alae-fast", "train", "--resume", "--out", str(out)]
    assert not (out / "eval.json").exists() and "eval.json" not in stdout.splitlines()[-1]
    # the printed command evaluates the finished run, training nothing
    monkeypatch.undo()
    assert main(["train", "--resume", "--out", str(out), "--no-progress"]) == 0
    assert (out / "eval.json").is_file() and list_checkpoints(out / "checkpoints")[-1][0] == 64


def test_signal_while_a_finished_run_exits_keeps_exit_status_0(tmp_path):
    # the run was complete and saved, but a SIGTERM during the interpreter's exit gave rc 143
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "alae_fast", "train", "--preset", "digits-mlp", "--kimg", "0.032",
                             "--no-eval", *TINY, "--out", str(out)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if line.startswith("wrote run folder"):
                break
        time.sleep(0.2)  # into the exit
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0


def test_a_preset_made_for_other_data_says_it_trains_on_the_embedded_digits(tmp_path, capsys):
    # mnist-mlp without --data trained on the embedded digits while its banner said "use --data
    # with MNIST IDX files"; with a length of the user's (--kimg) a note says so
    base = dict(progress=False, evaluate=False, kimg=0.016, threads=1, schedule_overrides={"lod_batch": [16]},
                model_overrides={"encoder_hidden": [32], "generator_hidden": [32], "latent_size": 8})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the note is no warning: the length is the user's
        run_training(TrainOptions(preset="mnist-mlp", out=str(tmp_path / "mnist"), **base))
    out = capsys.readouterr().out
    assert ("data: no --data, so 'mnist-mlp' trains on the embedded digits (scikit-learn's 1797 images of 8x8, "
            "upscaled to 28x28), not on the data it is made for (MNIST's IDX files); 0.016 kimg: 0.011 passes over "
            "the 1500 digits trained on\n") in out, out
    # a resumed run (no --kimg: the checkpoint's length) says the note too, and warns of nothing;
    # its length is the run's, chosen when it began
    resume = dict(progress=False, evaluate=False, threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_training(TrainOptions(out=str(tmp_path / "mnist"), resume=True, **resume))
    out = capsys.readouterr().out
    assert "data: no --data, so 'mnist-mlp' trains on the embedded digits" in out, out
    assert "0.016 kimg: 0.011 passes over the 1500 digits trained on\n" in out, out
    run_training(TrainOptions(preset="digits-mlp", out=str(tmp_path / "digits"), **base))
    assert "data: no --data" not in capsys.readouterr().out  # the digits presets are made for them


def test_every_preset_made_for_other_data_warns_of_its_schedule_on_the_digits(tmp_path):
    # `train --preset mnist-mlp` without --data started 6000 kimg, 100 epochs of MNIST's 60,000
    # images, on the 1500 embedded digits (4000 passes over them), said only by a "data:" note
    from alae_fast.data.spec import data_spec
    from alae_fast.models import MLPALAEConfig
    from alae_fast.models.presets import EMBEDDED_DIGITS, get_preset
    from alae_fast.training.distributed import DistributedContext
    from alae_fast.training.plan import _embedded_digits_said, _plan
    from alae_fast.training.setups import list_setups

    ctx, digits = DistributedContext(), data_spec(None)
    warned = set()
    for name in list_setups():
        plan = _plan(TrainOptions(preset=name, out=str(tmp_path / name)), ctx, lambda *a, **k: None)
        said = _embedded_digits_said(plan, digits, 1500)
        preset = get_preset(name)
        if preset.data == EMBEDDED_DIGITS:
            assert said is None, name
            continue
        line, warn = said
        assert warn, name
        warned.add(name)
        if preset.data is None:  # a preset another test registered, which says no data: checked below
            continue
        here = f"{plan.total / 1500:,.0f} passes over the 1500 digits trained on here"
        assert f"its {plan.total_kimg:g} kimg are " in line and here in line, line
        like, kimg = ("digits-mlp", 120) if isinstance(plan.setup.model_config, MLPALAEConfig) else ("digits-32", 62)
        assert line.endswith(f"give --kimg N (--preset {like}, made for them, trains {kimg} kimg), or --data DIR "
                             f"with {preset.data}"), line
        # the official configs' data set sizes (the passes over them are their epochs), photos-32's
        # tuning folder's: the count the schedule was sized to, not one of any folder of the data
        assert f"made for {preset.data} and sized to the {preset.data_images:,} training images it was tuned " \
               f"on: its " in line, line
        # a length given, or a resumed run's: the note alone
        plan = _plan(TrainOptions(preset=name, out=str(tmp_path / name), kimg=1.5), ctx, lambda *a, **k: None)
        line, warn = _embedded_digits_said(plan, digits, 1500)
        assert not warn and line.startswith(f"data: no --data, so {name!r} trains on the embedded digits") and \
            line.endswith("; 1.5 kimg: 1 pass over the 1500 digits trained on"), line
        assert _embedded_digits_said(plan, data_spec(str(tmp_path)), 1500) is None  # other data
    assert {"mnist-mlp", "mnist-ref", "ffhq-1024", "celeba-hq-256", "bedroom-256", "celeba-128",
            "photos-32"} <= warned
    plan = _plan(TrainOptions(preset="mnist-mlp", out=str(tmp_path / "m")), ctx, lambda *a, **k: None)
    assert _embedded_digits_said(plan, digits, 1500) == (
        "no --data, so 'mnist-mlp' trains on the embedded digits (scikit-learn's 1797 images of 8x8, upscaled to "
        "28x28), but its schedule was made for MNIST's IDX files and sized to the 60,000 training images it was "
        "tuned on: its 6000 kimg are 100 passes over those and 4,000 passes over the 1500 digits trained on here; for "
        "a run sized to these digits give --kimg N (--preset digits-mlp, made for them, trains 120 kimg), or --data "
        "DIR with MNIST's IDX files", True)
    plan = _plan(TrainOptions(preset="photos-32", out=str(tmp_path / "p")), ctx, lambda *a, **k: None)
    line, _ = _embedded_digits_said(plan, digits, 1500)
    assert ("but its schedule was made for a folder of colour photos and sized to the 135 training images it was "
            "tuned on: its 120 kimg are 889 passes over those") in line, line
    # a preset registered without data: the code does not know what data it was made for, and says so
    from alae_fast.models.presets import _PRESETS, register_preset
    mnist = get_preset("mnist-mlp")
    register_preset("test-no-data", mnist.config, "mnist-mlp's model and schedule, no data said",
                    schedule=mnist.schedule, kimg=3)
    try:
        plan = _plan(TrainOptions(preset="test-no-data", out=str(tmp_path / "n")), ctx, lambda *a, **k: None)
        line, warn = _embedded_digits_said(plan, digits, 1500)
        assert warn and ("upscaled to 28x28), but this preset does not say what data its schedule was made for: its "
                         "3 kimg are 2 passes over the 1500 digits trained on here; ") in line, line
        assert line.endswith("trains 120 kimg), or --data DIR") and "other data" not in line, line
        plan = _plan(TrainOptions(preset="test-no-data", out=str(tmp_path / "n"), kimg=1.5), ctx, lambda *a, **k: None)
        line, warn = _embedded_digits_said(plan, digits, 1500)
        assert not warn and line.startswith("data: no --data, so 'test-no-data' trains on the embedded digits (") and \
            "(this preset does not say what data it was made for); 1.5 kimg" in line, line
    finally:
        _PRESETS.pop("test-no-data", None)


class _Started(Exception):
    """Raised in place of the training loop: what a run says before its first step is all a test reads."""


def test_train_warns_at_the_start_of_a_preset_schedule_made_for_other_data(tmp_path, capsys, monkeypatch):
    import alae_fast.training.run as run_module
    from alae_fast.cli import main

    def started(*a, **k):
        raise _Started

    monkeypatch.setattr(run_module, "_loop", started)
    tiny = ["--set", "encoder_hidden=[32]", "--set", "generator_hidden=[32]", "--no-progress", "--threads", "1"]
    with pytest.raises(_Started):
        main(["train", "--preset", "mnist-mlp", "--out", str(tmp_path / "m"), *tiny])
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.startswith("alae-fast: warning: ")]
    assert len(lines) == 1 and "'mnist-mlp' trains on the embedded digits" in lines[0], err
    assert "its 6000 kimg are 100 passes over those and 4,000 passes over the 1500 digits" in lines[0]
    assert "data: no --data" not in out, out  # one line says it, not two
    with pytest.raises(_Started):
        main(["train", "--preset", "mnist-mlp", "--kimg", "150", "--out", str(tmp_path / "k"), *tiny])
    out, err = capsys.readouterr()
    assert "warning" not in err and "(MNIST's IDX files); 150 kimg: 100 passes over the 1500 digits" in out, (out, err)
    # the default run (digits-32) is made for the embedded digits: neither line
    with pytest.raises(_Started):
        main(["train", "--out", str(tmp_path / "d"), "--no-progress", "--threads", "1"])
    out, err = capsys.readouterr()
    assert "warning" not in err and "no --data" not in out and "training 'digits-32'" in out, (out, err)


def test_every_run_of_a_preset_made_for_other_data_warns_through_the_python_api(tmp_path, monkeypatch):
    # run_training(preset="mnist-mlp") twice in one process: the default filter shows a message
    # from one line once, so the second run warned of nothing
    import alae_fast.training.run as run_module

    def started(*a, **k):
        raise _Started

    monkeypatch.setattr(run_module, "_loop", started)
    tiny = dict(progress=False, threads=1, model_overrides={"encoder_hidden": [32], "generator_hidden": [32]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("default")  # Python's own, once for each message and line
        for name in ("a", "b"):
            with pytest.raises(_Started):
                run_training(TrainOptions(preset="mnist-mlp", out=str(tmp_path / name), **tiny))
    said = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(said) == 2 and all("'mnist-mlp' trains on the embedded digits" in line for line in said), said
    assert said[0] == said[1]
    with warnings.catch_warnings():  # the user's filters still apply: "error" raises it
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(RuntimeWarning, match="'mnist-mlp' trains on the embedded digits"):
            run_training(TrainOptions(preset="mnist-mlp", out=str(tmp_path / "c"), **tiny))


def test_the_continue_line_repeats_how_the_run_was_launched(monkeypatch, tmp_path):
    # A torchrun run's stop line must continue it with as many processes: `alae-fast train
    # --resume` alone would reseed its random streams (another world size).
    from alae_fast.training.distributed import DistributedContext
    from alae_fast.training.run import _continue_command

    out = tmp_path / "a run"
    assert shlex.split(_continue_command(DistributedContext(), out)) == [
        "alae-fast", "train", "--resume", "--out", str(out)]
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    two = DistributedContext(rank=1, world_size=2, local_rank=1, backend="gloo")
    assert shlex.split(_continue_command(two, out)) == [
        "torchrun", "--standalone", "--nproc_per_node", "2", "-m", "alae_fast.cli", "train", "--resume", "--out", str(out)]
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")  # one process on each of two machines
    line = _continue_command(two, out)
    assert line.startswith("torchrun <the same torchrun options, 2 processes in all> -m alae_fast.cli train --resume")


# --- the thread count on a resume, where the machine or the process layout changed --------------

def test_a_resume_on_other_cores_chooses_its_thread_count_anew_and_says_so(tmp_path, monkeypatch, capsys):
    # the thread count is the machine's and the process layout's, not the run's: a run resumed
    # where the cores differ (or the number of processes) kept the count it recorded, silently
    from alae_fast import _omp
    from alae_fast.training import plan

    base = dict(preset="digits-mlp", progress=False, evaluate=False, schedule_overrides={"lod_batch": [16]},
                model_overrides={"encoder_hidden": [32], "generator_hidden": [32], "latent_size": 8})
    run = tmp_path / "run"
    before = torch.get_num_threads()
    try:
        run_training(TrainOptions(out=str(run), kimg=0.016, threads=2, **base))
        ckpt = load_checkpoint(list_checkpoints(run / "checkpoints")[-1][1])
        assert (ckpt["threads"], ckpt["world_size"], ckpt["cpus"]) == (2, 1, _omp.usable_cpus())
        # the same machine and layout: the run's count, silently (bit-identical: the resume tests)
        monkeypatch.setattr(plan, "_FRESH_THREADS", 1)
        capsys.readouterr()
        run_training(TrainOptions(out=str(run), resume=True, kimg=0.032, progress=False, evaluate=False))
        assert torch.get_num_threads() == 2 and "threads per process" not in capsys.readouterr().out
        # a machine with other cores: chosen as a new run there would (1 here), said once
        monkeypatch.setattr(plan, "usable_cpus", lambda: 7)
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        run_training(TrainOptions(out=str(run), resume=True, kimg=0.048, progress=False, evaluate=False))
        out = capsys.readouterr().out
        assert out.count("note: threads per process:") == 1, out
        assert (f"note: threads per process: 2 -> 1 (torch's default on 7 cores): the run used 2 as 1 process on "
                f"{_omp.usable_cpus()} cores, this run is 1 process on 7 cores; a thread count not given again is "
                f"chosen as for a new run there (--threads 2 keeps the run's)") in out, out
        assert torch.get_num_threads() == 1
        assert load_checkpoint(list_checkpoints(run / "checkpoints")[-1][1])["threads"] == 1
        # --threads given again is the user's: taken, with the note it always had
        run_training(TrainOptions(out=str(run), resume=True, kimg=0.064, threads=2, progress=False, evaluate=False))
        out = capsys.readouterr().out
        assert "threads per process" not in out and "note: --threads 2: the run used 1 thread until now" in out, out
    finally:
        torch.set_num_threads(before)


def test_a_run_under_a_cpu_quota_takes_the_quotas_threads(tmp_path, monkeypatch, capsys):
    # docker run --cpus 1.5 on a large host: torch starts a thread per host core; the run takes
    # 2 (the quota rounded up) and says so, --threads and OMP_NUM_THREADS are the user's
    import alae_fast._cpu_quota as quota
    from alae_fast._cpu_quota import threads_for_quota
    from alae_fast.training import plan, run as run_module

    monkeypatch.setattr(quota, "quota_threads", lambda: 1)
    for module in (plan, run_module):
        monkeypatch.setattr(module, "cpu_quota", lambda: 0.5)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    base = dict(preset="digits-mlp", progress=False, evaluate=False, schedule_overrides={"lod_batch": [16]},
                model_overrides={"encoder_hidden": [32], "generator_hidden": [32], "latent_size": 8})
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert threads_for_quota(2) == 1
        run_training(TrainOptions(out=str(tmp_path / "a"), kimg=0.016, **base))
        out = capsys.readouterr().out
        assert ("note: 1 thread, not torch's 2 (one a core): the CPU quota of this process's cgroup allows "
                "0.5 CPUs, and more threads would wait for each other's turns (--threads or OMP_NUM_THREADS sets "
                "another count)") in out, out
        assert torch.get_num_threads() == 1
        assert load_checkpoint(list_checkpoints(tmp_path / "a" / "checkpoints")[-1][1])["threads"] == 1
        # a resume elsewhere chooses as a new run there: the quota's count, and why
        monkeypatch.setattr(plan, "_FRESH_THREADS", 2)
        assert plan.fresh_threads() == (1, "the CPU quota of this process's cgroup allows 0.5 CPUs")
        for given in (dict(threads=2), dict()):
            torch.set_num_threads(2)
            if not given:
                monkeypatch.setenv("OMP_NUM_THREADS", "2")
            run_training(TrainOptions(out=str(tmp_path / f"b{len(given)}"), kimg=0.016, **given, **base))
            assert "CPU quota" not in capsys.readouterr().out and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_folder_without_one_readable_image_is_named_as_data(tmp_path, capsys):
    # "error: data folder ...: none of its 2 image files could be read", where every other
    # --data error says "error: --data: ..."
    from alae_fast.cli import main

    bad = tmp_path / "onlybad"
    bad.mkdir()
    for name in ("a.png", "b.png"):
        (bad / name).write_bytes(b"not a png")
    assert main(["train", "--preset", "digits-mlp", "--data", str(bad), "--kimg", "0.016", "--no-progress",
                 "--no-eval", "--threads", "1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"alae-fast train: error: --data: data folder {str(bad)!r}: none of its 2 image files could be read" in err, err


def test_intervals_given_when_a_run_began_continue_on_resume(tmp_path):
    # a run begun with --checkpoint-kimg 0.016 and resumed to a longer --kimg without it had taken
    # a tenth of the new length instead
    from alae_fast.cli import main

    out = tmp_path / "run"
    base = ["train", "--preset", "digits-mlp", "--no-eval", *TINY, "--out", str(out)]
    with one_thread():
        assert main([*base, "--kimg", "0.032", "--checkpoint-kimg", "0.016", "--keep", "10"]) == 0
        assert main([*base, "--kimg", "0.096", "--resume", "--keep", "10"]) == 0
    steps = [s for s, _ in list_checkpoints(out / "checkpoints")]
    assert steps == [16, 32, 48, 64, 80, 96], steps


def test_a_run_folder_another_training_writes_is_refused(tmp_path, capsys):
    # a new user's trial: two jobs given one --out both exited 0, the folder holding one's config
    # and log beside the other's checkpoints
    from alae_fast.cli import main
    from alae_fast.training.run_lock import RunLock

    out = tmp_path / "run"
    argv = ["train", "--preset", "digits-mlp", "--kimg", "0.016", "--no-eval", *TINY, "--out", str(out)]
    with RunLock(out):  # another process's training, as the kernel sees it: another open file
        with one_thread():
            assert main(argv) == 2
        err = capsys.readouterr().err
        assert (f"alae-fast train: error: --out {str(out)!r}: another `alae-fast train` is writing this run folder "
                f"(pid {os.getpid()} on ") in err and "or give another --out" in err
        assert sorted(p.name for p in out.iterdir()) == ["run.lock"]  # nothing else written
    with one_thread():  # given back, the run trains; and its own lock is given back when it returns
        assert main(argv) == 0
        assert main([*argv[:4], "0.032", *argv[5:], "--resume"]) == 0
    assert list_checkpoints(out / "checkpoints")[-1][0] == 32
    assert not (out / "run.lock").exists()  # removed as the run lets go
    (out / "run.lock").write_text("pid 1 on a killed run's host")  # left by a SIGKILLed run: no lock held
    with one_thread():
        assert main([*argv[:4], "0.048", *argv[5:], "--resume"]) == 0
