"""torchrun data parallelism: 2 CPU processes (gloo) agree with 1 process on the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

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
