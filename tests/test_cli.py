"""The `alae-fast` command: help, train (tiny kimg), every command on the run it wrote, errors,
and kill -9 in the middle of training followed by --resume (same result as no interruption)."""

import importlib.util
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
from alae_fast.training.setups import DEFAULT_PRESET, setup_available

HERE = Path(__file__).parent
TINY = ["--set", "encoder_hidden=[32]", "--set", "generator_hidden=[32]", "--set", "latent_size=8",
        "--set", "mapping_layers=2", "--schedule", "lod_batch=[16]", "--no-progress", "--threads", "1"]


def toy():
    name = "alae_fast_tests_toy_alae"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "toy_alae.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(autouse=True)
def _one_thread():
    # the machines running the suite are shared: one torch thread and one BLAS thread (numpy's
    # eigh in FID, scikit-learn) avoid oversubscription stalls of many seconds
    from threadpoolctl import threadpool_limits

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "mlp"
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    rc = main(["train", "--preset", "digits-mlp", "--out", str(out), "--kimg", "0.064", "--log-steps", "1", *TINY])
    torch.set_num_threads(n)
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
    assert "5-image interpolation" in capsys.readouterr().out
    strip = _png(tmp_path / "lerp.png")
    assert strip.shape[1] > 4 * strip.shape[0]  # one row of 5

    assert main(["evaluate", "--ckpt", str(mlp_run), "--num-fid", "32", "--ppl-samples", "8"]) == 0
    out = capsys.readouterr().out
    assert f"wrote metrics to {mlp_run / 'evaluate.json'}" in out and "LinearSVC" in out
    m = json.loads((mlp_run / "evaluate.json").read_text())
    assert m["fid_is_proxy"] is True and m["fid_network"] == "proxy-randconv"
    for key in ("reconstruction_mse", "fid_generated", "fid_reconstructed", "ppl_full", "ppl_end"):
        assert np.isfinite(m[key]) and m[key] >= 0, key
    assert set(m["latent"]) >= {"encoder", "random_encoder", "pca", "dim"}


def test_style_mix_needs_several_styles(mlp_run, tmp_path, capsys):
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
    grid = _png(out / "style-mix.png")
    # 1 + 3 x 2 rows of 1 + 3 tiles of 16 px with 2 px padding, the grid enlarged 8 times
    assert grid.shape[:2] == ((2 + 7 * (16 + 2)) * 8, (2 + 4 * (16 + 2)) * 8)
    assert main(["generate", "--ckpt", str(out), "--n", "4"]) == 0


def test_default_preset_falls_back_with_a_message(tmp_path, capsys):
    if setup_available(DEFAULT_PRESET):
        pytest.skip(f"{DEFAULT_PRESET} is registered: no fallback to test")
    assert main(["train", "--out", str(tmp_path / "d"), "--kimg", "0.016", "--no-eval", "--no-progress",
                 "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert f"preset {DEFAULT_PRESET!r}" in out and "not registered" in out and "'digits-mlp'" in out
    assert json.loads((tmp_path / "d" / "config.json").read_text())["setup"] == "digits-mlp"


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
    assert "no loadable checkpoint" in capsys.readouterr().err
    assert main(["train", "--preset", "no-such", "--out", str(tmp_path / "x")]) == 2
    assert "unknown preset 'no-such'" in capsys.readouterr().err
    assert main(["train", "--preset", "digits-mlp", "--set", "bogus_field=1", "--out", str(tmp_path / "x")]) == 2
    assert "bogus_field" in capsys.readouterr().err
    assert main(["generate", "--ckpt", str(tmp_path / "none.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--kimg", "-1"])


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
        flat_a, flat_b = _tensors(sa), _tensors(sb)
        assert len(flat_a) == len(flat_b) and all(torch.equal(u, v) for u, v in zip(flat_a, flat_b)), key
    assert all(torch.equal(u, v) for u, v in zip(_tensors(a["trainer"]["ema"]), _tensors(b["trainer"]["ema"])))
    assert a["data"] == b["data"]


def _tensors(obj) -> list:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for k in sorted(obj, key=str) for t in _tensors(obj[k])]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _tensors(v)]
    return []
