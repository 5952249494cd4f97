"""`alae-fast evaluate` on data other than the run's own: what the report and JSON call the images
(held-out, training, unseen), where the metrics are written (the run's own evaluate.json is never
replaced by another folder's), and ``alae_fast.load`` of files that are not checkpoints.

References are computed here independently: which files a folder holds out (the MD5 rule of
alae_fast.data.folder, written out again), and the reconstruction MSE of those files through the
public ``LoadedRun.reconstruct``."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

Image = pytest.importorskip("PIL.Image")

from alae_fast.cli import main
from alae_fast_tests_support import TINY, one_thread

pytestmark = pytest.mark.usefixtures("one_thread")
QUICK = ["--num-fid", "40", "--ppl-samples", "2"]


def _digit_folder(path: Path, n: int, start: int = 0) -> Path:
    """``n`` PNGs of the embedded digits' training split (from index ``start``), as a user's folder."""
    from alae_fast.data import load_digits

    x, _ = load_digits("train", 32)
    path.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(((x[start + i, 0].numpy() + 1) * 127.5).round().astype(np.uint8)).save(path / f"{i:03d}.png")
    return path


def _held_out(folder: Path) -> list[Path]:
    """The reference for a folder's held-out files: a tenth of them (at least one of two or more),
    those whose relative path has the smallest MD5 (the rule alae_fast.data.folder documents)."""
    files = sorted(folder.glob("*.png"))
    n = min(max(round(0.1 * len(files)), 1), len(files) - 1)
    return sorted(sorted(files, key=lambda f: hashlib.md5(f.name.encode()).hexdigest())[:n])


def _mse(run_folder: Path, files: list[Path]) -> float:
    """The reconstruction MSE of ``files`` through the public API (float64 mean over every pixel)."""
    import alae_fast
    from alae_fast.inference.pixels import load_image_files, prepare_images

    run = alae_fast.load(run_folder)
    x = load_image_files(files, run.schedule)
    with torch.no_grad():
        rec = run.reconstruct(x)
    return float(((rec.double() - prepare_images(x, run.schedule, run.phase).double()) ** 2).mean())


def _evaluate(capsys, *argv) -> dict:
    """The metrics evaluate prints with ``--json`` (stdout is the JSON alone)."""
    assert main(["evaluate", *argv, *QUICK, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _report(capsys, *argv) -> str:
    assert main(["evaluate", *argv, *QUICK]) == 0
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A run of the embedded digits and a run of a folder of 24 digit images (2 held out)."""
    root = tmp_path_factory.mktemp("evaluate-data")
    folder = _digit_folder(root / "photos", 24)
    with one_thread():
        for name, data in (("digits", []), ("folder", ["--data", str(folder)])):
            assert main(["train", "--preset", "digits-mlp", "--out", str(root / name), "--kimg", "0.032", "--no-eval",
                         *data, *TINY]) == 0
    return {"digits": root / "digits", "folder": root / "folder", "photos": folder, "root": root}


def test_a_folder_the_run_never_saw_is_unseen_not_training(runs, tmp_path, capsys):
    # a digits run on a folder of 3 PNGs said "3 held-out and TRAINING (fewer than 2 held out) images"
    run = tmp_path / "run"
    shutil.copytree(runs["digits"], run)
    six = _digit_folder(tmp_path / "lab" / "six", 3, start=500)
    printed = _report(capsys, "--ckpt", str(run), "--data", str(six))
    mse_line = next(ln for ln in printed.splitlines() if ln.startswith("reconstruction MSE"))
    assert "on 3 unseen (not this run's training folder) images:" in mse_line, printed
    assert "TRAINING" not in printed and "held-out" not in printed, printed
    assert "among the 3 unseen (not this run's training folder) images" in printed
    m = json.loads((run / "evaluate-six.json").read_text())
    assert m["reconstruction_split"] == "unseen" and m["reconstruction_images"] == 3
    assert m["data"] == {"evaluated": {"kind": "folder", "path": str(six.resolve())},
                         "trained_on": {"kind": "digits", "path": None}, "relation": "other", "split": "all"}
    # every one of the 3 files, none held back: the MSE of all three, computed here
    assert m["reconstruction_mse"] == pytest.approx(_mse(run, sorted(six.glob("*.png"))), rel=1e-5)


