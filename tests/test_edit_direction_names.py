"""One direction file under two names is refused, as one name given twice is: ``--direction 1=2
--direction smile=3`` found direction_1.npy twice and moved w by 5 along it, pixel for pixel the
picture of ``--direction 1=5``, without a word."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from alae_fast.cli import main
from alae_fast.edit.commands import resolve_directions
from alae_fast_tests_support import train_tiny_run

pytestmark = pytest.mark.usefixtures("one_thread")
LATENT = 8


def _run(channels: int = 3):
    """What resolve_directions reads of a run: the latent size, and whether it is a digits model."""
    return SimpleNamespace(model=SimpleNamespace(latent_size=LATENT),
                           schedule=SimpleNamespace(channels=channels, resolution=32))


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "dirs"
    d.mkdir()
    for name in ("direction_1", "direction_19", "direction_beard"):
        np.save(d / f"{name}.npy", rng.standard_normal(LATENT))
    return d


@pytest.mark.parametrize("specs, first, second, file", [
    (["1=2", "smile=3"], "1=2", "smile=3", "direction_1.npy"),            # a number and its official name
    (["smile=3", "1=2"], "smile=3", "1=2", "direction_1.npy"),
    (["beard=1", "direction_beard=2"], "beard=1", "direction_beard=2", "direction_beard.npy"),
    (["glasses=1", "DIR/direction_19.npy=1"], "glasses=1", "DIR/direction_19.npy=1", "direction_19.npy"),
])
def test_one_file_under_two_names_is_refused_naming_both(folder, specs, first, second, file):
    specs = [s.replace("DIR", str(folder)) for s in specs]
    first, second = first.replace("DIR", str(folder)), second.replace("DIR", str(folder))
    with pytest.raises(ValueError) as e:
        resolve_directions(specs, _run(), folder)
    msg = str(e.value)
    assert msg.startswith(f"--direction {first!r} and {second!r} both name the direction file "), msg
    assert file in msg and msg.endswith("give each direction once"), msg


def test_one_name_twice_is_refused_naming_both_arguments(folder):
    with pytest.raises(ValueError, match=r"^--direction 'smile=1' and 'smile=-2' both give the direction 'smile'; "
                                         r"give each direction once$"):
        resolve_directions(["smile=1", "smile=-2"], _run(), folder)


def test_different_files_are_taken(folder):
    vectors, amounts = resolve_directions(["smile=1", "glasses=-2", f"{folder / 'direction_beard.npy'}=0.5"],
                                          _run(), folder)
    assert amounts == {"smile": 1.0, "glasses": -2.0, "beard": 0.5}
    for name, file in (("smile", "direction_1"), ("glasses", "direction_19"), ("beard", "direction_beard")):
        np.testing.assert_array_equal(vectors[name], np.load(folder / f"{file}.npy"))


def test_a_symlinked_copy_is_the_same_file(folder, tmp_path):
    link = tmp_path / "elsewhere.npy"
    link.symlink_to(folder / "direction_1.npy")
    with pytest.raises(ValueError, match="both name the direction file"):
        resolve_directions(["smile=1", f"{link}=1"], _run(), folder)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("edit-names") / "mlp")


def test_edit_refuses_it_before_any_picture(run, folder, tmp_path, capsys):
    from PIL import Image

    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "a.png")
    out = tmp_path / "e.png"
    rc = main(["edit", "--ckpt", str(run), str(tmp_path / "a.png"), "--directions", str(folder),
               "--direction", "1=2", "--direction", "smile=3", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("alae-fast edit: error: --direction '1=2' and 'smile=3' both name the direction file")
    assert "direction_1.npy" in err[0] and not out.exists()
