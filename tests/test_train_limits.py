"""`alae-fast train` and `run_training` refuse lengths, intervals and counts that would do nothing
or crash, naming the flag or option; loading workers leave the stop to the main process.

(A new-user trial found `--checkpoint-kimg 0.0001` ending in a ZeroDivisionError traceback,
`--kimg 1e-9` reporting a run that trained nothing, `--set channels=2` failing only after a
warning and a first step, `--workers -3` failing only after the data were read, no way to
turn off the time-based checkpoints from the command line, and Ctrl-C during a `--workers 2`
run announcing the stop once per process.)
"""

from __future__ import annotations

import signal

import pytest
import torch

from alae_fast.cli import main
from alae_fast.data.loader import DataStream
from alae_fast.training.run import TrainOptions, run_training
from alae_fast_tests_support import TINY


@pytest.mark.parametrize("flag", ["--kimg", "--checkpoint-kimg", "--image-kimg"])
@pytest.mark.parametrize("value", ["1e-9", "0.0004", "0.0009"])
def test_lengths_and_intervals_below_one_image_are_refused(flag, value, tmp_path, capsys):
    # an interval of 0.0001 kimg rounded to 0 images and divided by zero; a run of 1e-9 kimg
    # trained nothing and reported success
    with pytest.raises(SystemExit) as e:
        main(["train", "--preset", "digits-mlp", "--out", str(tmp_path / "r"), *TINY, flag, value])
    assert e.value.code == 2
    assert f"argument {flag}: expected at least 0.001 (one image), got {value}" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("name,value", [("kimg", 1e-7), ("checkpoint_kimg", 0.0), ("image_kimg", 1e-4),
                                        ("checkpoint_kimg", float("nan")), ("kimg", float("inf")),
                                        ("num_workers", -1)])
def test_run_training_refuses_the_same_values(name, value, tmp_path):
    with pytest.raises(ValueError, match=name):
        run_training(TrainOptions(preset="digits-mlp", out=str(tmp_path / "r"), progress=False,
                                  **{name: value}))
    assert not (tmp_path / "r").exists()


def test_one_image_is_the_shortest_interval_and_run(tmp_path):
    # the boundary itself is accepted: one step of the batch, a checkpoint and pictures after it
    assert main(["train", "--preset", "digits-mlp", "--out", str(tmp_path / "r"), *TINY, "--kimg", "0.001",
                 "--checkpoint-kimg", "0.001", "--image-kimg", "0.001", "--no-eval"]) == 0
    assert list((tmp_path / "r" / "checkpoints").glob("ckpt-*.pt"))


def test_channels_the_images_cannot_convert_to_are_refused_before_training(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "r"), "--kimg", "0.016", "--no-progress", "--no-eval",
                 "--set", "channels=2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("--set channels=2: the data are images of 1 channel, which convert only to 1 "
                              "(greyscale) or 3 (colour) channels") in err[0], err
    assert not (tmp_path / "r").exists()


def test_negative_workers_are_refused_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--preset", "digits-mlp", "--out", str(tmp_path / "r"), *TINY, "--workers", "-3"])
    assert e.value.code == 2 and "argument --workers: expected an int >= 0, got -3" in capsys.readouterr().err


def test_checkpoint_minutes_zero_turns_the_clock_off(tmp_path, monkeypatch):
    import alae_fast.training.run as run_module

    seen = {}
    monkeypatch.setattr(run_module, "run_training", lambda opts: seen.setdefault("opts", opts) and 0)
    for given, expected in (("0", None), ("2.5", 2.5)):
        seen.clear()
        main(["train", "--preset", "digits-mlp", "--out", str(tmp_path / "r"), *TINY, "--checkpoint-minutes", given])
        assert seen["opts"].checkpoint_minutes == expected, given
    with pytest.raises(SystemExit):
        main(["train", "--out", str(tmp_path / "r"), "--checkpoint-minutes", "-1"])


class _SignalState(torch.utils.data.Dataset):
    """Items whose label says whether the process loading them ignores SIGINT and SIGTERM."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        ignored = all(signal.getsignal(s) == signal.SIG_IGN for s in (signal.SIGINT, signal.SIGTERM))
        return torch.zeros(1, 2, 2), torch.tensor(int(ignored))


def test_loading_workers_ignore_the_stop_signals_the_main_process_handles():
    # the main process handles both signals (as training's StopRequest does), which a forked worker
    # inherits; set here, because a suite started in the background may have SIGINT ignored already
    def handler(signum, frame):
        pass

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        stream = DataStream(_SignalState(), batch_size=4, num_workers=1)
        _, labels = stream.next()
        assert labels.tolist() == [1, 1, 1, 1]
        assert all(signal.getsignal(s) is handler for s in previous)  # the main process keeps its own
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
