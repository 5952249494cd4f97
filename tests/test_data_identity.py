"""What a run records of its image folder identifies the files' CONTENT, not only their names
(``alae_fast.data.spec.data_content``): datasets are often ``00000.png ...``, and a folder of other
images under the run's file names had been taken for the run's own data by ``train --resume
--data`` (it trained on them), by ``evaluate``/``reconstruct`` (called them held-out) and by a
resume in place (files re-written under the same names).

The record is cheap enough for 70,000 large images: one ``stat`` a file (``sizes_md5``: every
relative path with its size) and the full bytes of up to 16 files chosen by the MD5 of their
relative paths, salted so the sample is not the held-out split (``sampled``). What it can and
cannot tell, as the tests below show:

- other images under the same names: told by their sizes, or (same sizes: raw PNGs of one
  resolution all have one size) by the bytes of the sampled files, which nearly all differ;
- one file's bytes replaced by others of another size: told, wherever the file is;
- one file replaced by as many other bytes: told when it is one of the sampled files (named),
  NOT told when it is not (the documented limit of a bounded read);
- a run recorded before sizes and contents were (``files`` and ``md5`` only): checked by name
  only, as before, and the notes say so.

The folders are real PNGs written with PIL from random arrays (values 1..255: never all-zero).
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
from alae_fast.data.spec import (SAMPLED_FILES, check_moved_data, content_checked, content_difference,
                                 data_content, data_spec)
from alae_fast.errors import UserError
from alae_fast.inference.loading import load_run
from alae_fast.inference.metrics import data_relation
from alae_fast.training.checkpoint import list_checkpoints, load_checkpoint
from alae_fast_tests_support import TINY, one_thread

pytestmark = pytest.mark.usefixtures("one_thread")

N = 20
RESUME = ["--no-eval", "--no-progress", "--threads", "1"]
QUICK = ["--num-fid", "40", "--ppl-samples", "2"]


def _image(rng: np.random.Generator, size: int = 16) -> np.ndarray:
    return rng.integers(1, 256, (size, size), dtype=np.uint8)


def _save(array: np.ndarray, path: Path) -> None:
    """A raw PNG (compression level 0: its size depends on the resolution alone)."""
    Image.fromarray(array).save(path, compress_level=0)


def _folder(path: Path, seed: int = 0, n: int = N, size: int = 16) -> Path:
    """``n`` random greyscale PNGs ``img000.png ...``; another ``seed``: other images under the same names."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True)
    for i in range(n):
        _save(_image(rng, size), path / f"img{i:03d}.png")
    return path


def _reference_sample(names: list[str]) -> list[str]:
    """The files the record reads, written out again: the 16 whose "sample:" + relative path has
    the least MD5 (not the held-out split's rule, the plain path's MD5)."""
    return sorted(names, key=lambda r: hashlib.md5(f"sample:{r}".encode()).hexdigest())[:SAMPLED_FILES]


def _sampled_and_not(folder: Path) -> tuple[str, str]:
    names = sorted(p.name for p in folder.glob("*.png"))
    sample = _reference_sample(names)
    return sample[0], next(n for n in names if n not in sample)


def _one_pixel_changed(path: Path) -> None:
    """The file re-written with one pixel changed: the same size in bytes, other bytes."""
    before = path.stat().st_size
    a = np.array(Image.open(path))
    a[3, 5] = 1 if a[3, 5] != 1 else 2
    _save(a, path)
    assert path.stat().st_size == before


def _train(data: Path, out: Path, kimg: str = "0.032") -> Path:
    assert main(["train", "--preset", "digits-mlp", "--data", str(data), "--out", str(out), "--kimg", kimg,
                 *TINY, "--no-eval"]) == 0
    return out


