"""Limits and defaults shared by the command line (which must stay importable without torch, so
that ``alae-fast --help`` is instant) and the library modules that enforce them."""

__all__ = ["MAX_PICTURE_PIXELS", "MAX_REFINE_STEPS", "DEFAULT_NUM_FID", "MAX_ABS_W"]

# The most pixels one picture may hold, counted as written (enlargement and gaps included):
# 2**26 = 64 Mi, 8192 x 8192; `alae-fast generate` draws 32x32 images 4 times larger 2 pixels
# apart, so its grid holds at most 3600 of them, and 56 of 1024x1024. Images are made in memory
# before a picture is written; a --n of ten million once took 23 GB before the kernel killed it,
# so commands and alae_fast.inference.pictures refuse larger pictures before drawing anything,
# sized by the writers' own layout (pictures.grid_size and its kin).
MAX_PICTURE_PIXELS = 2 ** 26

# The most descent steps a projection (alae_fast.inference.projection, --refine-steps) may take:
# 100 steps reach most of the gain on photos-32; 100000 is past any use and refuses a typo's
# extra zeros before hours of work start.
MAX_REFINE_STEPS = 100_000

# Images per FID set of `evaluate` (--num-fid, evaluate_model's num_fid): fewer where the real
# images are fewer, with a warning saying so.
DEFAULT_NUM_FID = 1000

# The largest |value| a latent w given to G may hold (LoadedRun.decode, the page's endpoints): an
# encoded or mapped w lies within about +-10; at 1e30 G's pixels came out near 1e27 and at 3e38
# all NaN, without an error, where the value itself is a finite float.
MAX_ABS_W = 1e4
