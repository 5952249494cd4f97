"""A folder of colour photos for trying `alae-fast train --preset photos-32 --data DIR`: random
square crops of the eleven colour photos that scikit-image and scikit-learn ship.

The photos (each crop keeps 60-100% of its photo's shorter side, so every crop shows its photo's
subject): scikit-image's astronaut, chelsea (a cat), coffee, rocket, hubble_deep_field,
immunohistochemistry, retina, colorwheel and the left view of stereo_motorcycle; scikit-learn's
china and flower. Crop i comes from photo i mod 11 (sorted by name), at a position and size
drawn from ``numpy.random.default_rng(seed)``, resized to ``--size`` pixels (Lanczos) and
written as ``<photo>-<i>.png``:

    pip install scikit-image          # or: pip install 'alae_fast[photos]'
    python benchmarks/photo_crops.py /tmp/photos --n 150
    alae-fast train --preset photos-32 --data /tmp/photos

A held-out crop is a new view of a photo the run trained on, so a reconstruction is
"recognisable" when it shows that photo's subject (``benchmarks/photo_tiles.py`` cuts the two
scikit-learn photos into small tiles instead: textures, not subjects). ``--score RUN`` says how
often it does: the photo a pixel 1-NN over the training crops gives each held-out crop's EMA
reconstruction, against the crop's own photo (its file name), beside the same 1-NN on the
held-out crops themselves:

    python benchmarks/photo_crops.py /tmp/photos --score runs/photos-32
"""

from __future__ import annotations

import argparse
from pathlib import Path

SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
                  "retina", "colorwheel")


def load_photos() -> dict:
    """The eleven colour photos by name, as uint8 arrays [H, W, 3]. Raises ImportError (saying
    what to install) without scikit-image."""
    try:
        import skimage.data
    except ImportError as e:
        raise ImportError("benchmarks/photo_crops.py needs scikit-image: pip install scikit-image") from e
    from sklearn.datasets import load_sample_images

    photos = {name: getattr(skimage.data, name)() for name in SKIMAGE_PHOTOS}
    photos["motorcycle"] = skimage.data.stereo_motorcycle()[0]
    sample = load_sample_images()
    for filename, image in zip(sample.filenames, sample.images):
        photos[Path(filename).stem] = image
    return {name: photos[name][..., :3] for name in sorted(photos)}


def write_crops(out: Path, n: int = 150, size: int = 64, seed: int = 0) -> list[Path]:
    """Write ``n`` crops (PNG, ``size`` x ``size``, RGB) to ``out`` (created); returns the paths.
    Raises ValueError for ``n`` < 1 or ``size`` < 4."""
    import numpy as np
    from PIL import Image

    if n < 1:
        raise ValueError(f"n: expected at least 1 crop; got {n}")
    if size < 4:
        raise ValueError(f"size: expected at least 4 pixels; got {size}")
    photos = load_photos()
    names = list(photos)
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        name = names[i % len(names)]
        image = photos[name]
        h, w = image.shape[:2]
        side = int(min(h, w) * rng.uniform(0.6, 1.0))
        y = int(rng.integers(0, h - side + 1))
        x = int(rng.integers(0, w - side + 1))
        crop = Image.fromarray(np.ascontiguousarray(image[y:y + side, x:x + side]))
        path = out / f"{name}-{i:03d}.png"
        crop.resize((size, size), Image.LANCZOS).save(path)
        paths.append(path)
    return paths


def photo_of(path: Path) -> str:
    """The photo a crop was cut from: its file name up to the last '-' (``coffee-014.png`` -> ``coffee``)."""
    return path.stem.rsplit("-", 1)[0]


def score(folder: Path, run: Path, refine_steps: int = 0) -> dict:
    """How often the EMA reconstruction of a held-out crop of ``folder`` shows the crop's photo,
    by a pixel 1-NN fitted on the training crops (``alae_fast.eval.reconstruction_class_accuracy``
    at the run's level; the folder's held-out split is ``alae_fast.data``'s). refine_steps
    (default 0: ALAE's G(E(x))): above 0, G(w) of E(x) refined by that many steps in W
    (``LoadedRun.reconstruct``'s ``refine_steps``; not ALAE's own). Returns
    ``{"reconstructions", "originals"}`` (fractions in [0, 1]), ``"held_out"`` and ``"train"``
    (counts), ``"photos"`` (the photo names, in label order)."""
    import torch

    from alae_fast.data import open_dataset
    from alae_fast.eval import reconstruction_class_accuracy
    from alae_fast.inference.loading import load_run
    from alae_fast.inference.pixels import prepare_images

    loaded = load_run(run)
    sched, phase = loaded.schedule, loaded.phase
    sets = {split: open_dataset(str(folder), sched.resolution, sched.channels, split=split) for split in ("train", "test")}
    photos = sorted({photo_of(f) for ds in sets.values() for f in ds.files})
    images, labels = {}, {}
    for split, ds in sets.items():
        images[split] = prepare_images(ds.get_batch(torch.arange(len(ds.files)))[0], sched, phase)
        labels[split] = [photos.index(photo_of(f)) for f in ds.files]
    # the descent needs gradients through G; G(E(x)) alone needs none
    with torch.set_grad_enabled(refine_steps > 0):
        rec = loaded.reconstruct(images["test"], refine_steps=refine_steps).detach()
    got = reconstruction_class_accuracy(rec, images["train"], labels["train"], images["test"], labels["test"])
    return {**got, "held_out": len(labels["test"]), "train": len(labels["train"]), "photos": photos}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=150, help="crops to write (default 150)")
    ap.add_argument("--size", type=int, default=64, help="side of each crop in pixels (default 64)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the crops' positions and sizes (default 0)")
    ap.add_argument("--score", type=Path, metavar="RUN",
                    help="instead of writing crops: score RUN's reconstructions of the held-out crops in OUT")
    ap.add_argument("--refine-steps", type=int, default=0, metavar="N",
                    help="with --score: score G(w) of E(x) refined by N steps in W (default 0: ALAE's G(E(x)))")
    a = ap.parse_args()
    if a.refine_steps and a.score is None:
        ap.error("--refine-steps: only with --score RUN")
    if a.score is not None:
        try:
            r = score(a.out, a.score, a.refine_steps)
        except ValueError as e:  # a refine_steps out of range, named by LoadedRun.reconstruct
            ap.exit(2, f"photo_crops.py: {e}\n")
        what = f"E(x) refined by {a.refine_steps} steps" if a.refine_steps else "G(E(x))"
        print(f"held-out crops whose reconstruction ({what}) a pixel 1-NN over the {r['train']} training crops gives "
              f"their own photo: {100 * r['reconstructions']:.1f}% of {r['held_out']} (the crops themselves: "
              f"{100 * r['originals']:.1f}%; chance {100 / len(r['photos']):.1f}%)")
        return
    try:
        paths = write_crops(a.out, a.n, a.size, a.seed)
    except (ImportError, ValueError) as e:
        ap.exit(2, f"photo_crops.py: {e}\n")
    print(f"wrote {len(paths)} crops of {len({photo_of(p) for p in paths})} photos to {a.out}")


if __name__ == "__main__":
    main()
