"""A folder elsewhere holding some of a run's training files is not "unseen" data
(``alae_fast.inference.metrics.data_relation_detail``, relation "overlap"):

- a copy of the run's training folder with one file added, or the folder moved and then a file
  added, had been relation "other": ``evaluate`` called all of it "unseen (not from this run's
  training data)", though all but one were training images. A run now records a fingerprint of
  each file's relative path and size (``data_content``'s ``files_md5_8``), so the files a folder
  shares with the run are counted anywhere, and such a folder is evaluated and reconstructed on
  its held-out split (a function of the names: most of the run's held-out files stay held out),
  labelled "possibly TRAINING (K of its N files have the paths and sizes of files in the run's
  training folder)";
- a folder of other images (even under the run's names and sizes), or any folder for a run
  recorded before fingerprints were, is "other" as before;
- ``reconstruct --data`` of two folders of the same name writes two pictures (evaluate's rule:
  a hash of the path added to the second).

The folders are real PNGs written with PIL from random arrays, as in test_data_identity.py.
"""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PIL.Image")
import torch
from PIL import Image

from alae_fast.cli import main
from alae_fast.cli.runs import png_data
from alae_fast.data import spec as spec_module
from alae_fast.data.spec import FINGERPRINTS, content_overlap, data_content, data_spec
from alae_fast.inference.loading import load_run
from alae_fast.inference.metrics import SPLIT_LABELS, data_relation, data_relation_detail
from alae_fast.training.checkpoint import list_checkpoints
from alae_fast_tests_support import TINY, one_thread

pytestmark = pytest.mark.usefixtures("one_thread")

N = 20
QUICK = ["--num-fid", "40", "--ppl-samples", "2"]
UNSEEN = SPLIT_LABELS["unseen"]


def _overlap_label(k: int, n: int) -> str:
    return f"possibly TRAINING ({k} of its {n} files have the paths and sizes of files in the run's training folder)"


def _image(rng: np.random.Generator, size: int = 16) -> np.ndarray:
    return rng.integers(1, 256, (size, size), dtype=np.uint8)


def _save(array: np.ndarray, path: Path) -> None:
    Image.fromarray(array).save(path, compress_level=0)


def _folder(path: Path, seed: int = 0, n: int = N, prefix: str = "img") -> Path:
    """``n`` random greyscale PNGs ``img000.png ...``; another ``seed``: other images under the same names."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True)
    for i in range(n):
        _save(_image(rng), path / f"{prefix}{i:03d}.png")
    return path


def _held_out(names: list[str]) -> int:
    """How many of ``names`` a folder holds out (a tenth, at least one of two or more)."""
    return min(max(round(0.1 * len(names)), 1), len(names) - 1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run on a folder of 20 PNGs."""
    root = tmp_path_factory.mktemp("overlap")
    data = _folder(root / "photos")
    with one_thread():
        assert main(["train", "--preset", "digits-mlp", "--data", str(data), "--out", str(root / "run"),
                     "--kimg", "0.032", *TINY, "--no-eval"]) == 0
    return {"root": root, "data": data, "run": root / "run"}


def _copy_run(trained, dest: Path) -> Path:
    return Path(shutil.copytree(trained["run"], dest / "run"))


def _record_without(out: Path, keys: tuple[str, ...]) -> None:
    """The run's record as an older run wrote it: without ``keys``."""
    config = json.loads((out / "config.json").read_text())
    config["data_content"] = {k: v for k, v in config["data_content"].items() if k not in keys}
    (out / "config.json").write_text(json.dumps(config))
    for _, ckpt in list_checkpoints(out / "checkpoints"):
        state = torch.load(ckpt, weights_only=True)
        state["data_content"] = {k: v for k, v in state["data_content"].items() if k not in keys}
        torch.save(state, ckpt)


def _plus_one(trained, dest: Path) -> Path:
    """``cp -r photos dest``, and one new image added."""
    folder = Path(shutil.copytree(trained["data"], dest))
    _save(_image(np.random.default_rng(99)), folder / "new.png")
    return folder


def _run(capsys, *argv) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 0, argv
    return capsys.readouterr().out


# --- the record ---------------------------------------------------------------------------------

