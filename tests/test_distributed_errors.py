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


def _job(tmp_path, *args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "ALAE_FAST_TRACEBACK"):
        env.pop(var, None)
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "alae_fast.cli", "train", "--preset", "digits-mlp", "--device", "cpu", "--threads",
                             "1", "--no-progress", "--schedule", "lod_batch=[16]", *args], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for(path_glob, proc, timeout=180):
    import glob
    import time

    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if glob.glob(path_glob):
            return
        time.sleep(0.1)
    raise AssertionError(f"no {path_glob} while the job ran: {proc.poll()}")


def test_a_signal_during_the_final_evaluation_ends_every_rank_at_once(tmp_path):
    # a new user's trial: rank 1, waiting for rank 0's evaluation with the run's handlers gone,
    # died of the job's SIGTERM without a word, and rank 0 waited for it until torchrun's SIGKILL
    import signal
    import time

    out = tmp_path / "run"
    proc = _job(tmp_path, "--kimg", "0.32", "--out", str(out))
    try:
        _wait_for(str(out / "checkpoints" / "ckpt-0000000320.pt"), proc)
        t0 = time.time()
        proc.send_signal(signal.SIGTERM)  # to torchrun, which forwards it to the ranks
        stdout, stderr = proc.communicate(timeout=60)
        assert time.time() - t0 < 12, (stdout, stderr)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    said = stdout + stderr
    assert "Unable to shutdown process" not in said and "forcefully" not in said, said
    # the evaluation was abandoned (or had just ended): either way one line for the job
    assert said.count("stopped by SIGTERM before the final evaluation") + said.count("wrote run folder") >= 1, said


@pytest.mark.slow
def test_a_rank_killed_mid_run_is_said_in_one_line_with_the_newest_checkpoint(tmp_path):
    # a new user's trial: rank 0 printed gloo's traceback ("Connection closed by peer") and nothing
    # about where the run stood
    import signal

    out = tmp_path / "run"
    proc = _job(tmp_path, "--kimg", "20", "--checkpoint-kimg", "0.16", "--no-eval", "--out", str(out))
    try:
        _wait_for(str(out / "checkpoints" / "ckpt-*.pt"), proc)
        ranks = [int(p) for p in os.listdir("/proc") if p.isdigit()]
        rank1 = [p for p in ranks if _environ(p).get("RANK") == "1" and _environ(p).get("TORCHELASTIC_RUN_ID")
                 and str(out) in _cmdline(p)]
        assert rank1, "no rank 1"
        os.kill(rank1[0], signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    said = stdout + stderr
    line = [s for s in said.splitlines() if s.startswith("alae-fast train: error:")]
    assert len(line) == 1 and "another process of the job ended without a word" in line[0], said
    assert "the newest checkpoint is " in line[0] and "continue with: torchrun" in line[0], line
    assert PACKAGE not in said, said  # no traceback of ours


def _environ(pid: int) -> dict:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return dict(kv.split("=", 1) for kv in f.read().decode(errors="replace").split("\0") if "=" in kv)
    except OSError:
        return {}


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace").replace("\0", " ")
    except OSError:
        return ""


def test_ranks_started_with_different_commands_are_refused(tmp_path):
    # a new user's trial, each rank started by hand (as on several nodes): --kimg 1 and 2 crashed in
    # gloo ("Received data size doesn't match"), two copies of a folder trained silently apart
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank, kimg in ((0, "0.032"), (1, "0.064")):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "RANK": str(rank), "LOCAL_RANK": str(rank),
               "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        env.pop("ALAE_FAST_TRACEBACK", None)
        procs.append(subprocess.Popen([sys.executable, "-m", "alae_fast.cli", "train", "--preset", "digits-mlp",
                                       "--device", "cpu", "--threads", "1", "--no-progress", "--no-eval",
                                       "--schedule", "lod_batch=[16]", "--kimg", kimg, "--out", str(tmp_path / "run")],
                                      env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=180) for p in procs]
    said = "".join(o + e for o, e in outs)
    assert [p.returncode for p in procs] == [2, 2], said
    assert said.count("alae-fast train: error: the job's processes were not started alike: rank ") == 1, said
    assert "differ in --kimg; start every process with the same command and the same data" in said, said
    assert PACKAGE not in said and "Received data size" not in said, said
