"""A user's mistake under torchrun: `torchrun --standalone --nproc_per_node 2 -m alae_fast.cli train ...`
with 2 CPU processes (gloo) says the error's one line once, and every rank exits with status 2
(torchrun's own report of the failed ranks follows, as for any failed job).

Before: each rank printed the line (twice for 2 ranks); a rank that exited first had torchrun
SIGTERM the other (exit -15, its line possibly lost); an error only rank 0 met (writing the
run folder) left rank 1 waiting at the barrier, then running into a gloo error ("Connection
closed by peer") with two tracebacks.
"""

import os
import re
import subprocess
import sys

import pytest

import alae_fast

PACKAGE = os.path.dirname(os.path.abspath(alae_fast.__file__)) + os.sep


def _torchrun(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "ALAE_FAST_TRACEBACK"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "alae_fast.cli", "train", "--preset", "digits-mlp", "--device", "cpu", "--threads",
                           "1", "--no-progress", "--no-eval", "--kimg", "0.016", *args],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=240)
    return proc, proc.stdout + proc.stderr


def _check_said_once(proc, out: str, line: str) -> None:
    assert proc.returncode != 0, out  # torchrun's own status for a failed job
    assert out.count(line) == 1, out
    assert sum("error:" in s for s in out.splitlines() if s.startswith("alae-fast")) == 1, out
    # torchrun's report lists each rank with its status: both 2 (not one 2 and one -15, SIGTERM)
    codes = re.findall(r"^\s*exitcode\s*:\s*(-?\d+)", out, re.MULTILINE)
    assert sorted(codes) == ["2", "2"], out
    # no rank printed a traceback of ours, nor ran into the other's exit
    assert PACKAGE not in out, out
    assert "Connection closed by peer" not in out, out


def test_bad_data_is_said_once_and_every_rank_exits_2(tmp_path):
    # met by every rank before the process group exists
    missing = tmp_path / "nothing-here"
    proc, out = _torchrun("--data", str(missing), "--out", str(tmp_path / "run"), cwd=tmp_path)
    _check_said_once(proc, out, f"alae-fast train: error: --data: data path '{missing}' does not exist")
    assert not (tmp_path / "run").exists()


def test_an_error_only_rank_0_meets_ends_the_waiting_rank_too(tmp_path):
    # rank 0 alone makes the run folder (run.py's _write_run_config) while rank 1 waits at the
    # barrier after it: "images" there is a dangling link, which the start-up check of every rank
    # (_check_run_folder: exists() follows the link) lets pass and rank 0's mkdir then meets;
    # rank 1 must not wait on
    out = tmp_path / "run"
    out.mkdir()
    (out / "images").symlink_to(tmp_path / "gone")
    proc, said = _torchrun("--out", str(out), cwd=tmp_path)
    _check_said_once(proc, said, f"alae-fast train: error: --out '{out}': cannot make the folder '{out / 'images'}' (File exists)")
    assert not (out / "config.json").exists()


@pytest.mark.parametrize("args, line", [
    # argparse's refusal (said by the parser, before any command runs)
    (["--bogus", "3"], "alae-fast train: error: unrecognized arguments: --bogus 3 (see alae-fast train --help)"),
    # a UserError of the train command, as --data's above: slow only for the time
    pytest.param(["--r1-gamma", "0", "--r1-interval", "4"],
                 "alae-fast train: error: --r1-interval 4: with --r1-gamma 0 there is no R1 term to space out",
                 marks=pytest.mark.slow),
    # the flag the user typed and the level, not "schedule: global batch 5 ..."
    pytest.param(["--schedule", "lod_batch=[5]"],
                 "alae-fast train: error: --schedule lod_batch: the global batch 5 of level 0 (32x32) is not a multiple "
                 "of the world size 2 (each process takes an equal share)", marks=pytest.mark.slow),
])
def test_refused_flags_are_said_once_and_every_rank_exits_2(tmp_path, args, line):
    proc, out = _torchrun(*args, "--out", str(tmp_path / "run"), cwd=tmp_path)
    _check_said_once(proc, out, line)


def test_help_is_shown_once_and_every_rank_exits_0(tmp_path):
    proc, out = _torchrun("--help", cwd=tmp_path)
    assert proc.returncode == 0, out
    assert proc.stdout.count("usage: alae-fast train") == 1, out


def test_a_command_other_than_train_is_refused_under_torchrun(tmp_path):
    # a new user's trial: `torchrun ... -m alae_fast generate` ran the whole command on every rank
    # (the report printed twice, one file written twice)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "ALAE_FAST_TRACEBACK"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "alae_fast.cli", "generate", "--ckpt", str(tmp_path / "run"), "--out",
                           str(tmp_path / "g.png")], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    _check_said_once(proc, proc.stdout + proc.stderr,
                     "alae-fast generate: error: generate runs in one process; under torchrun (WORLD_SIZE 2) only "
                     "`train` splits its work between processes: run alae-fast generate without torchrun")
    assert not (tmp_path / "g.png").exists()
