"""The `alae-fast` command: help, train (tiny kimg), every command on the run it wrote, errors,
and kill -9 in the middle of training followed by --resume (same result as no interruption)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

# Pillow is a core dependency, but the lent GPU machines' python lacks it (their CUDA test run
# must still collect): without it this module is skipped, not a collection error.
Image = pytest.importorskip("PIL.Image")

from alae_fast.cli import build_parser, main
from alae_fast.training.checkpoint import list_checkpoints, load_checkpoint
from alae_fast_tests_support import TINY, one_thread, tensors_in, toy

HERE = Path(__file__).parent
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "mlp"
    with one_thread():
        rc = main(["train", "--preset", "digits-mlp", "--out", str(out), "--kimg", "0.064", "--log-steps", "1", *TINY])
    assert rc == 0
    return out


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def test_help_is_complete(capsys):
    parser = build_parser()
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    top = capsys.readouterr().out
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        assert name in top
        if name == "bench":  # its own parser, in alae_fast.bench.report
            continue
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        text = capsys.readouterr().out
        for action in p._actions:
            for opt in action.option_strings:
                assert opt in text, (name, opt)
            if not action.option_strings and action.help:
                assert action.help in text.replace("\n", " ").replace("  ", " ") or action.metavar in text
    for flag in ("--preset", "--data", "--out", "--kimg", "--resume", "--seed"):
        assert flag in [o for a in sub.choices["train"]._actions for o in a.option_strings]


def test_python_dash_m_runs():
    proc = subprocess.run([sys.executable, "-m", "alae_fast", "train", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "--resume" in proc.stdout


def test_train_writes_the_run_folder_and_reports(mlp_run, capsys):
    for name in ("config.json", "log.jsonl", "loss_curves.png", "eval.json"):
        assert (mlp_run / name).is_file(), name
    config = json.loads((mlp_run / "config.json").read_text())
    assert config["setup"] == "digits-mlp" and config["model"]["encoder_hidden"] == [32]
    assert config["schedule"]["lod_batch"] == [16]
    recs = [json.loads(line) for line in (mlp_run / "log.jsonl").read_text().splitlines()]
    assert len(recs) == 4 and recs[-1]["kimg"] == pytest.approx(0.064)
    for key in ("loss_d", "loss_g", "loss_ae", "images_per_s", "lod"):
        assert all(key in r and np.isfinite(r[key]) for r in recs)
    assert list((mlp_run / "images").glob("samples-*.png")) and list((mlp_run / "images").glob("reconstructions-*.png"))
    assert list_checkpoints(mlp_run / "checkpoints")[-1][0] == 64
    ev = json.loads((mlp_run / "eval.json").read_text())
    for who in ("encoder", "random_encoder", "pca"):
        assert 0.0 <= ev["latent"][who]["knn1"] <= 1.0 and 0.0 <= ev["latent"][who]["linear_svc"] <= 1.0
    assert ev["latent"]["test_images"] == 297 and ev["reconstruction_mse"] > 0
    rc = ev["latent"]["reconstruction_class"]
    assert 0.0 <= rc["reconstructions"] <= 1.0 and rc["originals"] > 0.9  # pixel 1-NN on the digits: ~98%


def test_generate_reconstruct_interpolate_evaluate(mlp_run, tmp_path, capsys):
    assert main(["generate", "--ckpt", str(mlp_run), "--n", "6", "--psi", "0.7"]) == 0
    out = capsys.readouterr().out
    assert f"to {mlp_run / 'generated.png'}" in out
    img = _png(mlp_run / "generated.png")
    assert img.shape[0] > 64 and img.std() > 0

    ckpt = list_checkpoints(mlp_run / "checkpoints")[-1][1]
    assert main(["reconstruct", "--ckpt", str(ckpt), "--n", "4", "--out", str(tmp_path / "rec.png")]) == 0
    assert f"to {tmp_path / 'rec.png'}" in capsys.readouterr().out and (tmp_path / "rec.png").is_file()

    from alae_fast.data import load_digits
    x, _ = load_digits("test", 32)
    files = []
    for i in range(2):
        p = tmp_path / f"digit{i}.png"
        Image.fromarray(((x[i, 0].numpy() + 1) * 127.5).round().astype(np.uint8)).resize((50, 40)).save(p)
        files.append(str(p))
    assert main(["reconstruct", "--ckpt", str(mlp_run), *files]) == 0
    assert "2 originals" in capsys.readouterr().out
    assert main(["interpolate", "--ckpt", str(mlp_run), files[0], files[1], "--steps", "5",
                 "--out", str(tmp_path / "lerp.png")]) == 0
    assert "wrote an interpolation of 5 images" in capsys.readouterr().out
    strip = _png(tmp_path / "lerp.png")
    # one row under its titles (A, t=0.00 ... t=1.00, B): tiles of 32 px enlarged 4 times, 4 px apart,
    # after an 8 px margin (an empty row label), under a title row 8 px taller than its text
    from alae_fast.inference.pictures import _text_size
    top = max(_text_size(t)[1] for t in ["A", "t=0.50", "B"]) + 8
    assert strip.shape[:2] == (top + 128 + 8, 8 + 7 * (128 + 4) + 4)
    assert (strip[:top - 4] < 128).any() and (strip[top:, :8] == 255).all()
    tile = lambda k: strip[top:top + 128, 8 + k * 132:8 + k * 132 + 128]  # noqa: E731
    from alae_fast.data import load_image
    for k, f in ((0, files[0]), (6, files[1])):  # the ends are the inputs themselves
        want = np.repeat(np.repeat(load_image(f, 32, 1)[0], 4, 0), 4, 1)
        assert np.array_equal(tile(k), np.repeat(want[..., None], 3, 2)), k  # grey, drawn in RGB

    assert main(["evaluate", "--ckpt", str(mlp_run), "--num-fid", "32", "--ppl-samples", "8"]) == 0
    out = capsys.readouterr().out
    assert f"wrote metrics to {mlp_run / 'evaluate.json'}" in out and "LinearSVC" in out
    assert "FID of generations" in out and "PROXY" in out and "{" not in out  # a report, no JSON mixed in
    m = json.loads((mlp_run / "evaluate.json").read_text())
    assert m["fid_is_proxy"] is True and m["fid_network"] == "proxy-randconv"
    for key in ("reconstruction_mse", "fid_generated", "fid_reconstructed", "ppl_full", "ppl_end"):
        assert np.isfinite(m[key]) and m[key] >= 0, key
    assert set(m["latent"]) >= {"encoder", "random_encoder", "pca", "dim"}


def _undrawable(text: str) -> set[str]:
    """The characters of ``text`` that the labelled grid's font draws as its missing-glyph box."""
    from alae_fast.inference.pictures import _font

    font = _font(12)
    box = bytes(font.getmask("\ue000"))  # a private-use code point: no font has it
    return {c for c in text if not c.isspace() and bytes(font.getmask(c)) == box}


@pytest.mark.parametrize("num_ws,want", [
    # 1024² (18 inputs), 256² and 128²: StyleGAN's Fig. 3 and the official stylemix.py's
    # range(0, 4), range(4, 8), range(8, 2 * layer_count)
    (18, {"coarse": (0, 4), "middle": (4, 8), "fine": (8, 18)}),
    (14, {"coarse": (0, 4), "middle": (4, 8), "fine": (8, 14)}),
    (12, {"coarse": (0, 4), "middle": (4, 8), "fine": (8, 12)}),
    (10, {"coarse": (0, 4), "middle": (4, 8), "fine": (8, 10)}),
    # below 64²: no 64² inputs, thirds
    (8, {"coarse": (0, 3), "middle": (3, 5), "fine": (5, 8)}),
    (6, {"coarse": (0, 2), "middle": (2, 4), "fine": (4, 6)})])
def test_style_ranges_are_the_official_figures_from_64_px_up(num_ws, want):
    from alae_fast.inference.sampling import style_ranges

    assert style_ranges(num_ws) == want


def test_style_mix_needs_several_styles(mlp_run, tmp_path, capsys, monkeypatch):
    import alae_fast.inference.pictures as pictures

    texts = []
    real = pictures.save_labelled_grid

    def recording(cells, path, row_labels, col_labels, **kw):
        texts.extend([*row_labels, *col_labels, *(c for r in cells for c in r if isinstance(c, str))])
        return real(cells, path, row_labels, col_labels, **kw)

    monkeypatch.setattr(pictures, "save_labelled_grid", recording)
    assert main(["style-mix", "--ckpt", str(mlp_run)]) == 2
    assert "style mixing needs" in capsys.readouterr().err
    toy()
    out = tmp_path / "toy"
    assert main(["train", "--preset", "toy-pg", "--out", str(out), "--kimg", "0.048", "--no-eval", "--no-progress",
                 "--schedule", "lod_kimg=[0.016]", "--schedule", "lod_batch=[8]"]) == 0
    capsys.readouterr()
    assert main(["style-mix", "--ckpt", str(out), "--rows", "2", "--cols", "3"]) == 0
    text = capsys.readouterr().out
    assert "coarse 0-1, middle 2-3, fine 4-5 of 6 style inputs; 2 rows each" in text
    grid = _png(out / "style-mix.png").astype(int)
    # 1 + 3 x 2 rows of 1 + 3 tiles of 16 px enlarged 8 times, 4 px apart, under titles and beside labels
    assert grid.shape[0] > 7 * (128 + 4) and grid.shape[1] > 4 * (128 + 4)
    dark = (grid.min(axis=2) < 128) if grid.ndim == 3 else grid < 128
    assert dark[:, : grid.shape[1] // 8].any()  # row labels are drawn (the layout: test_labelled_grid_layout)
    # every label is readable: the corner's arrows were drawn as empty boxes
    assert texts and not _undrawable("".join(texts)), _undrawable("".join(texts))
    assert main(["generate", "--ckpt", str(out), "--n", "4"]) == 0


def test_style_mix_of_your_images_is_the_official_figure(mlp_run, tmp_path, capsys):
    """--sources/--destinations: each B's E(x) takes each A's E(x) in one range of style inputs,
    decoded without noise, checked against the model's own encode/decode; the picture's B
    tiles are the inputs, and the options of sampled latents are refused with images."""
    from PIL import Image

    from alae_fast.inference.loading import load_run
    from alae_fast.inference.pixels import load_image_files, prepare_images
    from alae_fast.inference.sampling import style_mix_images, style_ranges

    toy()
    out = tmp_path / "toy"
    with one_thread():
        assert main(["train", "--preset", "toy-pg", "--out", str(out), "--kimg", "0.048", "--no-eval", "--no-progress",
                     "--schedule", "lod_kimg=[0.016]", "--schedule", "lod_batch=[8]"]) == 0
    rng = np.random.default_rng(5)
    files = []
    for name in ("a1", "a2", "b1", "b2"):
        files.append(str(tmp_path / f"{name}.png"))
        Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8)).save(files[-1])
    capsys.readouterr()
    assert main(["style-mix", "--ckpt", str(out), "--sources", *files[:2], "--destinations", *files[2:]]) == 0
    text = capsys.readouterr().out
    assert f"A1 {files[0]}; A2 {files[1]}; B1 {files[2]}; B2 {files[3]}" in text and "coarse 0-1" in text
    assert _png(out / "style-mix.png").ndim in (2, 3)

    run = load_run(out)
    x = prepare_images(load_image_files(files, run.schedule), run.schedule, run.phase)
    mixed, names = style_mix_images(run, x[:2], x[2:])
    assert mixed.shape[:2] == (6, 2) and names == ["coarse"] * 2 + ["middle"] * 2 + ["fine"] * 2
    with torch.no_grad():
        w = run.model.encode(x, run.phase.lod, run.phase.blend)  # [4, latent]
        num_ws = int(run.model.num_ws)
        for r, (lo, hi) in enumerate(style_ranges(num_ws).values()):
            for j in range(2):
                for i in range(2):
                    ws = w[2 + j].repeat(num_ws, 1).clone()
                    ws[lo:hi] = w[i]
                    want = run.model.decode(ws[None], run.phase.lod, run.phase.blend, noise="zero")
                    torch.testing.assert_close(mixed[2 * r + j, i:i + 1], want, rtol=1e-5, atol=1e-5)

    for extra, message in ((["--sources", files[0]], "--sources needs --destinations"),
                           (["--destinations", files[0]], "--destinations needs --sources"),
                           (["--sources", files[0], "--destinations", files[1], "--cols", "3"],
                            "--cols counts sampled latents"),
                           (["--sources", files[0], "--destinations", files[1], "--seed", "3"],
                            "--seed: with --sources and --destinations the latents are the images' E(x)"),
                           (["--sources", str(tmp_path / "gone.png"), "--destinations", files[1]], "does not exist")):
        assert main(["style-mix", "--ckpt", str(out), *extra]) == 2
        assert message in capsys.readouterr().err
    # with noise to seed, --seed is taken
    assert main(["style-mix", "--ckpt", str(out), "--sources", files[0], "--destinations", files[1],
                 "--noise-mode", "random", "--seed", "3"]) == 0
    assert "(noise random, seed 3)" in capsys.readouterr().out
    assert main(["style-mix", "--ckpt", str(mlp_run), "--sources", files[0], "--destinations", files[1]]) == 2
    assert "style mixing needs a model with several" in capsys.readouterr().err


