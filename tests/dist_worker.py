"""Run by tests/test_distributed.py under torchrun (not a test module): one rank of a gloo job.

argv: OUT_DIR. Trains the toy progressive ALAE (tests/toy_alae.py) with the options the test
also uses for its single-process run (``OPTIONS`` below, imported by the test by path).
"""

import sys

OPTIONS = dict(preset="toy-pg", kimg=0.064, device="cpu", progress=False, evaluate=False, log_steps=1,
               checkpoint_kimg=0.032, seed=11, threads=1,
               schedule_overrides={"lod_kimg": [0.024], "lod_batch": [8, 8, 4]})


if __name__ == "__main__":
    # run as a script, so this folder is sys.path[0] and support.py imports by name
    from support import toy

    toy()
    from alae_fast.training.distributed import init_distributed
    from alae_fast.training.run import TrainOptions, run_training

    ctx = init_distributed("cpu")
    assert ctx.world_size == 2 and ctx.backend == "gloo", ctx
    summary = run_training(TrainOptions(out=sys.argv[1], **OPTIONS), ctx)
    print(f"rank {ctx.rank} done at {summary['kimg']} kimg", flush=True)
