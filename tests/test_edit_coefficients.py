"""The coefficient an edit reads back, as edit_w's docstring and the README now state it: with
directions used unnormalised, as the official demo does, an absolute edit reads back
c (1 - |d|^2) + a |d|^2 and an offset one c + a |d|^2 (the README said a |d|^2, the docstring
"the coefficient is set to the amount"), plus d_j . d_k cross terms for directions that are not
orthogonal.

References: the official interactive_demo.py arithmetic written out in NumPy float64 (subtract
w_avg, take every coefficient from the same delta, remove each component, add each amount back,
add w_avg), and the closed forms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from alae_fast.edit.apply import direction_coefficients, edit_w

LATENT = 16


def _official(w, w_avg, dirs, amounts, mode):
    """interactive_demo.py's update in float64 (``mode='offset'``: make_traversarls' amount + c)."""
    delta = w - w_avg
    coefs = {k: delta @ d for k, d in dirs.items()}
    for k, d in dirs.items():
        delta = delta - coefs[k][:, None] * d
    for k, d in dirs.items():
        s = amounts[k] + (coefs[k] if mode == "offset" else 0.0)
        delta = delta + np.asarray(s, dtype=np.float64)[..., None] * d  # s: a number, or [N] in 'offset'
    return delta + w_avg


def _direction(rng, squared_length):
    d = rng.standard_normal(LATENT)
    return d * np.sqrt(squared_length) / np.linalg.norm(d)


@pytest.mark.parametrize("mode", ["absolute", "offset"])
@pytest.mark.parametrize("seed", range(4))
def test_one_direction_reads_back_the_stated_coefficient(mode, seed):
    rng = np.random.default_rng(seed)
    w, w_avg = rng.standard_normal((5, LATENT)), rng.standard_normal(LATENT)
    dd = [13.5, 1.0, 0.36, 2.7][seed]  # the trial's |d|^2 = 13.5, a unit vector, two others
    d = _direction(rng, dd)
    a = float(rng.uniform(-4, 4)) if seed else 2.0
    ws = edit_w(torch.from_numpy(w), {"d": d}, {"d": a}, torch.from_numpy(w_avg), 1, edit_layers=None, mode=mode)
    edited = ws[:, 0].numpy()
    np.testing.assert_allclose(edited, _official(w, w_avg, {"d": d}, {"d": a}, mode), rtol=0, atol=1e-12)
    c = (w - w_avg) @ d
    back = direction_coefficients(ws[:, 0], {"d": d}, torch.from_numpy(w_avg))["d"].numpy()
    stated = c * (1 - dd) + a * dd if mode == "absolute" else c + a * dd
    np.testing.assert_allclose(back, stated, rtol=1e-10, atol=1e-10)
    if dd == 1.0 and mode == "absolute":  # only a unit vector reads back its amount
        np.testing.assert_allclose(back, a, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", ["absolute", "offset"])
def test_directions_that_are_not_orthogonal_move_each_other(mode):
    rng = np.random.default_rng(7)
    w, w_avg = rng.standard_normal((3, LATENT)), rng.standard_normal(LATENT)
    dirs = {"a": _direction(rng, 4.0), "b": _direction(rng, 0.5)}
    amounts = {"a": 1.5, "b": -3.0}
    ws = edit_w(torch.from_numpy(w), dirs, amounts, torch.from_numpy(w_avg), 1, edit_layers=None, mode=mode)
    np.testing.assert_allclose(ws[:, 0].numpy(), _official(w, w_avg, dirs, amounts, mode), rtol=0, atol=1e-12)
    c = {k: (w - w_avg) @ d for k, d in dirs.items()}
    s = {k: amounts[k] + (c[k] if mode == "offset" else 0.0) for k in dirs}
    back = direction_coefficients(ws[:, 0], dirs, torch.from_numpy(w_avg))
    for j, dj in dirs.items():
        stated = c[j] + sum((s[k] - c[k]) * (dk @ dj) for k, dk in dirs.items())
        np.testing.assert_allclose(back[j].numpy(), stated, rtol=1e-10, atol=1e-10)


def test_the_docs_state_the_read_back():
    doc = " ".join(edit_w.__doc__.split())
    assert "c + amount · |d|² ('offset') or c (1 − |d|²) + amount · |d|² ('absolute')" in doc
    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = " ".join(readme.read_text(encoding="utf-8").split())
    assert "is c + a·|d|² for an offset a and c(1 − |d|²) + a·|d|² for an absolute a" in text
    assert "the coefficient read back is a·|d|²" not in text
