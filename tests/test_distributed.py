"""torchrun data parallelism: 2 CPU processes (gloo) agree with 1 process on the same global batch."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from alae_fast.training.checkpoint import list_checkpoints, load_checkpoint
from alae_fast.training.distributed import DistributedContext, init_distributed, pick_device
from alae_fast.training.run import TrainOptions, run_training
from alae_fast_tests_support import sibling, toy

HERE = Path(__file__).parent


def test_single_process_context_is_a_no_op(monkeypatch):
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    ctx = init_distributed("cpu")
    assert (ctx.rank, ctx.world_size, ctx.backend, ctx.is_main, ctx.enabled) == (0, 1, None, True, False)
    p = torch.nn.Parameter(torch.randn(3))
    p.grad = torch.randn(3)
    g = p.grad.clone()
    ctx.average_gradients([p])
    assert torch.equal(p.grad, g)
    assert torch.equal(ctx.mean(g), g) and ctx.all_gather_object({"a": 1}) == [{"a": 1}]
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto") == (torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu"))


def _final(out: Path) -> dict:
    return load_checkpoint(list_checkpoints(out / "checkpoints")[-1][1])


@pytest.mark.parametrize("case", ["toy", "style", "style-aug"])
def test_two_gloo_processes_match_one_process(tmp_path, case):
    # "style": G's noise inputs were drawn per rank (seed + rank), so a StyleALAE's 2-process
    # run followed another course than its 1-process one (loss_ae differed at step 1)
    toy()
    worker = sibling("dist_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(HERE / "dist_worker.py"), str(tmp_path / "ddp"), case],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "rank 0 done" in proc.stdout and "rank 1 done" in proc.stdout

    run_training(TrainOptions(out=str(tmp_path / "single"), **worker.CASES[case]),
                 DistributedContext(device=torch.device("cpu")))
    ddp, single = _final(tmp_path / "ddp"), _final(tmp_path / "single")
    # the first step starts from the same weights: its losses differ by summation order only
    first = [json.loads((tmp_path / d / "log.jsonl").read_text().splitlines()[0]) for d in ("ddp", "single")]
    for k in ("loss_d", "loss_g", "loss_ae", "d_real", "d_fake", "r1"):
        assert first[0][k] == pytest.approx(first[1][k], rel=2e-6), (k, first)
    assert ddp["world_size"] == 2 and len(ddp["rng"]) == 2 and single["world_size"] == 1
    assert ddp["trainer"]["images_seen"] == single["trainer"]["images_seen"] == 64
    assert ddp["trainer"]["lod"] == 2  # ended at 16x16, batch 8 -> 4 (2 per rank) on the way
    assert ddp["data"] == single["data"]
    # A StyleALAE's course is chaotic: after 16 steps of Adam (beta1 0) the float32 summation
    # order has moved its weights apart (biases near 0 flip the sign of their steps), so its
    # weights are compared only through the first step above and the noise test below.
    for key in (("model", "ema") if case == "toy" else ()):
        a = ddp["trainer"][key] if key == "model" else ddp["trainer"][key]["module"]
        b = single["trainer"][key] if key == "model" else single["trainer"][key]["module"]
        assert a.keys() == b.keys()
        for name in a:
            # same data, same latents, gradients averaged over the two halves of each batch:
            # equal up to float32 summation order
            torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=2e-6, msg=f"{key}: {name}")
    # only rank 0 wrote: one set of files
    names = sorted(p.name for p in (tmp_path / "ddp").iterdir())
    events = [n for n in names if n.startswith("events.out.tfevents.")]  # with tensorboard installed
    assert len(events) <= 1 and [n for n in names if n not in events] == [
        "checkpoints", "config.json", "images", "log.jsonl", "loss_curves.png"]


def test_each_rank_decodes_with_its_slice_of_the_global_batchs_noise():
    # the noise images of a 2-process decode are the 1-process ones, sliced by rank
    from alae_fast.models import build_model
    from alae_fast.training.setups import resolve_setup
    from alae_fast.training.trainer import ALAETrainer

    setup = resolve_setup("digits-32")
    model = build_model(setup.model_config.replace(latent_size=8, start_features=4, max_features=8))
    lod = 2
    torch.manual_seed(5)
    single = ALAETrainer(model, setup.schedule)._noise(8, lod)
    assert single == "random"  # a single process draws them inside G, in this order:
    torch.manual_seed(5)
    whole = model.generator.noise_inputs("random", 8, lod, torch.float32, torch.device("cpu"))
    for rank in (0, 1):
        torch.manual_seed(5)
        trainer = ALAETrainer(model, setup.schedule)
        trainer.ctx = DistributedContext(rank=rank, world_size=2)  # built alone: no process group to join
        got = trainer._noise(8, lod)
        assert len(got) == len(whole) == 2 * lod + 2
        for k, (a, b) in enumerate(zip(got, whole)):
            expected = b if b.shape[0] == 1 else b[4 * rank:4 * rank + 4]
            assert a.shape == expected.shape and torch.equal(a, expected), (rank, k)


def _data_folder(path: Path) -> Path:
    """24 grey 32x32 PNGs, one file that is no image under a .png name (skipped, with a warning)
    and one GIF (left out for its format, with a warning): every rank scans the same folder."""
    from PIL import Image

    path.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(path / f"{i:02d}.png")
    (path / "broken.png").write_bytes(b"not a png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(path / "other.gif")
    return path


def _torchrun_cli(*args, cwd: Path, env_extra: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "ALAE_FAST_TRACEBACK",
                "OMP_NUM_THREADS"):  # as a user's shell: torchrun sets OMP_NUM_THREADS=1 itself
        env.pop(var, None)
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "alae_fast.cli", "train", *args], env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_a_resume_under_torchrun_chooses_threads_anew_and_says_each_line_once(tmp_path, monkeypatch, capsys):
    # A 1-process run on 2 threads resumed by 2 torchrun processes kept 2 threads a process on 2
    # cores (9 img/s against 136 with --threads 1), saying nothing of it; and each rank printed
    # the data's warnings and the signal notice (2 processes: every line twice).
    import signal

    from alae_fast.cli import main
    from alae_fast.training import plan

    data = _data_folder(tmp_path / "data")
    run = tmp_path / "run"
    tiny = ["--set", "encoder_hidden=[32]", "--set", "generator_hidden=[32]", "--set", "latent_size=8",
            "--schedule", "lod_batch=[16]", "--no-progress", "--no-eval", "--device", "cpu"]
    before = torch.get_num_threads()
    try:
        assert main(["train", "--preset", "digits-mlp", "--data", str(data), *tiny, "--threads", "2", "--kimg",
                     "0.032", "--out", str(run)]) == 0
    finally:
        torch.set_num_threads(before)
    assert _final(run)["threads"] == 2
    # stopped by SIGTERM to torchrun once the job has written a checkpoint: every line said once
    proc = _torchrun_cli("--resume", "--out", str(run), "--kimg", "4", "--checkpoint-kimg", "0.016", "--no-progress",
                         "--no-eval", cwd=tmp_path)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("training 'digits-mlp'"):
                break
        deadline = time.time() + 120
        while list_checkpoints(run / "checkpoints")[-1][0] <= 32 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        lines += proc.communicate(timeout=240)[0].splitlines(keepends=True)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines)
    assert out.count("note: threads per process: 2 -> 1 (OMP_NUM_THREADS=1, as torchrun sets it for several "
                     "processes a machine): the run used 2 as 1 process on ") == 1, out
    assert out.count("note: the checkpoint was written by 1 process, this run has 2: random streams") == 1, out
    assert out.count("broken.png (") == 1 and out.count("left out 1 image file in .gif") == 1, out
    assert sum(s.startswith("SIGTERM: ") for s in out.splitlines()) == 1, out
    assert out.count("stopped by SIGTERM ") == 1, out
    assert "rank 1" not in out, out
    assert json.loads((run / "config.json").read_text())["options"]["threads"] == 1
    # and back: that run's 1 thread a process, resumed by one process, is chosen anew (2 here)
    saved = _final(run)
    assert saved["world_size"] == 2 and saved["threads"] == 1
    monkeypatch.setattr(plan, "_FRESH_THREADS", 2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    capsys.readouterr()
    try:
        assert main(["train", "--resume", "--out", str(run), "--kimg", str(saved["trainer"]["images_seen"] / 1000 +
                                                                          0.016), "--no-progress", "--no-eval"]) == 0
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    said = capsys.readouterr().out
    assert "note: threads per process: 1 -> 2 (torch's default on " in said, said
    assert _final(run)["threads"] == 2


def test_a_global_batch_the_processes_cannot_share_names_the_flag_and_the_level(tmp_path):
    # "error: schedule: global batch 5 is not a multiple of the world size 2": no flag is named schedule
    toy()
    ctx = DistributedContext(rank=0, world_size=2)  # refused before any collective: no process group needed
    options = dict(preset="toy-pg", kimg=0.016, progress=False, evaluate=False, threads=1)
    with pytest.raises(ValueError) as e:
        run_training(TrainOptions(out=str(tmp_path / "a"), schedule_overrides={"lod_batch": [8, 5]}, **options), ctx)
    assert str(e.value) == ("--schedule lod_batch: the global batch 5 of level 1 (8x8) is not a multiple of the world "
                            "size 2 (each process takes an equal share)")
    ctx = DistributedContext(rank=0, world_size=3)
    with pytest.raises(ValueError, match=r"^'toy-pg''s lod_batch \(its schedule; --schedule lod_batch=\[\.\.\.\] sets "
                                         r"another\): the global batch 8 of level 0 \(4x4\)"):
        run_training(TrainOptions(out=str(tmp_path / "b"), **options), ctx)
