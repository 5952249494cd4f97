"""--refine-steps: E(x) refined by descent on G's pixel error in `encode`, `reconstruct`,
`evaluate` and the end-of-training report of a folder of images, each figure checked against the
public API (``LoadedRun.project`` / ``reconstruct``) on the same files, and the flags' refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

Image = pytest.importorskip("PIL.Image")

from alae_fast.cli import main  # noqa: E402
from alae_fast.inference.loading import load_run  # noqa: E402
from alae_fast.inference.pictures import pairs_grid_size  # noqa: E402
from alae_fast.inference.pixels import load_image_files, prepare_images  # noqa: E402
from alae_fast_tests_support import TINY, one_thread, sibling  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
evaluate_folder = sibling("test_evaluate_folder.py")


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """A tiny run of a folder of 24 digit images (2 held out), with its end-of-training report."""
    root = tmp_path_factory.mktemp("refine")
    folder = evaluate_folder._digit_folder(root / "photos", 24)
    import contextlib
    import io
    out = io.StringIO()
    with one_thread(), contextlib.redirect_stdout(out):
        assert main(["train", "--preset", "digits-mlp", "--out", str(root / "run"), "--kimg", "0.064",
                     "--data", str(folder), *TINY]) == 0
    return {"run": root / "run", "folder": folder, "held_out": evaluate_folder._held_out(folder),
            "printed": out.getvalue()}


def _refined_mse(run_dir: Path, files, steps: int, space: str = "w", lr: float = 0.05) -> float:
    run = load_run(run_dir)
    x = prepare_images(load_image_files(files, run.schedule), run.schedule, run.phase)
    rec = run.reconstruct(x, refine_steps=steps, space=space, refine_lr=lr)
    return float((rec.double() - x.double()).square().mean())


def test_the_training_report_of_a_folder_adds_the_refined_reconstructions(folder_run):
    ev = json.loads((folder_run["run"] / "eval.json").read_text())
    refined = ev["reconstruction_refined"]
    held = folder_run["held_out"]
    assert refined["steps"] == 100 and refined["space"] == "w" and refined["images"] == refined["of"] == len(held) == 2
    assert refined["mse"] == pytest.approx(_refined_mse(folder_run["run"], held, 100), rel=1e-5)
    assert refined["identification"]["chance"] == pytest.approx(0.5)
    assert (f"reconstruction MSE after refining E(x) by 100 steps of descent on the pixel error in w (not "
            f"ALAE's G(E(x)): StyleGAN2's projector from the encoder) on 2 held-out images: {refined['mse']:.4f}"
            in folder_run["printed"])


def test_the_training_report_of_labelled_digits_has_no_refined_line(tmp_path, capsys):
    with one_thread():
        assert main(["train", "--preset", "digits-mlp", "--out", str(tmp_path / "run"), "--kimg", "0.032",
                     *TINY]) == 0
    assert "refining" not in capsys.readouterr().out
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["reconstruction_refined"] is None


@pytest.mark.parametrize("space", [None, "w+"])
def test_encode_saves_the_refined_latents(folder_run, tmp_path, capsys, space):
    files = [str(f) for f in folder_run["held_out"]]
    out = tmp_path / "w.npy"
    argv = ["encode", "--ckpt", str(folder_run["run"]), *files, "--refine-steps", "7", "--out", str(out)]
    assert main(argv + ([] if space is None else ["--space", space])) == 0
    run = load_run(folder_run["run"])
    want = run.project(load_image_files(files, run.schedule), steps=7, space=space or "w").numpy()
    got = np.load(out)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    shape = " x ".join(str(d) for d in want.shape)
    assert (f"({shape}, float32, in the order given, E(x) refined by 7 steps of descent on G's pixel error in "
            f"{space or 'w'})" in capsys.readouterr().out)
    with torch.no_grad():
        assert not np.array_equal(got.reshape(len(files), -1, got.shape[-1])[:, 0],
                                  run.encode(load_image_files(files, run.schedule)).numpy())


def test_space_w_without_steps_is_what_e_gives(folder_run, tmp_path, capsys):
    # w is E(x)'s own space: a sweep over --refine-steps 0,50,100 may keep --space w
    files = [str(f) for f in folder_run["held_out"]]
    out = tmp_path / "w.npy"
    assert main(["encode", "--ckpt", str(folder_run["run"]), *files, "--space", "w", "--refine-steps", "0",
                 "--out", str(out)]) == 0
    assert "refining" not in capsys.readouterr().out
    run = load_run(folder_run["run"])
    with torch.no_grad():
        np.testing.assert_array_equal(np.load(out), run.encode(load_image_files(files, run.schedule)).numpy())


def test_reconstruct_shows_the_refined_beside_g_of_e(folder_run, tmp_path, capsys):
    out = tmp_path / "r.png"
    assert main(["reconstruct", "--ckpt", str(folder_run["run"]), "--refine-steps", "5", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    run = load_run(folder_run["run"])
    res = run.schedule.resolution
    from alae_fast.inference.pictures import display_scale
    with Image.open(out) as im:
        assert im.size == pairs_grid_size(2, res, res, scale=display_scale(res), per_pair=3)
    want = _refined_mse(folder_run["run"], folder_run["held_out"], 5)
    assert "\nrefining E(x) of 2 images by 5 steps of descent on the pixel error in w (Adam, lr 0.05)\n" in printed
    assert "and G(w) of w refined by 5 steps of descent from E(x) in w (MSE " in printed
    assert f"-> {want:.4f}; pixels in [-1, 1])" in printed, printed


def test_evaluate_refines_the_first_refine_images(folder_run, capsys):
    quick = ["--num-fid", "40", "--ppl-samples", "2"]
    assert main(["evaluate", "--ckpt", str(folder_run["run"]), *quick, "--refine-steps", "3", "--refine-images", "1",
                 "--out", str(folder_run["run"] / "e3.json")]) == 0
    r = json.loads((folder_run["run"] / "e3.json").read_text())["reconstruction_refined"]
    assert (r["images"], r["of"], r["identification"]) == (1, 2, None)
    assert r["mse"] == pytest.approx(_refined_mse(folder_run["run"], folder_run["held_out"][:1], 3), rel=1e-5)
    run = load_run(folder_run["run"])
    x = prepare_images(load_image_files(folder_run["held_out"][:1], run.schedule), run.schedule, run.phase)
    with torch.no_grad():
        assert r["encoder_mse"] == pytest.approx(float((run.reconstruct(x).double() - x.double()).square().mean()),
                                                 rel=1e-5)
    assert f"on the first 1 of 2 held-out images: {r['mse']:.4f} (G(E(x)) on the same 1: " in capsys.readouterr().out


def test_the_training_report_says_how_to_refine_a_model_too_large_for_it(tmp_path, capsys, monkeypatch):
    import alae_fast.training.run as training_run
    monkeypatch.setattr(training_run, "REPORT_REFINE_RESOLUTION", 16)  # the tiny run's 32x32 counts as large
    folder = evaluate_folder._digit_folder(tmp_path / "photos", 24)
    with one_thread():
        assert main(["train", "--preset", "digits-mlp", "--out", str(tmp_path / "run"), "--kimg", "0.032",
                     "--data", str(folder), *TINY]) == 0
    printed = capsys.readouterr().out
    assert (f"(E(x) refined by descent is not computed here for a 32x32 model, above 16x16: each step is a pass of "
            f"G; alae-fast evaluate --ckpt {tmp_path / 'run'} --refine-steps 100 computes it)") in printed
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["reconstruction_refined"] is None


def test_evaluate_reports_the_refined_reconstructions_only_when_asked(folder_run, capsys):
    quick = ["--num-fid", "40", "--ppl-samples", "2"]
    assert main(["evaluate", "--ckpt", str(folder_run["run"]), *quick, "--json", "--refine-steps", "4",
                 "--space", "w+", "--out", str(folder_run["run"] / "e.json")]) == 0
    m = json.loads(capsys.readouterr().out)
    r = m["reconstruction_refined"]
    assert (r["steps"], r["space"], r["images"], r["lr"]) == (4, "w+", 2, 0.05)
    assert r["mse"] == pytest.approx(_refined_mse(folder_run["run"], folder_run["held_out"], 4, "w+"), rel=1e-5)
    assert main(["evaluate", "--ckpt", str(folder_run["run"]), *quick, "--refine-steps", "4", "--refine-lr", "0.2",
                 "--out", str(folder_run["run"] / "e1.json")]) == 0
    r = json.loads((folder_run["run"] / "e1.json").read_text())["reconstruction_refined"]
    assert r["lr"] == 0.2
    assert r["mse"] == pytest.approx(_refined_mse(folder_run["run"], folder_run["held_out"], 4, lr=0.2), rel=1e-5)
    assert "in w, lr 0.2 (not ALAE's G(E(x))" in capsys.readouterr().out
    assert main(["evaluate", "--ckpt", str(folder_run["run"]), *quick, "--out",
                 str(folder_run["run"] / "e2.json")]) == 0
    assert "refining" not in capsys.readouterr().out
    assert "reconstruction_refined" not in json.loads((folder_run["run"] / "e2.json").read_text())


@pytest.mark.parametrize("argv,said", [
    (["reconstruct", "--refine-steps", "-1"], "argument --refine-steps: expected an int in [0, 100000], got -1"),
    (["reconstruct", "--refine-steps", "100001"], "expected an int in [0, 100000], got 100001"),
    (["encode", "{file}", "--refine-steps", "two"], "argument --refine-steps: expected an int in [0, 100000], got two"),
    (["encode", "{file}", "--refine-steps", "2.5"], "argument --refine-steps: expected an int in [0, 100000], got 2.5"),
    (["encode", "{file}", "--refine-steps", "1_000"], "argument --refine-steps: expected an int in [0, 100000], got 1_000"),
    (["reconstruct", "--space", "w+"], "--space w+ applies only with --refine-steps N (N >= 1)"),
    (["evaluate", "--space", "w+", "--refine-steps", "0"], "--space w+ applies only with --refine-steps"),
    (["encode", "{file}", "--refine-lr", "0.1"], "--refine-lr 0.1 applies only with --refine-steps N (N >= 1)"),
    (["encode", "{file}", "--refine-steps", "3", "--refine-lr", "0"], "argument --refine-lr: expected a finite number > 0"),
    (["evaluate", "--refine-steps", "3", "--refine-lr", "nan"], "argument --refine-lr: expected a finite number > 0"),
    (["reconstruct", "--refine-steps", "3", "--refine-lr", "1e39"], "--refine-lr: expected a number in (0, 1000]"),
    (["encode", "{file}", "--refine-steps", "3", "--refine-lr", "1001"], "--refine-lr: expected a number in (0, 1000]"),
    (["evaluate", "--refine-images", "5"], "--refine-images 5 applies only with --refine-steps N (N >= 1)"),
    (["evaluate", "--refine-steps", "3", "--refine-images", "0"], "argument --refine-images: expected an int >= 1"),
    (["encode", "{file}", "--refine-steps", "3", "--space", "z"], "argument --space: invalid choice: 'z'"),
])
def test_bad_refine_flags_are_refused(folder_run, tmp_path, capsys, argv, said):
    argv = [a.format(file=folder_run["held_out"][0]) for a in argv]
    out = tmp_path / ("o" + {"encode": ".npy", "evaluate": ".json"}.get(argv[0], ".png"))
    try:
        code = main([argv[0], "--ckpt", str(folder_run["run"]), *argv[1:], "--out", str(out)])
    except SystemExit as e:  # argparse's own refusals exit from the parser
        code = e.code
    assert code == 2
    assert said in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", ["reconstruct", "encode", "evaluate"])
def test_a_descent_reaching_nan_is_one_line_naming_the_rate(folder_run, tmp_path, capsys, monkeypatch, command):
    # project_latents raises FloatingPointError when w becomes NaN or infinite; each command
    # that refines says it as its --refine-lr, never as a traceback
    import alae_fast.inference.loading as loading
    import alae_fast.inference.projection as projection

    def diverging(*args, **kwargs):
        raise FloatingPointError("project_latents: the descent reached NaN or infinity within 3 steps at lr 0.5; "
                                 "use a smaller lr")

    monkeypatch.setattr(projection, "project_latents", diverging)
    monkeypatch.setattr(loading, "project_latents", diverging)
    extra = {"encode": [str(folder_run["held_out"][0])], "evaluate": ["--num-fid", "40", "--ppl-samples", "2"]}
    out = tmp_path / ("o" + {"encode": ".npy", "evaluate": ".json"}.get(command, ".png"))
    assert main([command, "--ckpt", str(folder_run["run"]), *extra.get(command, []), "--refine-steps", "3",
                 "--refine-lr", "0.5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert (f"alae-fast {command}: error: --refine-lr 0.5: the descent reached NaN or infinity within 3 steps at lr "
            f"0.5; use a smaller lr") in err and "Traceback" not in err