def _last(out: Path) -> dict:
    return load_checkpoint(list_checkpoints(out / "checkpoints")[-1][1])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run on a folder of 20 PNGs (its record in the new format)."""
    root = tmp_path_factory.mktemp("identity")
    data = _folder(root / "photos")
    with one_thread():
        _train(data, root / "run")
    return {"root": root, "data": data, "run": root / "run"}


def _copy_run(trained, dest: Path) -> Path:
    out = dest / "run"
    shutil.copytree(trained["run"], out)
    return out


def _old_format(out: Path) -> None:
    """The run's record as runs wrote it before sizes and contents: ``files`` and ``md5`` only."""
    config = json.loads((out / "config.json").read_text())
    config["data_content"] = {k: config["data_content"][k] for k in ("files", "md5")}
    (out / "config.json").write_text(json.dumps(config))
    for _, ckpt in list_checkpoints(out / "checkpoints"):
        state = torch.load(ckpt, weights_only=True)
        state["data_content"] = {k: state["data_content"][k] for k in ("files", "md5")}
        torch.save(state, ckpt)


# --- the record ---------------------------------------------------------------------------------

def test_the_record_holds_names_sizes_and_the_bytes_of_a_bounded_sample(tmp_path):
    data = _folder(tmp_path / "a", n=40)
    (data / "sub").mkdir()
    _save(_image(np.random.default_rng(7), 24), data / "sub" / "x.png")
    rel = sorted(p.relative_to(data).as_posix() for p in data.rglob("*.png"))
    c = data_content(data)
    assert set(c) == {"files", "md5", "sizes_md5", "sampled", "files_md5_8"} and c["files"] == 41
    assert c["md5"] == hashlib.md5("\n".join(rel).encode()).hexdigest()  # unchanged: the split's input
    sizes = "".join(f"{r}\t{(data / r).stat().st_size}\n" for r in rel)
    assert c["sizes_md5"] == hashlib.md5(sizes.encode()).hexdigest()
    # 16 files read in full, chosen by their names' MD5, whatever the folder holds besides
    assert sorted(c["sampled"]) == sorted(_reference_sample(rel))
    assert all(c["sampled"][r] == hashlib.md5((data / r).read_bytes()).hexdigest() for r in c["sampled"])
    # the choice does not depend on the order the files are given in, nor on the folder
    assert data_content(data, list(reversed(sorted(data.rglob("*.png")))))["sampled"] == c["sampled"]
    other = _folder(tmp_path / "b", seed=1, n=40)
    (other / "sub").mkdir()
    _save(_image(np.random.default_rng(8), 24), other / "sub" / "x.png")
    assert sorted(data_content(other)["sampled"]) == sorted(c["sampled"])
    # a small folder: every file is read, and the notes say so
    small = data_content(_folder(tmp_path / "small", n=5))
    assert len(small["sampled"]) == 5
    assert content_checked(small) == "checked: their names, sizes and the bytes of every file"
    assert content_checked(c) == "checked: their names, sizes and the bytes of 16 sampled files"
    assert content_checked({"files": 5, "md5": small["md5"]}).startswith("by name only")
    assert data_content(None) is None
    with pytest.raises(ValueError, match="content_difference: recorded must be a data_content record"):
        content_difference({"files": 3}, c)


def test_what_the_cheap_check_tells_and_what_it_cannot(tmp_path):
    data = _folder(tmp_path / "data")
    recorded = data_content(data)
    sampled, unsampled = _sampled_and_not(data)

    def differs(folder):
        return content_difference(recorded, data_content(folder))

    def copy(name):
        return Path(shutil.copytree(data, tmp_path / name))

    assert differs(copy("same")) is None
    # other images under the same names, all of one size (raw PNGs of one resolution): the bytes tell
    what, names = differs(_folder(tmp_path / "others", seed=1))
    assert what == "bytes" and names == sorted(recorded["sampled"])
    # ... of other sizes: the sizes tell
    assert differs(_folder(tmp_path / "bigger", seed=1, size=18)) == ("sizes", [])
    # one file of another size, sampled or not: told
    for name in (sampled, unsampled):
        folder = copy(f"resized-{name}")
        _save(_image(np.random.default_rng(3), 17), folder / name)
        assert differs(folder) == ("sizes", []), name
    # one file with one pixel changed (the same size): told when it is sampled, and named ...
    folder = copy("pixel-sampled")
    _one_pixel_changed(folder / sampled)
    assert differs(folder) == ("bytes", [sampled])
    # ... NOT told when it is not: the limit of reading 16 files of 70,000
    folder = copy("pixel-unsampled")
    _one_pixel_changed(folder / unsampled)
    assert differs(folder) is None
    # names: as before
    folder = copy("renamed")
    (folder / unsampled).rename(folder / "zzz.png")
    assert differs(folder) == ("names", [])
    (folder / "zzz.png").unlink()
    assert differs(folder) == ("files", [])
    # a record of before (names only) sees none of the content changes
    old = {k: recorded[k] for k in ("files", "md5")}
    assert content_difference(old, data_content(tmp_path / "others")) is None


