"""Directions and the checkpoint they were fitted on; the offset edit's arithmetic for long
directions; refinement arguments the Python API used to ignore.

- ``alae-fast directions`` records which checkpoint it fitted on (``fitted_on.json``); ``edit``
  and ``serve`` warn when the files they read were fitted on another checkpoint than the one
  loaded, and fit the built-in digit pairs on the spot for the loaded one instead;
- ``edit_w``'s offset edit is exactly w + amount · d (it removed c·d and added (c + amount)·d
  back, which cancelled for long d: every column of a strip along a 1e17 direction was G(w_avg));
- ``LoadedRun.reconstruct`` refuses a space or refine_lr that refine_steps 0 would ignore.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from alae_fast_tests_support import TINY, one_thread, ramp_png


# --- item 2: the offset edit's arithmetic ---------------------------------------------------------

@pytest.mark.parametrize("norm", [1.0, 1e2, 1e3, 1e4])
def test_offset_edit_is_w_plus_amount_times_d_for_long_directions(norm):
    from alae_fast.edit import edit_w

    g = np.random.default_rng(int(np.log10(norm)))
    latent = 20
    w = torch.from_numpy(g.standard_normal((5, latent))).float()
    w_avg = torch.from_numpy(g.standard_normal(latent)).float()
    d1 = g.standard_normal(latent)
    d1 *= norm / np.linalg.norm(d1)
    d2 = g.standard_normal(latent)
    d2 *= norm / np.linalg.norm(d2)
    for amounts in ({"a": 2.0}, {"a": -0.7, "b": 0.3}, {"a": 0.0}):
        dirs = {"a": d1, "b": d2}
        ws = edit_w(w, dirs, amounts, w_avg, num_ws=1, mode="offset")
        # independent float64 arithmetic: w + sum_k a_k d_k
        want = w.double().numpy() + sum(a * dirs[k] for k, a in amounts.items())
        got = ws[:, 0].double().numpy()
        scale = np.abs(w.double().numpy()).max() + sum(abs(a) * np.abs(dirs[k]).max() for k, a in amounts.items())
        eps = float(torch.finfo(torch.float32).eps)
        assert np.abs(got - want).max() <= 4 * eps * scale, (norm, amounts, np.abs(got - want).max(), scale)
        if all(a == 0 for a in amounts.values()):
            assert torch.equal(ws[:, 0], w)  # the strip's middle column is G(w) itself


@pytest.mark.parametrize("norm", [1.0, 1e2])
def test_absolute_edit_matches_the_demo_in_float64(norm):
    from alae_fast.edit import edit_w

    g = np.random.default_rng(7)
    w = torch.from_numpy(g.standard_normal((3, 16)))
    w_avg = torch.from_numpy(g.standard_normal(16))
    d = g.standard_normal(16)
    d *= norm / np.linalg.norm(d)
    ws = edit_w(w, {"a": d}, {"a": 1.5}, w_avg, num_ws=2, edit_layers=1, mode="absolute")
    c = (w.numpy() - w_avg.numpy()) @ d
    want = w.numpy() + (1.5 - c)[:, None] * d
    np.testing.assert_allclose(ws[:, 0].numpy(), want, rtol=1e-12, atol=1e-12 * norm ** 2)
    assert torch.equal(ws[:, 1], w)  # past the edited style inputs: w as it was


def test_a_huge_direction_is_refused_naming_the_file(tmp_path, capsys):
    """np.full(n, 1e17) had every column of the strip at G(w_avg), exit 0; now it is refused,
    naming the file and what was expected; a long but usable one edits around the reconstruction."""
    from alae_fast.cli import main
    from alae_fast.edit.commands import edit_latents_strip
    from alae_fast.inference.loading import load_run

    run_dir = _run(tmp_path)
    run = load_run(run_dir)
    latent = int(run.model.latent_size)
    img = ramp_png(tmp_path)
    np.save(tmp_path / "d.npy", np.full(latent, 1e17))
    assert main(["edit", "--ckpt", str(run_dir), str(img), "--direction", f"{tmp_path / 'd.npy'}=2"]) == 2
    err = capsys.readouterr().err
    assert "d.npy" in err and "expected directions of length about 1" in err and "moves w by up to 2e+17" in err, err
    # |d| = 2.8e3: the middle of the strip is G(w) exactly, the ends w -/+ 2 d
    d = np.full(latent, 1e3)
    w = run.encode(torch.zeros(1, 1, 32, 32))
    with pytest.warns(RuntimeWarning, match=r"directions\['d'\] has length 2.83e\+03: .* spread of w"):
        strip = edit_latents_strip(run, w, {"d": d}, {"d": 2.0}, steps=3)  # warned: far beyond fitted ones
    assert torch.equal(strip[1], run.decode(w).float().cpu()[0])
    for i, t in ((0, -2.0), (2, 2.0)):  # one decode at a time, as the strip's
        torch.testing.assert_close(strip[i], run.decode(w + t * torch.from_numpy(d).float()).float().cpu()[0])
    with pytest.raises(ValueError, match=r"directions\['d'\] has length .*beyond ±10000"):
        edit_latents_strip(run, w, {"d": np.full(latent, 1e17)}, {"d": 2.0}, steps=3)


# --- item 1: which checkpoint directions were fitted on -------------------------------------------

_CACHE: dict = {}


def _run(_unused=None) -> Path:
    """A tiny digits run (0.032 kimg), trained once per test session."""
    if "run" not in _CACHE:
        from alae_fast.cli import main

        out = Path(_CACHE.setdefault("root", _mkdtemp())) / "run"
        with one_thread():
            assert main(["train", "--preset", "digits-mlp", "--out", str(out), "--kimg", "0.032", "--no-eval",
                         *TINY]) == 0
        _CACHE["run"] = out
    return _CACHE["run"]


def _mkdtemp() -> str:
    import atexit
    import tempfile

    root = tempfile.mkdtemp(prefix="alae-provenance-")
    atexit.register(shutil.rmtree, root, True)
    return root


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """(run folder, older checkpoint): directions fitted on 0.032 kimg, then the run resumed to 0.064."""
    from alae_fast.cli import main

    out = tmp_path_factory.mktemp("prov") / "frun"
    shutil.copytree(_run(None), out)
    with one_thread():
        assert main(["directions", "--ckpt", str(out)]) == 0
        older = sorted((out / "checkpoints").glob("ckpt-*.pt"))[-1]
        assert main(["train", "--resume", "--out", str(out), "--kimg", "0.064", "--no-eval", "--no-progress",
                     "--threads", "1"]) == 0
    return out, older


def test_directions_records_the_checkpoint_and_says_it_replaces(tmp_path, capsys):
    from alae_fast.cli import main
    from alae_fast.edit.provenance import RECORD_NAME, model_fingerprint
    from alae_fast.inference.loading import load_run

    run_dir = tmp_path / "r"
    shutil.copytree(_run(tmp_path), run_dir)
    with one_thread():
        assert main(["directions", "--ckpt", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "replacing" not in out and "fitted on ckpt-0000000032.pt (0.032 kimg)" in out, out
    record = json.loads((run_dir / "directions" / RECORD_NAME).read_text())["files"]
    assert len(record) == 45 and record["direction_3-8.npy"]["kimg"] == 0.032
    assert record["direction_3-8.npy"]["fingerprint"] == model_fingerprint(load_run(run_dir).model)
    with one_thread():
        assert main(["directions", "--ckpt", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "replacing the earlier 45 files of those names fitted on ckpt-0000000032.pt (0.032 kimg)" in out, out


def test_edit_warns_and_fits_digit_pairs_for_the_loaded_checkpoint(resumed, tmp_path, capsys):
    from alae_fast.cli import main
    from PIL import Image

    run_dir, older = resumed
    img = ramp_png(tmp_path)
    capsys.readouterr()
    assert main(["edit", "--ckpt", str(run_dir), str(img), "--direction", "3-8=2", "--out",
                 str(tmp_path / "stale.png")]) == 0
    err = capsys.readouterr().err
    assert ("direction_3-8.npy in " in err and "fitted by alae-fast directions on ckpt-0000000032.pt (0.032 kimg), "
            "not on the checkpoint loaded, ckpt-0000000064.pt (0.064 kimg)" in err), err
    assert "the digit pair 3-8 is fitted on the spot for ckpt-0000000064.pt (0.064 kimg) instead" in err, err
    # the same edit with the pair fitted on the spot (a copy of the run without directions/)
    bare = tmp_path / "bare"
    shutil.copytree(run_dir, bare)
    shutil.rmtree(bare / "directions")
    assert main(["edit", "--ckpt", str(bare), str(img), "--direction", "3-8=2", "--out",
                 str(tmp_path / "spot.png")]) == 0
    assert "warning" not in capsys.readouterr().err
    stale = np.asarray(Image.open(tmp_path / "stale.png"))
    spot = np.asarray(Image.open(tmp_path / "spot.png"))
    assert np.array_equal(stale, spot)
    # the old file given by its path is used as given, with the warning
    old_file = run_dir / "directions" / "direction_3-8.npy"
    assert main(["edit", "--ckpt", str(run_dir), str(img), "--direction", f"{old_file}=2", "--out",
                 str(tmp_path / "file.png")]) == 0
    err = capsys.readouterr().err
    assert "used as given" in err and "ckpt-0000000032.pt (0.032 kimg)" in err, err
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "file.png")), spot)
    # the older checkpoint, which they were fitted on: said so, and read
    assert main(["edit", "--ckpt", str(older), str(img), "--direction", "3-8=2", "--out",
                 str(tmp_path / "older.png")]) == 0
    err = capsys.readouterr().err
    assert "warning" not in err and "for this checkpoint, ckpt-0000000032.pt (0.032 kimg)" in err, err


def test_a_copied_checkpoint_still_matches_and_a_hand_made_folder_is_unknown(resumed, tmp_path, capsys):
    from alae_fast.cli import main

    run_dir, older = resumed
    img = ramp_png(tmp_path)
    # the directions' checkpoint copied under another name and time: the same weights, no warning
    copy = tmp_path / "copy"
    (copy / "checkpoints").mkdir(parents=True)
    shutil.copy(older, copy / "checkpoints" / "renamed.pt")
    shutil.copytree(run_dir / "directions", copy / "directions")
    assert main(["edit", "--ckpt", str(copy / "checkpoints" / "renamed.pt"), str(img), "--direction", "3-8=2",
                 "--out", str(tmp_path / "c.png")]) == 0
    err = capsys.readouterr().err
    assert "warning" not in err and "for this checkpoint" in err, err
    # a hand-made folder (or a file changed since it was written): not known
    hand = tmp_path / "hand"
    shutil.copytree(run_dir, hand)
    (hand / "directions" / "fitted_on.json").unlink()
    assert main(["edit", "--ckpt", str(hand), str(img), "--direction", "3-8=2", "--out", str(tmp_path / "h.png")]) == 0
    err = capsys.readouterr().err
    assert "it is not known which checkpoint direction_3-8.npy was fitted on" in err, err
    assert "where alae-fast directions wrote them" not in err
    changed = tmp_path / "changed"
    shutil.copytree(run_dir, changed)
    np.save(changed / "directions" / "direction_3-8.npy", np.ones(8))
    assert main(["edit", "--ckpt", str(changed), str(img), "--direction", "3-8=2", "--out",
                 str(tmp_path / "k.png")]) == 0
    assert "it is not known which checkpoint direction_3-8.npy was fitted on" in capsys.readouterr().err


def test_serve_warns_and_fits_digit_pairs_for_the_loaded_checkpoint(resumed):
    from alae_fast.app.service import ModelService
    from alae_fast.edit.commands import digit_directions
    from alae_fast.inference.loading import load_run

    run_dir, older = resumed
    run = load_run(run_dir)
    with one_thread():
        svc = ModelService.open(run, run_dir / "directions", fit_digits=False)
    assert any("fitted by alae-fast directions on ckpt-0000000032.pt (0.032 kimg), not on the checkpoint loaded, "
               "ckpt-0000000064.pt (0.064 kimg)" in n and "45 digit pairs among them are fitted on the spot" in n
               for n in svc.notes), svc.notes
    pair = next(d for d in svc.directions if d.name == "3-8")
    assert "fitted on the spot for ckpt-0000000064.pt" in pair.source, pair.source
    spot = digit_directions(run, [(3, 8)])["3-8"]
    vec = np.asarray(pair.vector, dtype=np.float64)
    np.testing.assert_allclose(vec / np.linalg.norm(vec), spot / np.linalg.norm(spot), rtol=1e-5, atol=1e-6)
    # the checkpoint they were fitted on: no note
    svc = ModelService.open(load_run(older), run_dir / "directions", fit_digits=False)
    assert not any("fitted" in n for n in svc.notes), svc.notes


# --- item 3: refinement arguments without refinement ----------------------------------------------

def test_reconstruct_refuses_space_and_lr_without_refine_steps(tmp_path):
    from alae_fast.inference.loading import load_run
    from alae_fast.inference.projection import DEFAULT_REFINE_LR

    run = load_run(_run(tmp_path))
    x = torch.zeros(2, 1, 32, 32)
    with pytest.raises(ValueError, match=r"reconstruct: space 'w\+' applies only with refine_steps >= 1"):
        run.reconstruct(x, space="w+")
    with pytest.raises(ValueError, match=r"reconstruct: refine_lr 0.2 applies only with refine_steps >= 1"):
        run.reconstruct(x, refine_lr=0.2)
    plain = run.reconstruct(x)
    assert torch.equal(run.reconstruct(x, space="w", refine_lr=DEFAULT_REFINE_LR), plain)
    with warnings.catch_warnings():  # whether the one step lowers the error is not the point here
        warnings.simplefilter("ignore", RuntimeWarning)
        assert run.reconstruct(x, refine_steps=1, space="w+", refine_lr=0.2).shape == plain.shape
    # project's steps=0 is an explicit request for E(x), in w+ repeated for each style input
    w = run.project(x, steps=0, space="w+")
    assert w.shape == (2, int(run.model.num_ws), int(run.model.latent_size))
    assert torch.equal(w[:, 0], run.encode(x))