def test_the_record_holds_a_fingerprint_of_each_files_path_and_size(tmp_path, monkeypatch):
    data = _folder(tmp_path / "a", n=12)
    c = data_content(data)
    want = sorted(hashlib.md5(f"{p.name}\t{p.stat().st_size}".encode()).hexdigest()[:8] for p in data.glob("*.png"))
    assert c[FINGERPRINTS] == "".join(want) and len(c[FINGERPRINTS]) == 8 * 12
    # above the cap: omitted (the overlap is then unknown)
    monkeypatch.setattr(spec_module, "FINGERPRINT_LIMIT", 11)
    big = data_content(data)
    assert FINGERPRINTS not in big and big["sizes_md5"] == c["sizes_md5"]
    assert content_overlap(c, data, big) is None and content_overlap(big, data, c) is None


def test_a_chance_match_or_two_among_many_files_is_not_an_overlap(tmp_path):
    def prints(names):
        return "".join(sorted(hashlib.md5(f"{n}\t100".encode()).hexdigest()[:8] for n in names))

    run = {FINGERPRINTS: prints([f"{i:05d}.png" for i in range(300)]), "sampled": {}}
    chance = {FINGERPRINTS: prints(["00007.png"] + [f"x{i:05d}.png" for i in range(299)])}
    assert content_overlap(run, tmp_path, chance) == 0  # 1 of 300: under 1%
    some = {FINGERPRINTS: prints([f"{i:05d}.png" for i in range(5)] + [f"x{i:05d}.png" for i in range(295)])}
    assert content_overlap(run, tmp_path, some) == 5
    assert content_overlap({"files": 3, "md5": "x"}, tmp_path, some) is None  # an old record


# --- a copy with a file added, the folder moved and changed ------------------------------------

def test_a_copy_with_one_file_added_is_overlap_not_unseen(trained, tmp_path, capsys):
    out = _copy_run(trained, tmp_path)
    copy = _plus_one(trained, tmp_path / "photos2b")
    run = load_run(out)
    assert data_relation_detail(run, str(copy)) == ("overlap", {"files": N, "of": N + 1})
    names = sorted(p.name for p in copy.glob("*.png"))
    held = _held_out(names)
    label = _overlap_label(N, N + 1)
    printed = _run(capsys, "evaluate", "--ckpt", str(out), "--data", str(copy), *QUICK)
    mse_line = next(ln for ln in printed.splitlines() if ln.startswith("reconstruction MSE"))
    assert f"on {held} {label} images:" in mse_line, printed
    assert "unseen" not in printed, printed
    assert not (out / "evaluate.json").exists()  # not the run's own data: a file of its own
    m = json.loads((out / "evaluate-photos2b.json").read_text())
    assert m["data"]["relation"] == "overlap" and m["data"]["overlap"] == {"files": N, "of": N + 1}
    assert m["reconstruction_split"] == "overlap" and m["data"]["split"] == "test"
    assert m["reconstruction_images"] == held
    printed = _run(capsys, "reconstruct", "--ckpt", str(out), "--data", str(copy), "--n", "5")
    assert f"wrote {held} {label} originals beside their reconstructions G(E(x)) to " \
           f"{out / 'reconstructions-photos2b.png'}" in printed, printed
    assert "note: the data's possibly TRAINING images number" in printed, printed
    assert not (out / "reconstructions.png").exists()


def test_the_overlap_reads_only_the_sampled_files_the_folders_record_did_not(trained, tmp_path, monkeypatch):
    copy = _plus_one(trained, tmp_path / "photos2b")
    recorded, current = data_content(trained["data"]), data_content(copy)
    read = []
    md5 = spec_module._file_md5
    monkeypatch.setattr(spec_module, "_file_md5", lambda path: read.append(Path(path).name) or md5(path))
    assert content_overlap(recorded, copy, current) == N
    assert sorted(read) == sorted(set(recorded["sampled"]) - set(current["sampled"]))
    assert len(read) <= 1  # one file added: it displaces at most one file from the sample


def test_the_folder_moved_and_changed_is_overlap(trained, tmp_path):
    run = load_run(_copy_run(trained, tmp_path))
    moved = _plus_one(trained, tmp_path / "elsewhere" / "photos")
    assert data_relation_detail(run, str(moved)) == ("overlap", {"files": N, "of": N + 1})
    (moved / "img003.png").unlink()  # and one of its files removed
    assert data_relation_detail(run, str(moved)) == ("overlap", {"files": N - 1, "of": N})
    # one file re-written at another size: no longer counted
    _save(_image(np.random.default_rng(5), 17), moved / "img004.png")
    assert data_relation_detail(run, str(moved)) == ("overlap", {"files": N - 2, "of": N})
    # the unchanged copy is still the run's own
    assert data_relation(run, str(shutil.copytree(trained["data"], tmp_path / "copy"))) == "own"