def test_the_runs_own_data_are_held_out(runs, capsys):
    # the digits run on the digits: the held-out test split, as before
    m = _evaluate(capsys, "--ckpt", str(runs["digits"]), "--out", str(runs["root"] / "d.json"))
    assert m["reconstruction_split"] == "held-out" and m["data"]["relation"] == "own" and m["data"]["split"] == "test"
    assert "train / 297 held-out images" in _report(capsys, "--ckpt", str(runs["digits"]), "--out",
                                                     str(runs["root"] / "d.json"))
    # the folder run on its folder, found from its record or named again: its 2 held-out files
    held = _held_out(runs["photos"])
    assert len(held) == 2
    for data in ([], ["--data", str(runs["photos"])]):
        m = _evaluate(capsys, "--ckpt", str(runs["folder"]), *data, "--out", str(runs["root"] / "f.json"))
        assert m["reconstruction_split"] == "held-out" and m["reconstruction_images"] == 2, data
        assert m["data"]["relation"] == "own" and m["data"]["split"] == "test"
        assert m["reconstruction_mse"] == pytest.approx(_mse(runs["folder"], held), rel=1e-5)
    printed = _report(capsys, "--ckpt", str(runs["folder"]), "--out", str(runs["root"] / "f.json"))
    assert "on 2 held-out images:" in printed and "unseen" not in printed


def test_the_same_files_moved_are_still_the_runs_but_changed_files_are_not_known(runs, tmp_path, capsys):
    moved = tmp_path / "moved"
    shutil.copytree(runs["photos"], moved)
    m = _evaluate(capsys, "--ckpt", str(runs["folder"]), "--data", str(moved), "--out", str(tmp_path / "m.json"))
    assert m["data"]["relation"] == "own" and m["reconstruction_split"] == "held-out"
    assert m["reconstruction_mse"] == pytest.approx(_mse(runs["folder"], _held_out(moved)), rel=1e-5)
    # a file added: the held-out split, chosen from the file list, may now hold training images
    _digit_folder(tmp_path / "extra", 1, start=900)
    shutil.copy(tmp_path / "extra" / "000.png", moved / "zzz.png")
    m = _evaluate(capsys, "--ckpt", str(runs["folder"]), "--data", str(moved), "--out", str(tmp_path / "m.json"))
    # another place, some of the run's files: their held-out split, possibly TRAINING (test_data_overlap.py)
    assert m["data"]["relation"] == "overlap" and m["reconstruction_split"] == "overlap"
    assert m["data"]["overlap"] == {"files": 24, "of": 25}
    run = tmp_path / "run"
    shutil.copytree(runs["folder"], run)
    config = json.loads((run / "config.json").read_text())
    config["data_spec"]["path"] = str(moved.resolve())  # the run's own folder, changed since training
    (run / "config.json").write_text(json.dumps(config))
    for ckpt in (run / "checkpoints").glob("*.pt"):
        state = torch.load(ckpt, weights_only=False)
        state["data_spec"] = config["data_spec"]
        torch.save(state, ckpt)
    printed = _report(capsys, "--ckpt", str(run), "--out", str(tmp_path / "m.json"))
    assert "possibly TRAINING (the run's training folder changed since training" in printed, printed
    assert json.loads((tmp_path / "m.json").read_text())["reconstruction_split"] == "changed"


def test_a_folder_run_on_another_folder_and_on_the_digits(runs, tmp_path, capsys):
    other = _digit_folder(tmp_path / "others", 12, start=300)
    m = _evaluate(capsys, "--ckpt", str(runs["folder"]), "--data", str(other), "--out", str(tmp_path / "o.json"))
    assert m["reconstruction_split"] == "unseen" and m["reconstruction_images"] == 12  # all of them, none held back
    assert m["data"]["relation"] == "other" and m["data"]["trained_on"]["path"] == str(runs["photos"].resolve())
    assert m["reconstruction_mse"] == pytest.approx(_mse(runs["folder"], sorted(other.glob("*.png"))), rel=1e-5)
    # the digits are other data to a folder run: the classifier's splits are not called the run's
    import alae_fast
    from alae_fast.cli.evaluate import format_metrics
    from alae_fast.inference.metrics import evaluate_model

    metrics = evaluate_model(alae_fast.load(runs["folder"]), data=None, num_fid=40, ppl_samples=2)
    assert metrics["data"]["relation"] == "other" and metrics["reconstruction_split"] == "unseen"
    assert metrics["reconstruction_images"] == 40 and metrics["data"]["split"] == "all"
    text = format_metrics(metrics)
    assert "latent classification on other data than the run's, 1500 train / 297 test-split images" in text
    assert "(the test-split images themselves:" in text and "held-out" not in text, text


