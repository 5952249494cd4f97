"""Encoder-initialised projection (alae_fast.inference.projection): the descent against Adam and
the cosine schedule written out by hand in float64, E(x) at 0 steps, lower pixel error after,
each image on its own path whatever its batch, the networks untouched, every bad argument, and
the LoadedRun methods that wrap it."""

from __future__ import annotations

import math

import pytest
import numpy as np
import torch

from alae_fast.inference.loading import load_run
from alae_fast.inference.projection import (DEFAULT_REFINE_LR, MAX_REFINE_STEPS, project_latents,
                                            refined_reconstruction)
from alae_fast.models import MLPALAE, MLPALAEConfig, StyleALAE, StyleALAEConfig
from alae_fast_tests_support import train_tiny_run

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = dict(latent_size=6, mapping_layers=2, layer_count=3, channels=3, start_features=4, max_features=8)
LOD, BLEND = 2, 1.0  # the small model's last level, 16x16


def small_model(seed: int = 0) -> StyleALAE:
    torch.manual_seed(seed)
    m = StyleALAE(StyleALAEConfig(**SMALL)).double().eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # non-zero biases and noise weights: every term of G and E takes part
        for name, p in m.named_parameters():
            if name.endswith(("bias", "noise_weight")):
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.3)
    return m


def images(n: int, seed: int = 1, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, 16, 16, generator=g, dtype=torch.float64) * 2 - 1).to(dtype)


def hand_written(model, x, steps, lr, space):
    """Adam (betas 0.9/0.999, eps 1e-8, bias-corrected) and lr·½(1 + cos(πt/steps)), as the
    docstring states them, on the sum of per-image mean squared pixel errors; each image keeps
    its iterate of lowest error, E(x) and the final one included."""
    with torch.no_grad():
        w = model.encode(x, LOD, BLEND)
    if space == "w+":
        w = w[:, None].repeat(1, model.num_ws, 1)
    m, v = torch.zeros_like(w), torch.zeros_like(w)
    trajectory = [w]
    for t in range(steps):
        wt = w.clone().requires_grad_(True)
        loss = (model.decode(wt, LOD, BLEND, "zero") - x).square().mean(dim=(1, 2, 3)).sum()
        (g,) = torch.autograd.grad(loss, [wt])
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        m_hat, v_hat = m / (1 - 0.9 ** (t + 1)), v / (1 - 0.999 ** (t + 1))
        w = w - lr * 0.5 * (1 + math.cos(math.pi * t / steps)) * m_hat / (v_hat.sqrt() + 1e-8)
        trajectory.append(w)
    with torch.no_grad():
        errors = torch.stack([(model.decode(u, LOD, BLEND, "zero") - x).square().mean(dim=(1, 2, 3))
                              for u in trajectory])  # [steps + 1, N]
    best = errors.argmin(dim=0)
    return torch.stack([trajectory[int(k)][i] for i, k in enumerate(best)])


def pixel_error(model, w, x) -> float:
    with torch.no_grad():
        return float((model.decode(w, LOD, BLEND, "zero") - x).square().mean())


