"""benchmarks/photo_tiles.py: the tiles of the README's `--data photos` example."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="benchmarks/photo_tiles.py cuts scikit-learn's sample photos")
Image = pytest.importorskip("PIL.Image")

from alae_fast_tests_support import benchmark_script  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "photo_tiles.py"


def _module():
    return benchmark_script("photo_tiles.py")


def test_tiles_are_cut_from_the_photos_evenly_and_repeat(tmp_path):
    from sklearn.datasets import load_sample_images

    tiles = _module()
    paths = tiles.write_tiles(tmp_path / "a", n=6, tile=40, stride=200)
    assert len(paths) == 6 and len({p.name for p in paths}) == 6
    photos = {Path(f).stem: img for f, img in zip(load_sample_images().filenames, load_sample_images().images)}
    assert {p.name.split("-")[0] for p in paths} == set(photos)  # both photos, spread over all the tiles
    for p in paths:  # each tile is the photo's pixels at the place its name says
        stem, y, x = p.stem.split("-")
        want = photos[stem][int(y):int(y) + 40, int(x):int(x) + 40]
        assert np.array_equal(np.asarray(Image.open(p)), want)
    again = tiles.write_tiles(tmp_path / "b", n=6, tile=40, stride=200)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]


@pytest.mark.parametrize("kwargs,match", [({"n": 0}, "n: expected at least 1; got 0"),
                                          ({"n": -5}, "n: expected at least 1; got -5"),
                                          ({"n": 100000}, "n: at most"),
                                          ({"tile": 2}, "tile: expected at least 4"),
                                          ({"stride": 0}, "stride: expected at least 1")])
def test_bad_counts_are_refused_before_anything_is_written(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _module().write_tiles(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_the_command_refuses_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "out"), "--n", "0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr == "photo_tiles.py: --n: expected at least 1; got 0\n", proc.stderr
