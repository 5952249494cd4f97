"""benchmarks/photo_crops.py: the colour photo folder of the README's `--data` example."""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("skimage", reason="benchmarks/photo_crops.py needs scikit-image ([photos] extra)")
from PIL import Image  # noqa: E402

from alae_fast_tests_support import benchmark_script  # noqa: E402

def _module():
    return benchmark_script("photo_crops.py")


def test_crops_cover_every_photo_as_rgb_squares_and_repeat_for_a_seed(tmp_path):
    crops = _module()
    paths = crops.write_crops(tmp_path / "a", n=13, size=16, seed=3)
    photos = sorted(crops.load_photos())
    assert len(photos) == 11
    assert [p.name for p in paths] == [f"{photos[i % 11]}-{i:03d}.png" for i in range(13)]
    arrays = [np.asarray(Image.open(p)) for p in paths]
    assert all(a.shape == (16, 16, 3) and a.dtype == np.uint8 for a in arrays)
    assert len({a.tobytes() for a in arrays}) == 13 and min(a.std() for a in arrays) > 1  # no blank crops
    again = crops.write_crops(tmp_path / "b", n=13, size=16, seed=3)
    other = crops.write_crops(tmp_path / "c", n=13, size=16, seed=4)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]
    assert [p.read_bytes() for p in other] != [p.read_bytes() for p in paths]


@pytest.mark.parametrize("kwargs,match", [({"n": 0}, "n: expected at least 1"), ({"size": 3}, "size: expected at least 4")])
def test_bad_counts_are_refused(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _module().write_crops(tmp_path, **kwargs)


def test_score_reads_each_held_out_crops_photo_from_its_name(tmp_path):
    # a few iterations of photos-32 at its first level: the figures are fractions of the held-out
    # crops, their 1-NN runs over the training crops, and the photos come from the file names
    from alae_fast.cli import main
    from alae_fast_tests_support import one_thread

    crops = _module()
    folder = tmp_path / "crops"
    crops.write_crops(folder, n=22, size=16)
    assert crops.photo_of(Path("hubble_deep_field-014.png")) == "hubble_deep_field"
    with one_thread():
        assert main(["train", "--preset", "photos-32", "--data", str(folder), "--out", str(tmp_path / "run"),
                     "--kimg", "0.032", "--schedule", "lod_kimg=[1]", "--schedule", "lod_batch=[8]",
                     "--no-eval", "--no-progress"]) == 0
    got = crops.score(folder, tmp_path / "run")
    assert got["held_out"] == 2 and got["train"] == 20 and len(got["photos"]) == 11
    assert 0 <= got["reconstructions"] <= 1 and got["originals"] in (0.0, 0.5, 1.0)
    # E(x) refined: another reconstruction of the same crops, scored against the same 1-NN
    refined = crops.score(folder, tmp_path / "run", refine_steps=3)
    assert refined["originals"] == got["originals"] and 0 <= refined["reconstructions"] <= 1
    with pytest.raises(ValueError, match="refine_steps"):
        crops.score(folder, tmp_path / "run", refine_steps=-1)