@pytest.mark.parametrize("space", ["w", "w+"])
def test_the_descent_is_adam_on_a_cosine_schedule(space):
    model, x = small_model(), images(3)
    got = project_latents(model, x, LOD, BLEND, steps=12, lr=0.03, space=space)
    want = hand_written(model, x, 12, 0.03, space)
    assert got.shape == want.shape == ((3, 6) if space == "w" else (3, model.num_ws, 6))
    assert got.dtype == torch.float64 and not got.requires_grad
    # Adam divides by the root of the squared gradients' average, so rounding in near-zero
    # gradients is amplified: the same arithmetic in another order agrees to ~1e-8, not 1e-15
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("space", ["w", "w+"])
def test_zero_steps_give_the_encoder_and_steps_lower_the_pixel_error(space):
    model = small_model(2)
    # images G can draw (from random w), which an untrained E inverts only loosely
    w_true = torch.randn(4, 6, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    with torch.no_grad():
        x = model.decode(w_true, LOD, BLEND, "zero")
        e = model.encode(x, LOD, BLEND)
    w0 = project_latents(model, x, LOD, BLEND, steps=0, space=space)
    assert torch.equal(w0, e if space == "w" else e[:, None].expand(-1, model.num_ws, -1))
    w = project_latents(model, x, LOD, BLEND, steps=40, lr=0.05, space=space)
    before, after = pixel_error(model, e, x), pixel_error(model, w, x)
    assert after < 0.7 * before, (before, after)


def test_an_lr_too_large_never_returns_worse_than_the_encoder():
    model = small_model(3)
    w_true = torch.randn(3, 6, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    with torch.no_grad():
        x = model.decode(w_true, LOD, BLEND, "zero")
        e = model.encode(x, LOD, BLEND)
    for lr in (1e2, 1e3):  # Adam's steps of ~lr throw w far from anything G draws
        with pytest.warns(RuntimeWarning, match="kept E"):
            w = project_latents(model, x, LOD, BLEND, steps=10, lr=lr)
        for i in range(3):
            assert pixel_error(model, w[i:i + 1], x[i:i + 1]) <= pixel_error(model, e[i:i + 1], x[i:i + 1])
    with pytest.warns(RuntimeWarning, match="kept E"):
        torch.testing.assert_close(hand_written(model, x, 10, 1e3, "w"), project_latents(model, x, LOD, BLEND,
                                                                                        steps=10, lr=1e3))


def test_per_image_noise_follows_its_images_into_their_batches():
    # a list of per-image noise for more images than a batch had reached decode whole: "decode:
    # noise[0] must have shape [256 or 1, ...]" for 260 images
    model, x = small_model(4), images(5, seed=5)
    g = torch.Generator().manual_seed(3)
    noise = [torch.randn(5 if k % 2 else 1, 1, 4 * 2 ** (k // 2), 4 * 2 ** (k // 2), generator=g, dtype=torch.float64)
             for k in range(2 * LOD + 2)]
    together = project_latents(model, x, LOD, BLEND, steps=6, noise=noise)
    in_twos = project_latents(model, x, LOD, BLEND, steps=6, noise=noise, batch_size=2)
    torch.testing.assert_close(together, in_twos, rtol=1e-7, atol=1e-9)
    third = project_latents(model, x[2:3], LOD, BLEND, steps=6,
                            noise=[t[2:3] if t.shape[0] == 5 else t for t in noise])
    torch.testing.assert_close(together[2:3], third, rtol=1e-7, atol=1e-9)


def test_each_image_follows_its_own_path_whatever_its_batch():
    model, x = small_model(4), images(5, seed=5)
    together = project_latents(model, x, LOD, BLEND, steps=15)
    alone = torch.cat([project_latents(model, x[i:i + 1], LOD, BLEND, steps=15) for i in range(5)])
    in_twos = project_latents(model, x, LOD, BLEND, steps=15, batch_size=2)
    torch.testing.assert_close(together, alone, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(together, in_twos, rtol=1e-7, atol=1e-9)
    assert not torch.allclose(together[0], together[1])


def test_the_networks_are_untouched_and_get_no_gradient():
    model, x = small_model(6), images(2, seed=7)
    model.train()  # whatever mode the caller left it in stays
    model.encoder.requires_grad_(True)
    model.generator.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    with torch.no_grad():  # a caller inside no_grad still gets the descent
        w = project_latents(model, x, LOD, BLEND, steps=5)
    assert not torch.equal(w, model.encode(x, LOD, BLEND).detach())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    assert model.training


def test_float32_and_the_mlp_alae():
    model, x = small_model(8).float(), images(2, seed=9, dtype=torch.float32)
    assert project_latents(model, x, LOD, BLEND, steps=3).dtype == torch.float32
    torch.manual_seed(0)
    mlp = MLPALAE(MLPALAEConfig(latent_size=4, encoder_hidden=(16,), generator_hidden=(16,), mapping_layers=2))
    xm = images(3, seed=10, dtype=torch.float32)[:, :1, :, :].repeat(1, 1, 2, 2)[:, :, :28, :28]
    with torch.no_grad():
        before = float((mlp.reconstruct(xm, noise="zero") - xm).square().mean())
    w = project_latents(mlp, xm, steps=30, lr=0.05)
    with torch.no_grad():
        after = float((mlp.decode(w, noise="zero") - xm).square().mean())
    assert w.shape == (3, 4) and after < before
    assert project_latents(mlp, xm, steps=2, space="w+").shape == (3, mlp.num_ws, 4)


@pytest.mark.parametrize("kwargs,error,said", [
    (dict(steps=-1), ValueError, "steps must be an int in [0, 100000]"),
    (dict(steps=MAX_REFINE_STEPS + 1), ValueError, "steps must be an int in [0, 100000]"),
    (dict(steps=2.0), TypeError, "steps must be an int"),
    (dict(steps=True), TypeError, "steps must be an int"),
    (dict(lr=0), ValueError, "lr must be a number in (0, 1000]"),
    (dict(lr=-0.1), ValueError, "lr must be a number in (0, 1000]"),
    (dict(lr=float("nan")), ValueError, "lr must be a number in (0, 1000]"),
    (dict(lr=float("inf")), ValueError, "lr must be a number in (0, 1000]"),
    (dict(lr="0.1"), TypeError, "lr must be a number in (0, 1000]"),
    (dict(lr=1000.5), ValueError, "lr must be a number in (0, 1000]"),
    (dict(lr=1e39), ValueError, "lr must be a number in (0, 1000]"),
    (dict(space="z"), ValueError, "space must be one of ('w', 'w+')"),
    (dict(space=None), TypeError, "space must be one of ('w', 'w+')"),
    (dict(lr=None), TypeError, "lr must be a number in (0, 1000]"),
    (dict(batch_size=0), ValueError, "batch_size must be an int >= 1"),
])
def test_bad_arguments_are_named(kwargs, error, said):
    with pytest.raises(error, match=f"project_latents: {__import__('re').escape(said)}"):
        project_latents(small_model(), images(1), LOD, BLEND, **kwargs)


def test_numpy_numbers_are_taken():
    x, model = images(2), small_model()
    a = project_latents(model, x, LOD, BLEND, steps=3, lr=0.05)
    b = project_latents(model, x, LOD, BLEND, steps=np.int64(3), lr=np.float64(0.05))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_bad_images_and_a_diverging_descent_are_refused():
    model = small_model()
    with pytest.raises(TypeError, match="project_latents: x must have dtype"):
        project_latents(model, (images(1) * 127 + 128).to(torch.uint8), LOD, BLEND)
    bad = images(2)
    bad[1, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="project_latents: x contains NaN"):
        project_latents(model, bad, LOD, BLEND)

    class Overflowing(torch.nn.Module):  # G whose pixels overflow once w leaves the usual range
        def __init__(self, inner):
            super().__init__()
            self.inner, self.latent_size, self.num_ws = inner, inner.latent_size, inner.num_ws

        def encode(self, x, lod, blend):
            return self.inner.encode(x, lod, blend)

        def decode(self, w, lod, blend, noise):
            y = self.inner.decode(w, lod, blend, noise)
            return y * torch.where(w.abs().max() > 50, torch.tensor(float("inf"), dtype=y.dtype), 1.0)

    with pytest.raises(FloatingPointError, match="^project_latents: the descent reached NaN or infinity within 3 "
                                                 "steps at lr 1000; use a smaller lr"):
        project_latents(Overflowing(model), images(1), LOD, BLEND, steps=3, lr=1000.0)
    with pytest.raises(FloatingPointError, match="^project: the descent reached NaN"):
        project_latents(Overflowing(model), images(1), LOD, BLEND, steps=3, lr=1000.0, op="project")


def test_a_descent_that_changes_nothing_says_so():
    # lr 1000 throws w far from anything G draws on every step: every image keeps E(x), and
    # a warning counts them; a working descent warns of nothing
    model = small_model(3)
    x = images(2)
    with pytest.warns(RuntimeWarning, match=r"project_latents: 2 of 2 images kept E\(x\): no step of the descent "
                                            r"lowered their pixel error \(lr 1000;"):
        w = project_latents(model, x, LOD, BLEND, steps=4, lr=1000.0)
    with torch.no_grad():
        torch.testing.assert_close(w, model.encode(x, LOD, BLEND))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        project_latents(model, x, LOD, BLEND, steps=20, lr=0.05)


def test_refined_reconstruction_reports_what_it_measured():
    model, x = small_model(11), images(6, seed=12)
    r = refined_reconstruction(model, x, LOD, BLEND, steps=10, labelled=False, limit=4)
    w = project_latents(model, x[:4], LOD, BLEND, steps=10)
    assert r["images"] == 4 and r["steps"] == 10 and r["space"] == "w" and r["lr"] == DEFAULT_REFINE_LR
    assert r["mse"] == pytest.approx(pixel_error(model, w, x[:4]), rel=1e-12)
    assert set(r["identification"]) >= {"reconstructions", "mean_colour", "chance", "mean_colour_mse"}
    assert r["of"] == 6 and r["encoder_mse"] == pytest.approx(pixel_error(model, model.encode(x[:4], LOD, BLEND),
                                                                           x[:4]), rel=1e-12)
    assert r["mse"] <= r["encoder_mse"]
    whole = refined_reconstruction(model, x, LOD, BLEND, steps=2, labelled=True)
    assert whole["identification"] is None and whole["images"] == whole["of"] == 6
    with pytest.raises(ValueError, match="steps must be >= 1"):
        refined_reconstruction(model, x, LOD, BLEND, steps=0, labelled=True)
    for bad in (0, True, 2.0):
        with pytest.raises(ValueError, match="limit must be None or an int >= 1"):
            refined_reconstruction(model, x, LOD, BLEND, steps=2, labelled=True, limit=bad)


def test_the_refined_line_says_which_images_and_what_to_compare():
    from alae_fast.inference.report import format_refined
    r = {"steps": 100, "space": "w", "lr": 0.05, "images": 15, "of": 15, "mse": 0.02836, "encoder_mse": 0.1587,
         "identification": {"reconstructions": 1.0, "mean_colour": 0.5333, "chance": 1 / 15}}
    assert format_refined(r, "held-out") == (
        "reconstruction MSE after refining E(x) by 100 steps of descent on the pixel error in w (not ALAE's "
        "G(E(x)): StyleGAN2's projector from the encoder) on 15 held-out images: 0.0284\n"
        "  refined, matched back to their own input (pixel 1-NN): 100.0% (mean colour 53.3%, chance 6.7%)")
    part = format_refined({**r, "of": 40, "lr": 0.2, "identification": None}, "held-out")
    assert part == ("reconstruction MSE after refining E(x) by 100 steps of descent on the pixel error in w, lr 0.2 "
                    "(not ALAE's G(E(x)): StyleGAN2's projector from the encoder) on the first 15 of 40 held-out "
                    "images: 0.0284 (G(E(x)) on the same 15: 0.1587)")


# --- LoadedRun.project and LoadedRun.reconstruct(refine_steps=...) --------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return load_run(train_tiny_run(tmp_path_factory.mktemp("projection") / "run"))


def digits(run, n=3):
    from alae_fast.data import load_digits
    return load_digits("test", run.schedule.resolution)[0][:n]


def test_loaded_run_project_is_the_descent_at_the_runs_level(run):
    x = digits(run)
    w = run.project(x, steps=6, lr=0.02)
    ref = project_latents(run.model, x, run.phase.lod, run.phase.blend, steps=6, lr=0.02)
    assert torch.equal(w, ref)
    assert torch.equal(run.project(x, steps=0), run.encode(x))
    with torch.no_grad():
        plain = run.reconstruct(x)
    assert torch.equal(run.reconstruct(x, refine_steps=0), plain)
    refined = run.reconstruct(x, refine_steps=6, space="w+")
    assert torch.equal(refined, run.decode(run.project(x, steps=6, space="w+")))
    assert float((refined - x).square().mean()) < float((plain - x).square().mean())


@pytest.mark.parametrize("call,said", [
    (lambda r, x: r.project(x, steps=-2), "project: steps must be an int"),
    (lambda r, x: r.project(x, lr=0.0), "project: lr must be a number in (0, 1000]"),
    (lambda r, x: r.project(x, space="W"), "project: space must be one of"),
    (lambda r, x: r.project(x, noise="loud"), "noise"),
    (lambda r, x: r.project(x[:, :, :5]), "project: x must have shape"),
    (lambda r, x: r.reconstruct(x, refine_steps=1.5), "reconstruct: refine_steps must be an int"),
    (lambda r, x: r.reconstruct(x, refine_steps=2, space="w++"), "reconstruct: space must be one of"),
])
def test_loaded_run_refuses_bad_arguments(run, call, said):
    with pytest.raises((ValueError, TypeError), match=__import__("re").escape(said)):
        call(run, digits(run, 2))


def test_loaded_run_project_gives_xs_dtype_and_warns_at_the_callers_line(run):
    # the docstring said "float32"; w comes in the dtype E gives for x, x's, as project_latents says
    x = digits(run, 2)
    assert run.project(x, steps=2).dtype == torch.float32
    assert run.project(x.double(), steps=2).dtype == torch.float64
    # the "kept E(x)" warning names the line that called run.project (or reconstruct, or
    # project_latents), not alae_fast/inference/loading.py's call of project_latents
    import warnings

    calls = [lambda: run.project(x, steps=3, lr=1000),
             lambda: run.reconstruct(x, refine_steps=3, refine_lr=1000),
             lambda: project_latents(run.model, x, run.phase.lod, run.phase.blend, steps=3, lr=1000.0)]
    # and begins with the name the caller used (it had said "project_latents" for run.project)
    for call, said in zip(calls, ("project", "reconstruct", "project_latents")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        kept = [w for w in caught if issubclass(w.category, RuntimeWarning) and "kept E(x)" in str(w.message)]
        assert len(kept) == 1, [str(w.message) for w in caught]
        assert kept[0].filename == __file__, kept[0].filename
        assert str(kept[0].message).startswith(f"{said}: 2 of 2 images kept E(x)"), str(kept[0].message)