# --- train --resume --data elsewhere ------------------------------------------------------------

def test_resume_refuses_other_images_under_the_same_names_elsewhere(trained, tmp_path, capsys):
    out = _copy_run(trained, tmp_path)
    other = _folder(tmp_path / "other", seed=1)
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--kimg", "0.048", "--data", str(other), *RESUME]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert f"--resume --data {str(other)!r}: the run was trained on the image folder" in err[0], err
    assert ("holds other image files (20 image files in both, under the same names and sizes, but the bytes of 16 "
            "of the 16 sampled files differ: ") in err[0], err
    # of other sizes: said so
    bigger = _folder(tmp_path / "bigger", seed=1, size=18)
    with pytest.raises(UserError, match=r"\(20 image files in both, under the same names, but not of the same "
                                        r"sizes\)"):
        check_moved_data(data_spec(trained["data"]), data_content(trained["data"]), str(bigger))
    # one sampled file with one pixel changed: named
    one = Path(shutil.copytree(trained["data"], tmp_path / "one"))
    sampled, unsampled = _sampled_and_not(one)
    _one_pixel_changed(one / sampled)
    with pytest.raises(UserError, match=rf"^--resume --data .*under the same names and sizes, but the bytes of 1 of "
                                        rf"the 16 sampled files differ: {sampled}\)"):
        check_moved_data(data_spec(trained["data"]), data_content(trained["data"]), str(one))
    assert [s for s, _ in list_checkpoints(out / "checkpoints")] == [s for s, _ in
                                                                     list_checkpoints(trained["run"] / "checkpoints")]


def test_a_genuine_move_is_accepted_and_the_note_says_what_was_checked(trained, tmp_path, capsys):
    out = _copy_run(trained, tmp_path)
    moved = Path(shutil.copytree(trained["data"], tmp_path / "moved"))
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--kimg", "0.048", "--data", str(moved), *RESUME]) == 0
    said = [s for s in capsys.readouterr().out.splitlines() if "now read from" in s]
    assert said == [f"note: --data: the run's data are now read from the image folder {str(moved.resolve())!r}, "
                    f"which holds the same 20 image files as {str(trained['data'].resolve())!r} where it was trained "
                    f"(checked: their names, sizes and the bytes of 16 sampled files); the run now records this "
                    f"place"]
    # everything that records the data records the new keys
    for record in (json.loads((out / "config.json").read_text())["data_content"], _last(out)["data_content"]):
        assert record == data_content(moved)
    assert data_relation(load_run(out), str(moved)) == "own"


# --- evaluate / reconstruct --------------------------------------------------------------------

def test_evaluate_and_reconstruct_call_other_images_under_the_same_names_other(trained, tmp_path, capsys):
    out = _copy_run(trained, tmp_path)
    other = _folder(tmp_path / "other", seed=1)
    run = load_run(out)
    assert data_relation(run, str(trained["data"])) == "own"
    assert data_relation(run, str(Path(shutil.copytree(trained["data"], tmp_path / "copy")))) == "own"
    assert data_relation(run, str(other)) == "other"
    capsys.readouterr()
    assert main(["evaluate", "--ckpt", str(out), "--data", str(other), *QUICK]) == 0
    printed = capsys.readouterr().out
    assert "held-out" not in printed and "unseen" in printed, printed
    assert not (out / "evaluate.json").exists()  # the run's own results are not replaced by other data's
    m = json.loads((out / "evaluate-other.json").read_text())
    assert m["data"]["relation"] == "other" and m["reconstruction_split"] == "unseen"
    assert main(["reconstruct", "--ckpt", str(out), "--data", str(other), "--n", "2"]) == 0
    printed = capsys.readouterr().out
    assert "held-out" not in printed and "unseen" in printed, printed


# --- the run's own folder changed in place ------------------------------------------------------

