"""A folder of colour photos for trying `alae-fast train --preset photos-32 --data DIR`.

scikit-learn ships two photos (``sklearn.datasets.load_sample_images``: china.jpg and
flower.jpg, 427x640 each). This script cuts them into overlapping square tiles of
``--tile`` pixels with stride ``--stride`` and writes every ``k``-th one (evenly over both
photos) as PNG until ``--n`` tiles are written:

    python benchmarks/photo_tiles.py /tmp/photos --n 150
    alae-fast train --preset photos-32 --data /tmp/photos
"""

from __future__ import annotations

import argparse
from pathlib import Path


def write_tiles(out: Path, n: int = 150, tile: int = 96, stride: int = 32) -> list[Path]:
    """Write ``n`` tiles (PNG, ``tile`` x ``tile``) of scikit-learn's sample photos to ``out``
    (created), evenly spaced over all the tiles there are; returns the paths. Raises ValueError,
    before anything is written, for ``n`` < 1 or more tiles than the photos hold, ``tile`` < 4
    or ``stride`` < 1."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    for name, value, least in (("n", n, 1), ("tile", tile, 4), ("stride", stride, 1)):
        if value < least:
            raise ValueError(f"{name}: expected at least {least}; got {value}")
    photos = load_sample_images()
    tiles = []
    for name, img in zip(photos.filenames, photos.images):
        h, w = img.shape[:2]
        for y in range(0, h - tile + 1, stride):
            for x in range(0, w - tile + 1, stride):
                tiles.append((Path(name).stem, y, x, img[y:y + tile, x:x + tile]))
    if n > len(tiles):
        raise ValueError(f"n: at most {len(tiles)} tiles of {tile} px with stride {stride}; got {n}")
    out.mkdir(parents=True, exist_ok=True)
    step = len(tiles) / n
    paths = []
    for i in range(n):
        stem, y, x, arr = tiles[int(i * step)]
        p = out / f"{stem}-{y:03d}-{x:03d}.png"
        Image.fromarray(arr).save(p)
        paths.append(p)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=150, help="tiles to write (default 150; at most what the photos hold)")
    ap.add_argument("--tile", type=int, default=96, help="side of a tile in pixels (default 96, at least 4)")
    ap.add_argument("--stride", type=int, default=32, help="pixels between tiles (default 32, at least 1)")
    a = ap.parse_args()
    try:
        paths = write_tiles(a.out, a.n, a.tile, a.stride)
    except ValueError as e:
        ap.exit(2, f"photo_tiles.py: --{e}\n")
    print(f"wrote {len(paths)} tiles to {a.out}")


if __name__ == "__main__":
    main()