def test_errors_exit_2_with_a_clear_line(mlp_run, tmp_path, capsys):
    missing = tmp_path / "nope"
    assert main(["train", "--preset", "digits-mlp", "--data", str(missing), "--out", str(tmp_path / "r"), *TINY]) == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "r").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--data", str(empty), "--out", str(tmp_path / "r"), "--preset", "digits-mlp"]) == 2
    assert "contains no PNG or JPEG files" in capsys.readouterr().err and not (tmp_path / "r").exists()
    assert main(["train", "--preset", "digits-mlp", "--out", str(mlp_run), "--kimg", "0.1"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train", "--preset", "digits-mlp", "--out", str(tmp_path / "fresh"), "--resume"]) == 2
    assert f"--resume: no run folder {str(tmp_path / 'fresh')!r}" in capsys.readouterr().err
    (tmp_path / "fresh").mkdir()
    assert main(["train", "--preset", "digits-mlp", "--out", str(tmp_path / "fresh"), "--resume"]) == 2
    assert "has no checkpoints/ folder" in capsys.readouterr().err
    (tmp_path / "fresh" / "checkpoints").mkdir()
    assert main(["train", "--preset", "digits-mlp", "--out", str(tmp_path / "fresh"), "--resume"]) == 2
    assert "no loadable checkpoint" in capsys.readouterr().err
    assert main(["train", "--preset", "no-such", "--out", str(tmp_path / "x")]) == 2
    assert "unknown preset 'no-such'" in capsys.readouterr().err
    assert main(["train", "--preset", "digits-mlp", "--set", "bogus_field=1", "--out", str(tmp_path / "x")]) == 2
    assert "error: --set: MLPALAEConfig: unknown field ['bogus_field']" in capsys.readouterr().err
    assert main(["train", "--set", "latent_size=-3", "--out", str(tmp_path / "x")]) == 2
    assert "error: --set: StyleALAEConfig: latent_size must be >= 1; got -3" in capsys.readouterr().err
    assert main(["train", "--schedule", "bogus=1", "--out", str(tmp_path / "x")]) == 2
    assert "error: --schedule: LODSchedule: unknown field ['bogus']" in capsys.readouterr().err
    assert main(["generate", "--ckpt", str(tmp_path / "none.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--kimg", "-1"])
    capsys.readouterr()
    # every command that takes --data says a bad one the same way, in one line naming it
    (tmp_path / "a.txt").write_text("x")
    for cmd in (["train", "--preset", "digits-mlp", "--out", str(tmp_path / "r")], ["evaluate", "--ckpt", str(mlp_run)],
                ["reconstruct", "--ckpt", str(mlp_run)]):
        for data, said in ((missing, "does not exist"), (empty, "contains no PNG or JPEG files"),
                           (tmp_path / "a.txt", "is not a folder")):
            assert main([*cmd, "--data", str(data)]) == 2, (cmd, data)
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith(f"alae-fast {cmd[0]}: error: --data: ") and said in err[0], err
    assert not (tmp_path / "r").exists()


def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path):
    args = ["train", "--preset", "digits-mlp", "--kimg", "0.48", "--checkpoint-kimg", "0.032", "--image-kimg", "1",
            "--no-eval", "--seed", "5", *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "alae_fast", *args, "--out", str(tmp_path / "killed")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            if list_checkpoints(tmp_path / "killed" / "checkpoints"):
                break
            time.sleep(0.01)
        killed_mid_run = proc.poll() is None
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    ckpts = list_checkpoints(tmp_path / "killed" / "checkpoints")
    assert ckpts, proc.stderr.read().decode()[-2000:]
    assert killed_mid_run and ckpts[-1][0] < 480
    assert main([*args, "--out", str(tmp_path / "killed"), "--resume"]) == 0
    assert main([*args, "--out", str(tmp_path / "straight")]) == 0
    a = load_checkpoint(list_checkpoints(tmp_path / "killed" / "checkpoints")[-1][1])
    b = load_checkpoint(list_checkpoints(tmp_path / "straight" / "checkpoints")[-1][1])
    assert a["trainer"]["images_seen"] == b["trainer"]["images_seen"] == 480
    for key in ("model", "opt_ed", "opt_fg", "generator"):
        sa, sb = a["trainer"][key], b["trainer"][key]
        if isinstance(sa, torch.Tensor):
            assert torch.equal(sa, sb)
            continue
        flat_a, flat_b = tensors_in(sa), tensors_in(sb)
        assert len(flat_a) == len(flat_b) and all(torch.equal(u, v) for u, v in zip(flat_a, flat_b)), key
    assert all(torch.equal(u, v) for u, v in zip(tensors_in(a["trainer"]["ema"]), tensors_in(b["trainer"]["ema"])))
    assert a["data"] == b["data"]


# --- issue 14: NVlabs' spellings, run data, JSON, the Python API, pictures, bad input -----------------

def test_parse_seeds():
    from alae_fast.cli.arguments import parse_seeds
    import argparse

    assert parse_seeds("0-7,12") == [0, 1, 2, 3, 4, 5, 6, 7, 12]
    assert parse_seeds("5") == [5] and parse_seeds(" 3 , 1-2") == [3, 1, 2]
    # the range run.generate(seed=) and --seed take: [0, 2**63)
    assert parse_seeds(f"{2 ** 32},{2 ** 63 - 1}") == [2 ** 32, 2 ** 63 - 1]
    for bad in ("", "a", "1-", "-3", "5-2", "1,,2", "1.5", "0-100000000", str(2 ** 63), f"{2 ** 63 - 1}-{2 ** 63}",
                "1_000", "+5", "\u0663", "1e3"):  # decimal digits only, as the web page reads them
        with pytest.raises(argparse.ArgumentTypeError):
            parse_seeds(bad)
    with pytest.raises(argparse.ArgumentTypeError, match=r"^the range '5-3' runs backwards; write it low-high \(3-5\)$"):
        parse_seeds("0,5-3")
    from alae_fast.cli.arguments import _seed
    assert _seed(" 12 ") == 12 and _seed(str(2 ** 63 - 1)) == 2 ** 63 - 1
    for bad in ("1_000", "+5", "\u0663", "-1", "1e3", str(2 ** 63), ""):
        with pytest.raises(argparse.ArgumentTypeError, match=r"expected an int in \[0, 2\*\*63\)"):
            _seed(bad)


def _toy_style_run(tmp_path: Path) -> Path:
    """A StyleALAE run of a few steps (the toy-pg preset, 16x16): a model with noise inputs."""
    toy()
    out = tmp_path / "toy"
    assert main(["train", "--preset", "toy-pg", "--out", str(out), "--kimg", "0.048", "--no-eval", "--no-progress",
                 "--schedule", "lod_kimg=[0.016]", "--schedule", "lod_batch=[8]"]) == 0
    return out


def test_library_warnings_reach_the_user_as_one_line(mlp_run, tmp_path, capsys):
    """A warning from the library (here: the newest checkpoint is damaged, an older one is
    taken) prints as one line naming what happened, not Python's file:line and source line."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(mlp_run, run)
    (run / "checkpoints" / "ckpt-9999999999.pt").write_bytes(b"not a checkpoint")
    assert main(["generate", "--ckpt", str(run), "--n", "2", "--out", str(tmp_path / "g.png")]) == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    warned = [ln for ln in err if "ckpt-9999999999.pt is unreadable" in ln]
    assert len(warned) == 1 and warned[0].startswith("alae-fast: warning: checkpoint "), err
    assert not any("warnings.warn" in ln or "RuntimeWarning" in ln for ln in err), err
    # library users keep Python's warnings: the command restores them when it returns
    import warnings

    assert warnings.showwarning.__name__ != "_one_line_warning"


def test_generate_with_nvlabs_spellings(mlp_run, tmp_path, capsys):
    out = tmp_path / "gen"
    assert main(["generate", "--network", str(mlp_run), "--seeds", "0-2,5", "--trunc", "0.7",
                 "--outdir", str(out), "--grid", "--out", str(tmp_path / "grid.png")]) == 0
    text = capsys.readouterr().out
    # an MLP ALAE has no noise inputs: noise none is what it does (--noise-mode const is refused for it)
    assert f"wrote 4 images seedNNNN.png (psi 0.7, noise none, lod 0, 32x32) to {out}" in text
    assert sorted(p.name for p in out.iterdir()) == ["seed0000.png", "seed0001.png", "seed0002.png", "seed0005.png"]
    assert _png(out / "seed0005.png").shape == (32, 32) and (tmp_path / "grid.png").is_file()
    # without --out the grid goes beside the images' folder (not in it, where FID tools would score it as a
    # sample), not over the run folder's generated.png
    before = sorted(p.name for p in Path(mlp_run).iterdir())
    assert main(["generate", "--network", str(mlp_run), "--seeds", "1,2", "--outdir", str(tmp_path / "g2"),
                 "--grid"]) == 0
    assert f"wrote their grid to {tmp_path / 'g2-grid.png'} (outside the folder" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "g2").iterdir()) == ["seed0001.png", "seed0002.png"]
    assert sorted(p.name for p in Path(mlp_run).iterdir()) == before
    # a seed gives the same picture whatever else is asked, for every noise mode (a StyleALAE: it has noise)
    style_run = _toy_style_run(tmp_path)
    for mode in ("const", "random", "none"):
        assert main(["generate", "--ckpt", str(style_run), "--seeds", "5", "--trunc", "0.7", "--noise-mode", mode,
                     "--outdir", str(tmp_path / mode)]) == 0
        assert main(["generate", "--ckpt", str(style_run), "--seeds", "9,5", "--trunc", "0.7", "--noise-mode", mode,
                     "--outdir", str(tmp_path / (mode + "2"))]) == 0
        assert np.array_equal(_png(tmp_path / mode / "seed0005.png"), _png(tmp_path / (mode + "2") / "seed0005.png"))
    assert main(["generate", "--ckpt", str(style_run), "--seeds", "5", "--trunc", "0.7",
                 "--outdir", str(tmp_path / "default")]) == 0
    assert "noise const" in capsys.readouterr().out  # a StyleALAE's default
    assert np.array_equal(_png(tmp_path / "const" / "seed0005.png"), _png(tmp_path / "default" / "seed0005.png"))
    # the file is the model's picture, quantised as documented
    import alae_fast
    from alae_fast.inference.pictures import to_uint8
    from alae_fast.inference.sampling import generate_seeds
    run = alae_fast.load(mlp_run)
    assert np.array_equal(to_uint8(generate_seeds(run, [5], 0.7, "none"))[0, ..., 0], _png(out / "seed0005.png"))
    capsys.readouterr()
    for bad in (["--seeds", "1-x"], ["--trunc", "3"], ["--trunc", "nan"], ["--psi", "-1.5"], ["--noise-mode", "loud"]):
        with pytest.raises(SystemExit) as e:
            main(["generate", "--ckpt", str(mlp_run), *bad])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert "error: argument" in err and "Traceback" not in err, bad
    assert main(["generate", "--ckpt", str(mlp_run), "--outdir", str(tmp_path / "x")]) == 2
    assert "--outdir and --grid go with --seeds" in capsys.readouterr().err
    # --out names the grid: with --seeds and no --grid it would be ignored, so it is refused
    assert main(["generate", "--ckpt", str(mlp_run), "--seeds", "0-1", "--out", str(tmp_path / "g.png")]) == 2
    assert "--out names their grid file and goes with --grid" in capsys.readouterr().err
    assert not (tmp_path / "g.png").exists()
    for extra, said in ((["--n", "4"], "--n goes"), (["--seed", "3"], "--seed goes"),
                        (["--n", "4", "--seed", "3"], "--n and --seed go")):
        assert main(["generate", "--ckpt", str(mlp_run), "--seeds", "0-1", *extra]) == 2
        assert f"{said} without --seeds" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    assert main(["generate", "--ckpt", str(mlp_run), "--seeds", "0", "--outdir", str(tmp_path / "afile")]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err


def test_evaluate_json_is_machine_readable(mlp_run, tmp_path, capsys):
    assert main(["evaluate", "--ckpt", str(mlp_run), "--num-fid", "16", "--ppl-samples", "4", "--json",
                 "--out", str(tmp_path / "m.json")]) == 0
    cap = capsys.readouterr()
    m = json.loads(cap.out)  # stdout is the JSON alone
    assert m == json.loads((tmp_path / "m.json").read_text()) and "wrote metrics" in cap.err


def _digit_folder(path: Path, n: int = 24) -> Path:
    from alae_fast.data import load_digits

    x, _ = load_digits("train", 32)
    path.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(((x[i, 0].numpy() + 1) * 127.5).round().astype(np.uint8)).save(path / f"{i:03d}.png")
    return path


def test_a_run_remembers_its_data(tmp_path, capsys):
    import shutil

    folder = _digit_folder(tmp_path / "photos")
    run = tmp_path / "run"
    assert main(["train", "--preset", "digits-mlp", "--data", str(folder), "--out", str(run), "--kimg", "0.032",
                 "--no-eval", *TINY]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["data_spec"] == {"kind": "folder", "path": str(folder.resolve())}
    ckpt = list_checkpoints(run / "checkpoints")[-1][1]
    assert load_checkpoint(ckpt)["data_spec"] == config["data_spec"]
    capsys.readouterr()
    assert main(["reconstruct", "--ckpt", str(run), "--n", "4"]) == 0
    assert f"using the run's training data, the image folder {str(folder.resolve())!r}" in capsys.readouterr().out
    assert main(["evaluate", "--ckpt", str(run), "--num-fid", "8", "--ppl-samples", "4", "--json"]) == 0
    cap = capsys.readouterr()
    m = json.loads(cap.out)
    assert m["latent"] is None and "using the run's training data" in cap.err  # a folder has no labels: no digits score
    # --resume continues on the same data, and says so
    assert main(["train", "--out", str(run), "--kimg", "0.048", "--no-eval", "--resume", "--no-progress",
                 "--threads", "1"]) == 0
    assert "using the run's training data" in capsys.readouterr().out
    # gone: a clear line, unless --data names other data
    shutil.rmtree(folder)
    for cmd in (["reconstruct", "--ckpt", str(run)], ["evaluate", "--ckpt", str(run)]):
        assert main(cmd) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no longer exists; pass --data PATH" in err[0], cmd
    assert main(["train", "--out", str(run), "--kimg", "0.064", "--resume", "--no-eval", "--no-progress"]) == 2
    assert "no longer exists" in capsys.readouterr().err
    other = _digit_folder(tmp_path / "other", 8)
    assert main(["reconstruct", "--ckpt", str(run), "--data", str(other), "--n", "2"]) == 0
    assert "using the run's" not in capsys.readouterr().out


def test_digits_run_and_old_runs_use_the_digits(mlp_run, tmp_path, capsys):
    from alae_fast.inference.loading import load_run, run_data

    run = load_run(mlp_run)
    assert run.state["data_spec"] == {"kind": "digits", "path": None} and run_data(run) == (None, None)
    old = dict(run.state)
    del old["data_spec"]
    torch.save(old, tmp_path / "ckpt-0000000064.pt")  # a checkpoint from before runs stored their data
    data, note = run_data(load_run(tmp_path / "ckpt-0000000064.pt"))
    assert data is None and "does not record its training data; using the embedded digits" in note


def test_python_api(mlp_run):
    code = ("import alae_fast, torch; m = alae_fast.models; t = alae_fast.training; d = alae_fast.data; "
            "e = alae_fast.eval; run = alae_fast.load(%r); x = torch.rand(2, 1, 32, 32) * 2 - 1; "
            "w = run.encode(x); y = run.decode(w); assert w.shape == (2, 8) and y.shape == (2, 1, 32, 32); "
            "assert not run.model.training and not any(p.requires_grad for p in run.model.parameters()); "
            "assert torch.equal(run.decode(w), y) and torch.equal(run.reconstruct(x), y); "
            "assert torch.equal(run.generate(3, seed=4), run.generate(3, seed=4)); print('ok')" % str(mlp_run))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().splitlines()[-1] == "ok", proc.stderr[-2000:]  # (an editable install may print its rebuild first)
    import alae_fast
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        alae_fast.nope  # noqa: B018


def test_readme_python_example_runs(mlp_run, tmp_path):
    # the lines of README.md's "Python API" section, on a small run, with the two image files it
    # names (of other sizes than the run's, one colour, one grey) in the folder it runs in
    import numpy as np
    from PIL import Image

    readme = (HERE.parent / "README.md").read_text()
    start = readme.index("```python\nimport alae_fast\nrun = alae_fast.load(")
    block = readme[start + len("```python\n"):readme.index("```", start + 10)]
    assert len(block.strip().splitlines()) == 12
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(tmp_path / "my_photo.jpg")
    Image.fromarray(rng.integers(0, 256, (20, 30), dtype=np.uint8)).save(tmp_path / "other.png")
    code = block.replace('"runs/digits-32"', repr(str(mlp_run))) + (
        "\nassert x_rec.shape == x.shape == x_ref.shape == (2, 1, 32, 32)"
        "\nassert w.shape == (2, run.model.latent_size)"
        "\nassert ((x_ref - x) ** 2).mean() <= ((x_rec - x) ** 2).mean()")  # the refined never worse
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_bad_input_is_one_line_and_exit_2(mlp_run, tmp_path, capsys, monkeypatch):
    ckpt = list_checkpoints(mlp_run / "checkpoints")[-1][1]
    data = ckpt.read_bytes()
    files = {"empty.pt": b"", "truncated.pt": data[: len(data) // 2], "text.pt": b"hello, not torch",
             "pickle.pt": b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01."}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        for cmd in ("generate", "evaluate", "serve"):
            assert main([cmd, "--ckpt", str(tmp_path / name)]) == 2, (cmd, name)
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and str(tmp_path / name) in err[0] and "Traceback" not in err[0], (cmd, name, err)
    torch.save({"format": "something else"}, tmp_path / "foreign.pt")
    assert main(["generate", "--ckpt", str(tmp_path / "foreign.pt")]) == 2
    assert "not an alae_fast training checkpoint" in capsys.readouterr().err
    assert main(["reconstruct", "--ckpt", str(tmp_path / "missing.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err

    (tmp_path / "notes.png").write_text("not an image")
    from alae_fast.data import load_digits
    x, _ = load_digits("test", 32)
    buf = tmp_path / "digit.jpg"
    Image.fromarray(((x[0, 0].numpy() + 1) * 127.5).astype(np.uint8)).resize((64, 64)).save(buf, quality=95)
    (tmp_path / "cut.jpg").write_bytes(buf.read_bytes()[:300])
    for bad in ("notes.png", "cut.jpg"):
        assert main(["reconstruct", "--ckpt", str(mlp_run), str(tmp_path / bad)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "could not be read as an image" in err[0] and bad in err[0], err
    # a folder given as an image; an image past Pillow's decompression-bomb limit (lowered here:
    # a real one is 179 megapixels) - it was a DecompressionBombError traceback
    assert main(["reconstruct", "--ckpt", str(mlp_run), str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a folder" in err[0], err
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # digit.jpg: 64 x 64 = 4096 > 2 x 1000
    for cmd in (["reconstruct", str(buf)], ["interpolate", str(buf), str(buf)]):
        assert main([cmd[0], "--ckpt", str(mlp_run), *cmd[1:]]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "too large to decode safely" in err[0] and "digit.jpg" in err[0], err
    monkeypatch.undo()

    if not torch.cuda.is_available():
        assert main(["generate", "--ckpt", str(mlp_run), "--device", "cuda"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--device cuda" in err[0] and "--device cpu" in err[0]
        assert main(["train", "--device", "cuda", "--out", str(tmp_path / "t"), "--kimg", "0.01"]) == 2
        assert "--device cuda" in capsys.readouterr().err
    assert main(["generate", "--ckpt", str(mlp_run), "--device", "toaster"]) == 2
    assert "is not a device name" in capsys.readouterr().err

    assert main(["train", "--preset", "digits-mlp", "--set", "latent_size=abc", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "latent_size must be an int" in err[0] and not (tmp_path / "r").exists()


def test_an_unknown_option_is_refused_by_its_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["reconstruct", "--ckpt", "run", "--images", "a.png"])
    err = capsys.readouterr().err
    assert e.value.code == 2  # named by its command: it was the top level's "COMMAND ..."
    assert err == ("alae-fast reconstruct: error: unrecognized arguments: --images "
                   "(see alae-fast reconstruct --help)\n"), err


@pytest.mark.parametrize("argv", [
    ["train", "--r1-gamma", "-1"], ["train", "--mixing-prob", "1.5"], ["train", "--kimg", "0"], ["train", "--seed", "-1"],
    ["generate", "--ckpt", "r", "--n", "0"], ["generate", "--ckpt", "r", "--seeds", "5-2"],
    ["generate", "--ckpt", "r", "--psi", "nan"], ["interpolate", "--ckpt", "r", "--steps", "1", "a.png", "b.png"],
    ["style-mix", "--ckpt", "r", "--rows", "0"], ["evaluate", "--ckpt", "r", "--num-fid", "1"], [],
    ["bench", "--rounds", "0"], ["train", "--no-such-flag"]])
def test_a_refused_flag_value_is_one_line(argv, capsys):
    # the README's promise: bad input gets one line and exit status 2 (argparse printed its
    # usage block first, 16 lines for train)
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    command = f"alae-fast {argv[0]}" if argv else "alae-fast"
    assert e.value.code == 2 and err.count("\n") == 1 and err.startswith(f"{command}: error: "), err
    assert err.endswith(f"(see {command} --help)\n") and "Traceback" not in err, err


def test_the_error_boundary_keeps_tracebacks_of_bugs(mlp_run, monkeypatch):
    import alae_fast.cli as cli

    def buggy(args):
        raise TypeError("a real bug")

    monkeypatch.setitem(cli._COMMANDS, "generate", buggy)
    with pytest.raises(TypeError, match="a real bug"):
        main(["generate", "--ckpt", str(mlp_run)])

    def user(args):
        from alae_fast.errors import UserError
        raise UserError("you gave X")

    monkeypatch.setitem(cli._COMMANDS, "generate", user)
    assert main(["generate", "--ckpt", str(mlp_run)]) == 2
    monkeypatch.setenv("ALAE_FAST_TRACEBACK", "1")
    with pytest.raises(ValueError, match="you gave X"):
        main(["generate", "--ckpt", str(mlp_run)])


def test_labelled_grid_layout(tmp_path):
    from alae_fast.inference.pictures import save_labelled_grid

    g = torch.Generator().manual_seed(0)
    imgs = torch.rand(2, 3, 3, 8, 8, generator=g) * 2 - 1
    cells = [["corner", imgs[0, 0], imgs[0, 1]], [imgs[1, 0], imgs[1, 1], imgs[1, 2]]]
    path = save_labelled_grid(cells, tmp_path / "t.png", ["row one", "row two"], ["c0", "c1", "c2"], scale=4)
    pic = _png(path)
    assert pic.ndim == 3 and pic.shape[2] == 3
    # find the tile of row 1, column 2 by its exact pixels (8x8 enlarged 4 times)
    from alae_fast.inference.pictures import to_uint8
    want = np.repeat(np.repeat(to_uint8(imgs[1, 2]), 4, 0), 4, 1)
    hits = [(y, x) for y in range(pic.shape[0] - 31) for x in range(pic.shape[1] - 31)
            if pic[y, x, 0] == want[0, 0, 0] and np.array_equal(pic[y:y + 32, x:x + 32], want)]
    assert len(hits) == 1
    y, x = hits[0]
    assert x > 32 * 2 and y > 32  # right of the labels' column, below the titles
    with pytest.raises(ValueError, match="row_labels"):
        save_labelled_grid(cells, tmp_path / "u.png", ["one"], ["c0", "c1", "c2"])


def test_loss_plot_has_a_legend_when_smoothed(tmp_path):
    from alae_fast.inference.plots import plot_loss_curves

    log = tmp_path / "log.jsonl"
    rng = np.random.RandomState(0)
    log.write_text("".join(json.dumps({"kimg": i / 10, "loss_d": float(rng.rand())}) + "\n" for i in range(40)))
    raw = _png(plot_loss_curves(log, tmp_path / "raw.png", smooth=1)).astype(int)
    smooth = _png(plot_loss_curves(log, tmp_path / "smooth.png", smooth=5)).astype(int)
    right, top = 800 - 20, 22
    box = (slice(top - 16, top), slice(right - 330, right - 200))  # where the legend goes: the title row
    black = lambda pic: (pic[box].max(axis=2) < 60).sum()  # noqa: E731  text is black; data lines are coloured
    assert black(raw) == 0  # no legend without smoothing
    assert black(smooth) > 30  # "raw" and "mean of 5" written there


def test_tensorboard_events_when_installed(tmp_path):
    from alae_fast.training.tensorboard import open_event_writer

    w = open_event_writer(tmp_path)
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        assert w is None  # never required
        return
    w.add({"kimg": 0.5, "loss_d": 0.25, "lod": 0, "note": "x"})
    w.close()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert {"Loss/loss_d", "Progress/lod"} <= set(acc.Tags()["scalars"])
    assert acc.Scalars("Loss/loss_d")[0].step == 500 and acc.Scalars("Loss/loss_d")[0].value == 0.25


def test_serve_applies_no_ema_and_config_and_has_no_noise_mode(mlp_run, tmp_path, capsys, monkeypatch):
    # --config/--no-ema reach load_run (they were dropped: serve opened the file without them); the
    # page decodes without noise and chooses noise per request, so --noise-mode is no option of serve
    pytest.importorskip("fastapi")
    import alae_fast.app.server as server
    from alae_fast.errors import UserError

    def no_port(*a, **k):
        raise UserError("stub: no port bound")

    monkeypatch.setattr(server, "check_port", no_port)
    assert main(["serve", "--ckpt", str(mlp_run), "--no-ema"]) == 2
    err = capsys.readouterr().err
    assert "--no-ema" in err and "stub" not in err, err
    (tmp_path / "c.yaml").write_text("{}")
    assert main(["serve", "--ckpt", str(mlp_run), "--config", str(tmp_path / "c.yaml")]) == 2
    err = capsys.readouterr().err
    assert "--config" in err and "stub" not in err, err
    with pytest.raises(SystemExit) as e:
        main(["serve", "--ckpt", str(mlp_run), "--noise-mode", "random"])
    assert e.value.code == 2 and "unrecognized arguments: --noise-mode" in capsys.readouterr().err


def test_evaluate_has_no_noise_mode(mlp_run, capsys):
    # every metric fixes its own noise (evaluate_model never read it): the option was accepted and ignored
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--ckpt", str(mlp_run), "--noise-mode", "random", "--num-fid", "2", "--ppl-samples", "1"])
    assert e.value.code == 2 and "unrecognized arguments: --noise-mode" in capsys.readouterr().err


def test_reconstruct_refuses_data_and_n_with_images(mlp_run, tmp_path, capsys):
    from alae_fast.data import load_digits
    x, _ = load_digits("test", 32)
    f = tmp_path / "d.png"
    Image.fromarray(((x[0, 0].numpy() + 1) * 127.5).round().astype(np.uint8)).save(f)
    for extra in (["--n", "4"], ["--data", str(tmp_path)]):
        assert main(["reconstruct", "--ckpt", str(mlp_run), str(f), *extra, "--out", str(tmp_path / "r.png")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--data and --n choose the images when no IMAGES" in err[0], err
        assert not (tmp_path / "r.png").exists()


def test_reconstruct_titles_each_pair_with_its_file_name(mlp_run, tmp_path, capsys, monkeypatch):
    """reconstruct of IMAGES laid out two pairs a row under the column titles alone: a user could
    not tell which pair was which file. Each pair of a file now has its row, titled with the
    file's name as edit's strips are (cut in the middle past 20 characters, numbered when two
    folders hold the same name), with or without --refine-steps; held-out images (--n), which
    have no file names, keep their rows of untitled pairs."""
    import shutil

    import alae_fast.inference.pictures as pictures
    from alae_fast.inference.pictures import display_scale, pairs_grid_size

    digit, = _digit_files(tmp_path, 1)
    files = []
    for name in ("x/seven.png", "y/seven.png", "p/photo_of_my_handwritten_seven.png",
                 "q/photo_of_my_handwritten_seven.png", "digit_from_my_phone_camera_01.png", "z.png"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        files.append(shutil.copy(digit, tmp_path / name))
    # the same names in two folders: told apart by their folders (numbers said nothing of which)
    titles = ["x/seven.png", "y/seven.png", "p/photo_o...even.png", "q/photo_o...even.png", "digit_fro...a_01.png",
              "z.png"]
    drawn = []
    real = pictures.save_labelled_grid

    def record(cells, path, row_labels, col_labels, **kw):
        drawn.append((len(cells), len(cells[0]), list(row_labels), list(col_labels)))
        return real(cells, path, row_labels, col_labels, **kw)

    monkeypatch.setattr(pictures, "save_labelled_grid", record)
    out = tmp_path / "r.png"
    for extra, columns in (([], ["input x", "G(E(x))"]),
                           (["--refine-steps", "2"], ["input x", "G(E(x))", "refined G(w)"])):
        drawn.clear()
        capsys.readouterr()
        assert main(["reconstruct", "--ckpt", str(mlp_run), *map(str, files), *extra, "--out", str(out)]) == 0
        assert drawn == [(6, len(columns), titles, columns)], drawn  # a pair a row, beside its file's name
        said = capsys.readouterr().out
        assert "wrote 6 originals beside their reconstructions" in said and \
            "(a row each, titled with its file's name)" in said, said
        # and each row's file in full, in one line below
        assert said.splitlines()[-1] == "rows, top to bottom: " + "; ".join(
            f"{k} {t!r}: {f}" for k, (t, f) in enumerate(zip(titles, files), 1)), said
        with Image.open(out) as im:
            assert im.size == pairs_grid_size(6, 32, 32, scale=display_scale(32), per_pair=len(columns),
                                              row_titles=titles)
    drawn.clear()
    assert main(["reconstruct", "--ckpt", str(mlp_run), "--n", "4", "--out", str(tmp_path / "h.png")]) == 0
    assert drawn == [(2, 4, ["", ""], ["input x", "G(E(x))"] * 2)], drawn
    assert "titled with its file's name" not in capsys.readouterr().out


def test_generate_cutoff_without_truncation_is_refused(mlp_run, tmp_path, capsys):
    # psi 1 truncates nothing, so a --cutoff changed nothing (the run's config psi is 1 here)
    assert json.loads((mlp_run / "config.json").read_text())["model"]["truncation_psi"] == 1
    for extra, says in ((["--cutoff", "4"], "give --psi too"), (["--psi", "1", "--cutoff", "4"], "with --psi 1")):
        assert main(["generate", "--ckpt", str(mlp_run), *extra, "--out", str(tmp_path / "g.png")]) == 2, extra
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--cutoff 4 has no effect" in err[0] and says in err[0], err
    assert not (tmp_path / "g.png").exists()
    # with --psi: the MLP has 1 style input, which any cutoff (>= 1) truncates, as --psi alone does
    # (a cutoff that takes effect: test_generate_cutoff_at_or_past_the_style_inputs_is_refused)
    assert main(["generate", "--ckpt", str(mlp_run), "--psi", "0.5", "--cutoff", "4", "--n", "2",
                 "--out", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--cutoff 4: this model has 1 style input;" in err[0], err
    assert not (tmp_path / "g.png").exists()


def test_bench_refuses_options_its_mode_does_not_use(capsys, monkeypatch):
    # --profile ignored --ops/--rounds/--no-compile/--strict/--list/--device; --list ignored --json,
    # --strict and --rounds; --quick silently cut a given --rounds to 7
    import alae_fast.bench.report as report

    ran = []
    monkeypatch.setattr(report, "run", lambda args: ran.append(args) or 0)
    for argv, says in ((["--profile", "--ops", "bias_act"], "--ops: not used by --profile"),
                       (["--profile", "--rounds", "3", "--strict"], "--rounds, --strict: not used by --profile"),
                       (["--profile", "--device", "cuda"], "--device: not used by --profile"),
                       (["--list", "--json", "x.json"], "--json: not used by --list"),
                       (["--rounds", "0"], "expected an int >= 1")):
        with pytest.raises(SystemExit) as e:
            main(["bench", *argv])
        err = capsys.readouterr().err
        assert e.value.code == 2 and says in err, (argv, err)
    assert not ran
    assert main(["bench", "--profile", "--quick", "--json", "p.json"]) == 0
    monkeypatch.undo()

    class Measured(Exception):
        pass

    def measure(case, rounds):
        raise Measured(rounds)

    monkeypatch.setattr(report, "measure", measure)
    for argv, rounds in ((["--quick", "--rounds", "20"], 20), (["--quick"], 7), ([], 15)):
        with pytest.raises(Measured) as e:
            report.run(report.build_parser().parse_args([*argv, "--ops", "bias_act", "--no-compile",
                                                         "--device", "cpu"]))
        assert e.value.args == (rounds,), argv  # a given --rounds is used as given, --quick or not


def test_evaluate_num_fid_below_two_is_refused(mlp_run, capsys):
    # --num-fid 1 was raised to 2 generated images (and 1 real one) without a word
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--ckpt", str(mlp_run), "--num-fid", "1", "--ppl-samples", "1"])
    assert e.value.code == 2 and "--num-fid: expected an int >= 2" in capsys.readouterr().err


def test_train_refuses_style_mixing_options_for_an_mlp(tmp_path, capsys):
    # the MLP's G takes one style input: --mixing-prob and --style-mixing changed nothing; it has
    # no feature maps either, for --channels-last to lay out
    for extra in (["--mixing-prob", "0.5"], ["--style-mixing", "official"], ["--channels-last"]):
        assert main(["train", "--preset", "digits-mlp", "--out", str(tmp_path / "r"), "--kimg", "0.016",
                     *extra, *TINY]) == 2, extra
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{extra[0]}: 'digits-mlp' is an MLP ALAE" in err[0], err
        assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("extra,message", [
    # digits-32 trains with mixing_prob 0: --style-mixing official was recorded and mixed nothing
    (["--style-mixing", "official"], "--style-mixing official: 'digits-32' trains with mixing_prob 0 (no style "
                                     "mixing), so it would mix nothing; give --mixing-prob too (the paper's: 0.9)"),
    # the same through --set, which ran without a word
    (["--set", 'style_mixing="official"'], "--set style_mixing=\"official\": 'digits-32' trains with mixing_prob 0"),
    # given 0 itself: the advice to give --mixing-prob read as if it had not been
    (["--style-mixing", "per_sample", "--mixing-prob", "0"],
     "--style-mixing per_sample and --mixing-prob 0: a mixing probability of 0 mixes nothing; give a probability "
     "> 0 (the paper's: 0.9) or leave the mode out"),
    (["--style-mixing", "official", "--set", "mixing_prob=0"], "--style-mixing official and --set mixing_prob=0: "),
])
def test_train_refuses_style_mixing_for_a_run_that_mixes_with_probability_0(extra, message, tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "r"), "--kimg", "0.016", "--no-progress", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "r").exists()


def test_resume_with_style_mixing_on_a_run_without_it_says_to_leave_it_out(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--out", str(out), "--kimg", "0.016", "--no-progress", "--threads", "1", "--no-eval"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--kimg", "0.032", "--no-progress",
                 "--style-mixing", "official"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("--style-mixing official: the run trains with mixing_prob 0 (no style mixing) and a "
                              "resumed run keeps it, so the mode would mix nothing; leave it out") in err[0], err


@pytest.mark.parametrize("extra,message", [
    # the flag won silently while config.json's model recorded the --set value
    (["--mixing-prob", "0.2", "--set", "mixing_prob=0.9"], "--mixing-prob 0.2 and --set mixing_prob=0.9: the same "
                                                           "setting given twice with different values; give one"),
    (["--set", "flip=true", "--no-flip"], "--no-flip and --set flip=true: the same setting"),
    (["--set", "flip=false", "--flip"], "--flip and --set flip=false: the same setting"),
    (["--set", "ema_kimg=3", "--ema-kimg", "0.5"], "--ema-kimg 0.5 and --set ema_kimg=3.0: the same setting"),
    (["--set", 'w_avg_update="every_generate"', "--w-avg-update", "generator_step"],
     '--w-avg-update generator_step and --set w_avg_update="every_generate": the same setting'),
    (["--set", "d_zero_grad_step=true", "--no-d-zero-grad-step"], "--no-d-zero-grad-step and --set "
                                                                 "d_zero_grad_step=true: the same setting"),
    (["--set", 'augment="cutout"', "--augment", "translation"],
     '--augment translation and --set augment="cutout": the same setting'),
    (["--augment", "translation,flip"], "argument --augment: unknown augmentation 'flip'; expected a "
                                        "comma-separated list of translation, cutout, color (or 'none')"),
    (["--augment", "cutout,cutout"], "argument --augment: each augmentation may be named once"),
    (["--set", "lae_weight=0.5", "--lae-weight", "0.25"],
     "--lae-weight 0.25 and --set lae_weight=0.5: the same setting"),
    (["--lae-weight", "0"], "argument --lae-weight: expected a finite number > 0, got 0"),
    (["--lae-weight", "nan"], "argument --lae-weight: expected a finite number > 0, got nan"),
    (["--set", "lae_weight=-1"], "lae_weight must be a finite number in (0.0, inf]; got -1.0"),
    (["--set", "r1_interval=3", "--r1-interval", "2"],
     "--r1-interval 2 and --set r1_interval=3: the same setting given twice with different values; give one"),
    (["--set", "r1_interval=0"], "r1_interval must be >= 1; got 0"),
    # a pair of opposite flags: the last one won
    (["--flip", "--no-flip"], "argument --no-flip: not allowed with argument --flip"),
    (["--no-d-zero-grad-step", "--d-zero-grad-step"], "argument --d-zero-grad-step: not allowed with argument "
                                                      "--no-d-zero-grad-step"),
])
def test_train_refuses_a_setting_given_twice_differently(extra, message, tmp_path, capsys):
    try:
        code = main(["train", "--out", str(tmp_path / "r"), "--kimg", "0.016", "--no-progress", *extra])
    except SystemExit as e:  # the parser's refusal
        code = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "r").exists()


def test_a_flag_and_set_that_agree_are_taken(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--out", str(out), "--kimg", "0.016", "--no-progress", "--threads", "1", "--no-eval",
                 "--set", "flip=true", "--flip", "--set", "ema_kimg=0.5", "--ema-kimg", "0.5"]) == 0
    record = json.loads((out / "config.json").read_text())
    assert record["behaviour"]["flip"] is True and record["model"]["flip"] is True
    assert record["model"]["ema_kimg"] == 0.5


def test_noise_mode_is_refused_for_an_mlp(mlp_run, tmp_path, capsys):
    # the MLP's G has no noise inputs: a drawn noise mode changed nothing, in every command
    from alae_fast.data import load_digits
    x, _ = load_digits("test", 32)
    f = tmp_path / "d.png"
    Image.fromarray(((x[0, 0].numpy() + 1) * 127.5).round().astype(np.uint8)).save(f)
    ck = ["--ckpt", str(mlp_run)]
    for argv in (["generate", *ck], ["generate", *ck, "--seeds", "1"], ["reconstruct", *ck, str(f)],
                 ["interpolate", *ck, str(f), str(f)], ["edit", *ck, str(f), "--direction", "3-8=1"]):
        for mode in ("random", "batch", "const"):
            out = ["--outdir", str(tmp_path / "g")] if "--seeds" in argv else ["--out", str(tmp_path / "o.png")]
            assert main([*argv, "--noise-mode", mode, *out]) == 2, (argv, mode)
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and f"--noise-mode {mode}: " in err[0] and "has no noise inputs" in err[0], err
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "g").exists()
    assert main(["reconstruct", *ck, str(f), "--noise-mode", "none", "--out", str(tmp_path / "o.png")]) == 0


def test_train_refuses_schedule_entries_past_the_last_level(tmp_path, capsys):
    # the MLP has one level: lod_batch=[16, 8] trained at 16 and never used the 8
    assert main(["train", "--preset", "digits-mlp", "--out", str(tmp_path / "r"), *TINY,
                 "--schedule", "lod_batch=[16,8]"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--schedule lod_batch: 2 entries, but this schedule has 1 level (lod 0-0)" in err[0], err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("argv,message", [
    # trained levels 0-3, wrote checkpoints, then failed "decode: lod must be <= 3; got 4" and
    # left a run folder nothing could open
    (["--schedule", "max_lod=4"], "--schedule max_lod=4: the model of 'digits-32' is built for max_lod 3; a schedule "
                                  "follows its model, so change the model instead (--set layer_count=5)"),
    (["--schedule", "base_resolution=8"], "--schedule base_resolution=8: the model of 'digits-32' is built for "
                                          "base_resolution 4; a schedule follows its model (its levels start at 4x4"),
    (["--schedule", "channels=3"], "--schedule channels=3: the model of 'digits-32' is built for channels 1; a "
                                   "schedule follows its model, so change the model instead (--set channels=3)"),
    (["--preset", "digits-mlp", "--schedule", "max_lod=2"], "--schedule max_lod=2: the model of 'digits-mlp' is built "
                                                            "for max_lod 0; a schedule follows its model (an MLP"),
    (["--preset", "digits-mlp", "--set", "image_size=64"], "--set: the model of 'digits-mlp' is now built for "
                                                           "base_resolution 64, but the preset's schedule has "
                                                           "base_resolution 32; give --schedule base_resolution=64 too"),
])
def test_train_refuses_a_schedule_its_model_cannot_follow(argv, message, tmp_path, capsys):
    assert main(["train", *argv, "--out", str(tmp_path / "r"), "--no-progress", "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "r").exists()


def test_a_model_grown_by_set_takes_its_schedule_along(tmp_path, capsys):
    # the other side of the rule: a StyleALAE's schedule follows its layer_count and channels
    from alae_fast.training.setups import resolve_setup

    setup = resolve_setup("digits-32", {"layer_count": 5, "channels": 3})
    assert (setup.schedule.max_lod, setup.schedule.resolution, setup.schedule.channels) == (4, 64, 3)
    mlp = resolve_setup("digits-mlp", {"image_size": 16}, {"base_resolution": 16})
    assert (mlp.schedule.max_lod, mlp.schedule.resolution) == (0, 16)


def test_generate_cutoff_zero_is_refused(mlp_run, tmp_path, capsys):
    # --cutoff 0 truncated no style input: --psi then changed nothing
    with pytest.raises(SystemExit) as e:
        main(["generate", "--ckpt", str(mlp_run), "--psi", "0.5", "--cutoff", "0", "--out", str(tmp_path / "g.png")])
    assert e.value.code == 2 and "--cutoff: expected an int >= 1" in capsys.readouterr().err


def test_train_refuses_r1_interval_without_r1(tmp_path, capsys):
    assert main(["train", "--preset", "digits-mlp", "--out", str(tmp_path / "r"), *TINY, "--kimg", "0.016", "--no-eval",
                 "--r1-gamma", "0",
                 "--r1-interval", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--r1-interval 4: with --r1-gamma 0 there is no R1 term" in err[0], err
    assert not (tmp_path / "r").exists()
    # the interval given as the config field is the same setting: refused alike, before any folder
    assert main(["train", "--preset", "digits-32", "--out", str(tmp_path / "s"), "--kimg", "0.016", "--no-eval",
                 "--r1-gamma", "0", "--set", "r1_interval=4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--set r1_interval=4: with --r1-gamma 0 there is no R1 term" in err[0], err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("name, kind", [("images", "file"), ("checkpoints", "file"), ("config.json", "folder"),
                                        ("log.jsonl", "folder"), ("loss_curves.png", "folder"),
                                        ("eval.json", "folder")])
def test_train_refuses_a_run_folder_entry_of_the_wrong_kind_before_any_work(tmp_path, capsys, name, kind):
    # each fixed name of the run folder, the wrong kind: refused at start, not at the first
    # checkpoint, picture or the end (where a run used to meet them)
    out = tmp_path / "r"
    out.mkdir()
    if kind == "file":
        (out / name).write_text("in the way")
    else:
        (out / name).mkdir()
    assert main(["train", "--preset", "digits-mlp", "--out", str(out), *TINY, "--kimg", "0.016", "--no-eval"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"alae-fast train: error: --out {str(out)!r}: {str(out / name)!r} is a {kind}, where the run "), err
    assert sorted(p.name for p in out.iterdir()) == [name]  # nothing written


def test_train_says_which_flag_placed_a_run_folder_it_cannot_make(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "images").symlink_to(tmp_path / "gone")  # a dangling link: exists() is False, mkdir fails
    assert main(["train", "--preset", "digits-mlp", "--out", str(out), *TINY, "--kimg", "0.016", "--no-eval"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"alae-fast train: error: --out {str(out)!r}: cannot make the folder {str(out / 'images')!r} "
                   f"(File exists)"], err
    assert not (out / "config.json").exists()


def test_train_resume_of_a_folder_without_checkpoints_says_so(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    assert main(["train", "--resume", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"alae-fast train: error: --resume: {str(out)!r} has no checkpoints/ folder: not a run folder, "
                   f"or a run stopped before its first checkpoint"], err


def test_train_resume_without_the_first_runs_flags_continues_them(tmp_path, capsys):
    import json

    out = str(tmp_path / "r")
    flags = ["--seed", "5", "--r1-gamma", "3", "--r1-interval", "2", "--ema-kimg", "0.5", "--augment", "cutout, color",
             "--lae-weight", "0.25"]
    assert main(["train", "--preset", "digits-mlp", "--out", out, *TINY, "--kimg", "0.016", "--no-eval", *flags]) == 0
    assert main(["train", "--resume", "--preset", "digits-mlp", "--out", out, *TINY, "--kimg", "0.032", "--no-eval"]) == 0
    record = json.loads((tmp_path / "r" / "config.json").read_text())
    opts = record["options"]
    assert (opts["seed"], opts["r1_gamma"], opts["r1_interval"], opts["ema_half_life_kimg"]) == (5, 3.0, 2, 0.5)
    assert opts["augment"] == record["behaviour"]["augment"] == "cutout,color"
    assert opts["lae_weight"] == record["behaviour"]["lae_weight"] == 0.25
    # another augmentation would continue the run with other images in front of E
    capsys.readouterr()
    assert main(["train", "--resume", "--preset", "digits-mlp", "--out", out, *TINY, "--kimg", "0.048", "--no-eval",
                 "--augment", "none"]) == 2
    assert "--augment: checkpoint 'cutout,color', now ''" in capsys.readouterr().err


def test_resume_naming_another_preset_is_refused_with_the_flag(mlp_run, capsys):
    before = sorted(p.name for p in (mlp_run / "checkpoints").iterdir())
    assert main(["train", "--resume", "--preset", "digits-32", "--out", str(mlp_run), "--kimg", "1",
                 "--no-progress", "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume --preset digits-32: the run in --out trained 'digits-mlp'" in err[0], err
    assert sorted(p.name for p in (mlp_run / "checkpoints").iterdir()) == before
    assert main(["train", "--resume", "--preset", "digits-mlp", "--out", str(mlp_run), *TINY, "--kimg", "0.128",
                 "--seed", "4"]) == 2
    err = capsys.readouterr().err
    assert "--seed: checkpoint 0, now 4" in err, err


def test_resume_to_a_kimg_already_reached_is_refused(mlp_run, tmp_path, capsys):
    # it trained nothing, rewrote config.json with the shorter length and exited 0
    import shutil

    run = tmp_path / "run"
    shutil.copytree(mlp_run, run)
    before = (run / "config.json").read_text()
    assert main(["train", "--resume", "--preset", "digits-mlp", "--out", str(run), "--kimg", "0.032", *TINY]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--kimg 0.032: the run is already at 0.064 kimg" in err[0], err
    assert (run / "config.json").read_text() == before


def test_generate_seeds_refuses_batch_noise(tmp_path, capsys):
    # with --seeds every image is drawn alone: batch gave exactly what random gives
    run = _toy_style_run(tmp_path)
    capsys.readouterr()
    assert main(["generate", "--ckpt", str(run), "--seeds", "0-1", "--noise-mode", "batch",
                 "--outdir", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--noise-mode batch shares one noise draw" in err[0], err
    assert not (tmp_path / "g").exists()
    assert main(["generate", "--ckpt", str(run), "--n", "2", "--noise-mode", "batch",
                 "--out", str(tmp_path / "grid.png")]) == 0


def test_bench_unknown_ops_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "--ops", "nonsense", "--list"])
    assert e.value.code == 2 and "unknown --ops ['nonsense']" in capsys.readouterr().err


def test_resume_applies_set_to_the_runs_own_preset(mlp_run, tmp_path, capsys):
    # without --preset, --set/--schedule given again were applied to the default digits-32,
    # which refused the MLP's fields (encoder_hidden) before the checkpoint was even read
    import shutil

    run = tmp_path / "run"
    shutil.copytree(mlp_run, run)
    assert main(["train", "--resume", "--out", str(run), *TINY, "--kimg", "0.08", "--no-eval"]) == 0
    state = torch.load(sorted((run / "checkpoints").glob("*.pt"))[-1], map_location="cpu", weights_only=False)
    assert state["trainer"]["images_seen"] == 80
    capsys.readouterr()
    # one of them alone, or an untouched field at the run's value, is the run's own: accepted
    assert main(["train", "--resume", "--out", str(run), "--set", "latent_size=8", "--set", "discriminator_layers=3",
                 "--schedule", "lod_batch=[16]", "--kimg", "0.096", "--no-eval", "--no-progress", "--threads", "1"]) == 0
    capsys.readouterr()
    # another value is refused, naming just that field and both values
    assert main(["train", "--resume", "--out", str(run), "--set", "latent_size=12", "--schedule", "lod_batch=[8]",
                 "--kimg", "0.12", "--no-eval", "--no-progress", "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("(--set latent_size: checkpoint 8, now 12; --schedule lod_batch: checkpoint [16], "
                              "now [8])") in err[0], err


def test_resume_accepts_the_values_a_run_used_given_explicitly(mlp_run, tmp_path, capsys):
    # the first run left --ema-kimg, --no-flip and --w-avg-update to the config (None in the
    # checkpoint); giving the values it used was refused as "checkpoint None, now ..."
    import json
    import shutil

    run = tmp_path / "run"
    shutil.copytree(mlp_run, run)
    behaviour = json.loads((run / "config.json").read_text())["behaviour"]
    ema = json.loads((run / "config.json").read_text())["model"].get("ema_kimg", 10.0)
    assert main(["train", "--resume", "--out", str(run), "--kimg", "0.08", "--no-eval", "--no-progress", "--threads",
                 "1", "--ema-kimg", str(ema), "--no-flip" if not behaviour["flip"] else "--flip", "--w-avg-update",
                 behaviour["w_avg_update"]]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(run), "--kimg", "0.1", "--no-eval", "--no-progress", "--threads",
                 "1", "--ema-kimg", str(ema * 2)]) == 2
    err = capsys.readouterr().err
    assert f"--ema-kimg: checkpoint {float(ema)!r}, now {float(ema * 2)!r}" in err, err
    # a --kimg equal to the length reached continues like a plain resume: nothing to train
    assert main(["train", "--resume", "--out", str(run), "--kimg", "0.08", "--no-eval", "--no-progress",
                 "--threads", "1"]) == 0
    assert "already trained its 0.08 kimg: nothing left to train" in capsys.readouterr().out
    # config.json still records the flags the run was made with
    opts = json.loads((run / "config.json").read_text())["options"]
    assert opts["preset"] == "digits-mlp" and opts["model_overrides"]["latent_size"] == 8, opts


def test_resume_of_a_finished_run_says_it_only_evaluates(mlp_run, tmp_path, capsys):
    # it said "training ... for 0.064 kimg" and then trained nothing
    import shutil

    run = tmp_path / "run"
    shutil.copytree(mlp_run, run)
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(run), "--no-progress", "--threads", "1", "--no-eval"]) == 0
    out = capsys.readouterr().out
    assert "'digits-mlp' already trained its 0.064 kimg: nothing left to train (a longer --kimg continues it)" in out
    assert "training 'digits-mlp'" not in out


def test_resume_keeps_the_runs_thread_count(mlp_run, tmp_path):
    # a CPU run's course depends on its thread count: the printed continue-line
    # (alae-fast train --resume --out DIR) must not switch a --threads 1 run to torch's default
    import json
    import shutil

    run = tmp_path / "run"
    shutil.copytree(mlp_run, run)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert main(["train", "--resume", "--out", str(run), "--kimg", "0.08", "--no-eval", "--no-progress"]) == 0
        assert torch.get_num_threads() == 1
        assert json.loads((run / "config.json").read_text())["options"]["threads"] == 1
    finally:
        torch.set_num_threads(before)


def test_a_default_thread_run_records_its_count_and_a_resume_with_another_says_so(tmp_path, capsys):
    # the checkpoint recorded threads None for a run on torch's default, so a resume on a
    # machine with another default, or with another --threads, diverged without a word
    import json

    run = tmp_path / "run"
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        default_threads = TINY[:TINY.index("--threads")]  # torch's default: 2, set above
        assert main(["train", "--preset", "digits-mlp", *default_threads, "--kimg", "0.032", "--no-eval",
                     "--no-progress", "--out", str(run)]) == 0
        ckpt = torch.load(sorted((run / "checkpoints").glob("*.pt"))[-1], map_location="cpu", weights_only=False)
        assert ckpt["threads"] == 2
        torch.set_num_threads(1)  # another machine's default: the run's own count is kept
        assert main(["train", "--resume", "--out", str(run), "--kimg", "0.048", "--no-eval", "--no-progress"]) == 0
        assert torch.get_num_threads() == 2 and "not bit-identically" not in capsys.readouterr().out
        assert main(["train", "--resume", "--out", str(run), "--kimg", "0.064", "--no-eval", "--no-progress",
                     "--threads", "1"]) == 0
        out = capsys.readouterr().out
        assert ("note: --threads 1: the run used 2 threads until now; it continues, but not bit-identically "
                "(another thread count sums in another order)") in out, out
        assert json.loads((run / "config.json").read_text())["options"]["threads"] == 1
    finally:
        torch.set_num_threads(before)


def test_resume_to_a_shorter_kimg_than_the_run_was_started_for_says_so(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--preset", "digits-mlp", *TINY, "--kimg", "0.096", "--checkpoint-kimg", "0.032", "--keep",
                 "10", "--no-eval", "--out", str(run)]) == 0
    for path in (run / "checkpoints").glob("*.pt"):  # as if stopped at 0.032 kimg
        if int(path.stem.split("-")[1]) > 32:
            path.unlink()
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(run), "--kimg", "0.064", "--no-eval", "--no-progress"]) == 0
    assert "note: --kimg 0.064 ends the run before the 0.096 kimg it was started for" in capsys.readouterr().out


def test_the_installed_command_is_console_main():
    # console_main ignores signals while a finished run's interpreter exits; an install whose
    # script still called main killed saved runs with rc 143
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "alae-fast"]
    assert script.value == "alae_fast.cli:console_main", (script.value, "reinstall: pip install -e .")


# --- where a command writes, and bad numbers: refused before any work, naming the flag ------------

def _refused(capsys, argv) -> str:
    """stderr of ``main(argv)``, which must exit 2 (argparse's SystemExit(2) or the error boundary's)."""
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    assert rc == 2, argv
    return capsys.readouterr().err


def test_output_paths_are_checked_before_any_work(mlp_run, tmp_path, capsys, monkeypatch):
    import alae_fast.cli as cli

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "folder"
    folder.mkdir()
    (tmp_path / "link").symlink_to(folder)
    blocker = tmp_path / "blocker.png"
    blocker.write_bytes(b"x")
    loads = []
    monkeypatch.setattr(cli.runs, "open_run", lambda args: loads.append(args) or pytest.fail("loaded a run"))
    gen = ["generate", "--ckpt", str(mlp_run), "--n", "2", "--out"]
    cases = [
        (gen + ["folder"], "--out 'folder' is a folder; give a file name (e.g. 'folder/output.png')"),
        (gen + ["link"], "--out 'link' is a folder"),  # the link would have been replaced by a PNG
        (gen + ["x.jpg"], "--out 'x.jpg': pictures are written as PNG; give a name ending in .png"),
        (gen + ["blocker.png/x.png"], f"--out 'blocker.png/x.png': '{blocker}' is a file, not a folder"),
        (gen + ["/proc/nope.png"], "--out '/proc/nope.png': cannot write there"),
        (["generate", "--ckpt", str(mlp_run), "--seeds", "0-1", "--outdir", "blocker.png"],
         "--outdir 'blocker.png' is a file; give a folder"),
        (["evaluate", "--ckpt", str(mlp_run), "--out", "metrics.txt"],
         "--out 'metrics.txt': the metrics are written as JSON; give a name ending in .json"),
        (["train", "--out", "blocker.png"], "--out 'blocker.png' is a file; train writes a folder there"),
        (["train", "--out", "/proc/run"], "--out '/proc/run': cannot write there"),
        (["directions", "--ckpt", str(mlp_run), "--out", "blocker.png"],
         "--out 'blocker.png' is a file; directions writes a folder there"),
    ]
    for argv, said in cases:
        err = _refused(capsys, argv)
        assert said in err and "Traceback" not in err, (argv, err)
    assert not loads and (tmp_path / "link").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker.png", "folder", "link"]  # no temps, no folders


def test_save_png_names_the_file_asked_for(tmp_path):
    from alae_fast.inference.pictures import save_png

    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    with pytest.raises(IsADirectoryError, match="is a folder"):
        save_png(picture, tmp_path)
    with pytest.raises(OSError) as e:  # /proc exists but takes no new files: the write itself fails
        save_png(picture, "/proc/p.png")
    assert e.value.filename == "/proc/p.png" and ".tmp-" not in str(e.value)


def test_convert_out_must_be_named_as_a_checkpoint(tmp_path, capsys, monkeypatch):
    # a user's trial: convert --out o.png wrote a torch checkpoint under a picture's name,
    # replacing the picture; refused now as encode's --out o.png is, before the file is read
    import alae_fast.inference.loading as loading

    official = HERE / "data" / "official-alae" / "alae-small.pth"
    monkeypatch.setattr(loading, "convert_official", lambda *a, **k: pytest.fail("read the checkpoint"))
    picture = tmp_path / "o.png"
    picture.write_bytes(b"a picture")
    for out in (picture, tmp_path / "o", tmp_path / "o.pt.png", tmp_path / "o.npy"):
        err = _refused(capsys, ["convert", str(official), "--out", str(out)]).strip().splitlines()
        assert err == [f"alae-fast convert: error: --out {str(out)!r}: the checkpoint is written with torch.save; "
                       f"give a name ending in .pt or .pth"], err
    assert picture.read_bytes() == b"a picture" and sorted(p.name for p in tmp_path.iterdir()) == ["o.png"]
    err = _refused(capsys, ["convert", str(official), "--out", str(tmp_path)])
    assert f"--out {str(tmp_path)!r} is a folder; give a file name (e.g. {str(tmp_path / 'output.pt')!r})" in err
    monkeypatch.undo()
    for name in ("c.pt", "c.pth", "C.PTH"):
        assert main(["convert", str(official), "--out", str(tmp_path / name)]) == 0
        assert capsys.readouterr().out.strip() == f"wrote {tmp_path / name}"


def test_numbers_and_counts_are_refused_by_the_flag(mlp_run, capsys):
    cases = [
        (["train", "--r1-gamma", "nan"], "argument --r1-gamma: expected a finite number >= 0, got nan"),
        (["train", "--mixing-prob", "1.5"], "argument --mixing-prob: expected a number in [0, 1], got 1.5"),
        (["train", "--kimg", "inf"], "argument --kimg: expected a finite number > 0, got inf"),
        (["train", "--seed", "-3"], "argument --seed: expected an int in [0, 2**63), got -3"),
        (["generate", "--ckpt", str(mlp_run), "--seed", str(2 ** 63)], "argument --seed: expected an int in [0, 2**63)"),
        (["interpolate", "--ckpt", str(mlp_run), "a.png", "b.png", "--steps", "1"],
         "argument --steps: expected an int >= 2, got 1"),
        (["edit", "--ckpt", str(mlp_run), "a.png", "--direction", "1-7=1", "--steps", "1"],
         "argument --steps: expected an int >= 2, got 1"),
        (["edit", "--ckpt", str(mlp_run), "a.png", "--direction", "1-7=1e9"], "--direction '1-7=1e9': the amount"),
        (["convert", str(mlp_run), "--out", "x.pt"], "is a folder; convert reads one checkpoint file"),
    ]
    for argv, said in cases:
        err = _refused(capsys, argv)
        assert said in err and "Traceback" not in err, (argv, err)
    assert main(["generate", "--ckpt", str(mlp_run), "--n", "1", "--out", str(mlp_run / "one.png")]) == 0
    assert "wrote 1 sample " in capsys.readouterr().out


def test_a_bad_alae_fast_impl_is_one_line_for_every_command():
    env = {**os.environ, "ALAE_FAST_IMPL": "bogus"}
    for command in (["info"], ["presets"], ["bench", "--list"]):
        out = subprocess.run([sys.executable, "-m", "alae_fast", *command], capture_output=True, text=True, env=env,
                             cwd="/")
        lines = [ln for ln in out.stderr.splitlines() if ln.strip() and "compiled ops" not in ln]
        assert out.returncode == 2 and lines == [
            f"alae-fast {command[0]}: error: ALAE_FAST_IMPL must be 'auto' or 'ref'; got 'bogus'"], out.stderr
    code = ("import torch, alae_fast\n"
            "try:\n    alae_fast.ops.bias_act(torch.randn(3))\n"
            "except ValueError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd="/")
    assert out.stdout.strip() == "ALAE_FAST_IMPL must be 'auto' or 'ref'; got 'bogus'", out.stderr


def _written_picture_sizes(monkeypatch) -> list[tuple[int, int]]:
    """(width, height) of every picture the commands hand to save_png from now on; nothing is
    encoded (a 67-Mpixel PNG takes seconds), the array is the picture that would be written."""
    import alae_fast.inference.pictures as pictures

    sizes = []

    def record(array, path):
        sizes.append((array.shape[1], array.shape[0]))
        return Path(path)

    monkeypatch.setattr(pictures, "save_png", record)
    return sizes


def test_picture_sizes_are_capped_before_any_image_is_made(mlp_run, noisy_style_run, tmp_path, capsys, monkeypatch):
    """A --n of ten million took 23 GB before the kernel killed it, and --n 4096 passed a check
    that forgot the 4x enlargement and the gaps, worked 9 s and failed in save_image_grid: every
    picture command refuses, before any model work or file, a picture of more than
    MAX_PICTURE_PIXELS as it would be written, naming the flag and the largest value that fits;
    that value is accepted and its picture fits, one more is refused."""
    import alae_fast.cli as cli
    import alae_fast.edit.commands as edit_commands
    import alae_fast.inference.sampling as sampling
    from alae_fast.inference.pictures import MAX_PICTURE_PIXELS

    real = {name: getattr(sampling, name) for name in ("sample_images", "interpolate_latents")}
    for name in ("sample_images", "generate_seeds", "interpolate_latents", "style_mix_tiles"):
        monkeypatch.setattr(sampling, name, lambda *a, **k: pytest.fail("made images before the size check"))
    monkeypatch.setattr(edit_commands, "edit_strip", lambda *a, **k: pytest.fail("edited before the size check"))
    monkeypatch.setattr(edit_commands, "resolve_directions",
                        lambda *a, **k: pytest.fail("fitted directions before the size check"))
    a, b = _digit_files(tmp_path, 2)
    ck = ["--ckpt", str(mlp_run)]
    styled = ["--ckpt", str(noisy_style_run)]  # 8 style inputs: the titles say which
    tail = "more than the 67,108,864 (2**26) one picture may hold; at most "
    # 32x32 digits drawn 4 times larger, 2 pixels apart: 60x60 fit in 8192x8192 (8168), 61 columns do not
    cases = [
        (["generate", *ck, "--n", "4096"], "--n 4096: the grid (4096 images of 32x32, drawn 4 times larger, 2 pixels "
                                           "apart) would be 8712x8712 pixels (75,898,944), " + tail + "--n 3600 ("),
        (["generate", *ck, "--n", "3601"], "would be 8304x8168 pixels (67,827,072), " + tail + "--n 3600"),
        (["generate", *ck, "--n", "10000000"], tail + "--n 3600"),
        (["generate", *ck, "--seeds", "0-3999", "--grid", "--outdir", str(tmp_path / "og")],
         ("--seeds (4000 seeds) --grid: their grid (4000 images of 32x32", tail + "3600 seeds with --grid")),
        (["interpolate", *ck, a, b, "--steps", "65000"],  # 65002 titles unmeasured: the tiles alone are too large
         "--steps 65000: the strip of A, 65000 decoded images and B (65002 images of 32x32, drawn 4 times larger, 4 "
         "pixels apart) would be at least 8580276x144 pixels (1,235,559,744), " + tail + "--steps 3320"),
        (["interpolate", *ck, a, b, "--steps", "3321"], "would be 438648x153 pixels (67,113,144), " + tail
         + "--steps 3320"),
        (["edit", *ck, a, b, "--direction", "1-7=1", "--steps", "40000"],
         ("--steps 40000 with 2 IMAGES: the picture (2 strips of 40000 images of 32x32",
          tail + "--steps 1763 with 2 IMAGES")),
        (["edit", *ck, a, b, "--direction", "1-7=1", "--steps", "1764"], tail + "--steps 1763 with 2 IMAGES"),
        (["edit", *ck, *[a] * 3000, "--direction", "1-7=1", "--steps", "4000"],
         tail + "--steps 3257 with 1 IMAGE"),  # neither flag alone can be lowered enough: the other way
        # IMAGES: a pair a row beside its file's name (here 'digit0.png (k)'), 393 pixels wide
        (["reconstruct", *ck, *[a] * 1765], ("1765 IMAGES: the picture of 1765 originals beside their "
                                             "reconstructions (3530 images of 32x32, drawn 4 times larger, 8 pixels "
                                             "apart, a pair a row beside its file's name, under their titles) would "
                                             "be 393x240076 pixels (94,349,868), " + tail + "1255 IMAGES")),
        (["reconstruct", *ck, *[a] * 1256], "would be 393x170852 pixels (67,144,836), " + tail + "1255 IMAGES"),
        (["style-mix", *styled, "--rows", "300", "--cols", "40"],
         "--rows 300 --cols 40: the table (901 rows of 41 images of 32x32, drawn 4 times larger, 4 pixels apart, "
         "beside and under their titles) would be 5527x118953 pixels (657,453,231), " + tail
         + "--rows 30 with --cols 40, or --cols 2 with --rows 300"),
        (["style-mix", *styled, "--rows", "31", "--cols", "40"], tail + "--rows 30 with --cols 40"),
        (["style-mix", *styled, "--rows", "300", "--cols", "3"], (tail, ", or --cols 2 with --rows 300")),
        (["style-mix", *styled, "--rows", "100000", "--cols", "100000"], "would be at least 13200144x39600144 pixels"),
        (["style-mix", *styled, "--rows", "100000", "--cols", "100000"], tail + "--rows 218 with --cols 4"),
    ]

    class HeldOut:  # reconstruct --n: as many held-out images as asked for, none of them read
        def __len__(self):
            return 10 ** 6

        def get_batch(self, index):
            pytest.fail("read held-out images before the size check")

    monkeypatch.setattr(cli.image_commands, "_images_to_reconstruct",
                        lambda data, run, given: (HeldOut(), "held-out", "own", None, None))
    cases += [(["reconstruct", *ck, "--n", "1765"], ("--n 1765: the picture of 1765 originals", tail + "--n 1764")),
              (["reconstruct", *ck, "--n", "40000"], tail + "--n 1764")]
    for argv, said in cases:
        err = _refused(capsys, argv).strip().splitlines()
        assert len(err) == 1 and all(part in err[0] for part in ((said,) if isinstance(said, str) else said)), \
            (argv, err)
    assert not (tmp_path / "og").exists()  # the grid was refused before the first seedNNNN.png

    # the largest values said are accepted, and their pictures (as save_png gets them) fit
    sizes = _written_picture_sizes(monkeypatch)
    for name, fn in real.items():
        monkeypatch.setattr(sampling, name, fn)
    monkeypatch.setattr(sampling, "style_mix_tiles", lambda run, rows, cols, seed: (
        torch.zeros(cols, 1, 32, 32), torch.zeros(3 * rows, 1, 32, 32), torch.zeros(3 * rows, cols, 1, 32, 32),
        ["coarse"] * rows + ["middle"] * rows + ["fine"] * rows))
    monkeypatch.setattr(edit_commands, "resolve_directions", lambda *a, **k: ({"x": np.ones(8)}, {"x": 1.0}))
    monkeypatch.setattr(edit_commands, "edit_strip", lambda run, x, *a, steps, **k: torch.zeros(len(x) * steps, 1,
                                                                                                     32, 32))
    out = ["--out", str(tmp_path / "p.png")]
    for argv, size in ((["generate", *ck, "--n", "3600", *out], (8168, 8168)),
                       (["interpolate", *ck, a, b, "--steps", "3320", *out], (438516, 153)),
                       (["edit", *ck, a, b, "--direction", "1-7=1", "--steps", "1763", *out], (232918, 288)),
                       (["reconstruct", *ck, *[a] * 1255, *out], (393, 170716)),
                       (["style-mix", *styled, "--rows", "30", "--cols", "40", *out], None),
                       (["style-mix", *styled, "--rows", "300", "--cols", "2", *out], None)):
        sizes.clear()
        assert main(argv) == 0, argv
        assert len(sizes) == 1 and sizes[0][0] * sizes[0][1] <= MAX_PICTURE_PIXELS, (argv, sizes)
        assert size is None or sizes[0] == size, (argv, sizes)


def test_reconstruct_says_when_the_data_hold_fewer_images_than_n(mlp_run, tmp_path, capsys):
    folder = tmp_path / "few"
    folder.mkdir()
    rng = np.random.default_rng(1)
    from PIL import Image

    for i in range(20):  # a folder holds out a tenth: 2 held-out images
        Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(folder / f"{i}.png")
    capsys.readouterr()
    # the folder is not the run's (it trained on the digits): all 20 are unseen, not its 2 held out
    assert main(["reconstruct", "--ckpt", str(mlp_run), "--data", str(folder), "--n", "30",
                 "--out", str(tmp_path / "r.png")]) == 0
    out = capsys.readouterr().out
    assert "note: the data's unseen images number 20, fewer than --n 30: all of them are shown" in out, out
    assert "wrote 20 unseen originals beside their reconstructions" in out
    # the run's own data: its held-out split (the digits hold out 297)
    assert main(["reconstruct", "--ckpt", str(mlp_run), "--n", "300", "--out", str(tmp_path / "d.png")]) == 0
    out = capsys.readouterr().out
    assert "note: the data's held-out images number 297, fewer than --n 300" in out, out
    assert "wrote 297 held-out originals beside" in out


def test_argparse_names_the_kind_of_value_not_a_private_function(mlp_run, tmp_path, capsys):
    # --seed says its range itself (decimal digits, [0, 2**63)), not argparse's "invalid int value"
    assert "argument --seed: expected an int in [0, 2**63), got 2**70" in _refused(capsys, ["train", "--seed", "2**70"])
    cases = [(["evaluate", "--ckpt", str(mlp_run), "--num-fid", "nan"], "argument --num-fid: invalid int value"),
             (["train", "--kimg", "lots"], "argument --kimg: invalid number value: 'lots'"),
             (["interpolate", "--ckpt", str(mlp_run), "a", "b", "--steps", "x"], "argument --steps: invalid int value")]
    for argv, said in cases:
        err = _refused(capsys, argv)
        assert said in err and "_" not in err.split("invalid", 1)[1].split("value")[0], (argv, err)
    err = _refused(capsys, ["evaluate", "--ckpt", str(mlp_run), "--inception-weights", str(tmp_path)])
    assert f"--inception-weights {str(tmp_path)!r} is a folder; give the InceptionV3 weights file" in err


# --- a new user's trial: honest counts and settings, seeded noise, refusals that name the flag ---------

@pytest.fixture(scope="module")
def noisy_style_run(tmp_path_factory):
    """A digits-32 StyleALAE of a few steps (8 style inputs, noise inputs) whose EMA noise strengths
    are set to 1: a few steps leave them near 0, where a noise draw changes no pixel of a PNG, and
    a test of seeded noise would pass whether or not the noise was seeded."""
    out = tmp_path_factory.mktemp("cli-noise") / "d32"
    with one_thread():
        assert main(["train", "--preset", "digits-32", "--out", str(out), "--kimg", "0.032", "--no-eval",
                     "--no-progress", "--threads", "1", "--schedule", "lod_kimg=[0.008]",
                     "--schedule", "lod_batch=[8]"]) == 0
    path = list_checkpoints(out / "checkpoints")[-1][1]
    state = load_checkpoint(path)
    ema = state["trainer"]["ema"]["module"]
    strengths = [k for k in ema if k.endswith("noise_weight")]
    assert strengths
    for k in strengths:
        ema[k] = torch.ones_like(ema[k])
    torch.save(state, path)
    return out


def _digit_files(tmp_path: Path, n: int = 2) -> list[str]:
    from alae_fast.data import load_digits

    x, _ = load_digits("test", 32)
    files = []
    for i in range(n):
        p = tmp_path / f"digit{i}.png"
        Image.fromarray(((x[i, 0].numpy() + 1) * 127.5).round().astype(np.uint8)).save(p)
        files.append(str(p))
    return files


def test_generate_writes_a_repeated_seed_once_and_counts_the_files(mlp_run, tmp_path, capsys):
    # --seeds 1,1,1 said "wrote 3 images" and wrote seed0001.png alone
    out = tmp_path / "d"
    assert main(["generate", "--ckpt", str(mlp_run), "--seeds", "1,1,1", "--outdir", str(out)]) == 0
    text = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["seed0001.png"]
    assert f"wrote 1 image seedNNNN.png (psi 1.0, noise none, lod 0, 32x32) to {out}; --seeds lists 3 seeds, " \
           f"1 distinct" in text, text
    # the grid shows the seeds as listed, repeats included; each file is the seed's picture
    assert main(["generate", "--ckpt", str(mlp_run), "--seeds", "2,1,2", "--outdir", str(tmp_path / "g"),
                 "--grid"]) == 0
    text = capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["seed0001.png", "seed0002.png"]
    assert "wrote 2 images seedNNNN.png" in text and "--seeds lists 3 seeds, 2 distinct" in text, text
    grid = _png(tmp_path / "g-grid.png")
    # 3 tiles, 2 a row (ceil(sqrt(3))), 32 px enlarged 4 times, 2 px (8 enlarged) apart
    tile = lambda r, c: grid[8 + r * 136:8 + r * 136 + 128, 8 + c * 136:8 + c * 136 + 128]  # noqa: E731
    big = lambda seed: np.repeat(np.repeat(_png(tmp_path / "g" / f"seed{seed:04d}.png"), 4, 0), 4, 1)  # noqa: E731
    assert np.array_equal(tile(0, 0), big(2)) and np.array_equal(tile(0, 1), big(1))
    assert np.array_equal(tile(1, 0), big(2))
    # distinct seeds: no note
    assert main(["generate", "--ckpt", str(mlp_run), "--seeds", "1-2", "--outdir", str(tmp_path / "h")]) == 0
    assert "distinct" not in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # torch's note on scripting the fake file
def test_evaluate_refuses_a_wrong_inception_file_in_one_line_before_any_work(mlp_run, tmp_path, capsys,
                                                                              monkeypatch):
    # a PNG given as --inception-weights printed torch's 8 lines, advising weights_only=False
    import alae_fast.cli as cli

    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "some.png")
    torch.save({"conv.weight": torch.zeros(3, 3)}, tmp_path / "other_net.pth")
    (tmp_path / "pickled.pt").write_bytes(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.")
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "linear_script.pt")
    monkeypatch.setattr(cli.runs, "open_run", lambda args: pytest.fail("loaded the run before checking the file"))
    cases = [("some.png", "could not be read as a torch state dict or TorchScript file"),
             ("pickled.pt", "could not be read as a torch state dict or TorchScript file"),
             ("missing.pth", "does not exist"),
             ("other_net.pth", "is not an InceptionV3 state dict with torchvision's names"),
             ("linear_script.pt", "does not compute Inception features")]
    for name, said in cases:
        path = str(tmp_path / name)
        assert main(["evaluate", "--ckpt", str(mlp_run), "--inception-weights", path]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, (name, err)
        assert err[0].startswith(f"alae-fast evaluate: error: --inception-weights {path!r}") and said in err[0], err
        assert "pt_inception-2015-12-05" in err[0] and "weights_only" not in err[0], err
    # the files the error asks for pass: an InceptionV3 state dict with torchvision's names
    from alae_fast.eval import InceptionV3Features

    torch.save(InceptionV3Features().state_dict(), tmp_path / "inception.pth")
    assert cli.evaluate.check_inception_weights(str(tmp_path / "inception.pth")) is None


def test_evaluate_num_fid_help_says_it_also_sets_the_mse_images(mlp_run, tmp_path, capsys):
    # the help said "images per FID set" while the reconstruction MSE was measured on as many images
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert ("images per FID set, >= 2 (default 1000, or all the real images where they are fewer, as the report "
            "says; a number given above them is warned of); the real images are the held-out split of the run's own data (the training split only where there is none), "
            "or all images of other --data, also reconstructed for the reconstruction MSE") in help_text, help_text
    assert main(["evaluate", "--ckpt", str(mlp_run), "--num-fid", "5", "--ppl-samples", "1", "--json",
                 "--out", str(tmp_path / "m.json")]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["reconstruction_images"] == 5 and m["fid_images"]["real"] == 5


def test_picture_commands_seed_their_random_noise(noisy_style_run, tmp_path, capsys):
    # reconstruct, interpolate and style-mix with --noise-mode random drew unseeded noise: another
    # picture each run, and no --seed to repeat one
    a, b = _digit_files(tmp_path)
    commands = {"reconstruct": ["--n", "3"], "interpolate": [a, b, "--steps", "3"], "style-mix": ["--rows", "1",
                                                                                                   "--cols", "2"]}
    for name, extra in commands.items():
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert "--seed" in capsys.readouterr().out, name

        def picture(*flags, tag):
            path = tmp_path / f"{name}-{tag}.png"
            assert main([name, "--ckpt", str(noisy_style_run), *extra, *flags, "--out", str(path)]) == 0, flags
            return _png(path)

        first = picture("--noise-mode", "random", tag="1")
        assert np.array_equal(first, picture("--noise-mode", "random", tag="2")), name
        assert np.array_equal(first, picture("--noise-mode", "random", "--seed", "0", tag="3")), name
        other = picture("--noise-mode", "random", "--seed", "7", tag="4")
        assert not np.array_equal(first, other), name  # the noise shows: the seed is what repeats it
        assert np.array_equal(other, picture("--noise-mode", "random", "--seed", "7", tag="5")), name
        batch = picture("--noise-mode", "batch", "--seed", "7", tag="6")
        assert np.array_equal(batch, picture("--noise-mode", "batch", "--seed", "7", tag="7")), name
        out = capsys.readouterr().out
        assert "noise random" in out and "seed 7" in out, out
    # like edit's, --seed of reconstruct and interpolate seeds only noise: without drawn noise it is refused
    for name in ("reconstruct", "interpolate"):
        for mode in ([], ["--noise-mode", "const"]):
            assert main([name, "--ckpt", str(noisy_style_run), *commands[name], *mode, "--seed", "3",
                         "--out", str(tmp_path / "x.png")]) == 2, (name, mode)
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and "--seed seeds G's noise" in err[0], err
    assert not (tmp_path / "x.png").exists()
    with pytest.raises(SystemExit) as e:
        main(["reconstruct", "--ckpt", str(noisy_style_run), "--seed", "-1"])
    assert e.value.code == 2 and "argument --seed: expected an int in [0, 2**63)" in capsys.readouterr().err


def test_generate_says_every_setting_of_its_pictures(noisy_style_run, tmp_path, capsys):
    # "(psi 0.7, lod 5)" left out the cutoff and the noise mode that shaped the picture
    from alae_fast.inference.loading import load_run

    lod = load_run(noisy_style_run).phase.lod
    run = str(noisy_style_run)
    assert main(["generate", "--ckpt", run, "--n", "4", "--psi", "0.5", "--cutoff", "2",
                 "--out", str(tmp_path / "g.png")]) == 0
    assert f"wrote 4 samples (seed 0, psi 0.5, cutoff 2, noise const, lod {lod}) to" in capsys.readouterr().out
    assert main(["generate", "--ckpt", run, "--n", "4", "--psi", "0.5", "--seed", "3", "--noise-mode", "random",
                 "--out", str(tmp_path / "g.png")]) == 0
    assert f"wrote 4 samples (seed 3, psi 0.5, noise random, lod {lod}) to" in capsys.readouterr().out
    assert main(["generate", "--ckpt", run, "--seeds", "4", "--psi", "0.5", "--cutoff", "3", "--noise-mode", "none",
                 "--outdir", str(tmp_path / "s")]) == 0
    assert f"wrote 1 image seedNNNN.png (psi 0.5, cutoff 3, noise none, lod {lod}, 32x32) to" in \
           capsys.readouterr().out


def test_every_command_on_a_run_folder_names_the_older_checkpoint_it_used(mlp_run, tmp_path, capsys):
    # the newest checkpoint damaged: "trying an older one" was said, but never which one was used
    import shutil

    run = tmp_path / "run"
    shutil.copytree(mlp_run, run)
    (run / "checkpoints" / "ckpt-9999999999.pt").write_bytes(b"not a checkpoint")
    used = run / "checkpoints" / "ckpt-0000000064.pt"
    a, b = _digit_files(tmp_path)
    out = ["--out", str(tmp_path / "o.png")]
    commands = [["generate", "--n", "2", *out], ["reconstruct", "--n", "2", *out], ["interpolate", a, b, *out],
                ["edit", a, "--direction", "3-8=1", "--steps", "2", *out],
                ["evaluate", "--num-fid", "2", "--ppl-samples", "1", "--json", "--out", str(tmp_path / "m.json")],
                ["directions", "--out", str(tmp_path / "dirs")]]
    for cmd in commands:
        assert main([cmd[0], "--ckpt", str(run), *cmd[1:]]) == 0, cmd
        cap = capsys.readouterr()
        said = [ln for ln in cap.err.splitlines() if "using the older checkpoint" in ln]
        assert said == [f"alae-fast: warning: using the older checkpoint {used} (the newest loadable one)"], \
            (cmd, cap.err)
        if cmd[0] == "evaluate":  # stdout stays the JSON alone
            assert json.loads(cap.out)["checkpoint"] == str(used)
    # a sound newest checkpoint, or a checkpoint file given: nothing said
    for ckpt in (mlp_run, used):
        assert main(["generate", "--ckpt", str(ckpt), "--n", "2", *out]) == 0
        assert "older checkpoint" not in capsys.readouterr().err


def test_generate_cutoff_past_the_style_inputs_is_refused(noisy_style_run, tmp_path, capsys):
    # --cutoff 100 on a model of 8 style inputs truncated all of them, as no --cutoff, silently;
    # 8 itself is taken (every input truncated, as --psi alone), as the API and the page take it
    from alae_fast.inference.loading import load_run

    run = load_run(noisy_style_run)
    assert int(run.model.num_ws) == 8
    for cutoff in ("9", "100"):
        assert main(["generate", "--ckpt", str(noisy_style_run), "--psi", "0.5", "--cutoff", cutoff,
                     "--out", str(tmp_path / "g.png")]) == 2, cutoff
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"--cutoff {cutoff}: this model has 8 style inputs;" in err[0], err
        assert "expected 1-8 (8: all of them, as --psi alone)" in err[0], err
    both = []
    for cutoff in (["--cutoff", "8"], []):
        assert main(["generate", "--ckpt", str(noisy_style_run), "--psi", "0.5", *cutoff, "--n", "2",
                     "--out", str(tmp_path / "all.png")]) == 0
        both.append(_png(tmp_path / "all.png"))
    assert np.array_equal(*both)
    x = run.generate(2, seed=0, psi=0.5, cutoff=8, noise="const")
    assert torch.equal(x, run.generate(2, seed=0, psi=0.5, noise="const"))
    assert main(["generate", "--ckpt", str(noisy_style_run), "--seeds", "1", "--psi", "0.5", "--cutoff", "9",
                 "--outdir", str(tmp_path / "s")]) == 2
    assert "--cutoff 9: this model has 8 style inputs" in capsys.readouterr().err
    assert not (tmp_path / "g.png").exists() and not (tmp_path / "s").exists()
    # below the count the cutoff takes effect: the picture differs from truncating every input
    pictures = []
    for cutoff in (["--cutoff", "7"], []):
        assert main(["generate", "--ckpt", str(noisy_style_run), "--psi", "0", *cutoff, "--n", "2",
                     "--out", str(tmp_path / "g.png")]) == 0
        pictures.append(_png(tmp_path / "g.png"))
    assert not np.array_equal(*pictures)


def test_edit_refuses_amounts_that_move_nothing(mlp_run, tmp_path, capsys):
    # --direction 3-8=0 wrote 7 identical images labelled "-0..+0"
    a, = _digit_files(tmp_path, 1)
    base = ["edit", "--ckpt", str(mlp_run), a, "--out", str(tmp_path / "e.png")]
    for directions, said in ((["3-8=0"], "--direction 3-8=0: every amount is 0"),
                             (["3-8=0", "1-7=-0.0"], "--direction 3-8=0 1-7=-0.0: every amount is 0"),
                             (["3-8=2", "3-8=0"], "--direction '3-8=2' and '3-8=0' both give the direction '3-8'; give each "
                                                 "direction once")):
        assert main([*base, *(x for d in directions for x in ("--direction", d))]) == 2, directions
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], err
    assert not (tmp_path / "e.png").exists()
    # one amount of 0 beside a moving one, and a negative amount, still edit: the strip's ends differ
    for directions in (["3-8=0", "1-7=2"], ["3-8=-2"]):
        assert main([*base, "--steps", "2", *(x for d in directions for x in ("--direction", d))]) == 0, directions
        strip = _png(tmp_path / "e.png")
        assert not np.array_equal(strip[8:136, 8:136], strip[8:136, 144:272]), directions


def test_reconstruct_data_warns_of_unreadable_held_out_files(mlp_run, tmp_path, capsys):
    # as evaluate and directions do (the folder is not the run's: reconstruct reads all of it)
    from alae_fast.data.folder import find_image_files, split_files

    folder = _digit_folder(tmp_path / "photos", 40)
    held_out = split_files(find_image_files(folder), folder, "test")
    held_out[0].write_bytes(b"not an image")
    capsys.readouterr()
    assert main(["reconstruct", "--ckpt", str(mlp_run), "--data", str(folder), "--n", "2",
                 "--out", str(tmp_path / "r.png")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "skipped 1 unreadable image file" in err[0] and held_out[0].name in err[0], err


def test_an_empty_checkpoint_path_is_refused_naming_the_flag(capsys):
    # --ckpt '' was read as the current folder: "no checkpoint (ckpt-*.pt) in '.'"
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    commands = [name for name, p in sub.choices.items()
                if any("--ckpt" in a.option_strings for a in p._actions)]
    assert {"generate", "reconstruct", "interpolate", "style-mix", "evaluate", "edit", "directions",
            "serve"} <= set(commands)
    for name in commands:
        flags = next(a.option_strings for a in sub.choices[name]._actions if "--ckpt" in a.option_strings)
        for flag in flags:
            for value in ("", "  "):
                err = _refused(capsys, [name, flag, value]).strip().splitlines()[-1]
                assert err == (f"alae-fast {name}: error: argument {'/'.join(flags)}: expected a checkpoint file "
                               f"or run folder; got an empty value (see alae-fast {name} --help)"), (name, flag, err)


def test_counts_are_said_in_words_that_fit_them(mlp_run, noisy_style_run, tmp_path, capsys):
    from alae_fast._words import plural as _plural

    assert [_plural(n, "row") for n in (0, 1, 2)] == ["0 rows", "1 row", "2 rows"]
    assert _plural(1, "IMAGE", "IMAGES") == "1 IMAGE" and _plural(3, "IMAGE", "IMAGES") == "3 IMAGES"
    a, b = _digit_files(tmp_path, 2)
    out = ["--out", str(tmp_path / "p.png")]
    for argv, said in (
            (["interpolate", "--ckpt", str(mlp_run), a, b, "--steps", "8"], "wrote an interpolation of 8 images from"),
            (["interpolate", "--ckpt", str(mlp_run), a, b, "--steps", "2"], "wrote an interpolation of 2 images from"),
            (["style-mix", "--ckpt", str(noisy_style_run), "--rows", "1", "--cols", "1"], "; 1 row each;"),
            (["edit", "--ckpt", str(mlp_run), a, "--direction", "1-7=1", "--steps", "2"], "wrote 1 strip of 2 images"),
            (["reconstruct", "--ckpt", str(mlp_run), a], "wrote 1 original beside its reconstruction")):
        capsys.readouterr()
        assert main([*argv, *out]) == 0, argv
        assert said in capsys.readouterr().out, argv


def test_image_arguments_take_any_format_pillow_decodes(mlp_run, tmp_path, capsys):
    # the help said PNG/JPEG; BMP, GIF, WebP and TIFF were read all along
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, dests in (("reconstruct", ("images",)), ("interpolate", ("a", "b")), ("edit", ("images",))):
        for action in sub.choices[name]._actions:
            if action.dest in dests:
                assert "any format Pillow decodes" in action.help and "PNG/JPEG" not in action.help, (name, action.help)
    digit, = _digit_files(tmp_path, 1)
    files = []
    for ext in ("bmp", "gif", "webp", "tiff"):
        files.append(str(tmp_path / f"digit.{ext}"))
        Image.open(digit).save(files[-1])
    assert main(["reconstruct", "--ckpt", str(mlp_run), *files, "--out", str(tmp_path / "r.png")]) == 0
    assert "wrote 4 originals" in capsys.readouterr().out
    assert main(["interpolate", "--ckpt", str(mlp_run), files[0], files[2], "--out", str(tmp_path / "i.png")]) == 0


def test_edit_says_what_a_digit_pair_is(mlp_run, tmp_path, capsys):
    # "3-3" has the form A-B: "built-in digit pairs are A-B, e.g. 3-8" did not say what was wrong
    a, = _digit_files(tmp_path, 1)
    for name in ("3-3", "3-10", "12-4"):
        err = _refused(capsys, ["edit", "--ckpt", str(mlp_run), a, "--direction", f"{name}=1"]).strip().splitlines()
        assert err == [f"alae-fast edit: error: --direction: {name!r} is not a built-in digit pair: A and B must be "
                       f"two different digits 0-9, e.g. 3-8 (no --directions folder; not a file)"], err
    err = _refused(capsys, ["edit", "--ckpt", str(mlp_run), a, "--direction", "smile=1"])
    assert "built-in digit pairs are A-B with A and B two different digits 0-9, e.g. 3-8" in err


def test_evaluate_warns_of_few_real_images_only_when_more_were_asked(mlp_run, capsys):
    import re

    # the default job's evaluate warned on every run that its 297 held-out digits were fewer than
    # "1000, the default": the counts now stand in the FID line, and a warning needs a number given
    assert main(["evaluate", "--ckpt", str(mlp_run), "--ppl-samples", "1"]) == 0
    out, err = capsys.readouterr()
    real = int(re.search(r"; (\d+) real, 1000 generated images: so few real images bias it upward", out).group(1))
    assert 2 <= real < 1000 and "biased upward" not in err, (out, err)
    assert main(["evaluate", "--ckpt", str(mlp_run), "--ppl-samples", "1", "--num-fid", "5000"]) == 0
    out, err = capsys.readouterr()
    assert f"FID against the {real} real images there are, fewer than num_fid / --num-fid (5000)" in err, err
    assert f"; {real} real, 5000 generated images: so few" in out
    assert main(["evaluate", "--ckpt", str(mlp_run), "--ppl-samples", "1", "--num-fid", "5"]) == 0
    out, err = capsys.readouterr()
    assert "; 5 real, 5 generated images)" in out and "biased upward" not in err, (out, err)
