"""The models' own ``encode``/``decode``/``generate``/``reconstruct`` refuse input that would give
NaN or nonsense without a word, as ``alae_fast.load(...)``'s methods do, and with the same words;
``load_official`` names itself and the argument for a bad dtype or device. The trainer's path
(``native=True``) reads no values: no host sync per step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from alae_fast.inference.loading import load_run
from alae_fast.limits import MAX_ABS_W
from alae_fast.models import MLPALAE, MLPALAEConfig, from_preset, load_official, preset_config
from alae_fast.models import base
from alae_fast.training.schedule import schedule_from_config
from alae_fast.training.trainer import ALAETrainer
from alae_fast_tests_support import pixels

DATA = Path(__file__).parent / "data" / "official-alae"
PTH = DATA / "alae-small.pth"
NAN, INF = float("nan"), float("inf")


@pytest.fixture(scope="module")
def official():
    return load_official(PTH)


def _mlp():
    torch.manual_seed(1)
    return MLPALAE(MLPALAEConfig(encoder_hidden=(16,), generator_hidden=(16,), latent_size=8, image_size=8))


def _style():
    torch.manual_seed(1)
    return from_preset("digits-32")


def _image_shape(m):
    if isinstance(m, MLPALAE):
        return m.image_shape
    r = m.config.resolution_at(m.max_lod)
    return (m.config.channels, r, r)


# --- the new user's trial (README "Official ALAE checkpoints") -------------------------------

def test_official_model_refuses_the_trials_inputs(official):
    m = official
    with pytest.raises(ValueError, match=r"^decode: w must have values within ±10000 \(.*\); got 3e\+38$"):
        m.decode(torch.full((1, 32), 3e38), noise="const")
    with pytest.raises(ValueError, match=r"^generate: z contains NaN or infinity$"):
        m.generate(torch.full((2, 32), NAN))
    with pytest.raises(ValueError, match=r"^encode: x must hold pixels in \[-1, 1\]; got values in \[.*\] "
                                         r"\(convert 0-255 images with x / 127.5 - 1\)$"):
        m.encode(torch.rand(1, 3, 128, 128) * 255)
    # a cutoff past the model's 12 style inputs truncates them all, as the official code's fixed
    # cutoff 8 does on smaller models; LoadedRun.generate, the user's entry, refuses it
    z = torch.randn(2, 32)
    torch.testing.assert_close(m.generate(z, truncation_psi=0.7, truncation_cutoff=100, noise="zero"),
                               m.generate(z, truncation_psi=0.7, noise="zero"))
    with pytest.raises(ValueError, match=r"^generate: truncation_cutoff must be None or an int >= 0; got -1$"):
        m.generate(z, truncation_psi=0.7, truncation_cutoff=-1)
    # what the README does still works, at every cutoff the model has
    for cutoff in (1, 8, 12):
        img = m.generate(z, truncation_psi=0.7, truncation_cutoff=cutoff, noise="zero")
        assert img.shape == (2, 3, 128, 128) and torch.isfinite(img).all()
    w = m.encode(pixels(2, 3, 128, 128, seed=0))
    assert torch.isfinite(m.decode(w, noise="const")).all()


def test_official_model_and_loaded_run_refuse_alike(official):
    """The model and ``load_run`` of the same file: the same checks, the same words."""
    run = load_run(PTH)
    w_big = torch.randn(1, 32) * 2 * MAX_ABS_W
    x_255 = torch.rand(1, 3, 128, 128) * 255
    cases = [(lambda o: o.decode(w_big), ValueError), (lambda o: o.encode(x_255), ValueError),
             (lambda o: o.decode(torch.full((1, 32), INF)), ValueError)]
    for call, exc in cases:
        with pytest.raises(exc) as by_run:
            call(run)
        with pytest.raises(exc) as by_model:
            call(official)
        assert str(by_run.value) == str(by_model.value)
    with pytest.raises(ValueError, match=r"^generate: cutoff must be an int in \[1, 12\]"):
        run.generate(1, psi=0.7, cutoff=13)


# --- every model ----------------------------------------------------------------------------

@pytest.fixture(params=["mlp", "style"], scope="module")
def model(request):
    return _mlp() if request.param == "mlp" else _style()


@pytest.mark.parametrize("value", [NAN, INF, -INF])
def test_non_finite_latents_are_refused(model, value):
    n, k = 3, model.latent_size
    w = torch.randn(n, k)
    w[1, k // 2] = value
    with pytest.raises(ValueError, match=r"^decode: w contains NaN or infinity$"):
        model.decode(w, noise="zero")
    with pytest.raises(ValueError, match=r"^decode: w contains NaN or infinity$"):
        model.decode(w.unsqueeze(1).expand(-1, model.num_ws, -1).clone(), noise="zero")
    with pytest.raises(ValueError, match=r"^generate: z contains NaN or infinity$"):
        model.generate(w)


def test_latents_beyond_the_bound_are_refused_and_within_it_taken(model):
    k = model.latent_size
    w = torch.randn(2, k)
    for big in (MAX_ABS_W * 1.01, -3e38):
        w_big = w.clone()
        w_big[0, 0] = big
        got = re.escape(f"{abs(big):g}")
        with pytest.raises(ValueError, match=rf"^decode: w must have values within ±10000 .*; got {got}$"):
            model.decode(w_big, noise="zero")
        with pytest.raises(ValueError, match=rf"^generate: z must have values within ±10000 .*; got {got}$"):
            model.generate(w_big)
    edge = w.clone()
    edge[0, 0] = MAX_ABS_W
    assert model.decode(edge, noise="zero").shape[0] == 2  # the bound itself is taken


def test_images_outside_the_pixel_range_are_refused(model):
    shape = _image_shape(model)
    x = pixels(2, *shape, seed=0)
    with pytest.raises(ValueError, match=r"^encode: x must hold pixels in \[-1, 1\].*x / 127.5 - 1\)$"):
        model.encode((x + 1) * 127.5)
    with pytest.raises(ValueError, match=r"^encode: x must hold pixels in \[-1, 1\].*native=True\)\)$"):
        model.encode(x * 100)
    with pytest.raises(ValueError, match=r"^reconstruct: x must|^encode: x must hold pixels"):
        model.reconstruct((x + 1) * 127.5)
    bad = x.clone()
    bad.view(-1)[7] = NAN
    with pytest.raises(ValueError, match=r"^encode: x contains NaN or infinity$"):
        model.encode(bad)
    # within LoadedRun's margin (±4): taken, as G's own unclamped outputs must go back through E
    assert torch.isfinite(model.encode(x * 3.9)).all()
    # native=True (the trainer's path) reads no values
    assert model.encode((x + 1) * 127.5, native=True).shape == (2, model.latent_size)


def test_truncation_cutoff_is_checked(model):
    num_ws = int(model.num_ws)
    z = torch.randn(2, model.latent_size)
    for cutoff in (-1, -10 ** 6):
        with pytest.raises(ValueError, match=rf"^generate: truncation_cutoff must be None or an int >= 0; "
                                             rf"got {cutoff}$"):
            model.generate(z, truncation_psi=0.5, truncation_cutoff=cutoff)
    # 0 truncates none; num_ws and past it, all (the official semantics of its fixed cutoff 8)
    torch.manual_seed(3)
    none = model.generate(z, truncation_psi=0.5, truncation_cutoff=0, noise="zero")
    torch.manual_seed(3)
    torch.testing.assert_close(none, model.generate(z, noise="zero"))
    torch.manual_seed(3)
    past = model.generate(z, truncation_psi=0.5, truncation_cutoff=num_ws + 5, noise="zero")
    torch.manual_seed(3)
    torch.testing.assert_close(past, model.generate(z, truncation_psi=0.5, noise="zero"))
    for cutoff in (True, 1.0, "2", torch.tensor(1)):
        with pytest.raises(TypeError, match=r"^generate: truncation_cutoff must be None or an int"):
            model.generate(z, truncation_psi=0.5, truncation_cutoff=cutoff)
    torch.manual_seed(3)
    every = model.generate(z, truncation_psi=0.5, truncation_cutoff=num_ws, noise="zero")
    torch.manual_seed(3)
    torch.testing.assert_close(every, model.generate(z, truncation_psi=0.5, noise="zero"))


def test_noise_tensors_with_nan_are_refused():
    m = _style()
    lod = m.max_lod
    noise = m.generator.noise_inputs("random", 2, lod, torch.float32, torch.device("cpu"))
    k = next(i for i, t in enumerate(noise) if t is not None)
    noise[k] = noise[k].clone().fill_(NAN)
    w = torch.randn(2, m.latent_size)
    with pytest.raises(ValueError, match=rf"^decode: noise\[{k}\] contains NaN or infinity$"):
        m.decode(w, noise=noise)
    with pytest.raises(ValueError, match=rf"^generate: noise\[{k}\] contains NaN or infinity$"):
        m.generate(w, noise=noise)


def test_generate_and_reconstruct_are_unchanged_by_the_checks(model):
    """The checks only read: generate and reconstruct give what decode of F(z) and of E(x) give."""
    z = torch.randn(3, model.latent_size)
    x = pixels(3, *_image_shape(model), seed=0)
    with torch.no_grad():
        torch.testing.assert_close(model.generate(z, noise="zero"), model.decode(model.mapping(z), noise="zero"))
        torch.testing.assert_close(model.reconstruct(x, noise="zero"),
                                   model.decode(model.encode(x), noise="zero"))


def test_a_descents_iterate_is_not_read():
    """decode of a w that requires grad while autograd records is a descent's step
    (project_latents): the descent says its own divergence (FloatingPointError)."""
    m = _mlp()
    w = torch.full((1, m.latent_size), NAN, requires_grad=True)
    assert torch.isnan(m.decode(w)).all()
    with torch.no_grad(), pytest.raises(ValueError, match=r"^decode: w contains NaN or infinity$"):
        m.decode(w)


def test_values_without_data_are_not_read():
    """Meta tensors (flops_per_image counts ops on them) pass unread."""
    from alae_fast.training.eta import flops_per_image

    config = preset_config("digits-32")
    counts = flops_per_image(from_preset("digits-32"), schedule_from_config(config))
    assert counts and all(v > 0 for v in counts.values())


def test_the_trainers_step_reads_no_values(monkeypatch):
    """The trainer encodes and decodes with native=True every step: no value is read there (on
    an accelerator, each read is a host sync)."""
    reads = []
    real = base._values_readable
    monkeypatch.setattr(base, "_values_readable", lambda t: reads.append(tuple(t.shape)) or real(t))
    config = preset_config("digits-32")
    torch.manual_seed(0)
    trainer = ALAETrainer(from_preset("digits-32"), schedule_from_config(config), seed=0)
    n = trainer.phase().batch
    out = trainer.step(pixels(n, 1, 32, 32, seed=0))
    assert torch.isfinite(out["loss_d"]) and reads == []


# --- load_official's dtype and device ------------------------------------------------------

@pytest.mark.parametrize("dtype, exc, said", [
    ("float64", TypeError, r"got 'float64' of type str: use torch.float64$"),
    (64, TypeError, r"got 64 of type int$"),
    (torch.int64, ValueError, r"\(a floating dtype\); got torch.int64$"),
    (torch.bool, ValueError, r"got torch.bool$"),
    (torch.complex64, ValueError, r"got torch.complex64$"),
])
def test_load_official_refuses_a_bad_dtype(dtype, exc, said):
    with pytest.raises(exc, match=r"^load_official: dtype must be None or torch.float16, torch.bfloat16, "
                                  r"torch.float32 or torch.float64.*" + said) as e:
        load_official(PTH, dtype=dtype)
    assert e.type is exc


@pytest.mark.parametrize("device, exc, said", [
    (3, TypeError, r"^load_official: device: expected a device name .*; got 3 of type int$"),
    ("gpu", ValueError, r"^load_official: device: 'gpu' is not a device name"),
    ("meta", ValueError, r"^load_official: device: 'meta' is not supported"),
])
def test_load_official_refuses_a_bad_device(device, exc, said):
    with pytest.raises(exc, match=said) as e:
        load_official(PTH, device=device)
    assert issubclass(e.type, exc) and (exc is ValueError or e.type is exc)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is there")
def test_load_official_refuses_cuda_where_there_is_none():
    with pytest.raises(ValueError, match=r"^load_official: device='cuda': (this torch was built without CUDA|"
                                         r"no GPU is visible); use device='cpu'$"):
        load_official(PTH, device="cuda")


def test_load_official_takes_good_dtypes_and_devices():
    m = load_official(PTH, dtype=torch.float64, device=torch.device("cpu"))
    assert next(m.parameters()).dtype == torch.float64
    assert torch.isfinite(m.generate(torch.randn(1, 32, dtype=torch.float64), noise="zero")).all()
    assert next(load_official(PTH, device="cpu").parameters()).dtype == torch.float32
