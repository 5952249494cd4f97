"""Run by tests/test_distributed.py under torchrun (not a test module): one rank of a gloo job.

argv: OUT_DIR [CASE]. Trains, with the options the test also uses for its single-process run
(imported by the test by path): CASE "toy" (default), the toy progressive ALAE
(tests/toy_alae.py, ``OPTIONS``); "style", a tiny StyleALAE whose G draws noise inputs
(``STYLE_OPTIONS``); "style-aug", that one with DiffAugment from 8x8 on (``STYLE_AUG_OPTIONS``).
"""

import sys

OPTIONS = dict(preset="toy-pg", kimg=0.064, device="cpu", progress=False, evaluate=False, log_steps=1,
               checkpoint_kimg=0.032, seed=11, threads=1,
               schedule_overrides={"lod_kimg": [0.024], "lod_batch": [8, 8, 4]})
# digits-32 cut to 16x16 and a few feature maps: G draws noise images at every level, which a
# 2-process run must draw as one process does (the toy ALAE has none)
STYLE_OPTIONS = dict(OPTIONS, preset="digits-32",
                     model_overrides={"layer_count": 3, "start_features": 4, "max_features": 8, "latent_size": 8,
                                      "mapping_layers": 2})
# the same with every DiffAugment policy, whose draws each rank takes its slice of, from 8x8 on
# (the first step is compared, and translation shifts nothing at 4x4)
STYLE_AUG_OPTIONS = dict(STYLE_OPTIONS, augment="translation,cutout,color",
                         schedule_overrides={**OPTIONS["schedule_overrides"], "start_lod": 1})
CASES = {"toy": OPTIONS, "style": STYLE_OPTIONS, "style-aug": STYLE_AUG_OPTIONS}


if __name__ == "__main__":
    # run as a script, so this folder is sys.path[0] and support.py imports by name
    from support import toy

    toy()
    from alae_fast.training.distributed import init_distributed
    from alae_fast.training.run import TrainOptions, run_training

    ctx = init_distributed("cpu")
    assert ctx.world_size == 2 and ctx.backend == "gloo", ctx
    summary = run_training(TrainOptions(out=sys.argv[1], **CASES[sys.argv[2] if len(sys.argv) > 2 else "toy"]), ctx)
    print(f"rank {ctx.rank} done at {summary['kimg']} kimg", flush=True)
