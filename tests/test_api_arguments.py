"""Argument checks of the Python API a user meets first: ``alae_fast.load(...)`` and its run
object, the models' entries, the sampling helpers, ``alae_fast.edit`` and the web page's
service. Each bad input gives one error naming the argument as the user wrote it.

The runs are checkpoints written by hand from freshly built (untrained) models: a small
StyleALAE (the digits-32 preset) and a tiny MLP ALAE; nothing is trained here.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import alae_fast
from alae_fast.edit import direction_coefficients, edit_w, fit_direction, load_direction, save_direction
from alae_fast.edit.apply import MAX_AMOUNT
from alae_fast.errors import UserError
from alae_fast.inference.loading import CHECKPOINT_FORMAT, _official_schedule, check_device
from alae_fast.inference.sampling import (generate_seeds, interpolate_latents, sample_images, seed_latent,
                                          style_mix_grid, style_mix_images, style_mix_tiles)
from alae_fast.models import MLPALAEConfig, build_model
from alae_fast.models.base import PSI_RANGE
from alae_fast.models.presets import DIGITS_32
from alae_fast_tests_support import pixels

pytestmark = pytest.mark.usefixtures("one_thread")


def _write_checkpoint(path, config):
    model = build_model(config)
    schedule = _official_schedule(config)
    images = sum(schedule.images_at(lod) for lod in range(schedule.start_lod, schedule.max_lod + 1))
    torch.save({"format": CHECKPOINT_FORMAT, "model_config": config.to_dict(), "schedule": schedule.to_dict(),
                "setup": "test", "trainer": {"ema": {"module": model.state_dict()}, "images_seen": images}}, path)
    return path


MLP = MLPALAEConfig(latent_size=8, mapping_layers=2, image_channels=1, image_size=8, encoder_hidden=(16,),
                    generator_hidden=(16,))


@pytest.fixture(scope="module", params=["style", "mlp"])
def ckpt(request, tmp_path_factory):
    config = DIGITS_32 if request.param == "style" else MLP
    return _write_checkpoint(tmp_path_factory.mktemp("api") / f"ckpt-{request.param}.pt", config)


@pytest.fixture(scope="module")
def run(ckpt):
    return alae_fast.load(ckpt)


@pytest.fixture(scope="module")
def style_run(tmp_path_factory):
    return alae_fast.load(_write_checkpoint(tmp_path_factory.mktemp("api") / "ckpt-style.pt", DIGITS_32))


def _images(run, n=2, **kw):
    r, c = run.phase.resolution, run.schedule.channels
    return pixels(n, c, r, r, seed=3, **kw)


def _w(run, n=2):
    return torch.randn(n, run.model.latent_size, generator=torch.Generator().manual_seed(4))


# --- the run object: counts, seeds, psi, noise ---------------------------------------------------------

def test_good_calls_still_work(run):
    x = _images(run)
    w = run.encode(x)
    assert w.shape == (2, run.model.latent_size)
    assert run.decode(w).shape == x.shape and run.reconstruct(x).shape == x.shape
    assert run.decode(w.double()).shape == x.shape  # any float dtype
    assert run.generate(np.int64(3), seed=2 ** 63 - 1, psi=PSI_RANGE[0]).shape == (3, *x.shape[1:])
    assert torch.equal(run.generate(2, seed=5, psi=PSI_RANGE[1]), run.generate(2, seed=5, psi=2))


# The ops' rule (alae_fast.ops) holds here too: the wrong TYPE raises TypeError, a bad VALUE of the
# right type ValueError, each naming the method and the argument.
T, V = TypeError, ValueError


@pytest.mark.parametrize("n, exc", [(-1, V), (0, V), (2.5, T), (True, T), ("3", T), (None, T), (np.float64(3), T)])
def test_generate_count(run, n, exc):
    with pytest.raises(exc, match=r"^generate: n must be an int >= 1; got") as e:
        run.generate(n)
    assert e.type is exc


def test_generate_latents_instead_of_a_count(run):
    with pytest.raises(TypeError, match=r"generate: n must be an int >= 1 .*tensor of shape \(4, 8\).*decode"):
        run.generate(torch.randn(4, 8))


@pytest.mark.parametrize("seed, exc", [(2 ** 70, V), (2 ** 63, V), (-1, V), (1.5, T), (True, T), ("0", T), (None, T)])
def test_generate_seed(run, seed, exc):
    with pytest.raises(exc, match=r"^generate: seed must be an int in \[0, 2\*\*63\); got") as e:
        run.generate(2, seed=seed)
    assert e.type is exc


@pytest.mark.parametrize("psi, exc", [(float("nan"), V), (float("inf"), V), (5.0, V), (-1.5, V), (2.0001, V),
                                      ("0.7", T), (True, T), (torch.tensor(0.5), T)])
def test_generate_psi_names_psi(run, psi, exc):  # (None is the config's truncation: see below)
    with pytest.raises(exc, match=r"^generate: psi must be .*\[-1, 2\]") as e:
        run.generate(2, psi=psi)
    assert e.type is exc
    assert "truncation_psi" not in str(e.value)


@pytest.mark.parametrize("noise, exc", [("gaussian", V), (3, T), (torch.zeros(2), T), (True, T)])
def test_generate_noise(run, noise, exc):
    with pytest.raises(exc, match="generate: noise must be one of") as e:
        run.generate(2, noise=noise)
    assert e.type is exc


@pytest.mark.parametrize("cutoff, exc", [(-1, V), (0, V), (1.5, T), ("2", T), (True, T)])
def test_generate_cutoff(style_run, cutoff, exc):
    with pytest.raises(exc, match="^generate: cutoff must be") as e:
        style_run.generate(2, psi=0.7, cutoff=cutoff)
    assert e.type is exc


@pytest.mark.parametrize("call", ["generate", "sample_images", "generate_seeds"])
def test_every_sampling_entry_checks_the_truncation_alike(style_run, call):
    # a new user's trial: generate_seeds took cutoff=0 (the untruncated image), 99 and a cutoff
    # with psi 1 silently, where run.generate and `alae-fast generate` refuse each
    num_ws = int(style_run.model.num_ws)
    fn = {"generate": lambda **kw: style_run.generate(1, **kw),
          "sample_images": lambda **kw: sample_images(style_run, 1, **kw),
          "generate_seeds": lambda **kw: generate_seeds(style_run, [0], **kw)}[call]
    for cutoff in (0, num_ws + 1, 99):
        with pytest.raises(ValueError, match=rf"^{call}: cutoff must be an int in \[1, {num_ws}\]"):
            fn(psi=0.5, cutoff=cutoff)
    with pytest.raises(ValueError, match=rf"^{call}: cutoff 2 has no effect with psi 1 \(no truncation\)$"):
        fn(psi=1.0, cutoff=2)
    # digits-32's own truncation psi is 1: a cutoff without psi says so
    with pytest.raises(ValueError, match=rf"^{call}: cutoff 2 has no effect .*this run's truncation psi is 1"):
        fn(cutoff=2)
    with pytest.raises(TypeError, match=rf"^{call}: cutoff must be None or an int"):
        fn(psi=0.5, cutoff=1.5)
    # num_ws itself truncates every input, as psi alone does
    torch.testing.assert_close(fn(psi=0.5, cutoff=num_ws), fn(psi=0.5))


def test_generate_seeds_takes_arrays_of_seeds_and_the_configs_psi(style_run, monkeypatch):
    want = generate_seeds(style_run, [0, 1, 2])
    torch.testing.assert_close(generate_seeds(style_run, np.arange(3)), want, rtol=0, atol=0)
    torch.testing.assert_close(generate_seeds(style_run, torch.arange(3)), want, rtol=0, atol=0)
    torch.testing.assert_close(generate_seeds(style_run, range(3)), want, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"^generate_seeds: seeds must be .*\(a 1-D array\); got an array of shape"):
        generate_seeds(style_run, np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(TypeError, match=r"^generate_seeds: seeds\[0\] must be an int"):
        generate_seeds(style_run, np.array([0.5]))
    # psi None is the config's truncation, as run.generate: a run made to truncate by default does
    cfg = dataclasses.replace(style_run.config, truncation_psi=0.5, truncation_cutoff=2)
    monkeypatch.setattr(style_run, "config", cfg)
    torch.testing.assert_close(generate_seeds(style_run, [4]), generate_seeds(style_run, [4], psi=0.5, cutoff=2),
                               rtol=0, atol=0)
    assert not torch.equal(generate_seeds(style_run, [4]), generate_seeds(style_run, [4], psi=1.0))


def test_a_noise_list_is_refused_in_the_name_of_the_method_called(style_run):
    # "decode: noise list must have ..." had answered run.generate(noise=[...])
    lod = style_run.phase.lod
    count = 2 * lod + 2
    x = _images(style_run, 2)
    calls = {"generate": lambda noise: style_run.generate(2, noise=noise),
             "reconstruct": lambda noise: style_run.reconstruct(x, noise=noise),
             "project": lambda noise: style_run.project(x, steps=1, noise=noise),
             "decode": lambda noise: style_run.decode(_w(style_run), noise=noise)}
    for name, call in calls.items():
        with pytest.raises(ValueError, match=rf"^{name}: noise list must have between {count} \(2·lod \+ 2\) and"):
            call([torch.zeros(1, 1, 4, 4)])
        bad = [torch.zeros(1, 1, 4 * 2 ** (k // 2), 4 * 2 ** (k // 2)) for k in range(count)]
        bad[3] = torch.zeros(3, 1, 8, 8)  # neither 1 nor the batch of 2
        with pytest.raises(ValueError, match=rf"^{name}: noise\[3\] must have shape \[2 or 1, 1, 8, 8\]; got"):
            call(bad)
        bad[3] = "x"
        with pytest.raises(TypeError, match=rf"^{name}: noise\[3\] must be a tensor or None"):
            call(bad)
    # a right list of zeros is no noise
    zeros = [torch.zeros(1, 1, 4 * 2 ** (k // 2), 4 * 2 ** (k // 2)) for k in range(count)]
    torch.testing.assert_close(style_run.generate(2, noise=zeros), style_run.generate(2, noise="zero"))


@pytest.mark.parametrize("method", ["reconstruct", "project"])
@pytest.mark.parametrize("arg, value, exc", [
    ("steps", "10", T), ("steps", 2.0, T), ("steps", True, T), ("steps", None, T), ("steps", -1, V),
    ("lr", "0.1", T), ("lr", True, T), ("lr", None, T), ("lr", 0.0, V), ("lr", float("nan"), V),
    ("space", None, T), ("space", 1, T), ("space", "z", V)])
def test_refinement_arguments(run, method, arg, value, exc):
    names = {"reconstruct": {"steps": "refine_steps", "lr": "refine_lr", "space": "space"},
             "project": {"steps": "steps", "lr": "lr", "space": "space"}}[method]
    kw = {names[arg]: value}
    if method == "reconstruct" and arg != "steps":
        kw["refine_steps"] = 1
    with pytest.raises(exc, match=rf"^{method}: {names[arg]} must be") as e:
        getattr(run, method)(_images(run, 1), **kw)
    assert e.type is exc


def test_refinement_takes_numpy_numbers(run):
    x = _images(run, 1)
    assert torch.equal(run.project(x, steps=np.int64(1), lr=np.float32(0.05)), run.project(x, steps=1, lr=0.05))


def test_decode_noise_type(run):
    w = _w(run)
    with pytest.raises(TypeError, match="^decode: noise must be one of"):
        run.decode(w, noise=1.0)
    with pytest.raises(ValueError, match="^decode: noise must be one of"):
        run.decode(w, noise="loud")


def test_model_generate_psi_has_the_same_range(run):
    z = torch.randn(3, run.model.latent_size)
    for psi in (-5, 2.5, float("nan")):
        with pytest.raises(ValueError, match=r"^generate: truncation_psi must be .*\[-1, 2\]"):
            run.model.generate(z, truncation_psi=psi)
    with pytest.raises(ValueError, match=r"^truncate: psi must be in \[-1, 2\]"):
        run.model.truncate(run.model.mapping(z), 3.0)
    for psi in ("0.7", None, True, torch.tensor(0.7)):  # the type rule of the ops and LoadedRun
        with pytest.raises(TypeError, match=r"^generate: truncation_psi must be a finite number"):
            run.model.generate(z, truncation_psi=psi)
    assert run.model.generate(z, truncation_psi=np.float32(0.5), noise="zero").shape[0] == 3
    with pytest.raises(TypeError, match="generate: z must have a float dtype"):
        run.model.generate(torch.randint(0, 5, (3, run.model.latent_size)))


def test_psi_range_has_one_definition():
    from alae_fast.app import service
    from alae_fast.inference import sampling
    from alae_fast.models import base

    assert sampling.PSI_RANGE is base.PSI_RANGE is service.PSI_RANGE == (-1.0, 2.0)


def test_sampling_helpers(run, style_run):
    with pytest.raises(ValueError, match=r"^sample_images: n must be an int >= 1"):
        sample_images(run, 0)
    with pytest.raises(ValueError, match=r"^sample_images: seed must be an int in \[0, 2\*\*63\)"):
        sample_images(run, 2, seed=2 ** 70)
    with pytest.raises(ValueError, match=r"^sample_images: psi must be in \[-1, 2\]"):
        sample_images(run, 2, psi=5.0)
    with pytest.raises(ValueError, match=r"^generate_seeds: psi must be in \[-1, 2\]"):
        generate_seeds(run, [1, 2], psi=-3.0)
    with pytest.raises(ValueError, match=r"^generate_seeds: seeds must be a non-empty list"):
        generate_seeds(run, [])
    with pytest.raises(ValueError, match=r"^generate_seeds: seeds\[1\] must be an int in \[0, 2\*\*63\)"):
        generate_seeds(run, [3, 2 ** 70])
    with pytest.raises(ValueError, match=r"^seed must be an int in \[0, 2\*\*63\)"):
        seed_latent(-4, 8)
    for steps in (0, 1):  # one step would be E(a) alone: not an interpolation
        with pytest.raises(ValueError, match=r"^interpolate_latents: steps must be an int >= 2"):
            interpolate_latents(run, _images(run, 1), _images(run, 1), steps)
    with pytest.raises(TypeError, match=r"^interpolate_latents: steps must be an int >= 2; got 2.0 of type float"):
        interpolate_latents(run, _images(run, 1), _images(run, 1), 2.0)
    for kw, name, exc in ((dict(rows=0), "rows", V), (dict(cols=1.5), "cols", T), (dict(seed=-1), "seed", V),
                          (dict(seed="1"), "seed", T), (dict(rows=True), "rows", T)):
        for fn in (style_mix_tiles, style_mix_grid):
            with pytest.raises(exc, match=rf"^{fn.__name__}: {name} must be an int") as e:
                fn(style_run, **kw)
            assert e.type is exc
    for call in (lambda v: sample_images(run, v), lambda v: generate_seeds(run, [v])):
        with pytest.raises(TypeError, match=r"(n|seeds\[0\]) must be an int"):
            call("2")
    with pytest.raises(TypeError, match=r"^sample_images: psi must be a finite number in \[-1, 2\]; got '1' of type"):
        sample_images(run, 2, psi="1")
    with pytest.raises(TypeError, match=r"^sample_images: noise must be one of"):
        sample_images(run, 2, noise=None)
    with pytest.raises(TypeError, match=r"^generate_seeds: seeds must be a non-empty list"):
        generate_seeds(run, 3)
    with pytest.raises(TypeError, match=r"^generate_seeds: noise_mode must be one of"):
        generate_seeds(run, [3], noise_mode=None)
    with pytest.raises(TypeError, match=r"^seed_latent: latent_size must be an int >= 1"):
        seed_latent(3, 8.0)
    with pytest.raises(TypeError, match=r"^seed must be an int in \[0, 2\*\*63\); got '4' of type str"):
        seed_latent("4", 8)


def test_sampling_helpers_name_themselves_for_their_images(style_run):
    # the images a helper encodes are its own arguments: an error names the helper and them, not encode's x
    x = _images(style_run, 2)
    with pytest.raises(TypeError, match=r"^interpolate_latents: b must have dtype float16"):
        interpolate_latents(style_run, x[:1], x[1:].to(torch.uint8), 3)
    with pytest.raises(ValueError, match=r"^interpolate_latents: a must hold pixels in \[-1, 1\]"):
        interpolate_latents(style_run, x[:1] * 100, x[1:], 3)
    with pytest.raises(ValueError, match=r"^style_mix_images: destinations must have shape"):
        style_mix_images(style_run, x, x[:, :, :5])
    with pytest.raises(TypeError, match=r"^style_mix_images: sources must be a torch.Tensor"):
        style_mix_images(style_run, [1.0], x)


# --- the run object: tensors ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.bool])
def test_integer_images_are_refused_at_every_entry(run, dtype):
    x = ((_images(run) + 1) * 127.5).to(dtype)
    m, lod, blend = run.model, run.phase.lod, run.phase.blend
    accepted = r"must have dtype float16, bfloat16, float32 or float64 \(pixels in \[-1, 1\]\)"
    for call, op in ((lambda: run.encode(x), "encode"), (lambda: run.reconstruct(x), "reconstruct"),
                     (lambda: m.encode(x, lod, blend), "encode"), (lambda: m.encode(x, lod, blend, native=True),
                                                                   "encode"),
                     (lambda: m.reconstruct(x, lod, blend), "reconstruct")):
        with pytest.raises(TypeError, match=rf"^{op}: x {accepted}; got {dtype}"):
            call()


def test_images_wrong_shape_nan_empty_device(run):
    x = _images(run)
    with pytest.raises(ValueError, match="encode: x must have shape"):
        run.encode(x[:, :, 1:])
    for bad in (float("nan"), float("inf")):
        y = x.clone()
        y[1, 0, 2, 3] = bad
        for call, op in ((run.encode, "encode"), (run.reconstruct, "reconstruct")):
            with pytest.raises(ValueError, match=rf"^{op}: x contains NaN or infinity"):
                call(y)
    with pytest.raises(ValueError, match=r"^encode: x is empty"):
        run.encode(x[:0])
    with pytest.raises(ValueError, match=r"^encode: x is on meta and the model on cpu"):
        run.encode(x.to("meta"))
    with pytest.raises(TypeError, match=r"^encode: x must be a torch.Tensor; got list"):
        run.encode(x.tolist())


def test_images_of_another_scale_are_refused_where_users_give_images(style_run):
    """0..255 pixels given as floats are refused (encoded, they give nonsense without a word) by
    the run's encode/reconstruct and by prepare_images; values within the +-4 margin pass (G's own
    unclamped outputs go back through E), and the model's encode refuses them too (native=True
    takes any values)."""
    from alae_fast.inference.pixels import prepare_images

    run = style_run
    x = _images(run)
    x255 = (x + 1) * 127.5
    hint = r"\(convert 0-255 images with x / 127.5 - 1\)"
    for call, op in ((run.encode, "encode"), (run.reconstruct, "reconstruct")):
        with pytest.raises(ValueError, match=rf"^{op}: x must hold pixels in \[-1, 1\]; got values in \[.*\] {hint}"):
            call(x255)
    with pytest.raises(ValueError, match=r"^encode: x must hold pixels in \[-1, 1\].*run.model.encode"):
        run.encode(x * 100)
    R = run.schedule.resolution
    full = torch.rand(2, run.schedule.channels, R, R, generator=torch.Generator().manual_seed(5)) * 255
    with pytest.raises(ValueError, match=rf"^prepare_images: x must hold pixels in \[-1, 1\]; .* {hint}"):
        prepare_images(full, run.schedule, run.phase)
    # inside the margin: accepted, and the same as the model's own encode
    m, lod, blend = run.model, run.phase.lod, run.phase.blend
    torch.testing.assert_close(run.encode(x * 1.5), m.encode(x * 1.5, lod, blend))
    with pytest.raises(ValueError, match=r"^encode: x must hold pixels in \[-1, 1\]"):
        m.encode(x255, lod, blend)  # the model's own encode refuses them too
    m.encode(x255, lod, blend, native=True)  # the native entry (the trainer's) does not look at values


def test_prepare_images_bad_input(style_run):
    from alae_fast.inference.pixels import prepare_images

    run = style_run
    R, C = run.schedule.resolution, run.schedule.channels
    x = torch.rand(2, C, R, R) * 2 - 1
    for bad, exc, match in ((x[:, :, 1:], ValueError, rf"must be images \[N, C, {R}, {R}\].*got shape"),
                            (x[0], ValueError, r"must be images"), (x[:0], ValueError, r"holds no image"),
                            (x.tolist(), TypeError, r"must be a torch.Tensor"),
                            (((x + 1) * 127.5).to(torch.uint8), TypeError, r"must have dtype float16"),
                            (x.masked_fill(x > 0.9, float("nan")), ValueError, r"contains NaN or infinity"),
                            (torch.rand(2, 2, R, R), ValueError, rf"has 2 channels; the model takes {C}")):
        with pytest.raises(exc, match=rf"^prepare_images: x {match}"):
            prepare_images(bad, run.schedule, run.phase)
    out = prepare_images(x, run.schedule, run.phase)
    assert out.shape == (2, C, run.phase.resolution, run.phase.resolution) and out.dtype == x.dtype


def test_latents(run):
    w = _w(run)
    with pytest.raises(ValueError, match="decode: w must have shape"):
        run.decode(w[:, 1:])
    with pytest.raises(ValueError, match="decode: w must have shape"):
        run.decode(w.unsqueeze(0))
    bad = w.clone()
    bad[0, 1] = float("nan")
    with pytest.raises(ValueError, match=r"^decode: w contains NaN or infinity"):
        run.decode(bad)
    with pytest.raises(TypeError, match=r"^decode: w must have a float dtype"):
        run.decode((w * 10).long())
    with pytest.raises(TypeError, match=r"^decode: w must have a float dtype"):
        run.model.decode((w * 10).long())
    with pytest.raises(ValueError, match=r"^decode: w is on meta"):
        run.decode(w.to("meta"))
    with pytest.raises(ValueError, match="decode: noise must be one of"):
        run.decode(w, noise="gaussian")
    with pytest.raises(ValueError, match="reconstruct: noise must be one of"):
        run.reconstruct(_images(run), noise="loud")


# --- devices ------------------------------------------------------------------------------------------

@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_load_on_cuda_without_a_gpu(ckpt):
    with pytest.raises(UserError, match=r"^device='cuda': (this torch was built without CUDA|no GPU is visible); "
                                        r"use device='cpu'$"):
        alae_fast.load(ckpt, device="cuda")
    # the CLI's wording from the same check
    with pytest.raises(UserError, match=r"^--device cuda: .*; use --device cpu$"):
        check_device("cuda", "--device")


@pytest.mark.parametrize("device, match, exc", [("tpu", "device: 'tpu' is not a device name", UserError),
                                                (3.5, "device: expected a device name", TypeError),
                                                (None, "device: expected a device name", TypeError),
                                                ("meta", "device: 'meta' is not supported", UserError)])
def test_load_bad_device(ckpt, device, match, exc):
    with pytest.raises(exc, match=match):
        alae_fast.load(ckpt, device=device)


@pytest.mark.parametrize("ema", ["False", 0, None])
def test_load_ema_must_be_a_bool(ckpt, ema, tmp_path):
    from alae_fast.inference.loading import convert_official, load_run

    with pytest.raises(TypeError, match=r"^load_run: ema must be a bool"):
        load_run(ckpt, ema=ema)
    with pytest.raises(TypeError, match=r"^convert_official: ema must be a bool"):
        convert_official(ckpt, tmp_path / "out.pt", ema=ema)


def test_load_bad_noise_mode(ckpt):
    from alae_fast.inference.loading import load_run

    with pytest.raises(UserError, match="noise_mode: expected one of"):
        load_run(ckpt, noise_mode="loud")
    with pytest.raises(TypeError, match="noise_mode: expected one of"):
        load_run(ckpt, noise_mode=None)


# --- alae_fast.edit -----------------------------------------------------------------------------------

def _edit_inputs(n=3, latent=6):
    g = torch.Generator().manual_seed(7)
    w = torch.randn(n, latent, generator=g)
    avg = torch.randn(latent, generator=g) * 0.3
    d = np.random.default_rng(8).normal(size=latent)
    return w, avg, d


def test_edit_w_wants_dicts():
    w, avg, d = _edit_inputs()
    with pytest.raises(TypeError, match=r"^directions: expected a dict name -> direction vector \[latent\].*list"):
        edit_w(w, [d], [0.5], avg, 4)
    with pytest.raises(TypeError, match=r"^amounts: expected a dict name -> amount.*got list"):
        edit_w(w, {"a": d}, [0.5], avg, 4)
    with pytest.raises(TypeError, match=r"^directions: expected a dict name -> direction vector"):
        direction_coefficients(w, [d], avg)


@pytest.mark.parametrize("amount, match", [
    (float("nan"), r"amounts\['a'\]: expected a finite number; got nan"),
    (float("inf"), r"amounts\['a'\]: expected a finite number; got inf"),
    (1e308, r"amounts\['a'\]: 1e\+308 is out of range; amounts are at most 1e\+06"),
    (-2 * MAX_AMOUNT, r"amounts\['a'\]: -2e\+06 is out of range"),
    (True, r"amounts\['a'\]: expected a number; got True"),
    ("2", r"amounts\['a'\]: expected a number; got '2'"),
    (torch.tensor([0.5, float("nan"), 1.0]), r"amounts\['a'\]: contains NaN or infinity"),
    (torch.tensor([0.5, 1e300, 1.0], dtype=torch.float64), r"amounts\['a'\]: 1e\+300 is out of range"),
    (torch.ones(2, 3), r"amounts\['a'\]: expected a number or 3 values"),
])
def test_edit_w_amounts(amount, match):
    w, avg, d = _edit_inputs()
    with pytest.raises(ValueError, match=match):
        edit_w(w, {"a": d}, {"a": amount}, avg, 4)


def test_edit_w_overflow_names_amounts():
    w, avg, _ = _edit_inputs()
    long = np.random.default_rng(9).normal(size=6) * 1e35  # finite in float32, amount x it is not
    with pytest.raises(ValueError, match=r"^amounts: the edited styles overflow torch.float32"):
        edit_w(w, {"a": long}, {"a": 1e5}, avg, 4)


def test_edit_w_other_arguments():
    w, avg, d = _edit_inputs()
    with pytest.raises(ValueError, match=r"^edit_layers: expected an int >= 1 or None \(all\); got 0: no style "
                                         r"input would be edited"):
        edit_w(w, {"a": d}, {"a": 0.5}, avg, 4, edit_layers=0)
    assert edit_w(w, {"a": d}, {"a": 0.5}, avg, 4, edit_layers=None).shape == (3, 4, 6)
    bad = w.clone()
    bad[1, 2] = float("inf")
    with pytest.raises(ValueError, match=r"^w: contains NaN or infinity"):
        edit_w(bad, {"a": d}, {"a": 0.5}, avg, 4)
    with pytest.raises(ValueError, match=r"^w_avg: contains NaN or infinity"):
        direction_coefficients(w, {"a": d}, torch.full((6,), float("nan")))
    with pytest.raises(ValueError, match=r"amounts: unknown direction \['b'\]; known: \['a'\]"):
        edit_w(w, {"a": d}, {"b": 0.5}, avg, 4)


def test_direction_files_and_fits(tmp_path):
    rng = np.random.default_rng(10)
    with pytest.raises(ValueError, match=r"^latent_size: expected an int >= 1"):
        load_direction(save_direction(rng.normal(size=4), tmp_path, "a"), 0)
    with pytest.raises(ValueError, match=r"^direction: holds NaN or infinity"):
        save_direction(np.array([0.5, math.nan, 1.0]), tmp_path, "b")
    with pytest.raises(ValueError, match=r"^direction: expected a vector"):
        save_direction(rng.normal(size=(2, 3)), tmp_path, "c")
    w = rng.normal(size=(20, 4))
    labels = np.arange(20) % 2
    with pytest.raises(ValueError, match=r"^C: expected a finite number > 0"):
        fit_direction(w, labels, C=0.0)
    with pytest.raises(ValueError, match=r"^C: expected a finite number > 0"):
        fit_direction(w, labels, C=float("nan"))


# --- the web page ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def service(style_run):
    from alae_fast.app.service import ModelService

    svc = ModelService.open(style_run, fit_digits=False)
    rng = np.random.default_rng(11)
    for name in ("a", "b"):
        v = rng.normal(size=style_run.model.latent_size)
        svc.add_direction(name, v / np.linalg.norm(v), source="test")
    return svc


def test_service_amounts_and_psi(service):
    w = torch.randn(service.latent_size, generator=torch.Generator().manual_seed(12)).tolist()
    good = [0.5, -0.25]
    assert service.edit(w, good)["image"][:4] == b"\x89PNG"
    with pytest.raises(UserError, match=r"^amounts: expected values within ±1e\+06 .*; got 1e\+308"):
        service.edit(w, [0.5, 1e308])
    with pytest.raises(UserError, match=r"^amounts: contain NaN or infinity"):
        service.edit(w, [float("nan"), 0.5])
    with pytest.raises(UserError, match=r"^psi must be in \[-1, 2\]"):
        service.generate(3, psi=5.0)


def test_api_edit_names_amounts(service):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from alae_fast.app.server import create_app

    w = torch.randn(service.latent_size, generator=torch.Generator().manual_seed(13)).tolist()
    with TestClient(create_app(service), base_url="http://127.0.0.1") as client:
        r = client.post("/api/edit", json={"w": w, "amounts": [1e308, 0.5]})
        assert r.status_code == 400 and r.json()["error"].startswith("amounts: expected values within"), r.text
        r = client.post("/api/edit", json={"w": w, "amounts": [1.5, -0.5]})
        assert r.status_code == 200, r.text


# --- pictures, metrics, conversion: the second trial's findings ------------------------------------

def test_pictures_refuse_what_they_would_write_wrongly(tmp_path):
    from alae_fast.inference.pictures import make_grid, png_bytes, save_image_grid

    rng = torch.Generator().manual_seed(0)
    images = torch.rand(3, 3, 8, 8, generator=rng) * 2 - 1
    with pytest.raises(ValueError, match=r"pictures are written as PNG; give a name ending in \.png"):
        save_image_grid(images, tmp_path / "grid.jpg")
    assert not list(tmp_path.iterdir())
    with pytest.raises(TypeError, match=r"^images: expected a float tensor with pixels in \[-1, 1\]; got torch.uint8"):
        save_image_grid(((images + 1) * 127.5).to(torch.uint8), tmp_path / "grid.png")
    for bad in (float("nan"), 2.0, True):
        with pytest.raises(ValueError, match=r"^pad_value: expected a number in \[-1, 1\]"):
            make_grid(images, pad_value=bad)
    with pytest.raises(ValueError, match=r"^image: expected one image \[C, H, W\], got \(3, 3, 8, 8\)"):
        png_bytes(images)
    assert png_bytes(images[0])[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_model_names_its_arguments(style_run):
    from alae_fast.inference.metrics import evaluate_model

    for kw, said in ((dict(num_fid=1), r"evaluate_model: num_fid must be an int >= 2"),
                     (dict(ppl_samples=0), r"evaluate_model: ppl_samples must be an int >= 1"),
                     (dict(seed=-1), r"evaluate_model: seed must be an int in \[0, 2\*\*63\)"),
                     (dict(device="tpu"), r"^device: 'tpu' is not a device name")):
        with pytest.raises(ValueError, match=said):
            evaluate_model(style_run, **kw)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"^device='cuda': this torch was built without CUDA|no GPU"):
            evaluate_model(style_run, device="cuda")


def test_cutoff_is_named_by_the_sampling_helpers(style_run):
    for bad, exc in ((-1, ValueError), (1.5, TypeError), (True, TypeError), ("2", TypeError)):
        with pytest.raises(exc, match=r"^sample_images: cutoff must be None or an int >= 0") as e:
            sample_images(style_run, 2, psi=0.7, cutoff=bad)
        assert e.type is exc
        with pytest.raises(exc, match=r"^generate_seeds: cutoff must be None or an int >= 0") as e:
            generate_seeds(style_run, [1], psi=0.7, cutoff=bad)
        assert e.type is exc


def test_convert_says_what_a_file_is_not(tmp_path, ckpt):
    from alae_fast.inference.loading import convert_official

    other = tmp_path / "v.pth"
    torch.save({"weights": torch.randn(3)}, other)
    with pytest.raises(UserError, match=r"not a checkpoint of the official ALAE code \(a torch file without its "
                                        r"'models' dict"):
        convert_official(other, tmp_path / "x.pt")
    with pytest.raises(UserError, match="an alae_fast one, which every --ckpt command opens as it is"):
        convert_official(ckpt, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_service_names_a_w_too_large_for_the_model(service):
    """A w finite in JSON but beyond float32 (1e308) or far beyond any encoded w (1e30, which G
    turns into NaN) is refused naming the field, not as 'images: contain NaN'."""
    rng = torch.Generator().manual_seed(14)
    wa = torch.randn(service.latent_size, generator=rng).tolist()
    for big in (1e308, 1e30):
        wb = list(wa)
        wb[3] = big
        with pytest.raises(UserError, match=r"^wb: values must be within ±10000 \(an encoded w lies within"):
            service.mix(wa, wb)
        with pytest.raises(UserError, match=r"^w: values must be within ±10000"):
            service.values(wb)
    assert set(service.mix(wa, wa)) >= {"a", "b"}


def test_edit_w_refuses_an_all_zero_direction(style_run):
    w = torch.randn(2, style_run.model.latent_size, generator=torch.Generator().manual_seed(15))
    with pytest.raises(ValueError, match=r"^directions\['flat'\]: is all zeros"):
        edit_w(w, {"flat": np.zeros(style_run.model.latent_size)}, {"flat": 1.0}, style_run.model.w_avg,
               style_run.model.num_ws)
    with pytest.raises(ValueError, match=r"^directions\['flat'\]: is all zeros"):
        direction_coefficients(w, {"flat": torch.zeros(style_run.model.latent_size)}, style_run.model.w_avg)


# --- a run mid-growth, truncation defaults, loading keywords, contents that disagree -----------------

def _checkpoint_at(path, config, images_seen, **changes):
    state = torch.load(_write_checkpoint(path, config), weights_only=True)
    state["trainer"]["images_seen"] = images_seen
    state.update(changes)
    torch.save(state, path)
    return path


def test_encode_and_reconstruct_take_full_resolution_images_mid_growth(tmp_path):
    """A run that stopped at 16x16 of 32 (a run folder still training): images at the run's full
    resolution, what load_image_files gives, are pooled and faded to the level as training does."""
    from alae_fast.inference.pixels import prepare_images

    sched = _official_schedule(DIGITS_32)
    seen = sum(sched.images_at(lod) for lod in range(sched.max_lod - 1)) + sched.images_at(sched.max_lod - 1) // 4
    run = alae_fast.load(_checkpoint_at(tmp_path / "ckpt-mid.pt", DIGITS_32, seen))
    assert run.phase.resolution == 16 and run.schedule.resolution == 32 and run.phase.blend < 1
    x = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    small = prepare_images(x, run.schedule, run.phase)
    assert small.shape == (3, 1, 16, 16)
    torch.testing.assert_close(run.encode(x), run.encode(small), rtol=0, atol=0)
    torch.testing.assert_close(run.reconstruct(x), run.reconstruct(small), rtol=0, atol=0)
    assert run.reconstruct(x).shape == (3, 1, 16, 16)
    for op, call in (("encode", run.encode), ("reconstruct", run.reconstruct)):
        with pytest.raises(ValueError, match=rf"^{op}: x must have shape \[N, 1, 16, 16\] \(the level the run reached\) "
                                             rf"or \[N, 1, 32, 32\] \(the run's full resolution\); got \(3, 1, 8, 8\)"):
            call(x[:, :, :8, :8])


def test_generate_truncates_as_the_config_and_the_cli_by_default(tmp_path):
    config = DIGITS_32.replace(truncation_psi=0.7, truncation_cutoff=2)
    run = alae_fast.load(_write_checkpoint(tmp_path / "ckpt-trunc.pt", config))
    with torch.no_grad():
        run.model.w_avg.copy_(torch.randn(run.model.latent_size, generator=torch.Generator().manual_seed(2)))
    default = run.generate(2, seed=3)
    torch.testing.assert_close(default, sample_images(run, 2, seed=3, noise="zero"), rtol=0, atol=0)
    torch.testing.assert_close(default, run.generate(2, seed=3, psi=0.7, cutoff=2), rtol=0, atol=0)
    assert not torch.equal(default, run.generate(2, seed=3, psi=1.0))
    assert not torch.equal(default, run.generate(2, seed=3, psi=0.7))  # psi alone: every input
    for bad, exc in ((-1, ValueError), (1.5, TypeError), ("2", TypeError)):
        with pytest.raises(exc, match=r"^generate: cutoff must be None or an int >= 0"):
            run.generate(2, psi=0.5, cutoff=bad)
    # a cutoff that would change nothing is refused, as alae-fast generate refuses it: 0 (no input
    # truncated), past the style inputs, or with psi 1 (the config's here: 0.7, so psi=1 given)
    num_ws = int(run.model.num_ws)
    torch.testing.assert_close(run.generate(2, seed=3, psi=0.7, cutoff=num_ws), run.generate(2, seed=3, psi=0.7),
                               rtol=0, atol=0)  # num_ws itself: every input, allowed
    for bad in (0, num_ws + 1, 100):
        with pytest.raises(ValueError, match=rf"^generate: cutoff must be an int in \[1, {num_ws}\] .* got {bad}$"):
            run.generate(2, psi=0.5, cutoff=bad)
    with pytest.raises(ValueError, match=r"^generate: cutoff 3 has no effect with psi 1 \(no truncation\)$"):
        run.generate(2, psi=1.0, cutoff=3)
    plain = alae_fast.load(_write_checkpoint(tmp_path / "ckpt-plain.pt", DIGITS_32))  # config psi 1
    with pytest.raises(ValueError, match=r"cutoff 3 has no effect with psi 1 .*: give psi too$"):
        plain.generate(2, cutoff=3)
    assert plain.generate(1, psi=0.5, cutoff=3).shape == (1, 1, 32, 32)


def test_a_loaded_run_prints_as_a_summary(run):
    text = repr(run)
    assert len(text) < 400 and str(run) == text and text.startswith("LoadedRun(")
    assert f"latent {run.config.latent_size}" in text and f"{int(run.model.num_ws)} style input" in text
    assert str(run.path) in text and f"{run.images_seen / 1000:g} kimg" in text and run.kimg == run.images_seen / 1000


def test_load_takes_load_runs_keywords_and_refuses_a_non_path(ckpt):
    assert alae_fast.load(ckpt, noise_mode="const").noise_mode == "const"
    with pytest.raises(ValueError, match="only for checkpoints of the official ALAE code"):
        alae_fast.load(ckpt, ema=False)
    for bad in (None, 3, ["a"]):
        with pytest.raises(TypeError, match=r"^load_run: path must be a run folder or checkpoint file"):
            alae_fast.load(bad)


def test_a_checkpoint_whose_contents_disagree_is_one_error(tmp_path):
    path = _write_checkpoint(tmp_path / "ckpt-a.pt", DIGITS_32)
    state = torch.load(path, weights_only=True)
    state["model_config"]["latent_size"] = 64
    torch.save(state, tmp_path / "ckpt-b.pt")
    with pytest.raises(UserError, match=r"ckpt-b.pt: its weights do not fit its model_config \(.*size mismatch"):
        alae_fast.load(tmp_path / "ckpt-b.pt")
    state = torch.load(path, weights_only=True)
    del state["schedule"]
    torch.save(state, tmp_path / "ckpt-c.pt")
    with pytest.raises(UserError, match=r"ckpt-c.pt: an alae_fast checkpoint without its 'schedule' entry"):
        alae_fast.load(tmp_path / "ckpt-c.pt")
    state = torch.load(path, weights_only=True)
    state["model_config"]["layer_count"] = -2
    torch.save(state, tmp_path / "ckpt-d.pt")
    with pytest.raises(UserError, match=r"ckpt-d.pt: its model_config or schedule is not valid"):
        alae_fast.load(tmp_path / "ckpt-d.pt")


def test_load_image_files_takes_one_path_and_checks_the_schedule(style_run, tmp_path):
    from PIL import Image

    from alae_fast.inference.pixels import load_image_files

    Image.fromarray(np.full((20, 20), 200, np.uint8)).save(tmp_path / "one.png")
    for p in (str(tmp_path / "one.png"), tmp_path / "one.png"):
        x = load_image_files(p, style_run.schedule)
        assert x.shape == (1, 1, 32, 32)
        torch.testing.assert_close(x, load_image_files([p], style_run.schedule), rtol=0, atol=0)
    with pytest.raises(TypeError, match=r"^load_image_files: schedule must be the run's LODSchedule"):
        load_image_files([tmp_path / "one.png"], 32)


def test_const_noise_is_the_models_own_maps_in_grids_and_per_seed(style_run):
    run = alae_fast.load(style_run.path)
    with torch.no_grad():  # noise strengths start at 0: give the noise an effect
        for name, p in run.model.named_parameters():
            if "noise" in name:
                p.fill_(0.5)
    assert not torch.equal(generate_seeds(run, [5], psi=1.0, noise_mode="const"),
                           generate_seeds(run, [5], psi=1.0, noise_mode="none"))
    # one image of a seed: sample_images draws the same z as seed_latent, so only the noise could differ
    for seed in (0, 5):
        torch.testing.assert_close(generate_seeds(run, [seed], psi=1.0, noise_mode="const"),
                                   sample_images(run, 1, psi=1.0, seed=seed, noise="const"), rtol=0, atol=0)


def test_interpolate_latents_takes_one_image_each_end(style_run):
    x = _images(style_run, n=4)
    with pytest.raises(ValueError, match=r"^interpolate_latents: a must be one image \[1, C, R, R\]; got 2"):
        interpolate_latents(style_run, x[:2], x[2:3], 5)
    with pytest.raises(ValueError, match=r"^interpolate_latents: b must be one image"):
        interpolate_latents(style_run, x[:1], x[1:4], 5)
    assert interpolate_latents(style_run, x[:1], x[1:2], 3).shape[0] == 3


def test_edit_w_refuses_a_w_avg_that_is_not_a_vector_of_numbers():
    w = torch.randn(2, 8)
    for bad, match in ((None, r"expected a tensor \[8\]"), ("0", r"expected a tensor \[8\]"),
                       (np.array(["a"] * 8), "expected numbers"), (torch.zeros(8, dtype=torch.bool), "expected numbers")):
        with pytest.raises(ValueError, match=rf"^w_avg: {match}"):
            edit_w(w, {"a": torch.randn(8)}, {"a": 1.0}, bad, 4)


def test_save_image_grid_refuses_a_picture_too_large_before_drawing(tmp_path):
    from alae_fast.inference.pictures import MAX_PICTURE_PIXELS, save_image_grid

    x = torch.rand(4, 3, 32, 32) * 2 - 1
    with pytest.raises(ValueError, match=rf"^save_image_grid: the picture would be .* more than {MAX_PICTURE_PIXELS}"):
        save_image_grid(x, tmp_path / "big.png", scale=1000)
    assert not (tmp_path / "big.png").exists()
    from alae_fast.cli import pictures
    assert pictures.MAX_PICTURE_PIXELS == MAX_PICTURE_PIXELS  # one limit for the commands and the API
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match=r"^scale: expected a positive int"):
            save_image_grid(x, tmp_path / "p.png", scale=bad)


def test_class_directions_name_a_class_that_cannot_be_told_apart(tmp_path, style_run):
    from PIL import Image

    from alae_fast.edit.commands import images_by_class
    from alae_fast.edit.directions import fit_class_directions

    w = np.random.default_rng(0).normal(size=(12, 8))
    w[6:] = w[:6]  # class 1's latents are class 0's
    with pytest.raises(ValueError, match=r"^class 'a': its latents cannot be told apart"):
        fit_class_directions(w, np.repeat([0, 1], 6), {0: "a", 1: "b"})
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.fromarray(np.full((8, 8), 40 * i + (100 if name == "a" else 0), np.uint8)).save(tmp_path / name / f"{i}.png")
    (tmp_path / "empty").mkdir()
    with pytest.warns(RuntimeWarning, match=r"--data: sub-folder 'empty' skipped: it is not a class"):
        _, y, names = images_by_class(tmp_path, 32, 1)
    assert names == ["a", "b"] and len(y) == 4


def test_class_folders_are_scanned_once_and_left_out_formats_said_as_what_directions_reads(tmp_path, monkeypatch):
    # each class folder was scanned twice: once for the wording of the left-out formats' warning,
    # once by the dataset
    from collections import Counter

    from PIL import Image

    import alae_fast.data
    import alae_fast.data.folder
    from alae_fast.edit.commands import images_by_class

    real, scans = alae_fast.data.folder.find_image_files, Counter()

    def counted(path, *args, **kwargs):
        scans[Path(path).name] += 1
        return real(path, *args, **kwargs)

    for module in (alae_fast.data, alae_fast.data.folder):  # the package's name for it and the dataset's
        monkeypatch.setattr(module, "find_image_files", counted)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(np.full((8, 8), 30 * i + (100 if name == "a" else 0), np.uint8)).save(tmp_path / name / f"{i}.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a" / "x.gif")
    with pytest.warns(RuntimeWarning) as said:
        x, y, names = images_by_class(tmp_path, 16, 1)
    assert scans == {"a": 1, "b": 1}
    assert names == ["a", "b"] and y.tolist() == [0, 0, 0, 1, 1, 1] and tuple(x.shape) == (6, 1, 16, 16)
    (left_out,) = [str(w.message) for w in said if "left out" in str(w.message)]
    assert left_out.startswith(f"{tmp_path / 'a'}: left out 1 image file in .gif: directions --data reads .png, "
                               f".jpg, .jpeg only"), left_out
