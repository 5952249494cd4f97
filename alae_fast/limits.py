"""Limits shared by the command line (which must stay importable without torch, so that
``alae-fast --help`` is instant) and the library modules that enforce them."""

__all__ = ["MAX_PICTURE_PIXELS"]

# The most pixels one picture may hold (2**26 = 64 Mi: 8192 x 8192, 65536 images of 32x32, 64 of
# 1024x1024). Images are made in memory before a picture is written; a --n of ten million once
# took 23 GB before the kernel killed it, so commands and alae_fast.inference.pictures refuse
# larger pictures before drawing anything.
MAX_PICTURE_PIXELS = 2 ** 26
