"""torchrun data parallelism: 2 CPU processes (gloo) agree with 1 process on the same global batch."""

import os
import subprocess
import sys
from pathlib import Path

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


def test_two_gloo_processes_match_one_process(tmp_path):
    toy()
    worker = sibling("dist_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(HERE / "dist_worker.py"), str(tmp_path / "ddp")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "rank 0 done" in proc.stdout and "rank 1 done" in proc.stdout

    run_training(TrainOptions(out=str(tmp_path / "single"), **worker.OPTIONS),
                 DistributedContext(device=torch.device("cpu")))
    ddp, single = _final(tmp_path / "ddp"), _final(tmp_path / "single")
    assert ddp["world_size"] == 2 and len(ddp["rng"]) == 2 and single["world_size"] == 1
    assert ddp["trainer"]["images_seen"] == single["trainer"]["images_seen"] == 64
    assert ddp["trainer"]["lod"] == 2  # crossed two level switches, batch 8 -> 4 (2 per rank)
    assert ddp["data"] == single["data"]
    for key in ("model", "ema"):
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