def test_evaluating_other_data_never_replaces_the_runs_own_evaluation(runs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(runs["digits"], run)
    assert main(["evaluate", "--ckpt", str(run), *QUICK]) == 0
    assert f"wrote metrics to {run / 'evaluate.json'}\n" in capsys.readouterr().out
    own = (run / "evaluate.json").read_bytes()
    six = _digit_folder(tmp_path / "a" / "six", 3, start=10)
    twin = _digit_folder(tmp_path / "b" / "six", 4, start=20)  # another folder of the same name
    assert main(["evaluate", "--ckpt", str(run), "--data", str(six), *QUICK]) == 0
    assert f"wrote metrics to {run / 'evaluate-six.json'}\n" in capsys.readouterr().out
    assert main(["evaluate", "--ckpt", str(run), "--data", str(twin), *QUICK]) == 0
    digest = hashlib.md5(str(twin.resolve()).encode()).hexdigest()[:8]
    assert f"wrote metrics to {run / f'evaluate-six-{digest}.json'}\n" in capsys.readouterr().out
    assert (run / "evaluate.json").read_bytes() == own
    assert json.loads((run / "evaluate-six.json").read_text())["reconstruction_images"] == 3
    assert json.loads((run / f"evaluate-six-{digest}.json").read_text())["reconstruction_images"] == 4
    # evaluating the same data again replaces its own file, and says so in the line it prints
    assert main(["evaluate", "--ckpt", str(run), "--data", str(six), *QUICK]) == 0
    assert (f"wrote metrics to {run / 'evaluate-six.json'} (replacing its earlier evaluation of the same data)"
            in capsys.readouterr().out)
    assert main(["evaluate", "--ckpt", str(run), *QUICK]) == 0
    assert "evaluate.json (replacing its earlier evaluation of the same data)" in capsys.readouterr().out
    # an evaluate.json of another kind (written before evaluations recorded their data) is named
    (run / "evaluate.json").write_text(json.dumps({"reconstruction_mse": 1.0}))
    assert main(["evaluate", "--ckpt", str(run), *QUICK]) == 0
    assert "evaluate.json (replacing the earlier evaluate.json)" in capsys.readouterr().out
    # --out is written as given
    assert main(["evaluate", "--ckpt", str(run), "--data", str(six), *QUICK, "--out", str(tmp_path / "x.json")]) == 0
    assert f"wrote metrics to {tmp_path / 'x.json'}\n" in capsys.readouterr().out


def test_load_of_files_that_are_not_checkpoints_says_what_they_are(runs, tmp_path, capsys):
    import alae_fast
    from alae_fast.errors import UserError
    from alae_fast.models import OfficialCheckpointError

    run = runs["digits"]
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "other.json").write_text(json.dumps({"a": [1, 2]}))
    (tmp_path / "metrics.json").write_text(json.dumps({"latent": None, "reconstruction_mse": 0.1}))
    np.save(tmp_path / "d.npy", np.ones(8))
    (tmp_path / "blob.bin").write_bytes(bytes(range(7, 200)))
    cases = [(run / "config.json", f"is a run's config (it describes the run; the weights are in the run's "
                                   f"checkpoints), not a checkpoint; pass the run folder {str(run)!r}"),
             (run / "log.jsonl", "is a JSON-lines file"), (run / "images" / next((run / "images").iterdir()).name,
                                                           "is a PNG image, not a checkpoint"),
             (tmp_path / "notes.txt", "is a text file, not a checkpoint"),
             (tmp_path / "other.json", "is a JSON file, not a checkpoint"),
             (tmp_path / "metrics.json", "is a metrics file written by evaluate or by training"),
             (tmp_path / "d.npy", "is a NumPy .npy array, not a checkpoint"),
             (tmp_path / "blob.bin", "is a binary file of another kind")]
    for path, said in cases:
        with pytest.raises(UserError) as e:
            alae_fast.load(path)
        assert not isinstance(e.value, OfficialCheckpointError), path
        message = str(e.value)
        assert message.startswith(f"{path} ") and said in message and "\n" not in message, message
        if path.name != "config.json":
            assert message.endswith("pass the run folder or one checkpoint file (its checkpoints/ckpt-*.pt, or an "
                                    "official .pth)"), message
        assert main(["generate", "--ckpt", str(path), "--out", str(tmp_path / "g.png")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], err
    assert main(["convert", str(run / "config.json"), "--out", str(tmp_path / "c.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert "is a run's config" in err and "convert reads a checkpoint file of the official ALAE code" in err
    assert not list(tmp_path.glob("*.png")) and not (tmp_path / "c.pt").exists()