# --- other data ---------------------------------------------------------------------------------

def test_other_folders_are_other_as_before(trained, tmp_path, capsys):
    out = _copy_run(trained, tmp_path)
    run = load_run(out)
    # other images under the run's names and sizes: the fingerprints match, the sampled bytes do not
    same_names = _folder(tmp_path / "same_names", seed=1)
    assert data_relation_detail(run, str(same_names)) == ("other", None)
    _save(_image(np.random.default_rng(98)), same_names / "new.png")
    assert data_relation_detail(run, str(same_names)) == ("other", None)
    # other names
    renamed = _folder(tmp_path / "renamed", prefix="pic")
    assert data_relation_detail(run, str(renamed)) == ("other", None)
    printed = _run(capsys, "evaluate", "--ckpt", str(out), "--data", str(renamed), *QUICK)
    assert f"on {N} {UNSEEN} images:" in printed and "TRAINING" not in printed, printed
    m = json.loads((out / "evaluate-renamed.json").read_text())
    assert m["data"]["relation"] == "other" and "overlap" not in m["data"]
    assert UNSEEN == "unseen (not this run's training folder)"


def test_a_run_recorded_without_fingerprints_keeps_other(trained, tmp_path, capsys):
    copy = _plus_one(trained, tmp_path / "photos2b")
    for keys in ((FINGERPRINTS,), (FINGERPRINTS, "sizes_md5", "sampled")):
        out = _copy_run(trained, tmp_path / "-".join(keys))
        _record_without(out, keys)
        run = load_run(out)
        assert data_relation_detail(run, str(copy)) == ("other", None), keys
        assert data_relation(run, str(trained["data"])) == "own", keys
    printed = _run(capsys, "reconstruct", "--ckpt", str(out), "--data", str(copy), "--n", "2")
    assert "wrote 2 unseen originals" in printed, printed


# --- reconstruct: folders of the same name ----------------------------------------------------

def test_two_other_folders_of_the_same_name_get_two_pictures(trained, tmp_path, capsys):
    out = _copy_run(trained, tmp_path)
    first = _folder(tmp_path / "a" / "pics", seed=3, n=5, prefix="p")
    second = _folder(tmp_path / "b" / "pics", seed=4, n=6, prefix="q")
    printed = _run(capsys, "reconstruct", "--ckpt", str(out), "--data", str(first), "--n", "4")
    one = out / "reconstructions-pics.png"
    assert f"wrote 4 unseen originals beside their reconstructions G(E(x)) to {one}\n" in printed, printed
    assert png_data(one) == data_spec(first)
    picture = np.asarray(Image.open(one))
    printed = _run(capsys, "reconstruct", "--ckpt", str(out), "--data", str(second), "--n", "3")
    digest = hashlib.md5(str(second.resolve()).encode()).hexdigest()[:8]
    two = out / f"reconstructions-pics-{digest}.png"
    assert f"to {two}\n" in printed and "replacing" not in printed, printed
    assert png_data(two) == data_spec(second)
    assert np.array_equal(np.asarray(Image.open(one)), picture)  # the first folder's picture is kept
    # each folder again replaces its own picture, and says so
    printed = _run(capsys, "reconstruct", "--ckpt", str(out), "--data", str(first), "--n", "2")
    assert f"to {one} (replacing the earlier reconstructions-pics.png)" in printed, printed
    printed = _run(capsys, "reconstruct", "--ckpt", str(out), "--data", str(second), "--n", "2")
    assert f"to {two} (replacing the earlier {two.name})" in printed, printed
    # a picture written before reconstruct recorded its data is taken as the same data's, as evaluate does
    one.write_bytes(b"\x89PNG\r\n\x1a\n")
    assert png_data(one) is None
    printed = _run(capsys, "reconstruct", "--ckpt", str(out), "--data", str(second), "--n", "2")
    assert f"to {one} (replacing the earlier reconstructions-pics.png)" in printed, printed