def test_resume_in_place_refuses_files_rewritten_under_the_same_names(tmp_path, capsys):
    data = _folder(tmp_path / "data")
    out = _train(data, tmp_path / "run")
    config = json.loads((out / "config.json").read_text())
    for key in ("sizes_md5", "sampled"):  # recorded in config.json and the checkpoints
        assert key in config["data_content"] and key in _last(out)["data_content"]
    kept = tmp_path / "kept"
    shutil.copytree(data, kept)
    shutil.rmtree(data)
    _folder(data, seed=1)  # other images, the same names and sizes
    where = str(data.resolve())
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--kimg", "0.048", *RESUME]) == 2
    err = capsys.readouterr().err
    assert (f"--resume: the run's training data, the image folder {where!r} (where its checkpoint records them), "
            f"changed since the run began (20 image files then and now, under the same names and sizes, but the "
            f"bytes of 16 of the 16 sampled files differ: ") in err, err
    assert data_relation(load_run(out), str(data)) == "changed"
    # one sampled file with one pixel changed: named
    shutil.rmtree(data)
    shutil.copytree(kept, data)
    sampled, unsampled = _sampled_and_not(data)
    _one_pixel_changed(data / sampled)
    assert main(["train", "--resume", "--out", str(out), "--kimg", "0.048", *RESUME]) == 2
    assert f"but the bytes of 1 of the 16 sampled files differ: {sampled})" in capsys.readouterr().err
    # one file of another size
    shutil.copy(kept / sampled, data / sampled)
    _save(_image(np.random.default_rng(3), 17), data / unsampled)
    assert main(["train", "--resume", "--out", str(out), "--kimg", "0.048", *RESUME]) == 2
    assert "(20 image files then and now, under the same names, but not of the same sizes)" in capsys.readouterr().err
    # put back as it was: it continues
    shutil.copy(kept / unsampled, data / unsampled)
    assert data_relation(load_run(out), str(data)) == "own"
    assert main(["train", "--resume", "--out", str(out), "--kimg", "0.048", *RESUME]) == 0
    assert _last(out)["trainer"]["images_seen"] == 48


# --- a run recorded before sizes and contents were --------------------------------------------

def test_a_run_recorded_by_name_only_loads_resumes_and_evaluates_as_before(trained, tmp_path, capsys):
    out = _copy_run(trained, tmp_path)
    _old_format(out)
    other = _folder(tmp_path / "other", seed=1)  # other images under the same names: only names can be checked
    run = load_run(out)
    assert data_relation(run, str(trained["data"])) == "own" and data_relation(run, str(other)) == "own"
    renamed = Path(shutil.copytree(trained["data"], tmp_path / "renamed"))
    (renamed / "img000.png").rename(renamed / "zzz.png")
    assert data_relation(run, str(renamed)) == "other"
    note = check_moved_data(data_spec(trained["data"]), _last(out)["data_content"], str(other))
    assert note.endswith("which holds the same 20 image files as "
                         f"{str(trained['data'].resolve())!r} where it was trained (by name only: the run was made "
                         f"before runs recorded their files' sizes and contents); the run now records this place"), note
    with pytest.raises(UserError, match=r"20 image files in both, but under other paths relative to the folder"):
        check_moved_data(data_spec(trained["data"]), _last(out)["data_content"], str(renamed))
    # resumed from a copy of its data: accepted by name, said so; the run then records the new keys
    moved = Path(shutil.copytree(trained["data"], tmp_path / "moved"))
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--kimg", "0.048", "--data", str(moved), *RESUME]) == 0
    assert "(by name only: the run was made before" in capsys.readouterr().out
    assert _last(out)["data_content"] == data_content(moved)


def test_a_run_recorded_by_name_only_resumes_in_place_as_before(tmp_path):
    data = _folder(tmp_path / "data")
    out = _train(data, tmp_path / "run")
    _old_format(out)
    _one_pixel_changed(data / _sampled_and_not(data)[0])  # not seen: the record holds names only
    assert main(["train", "--resume", "--out", str(out), "--kimg", "0.048", *RESUME]) == 0
    assert _last(out)["trainer"]["images_seen"] == 48
    (data / "img000.png").rename(data / "zzz.png")  # names: refused as before
    assert main(["train", "--resume", "--out", str(out), "--kimg", "0.064", *RESUME]) == 2
