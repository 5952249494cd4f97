"""The trainer against an independent implementation of ALAE's Algorithm 1, the schedule, the EMA,
and a training run interrupted and resumed against one that never stopped (bit-identical)."""

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from alae_fast.models import MLPALAEConfig, build_model
from alae_fast.training.checkpoint import list_checkpoints, load_checkpoint
from alae_fast.training.ema import EMA, ema_beta
from alae_fast.training.run import TrainOptions, run_training
from alae_fast.training.schedule import (LODSchedule, blend_factor, blend_real_images, images_for_lod,
                                         schedule_from_config)
from alae_fast.training.setups import resolve_setup
from alae_fast.training.trainer import ALAETrainer
from alae_fast_tests_support import augment_ref, toy

pytestmark = pytest.mark.usefixtures("one_thread")


# --- schedule ----------------------------------------------------------------------------------

def test_blend_factor_curve():
    assert blend_factor(0.0) == pytest.approx(0.0, abs=1e-15)
    assert blend_factor(0.5) == pytest.approx(0.5)
    assert blend_factor(1.0) == pytest.approx(1.0)
    assert blend_factor(-3.0) == pytest.approx(0.0, abs=1e-15) and blend_factor(7.0) == 1.0
    ts = np.linspace(0, 1, 101)
    vals = [blend_factor(t) for t in ts]
    assert all(b >= a for a, b in zip(vals, vals[1:]))
    for t, v in zip(ts, vals):
        assert v == pytest.approx((1 - math.cos(math.pi * t)) / 2, abs=1e-12)  # same curve, other form


def test_schedule_phases():
    s = LODSchedule(max_lod=3, base_resolution=4, lod_kimg=(1.0, 2.0), lod_batch=(16, 8), lod_lr=(0.001, 0.002, 0.003),
                    start_lod=1, channels=1)
    # start_lod 1: no fade-in at the first level; lod 1 lasts 2000 images, lod 2 also 2000 (last value repeats)
    p = s.phase(0)
    assert (p.lod, p.resolution, p.blend, p.batch, p.lr, p.in_transition) == (1, 8, 1.0, 8, 0.002, False)
    assert s.phase(1999).lod == 1
    p = s.phase(2000)
    assert (p.lod, p.resolution, p.blend, p.lod_start, p.in_transition) == (2, 16, 0.0, 2000, True)
    assert s.phase(2500).blend == pytest.approx(blend_factor(0.5))
    assert s.phase(3000).blend == 1.0 and not s.phase(3000).in_transition
    p = s.phase(4000)
    assert (p.lod, p.resolution, p.lr) == (3, 32, 0.003)
    assert s.phase(10 ** 9).lod == 3  # the last level lasts until the end
    assert s.kimg_to_reach(2) == pytest.approx(3.0)
    assert LODSchedule.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def _official_blend(epoch: int, iteration: int, epochs_per_lod: int, size: int, layer_count: int):
    # podgorskiy/ALAE train_alae.py + lod_driver.py at 42bcf2e, written out: the level and
    # in_transition are set per epoch, the blend per image within it
    lod = min(layer_count - 1, epoch // epochs_per_lod)
    in_transition = (epoch % epochs_per_lod) < (epochs_per_lod // 2) and lod > 0 and epoch // epochs_per_lod == lod
    b = ((epoch % epochs_per_lod) * size + iteration) / (epochs_per_lod // 2 * size)
    return lod, (math.sin(b * math.pi - 0.5 * math.pi) * 0.5 + 0.5) if in_transition else 1.0


@pytest.mark.parametrize("epochs_per_lod", [15, 16, 3])
def test_fade_fraction_follows_the_official_epoch_arithmetic(epochs_per_lod):
    size, layers = 40, 3
    fade = (epochs_per_lod // 2) / epochs_per_lod
    s = LODSchedule(max_lod=layers - 1, base_resolution=4, lod_kimg=(epochs_per_lod * size / 1000,), lod_batch=(8,),
                    lod_lr=(0.001,), fade_fraction=fade)
    assert (fade == 0.5) == (epochs_per_lod % 2 == 0)
    for epoch in range(layers * epochs_per_lod):
        for iteration in (0, 7, 13, 39):
            lod, blend = _official_blend(epoch, iteration, epochs_per_lod, size, layers)
            p = s.phase(epoch * size + iteration)
            assert p.lod == lod and p.blend == pytest.approx(blend, abs=1e-12), (epoch, iteration)
    # the fade ends after E // 2 epochs of the level (7 of 15, not 7.5)
    assert s.kimg_to_reach(1) == pytest.approx((epochs_per_lod + epochs_per_lod // 2) * size / 1000)
    assert LODSchedule.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_fade_fraction_zero_and_one():
    base = dict(max_lod=1, base_resolution=4, lod_kimg=(1.0,), lod_batch=(8,), lod_lr=(0.001,))
    none = LODSchedule(**base, fade_fraction=0)
    assert none.phase(1000).blend == 1.0 and not none.phase(1000).in_transition
    assert none.kimg_to_reach(1) == pytest.approx(1.0)
    whole = LODSchedule(**base, fade_fraction=1)
    assert whole.phase(1500).blend == pytest.approx(blend_factor(0.5)) and whole.phase(1999).in_transition
    assert whole.kimg_to_reach(1) == pytest.approx(2.0)
    # the default is the half every existing run trained with
    assert LODSchedule(**base).phase(1250).blend == pytest.approx(blend_factor(0.5))


@pytest.mark.parametrize("bad", [dict(max_lod=-1), dict(start_lod=4), dict(lod_kimg=()), dict(lod_batch=(0,)),
                                 dict(lod_lr=(float("nan"),)), dict(base_resolution=0), dict(lod_kimg=(-1.0,)),
                                 dict(fade_fraction=1.5), dict(fade_fraction=-0.1), dict(fade_fraction=float("nan")),
                                 dict(fade_fraction=True), dict(fade_fraction="half")])
def test_schedule_rejects_bad_fields(bad):
    fields = dict(max_lod=3, base_resolution=4, lod_kimg=(1.0,), lod_batch=(8,), lod_lr=(0.001,))
    fields.update(bad)
    with pytest.raises(ValueError, match="LODSchedule"):
        LODSchedule(**fields)
    with pytest.raises(ValueError, match="unknown field"):
        LODSchedule(max_lod=1, base_resolution=4, lod_kimg=1.0, lod_batch=8, lod_lr=0.1).replace(lod=3)


def _pool_np(x: np.ndarray, times: int) -> np.ndarray:
    for _ in range(times):
        n, c, h, w = x.shape
        x = x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))
    return x


def test_real_image_blending_matches_numpy():
    s = LODSchedule(max_lod=2, base_resolution=4, lod_kimg=1.0, lod_batch=4, lod_lr=0.001, channels=3)
    x = torch.randn(3, 3, 16, 16, dtype=torch.float64)
    for lod in range(3):
        got = images_for_lod(x, s, lod)
        np.testing.assert_allclose(got.numpy(), _pool_np(x.numpy(), 2 - lod), rtol=1e-12)
    for b in (0.0, 0.3, 1.0):
        low = _pool_np(x.numpy(), 1).repeat(2, axis=2).repeat(2, axis=3)
        np.testing.assert_allclose(blend_real_images(x, b).numpy(), x.numpy() * b + low * (1 - b), rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="x: expected images"):
        images_for_lod(torch.randn(2, 3, 8, 8), s, 0)


def test_schedule_from_config_contract():
    T = toy()
    s = schedule_from_config(T.ToyPGConfig(lod_kimg=(0.5, 1.0), lod_batch=(8, 4), lod_lr=(0.01,)))
    assert (s.max_lod, s.base_resolution, s.resolution, s.channels) == (2, 4, 16, 1)
    assert s.phase(500).batch == 4
    with pytest.raises(ValueError, match="carries no training schedule.*lod_kimg"):
        schedule_from_config(MLPALAEConfig())
    setup = resolve_setup("toy-pg", {"latent_size": 4}, {"lod_batch": [2]})
    assert setup.model_config.latent_size == 4 and setup.schedule.lod_batch == (2,)
    with pytest.raises(ValueError, match="unknown preset"):
        resolve_setup("no-such-preset")


# --- EMA -------------------------------------------------------------------------------------

def test_ema_update_formula_and_buffers():
    assert ema_beta(10_000) == pytest.approx(0.5) and ema_beta(64) == pytest.approx(0.5 ** 0.0064)
    with pytest.raises(ValueError, match="batch"):
        ema_beta(0)
    model = build_model(MLPALAEConfig(encoder_hidden=(8,), generator_hidden=(8,), latent_size=4, image_size=4))
    ema = EMA(model, half_life_images=100.0)
    before = [p.detach().clone() for p in ema.module.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
        model.w_avg.copy_(torch.randn(4))
    beta = ema.update(model, 50)
    assert beta == pytest.approx(0.5 ** 0.5)
    for b, e, p in zip(before, ema.module.parameters(), model.parameters()):
        torch.testing.assert_close(e, beta * b + (1 - beta) * p.detach())
        assert not e.requires_grad
    assert torch.equal(ema.module.w_avg, model.w_avg)




def test_ema_follows_a_second_update_and_another_model():
    # the parameter lists are kept between updates: a second in-place change must still be
    # averaged in, and another model object (same architecture) must be read, not the first
    cfg = MLPALAEConfig(encoder_hidden=(8,), generator_hidden=(8,), latent_size=4, image_size=4)
    model = build_model(cfg)
    ema = EMA(model, half_life_images=100.0)
    ema.update(model, 50)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    before = [p.detach().clone() for p in ema.module.parameters()]
    beta = ema.update(model, 50)
    for b, e, p in zip(before, ema.module.parameters(), model.parameters()):
        torch.testing.assert_close(e, beta * b + (1 - beta) * p.detach())
    other = build_model(cfg)
    before = [p.detach().clone() for p in ema.module.parameters()]
    ema.update(other, 50)
    for b, e, p in zip(before, ema.module.parameters(), other.parameters()):
        torch.testing.assert_close(e, beta * b + (1 - beta) * p.detach())
    with pytest.raises(ValueError, match="different parameter list"):
        ema.update(build_model(MLPALAEConfig(encoder_hidden=(8, 8), generator_hidden=(8,), latent_size=4,
                                             image_size=4)), 50)


def test_trainer_switches_requires_grad_per_net():
    from alae_fast.training.trainer import _NETS

    config = toy().ToyPGConfig(lod_kimg=(0.5,), lod_batch=(4,), lod_lr=(0.01,))
    trainer = ALAETrainer(build_model(config), schedule_from_config(config), seed=0)
    trainer._set_trainable("encoder", "discriminator")
    for n in _NETS:
        assert all(p.requires_grad == (n in ("encoder", "discriminator")) for p in getattr(trainer.model, n).parameters())
    assert {id(p) for p in trainer._params("mapping", "generator")} == {
        id(p) for n in ("mapping", "generator") for p in getattr(trainer.model, n).parameters()}
    trainer._set_trainable(*_NETS)
    assert all(p.requires_grad for p in trainer.model.parameters())
# --- the iteration against an independent implementation --------------------------------------

class _RefAdam:
    """Adam written out: m = β1 m + (1-β1) g; v = β2 v + (1-β2) g²; p -= lr m̂ / (sqrt(v̂) + eps)."""

    def __init__(self, params, betas=(0.0, 0.99), eps=1e-8):
        self.params, self.betas, self.eps = list(params), betas, eps
        self.state = {}

    @torch.no_grad()
    def step(self, grads, lr):
        b1, b2 = self.betas
        for p, g in zip(self.params, grads):
            if g is None:
                continue
            m, v, t = self.state.get(id(p), (torch.zeros_like(p), torch.zeros_like(p), 0))
            t += 1
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            p -= lr * (m / (1 - b1 ** t)) / (torch.sqrt(v / (1 - b2 ** t)) + self.eps)
            self.state[id(p)] = (m, v, t)


def _reference_iteration(m, ema, gen, x_full, sched, images_seen, opts, mixing_prob=0.9, gamma=10.0,
                         style_mixing="per_sample", w_avg_update="generator_step", pixel_range=(-1.0, 1.0),
                         d_zero_grad_step=False, augment=(), lae_weight=1.0):
    """One ALAE iteration written directly from the paper (no trainer code); with
    style_mixing='official' and w_avg_update='every_generate' as podgorskiy/ALAE's
    Model.generate: one mixing draw per batch, cutoff randint(1, 2(lod+1)), and w_avg moved by
    the batch mean of F(z) at each of the three generate calls. The networks see images in
    ``pixel_range`` (the official mnist_ref trains on x / 255): the real ones are mapped there
    from the data's [-1, 1] before R1 takes its gradient. ``d_zero_grad_step``: step 3 hands D's
    Adam a zero gradient, as train_alae.py's encoder_optimizer.step() does after torch 1.x's
    in-place zero_grad (LREQAdam skips only None). ``augment``: DiffAugment policies, applied
    (``augment_ref``, image by image) to every image D∘E reads in steps 1 and 2, R1 taken
    through them with respect to the untransformed reals. ``lae_weight`` scales step 3's loss
    in its gradients. Returns step 3's unweighted loss."""
    ph = sched.phase(images_seen)
    lod, blend, n, lr = ph.lod, ph.blend, ph.batch, ph.lr
    x = torch.from_numpy(_pool_np(x_full.numpy(), sched.max_lod - lod))
    if blend < 1:
        low = torch.from_numpy(_pool_np(x.numpy(), 1).repeat(2, axis=2).repeat(2, axis=3))
        x = low + blend * (x - low)
    lo, hi = pixel_range
    x = lo + (x + 1) * ((hi - lo) / 2)
    E = lambda img: m.encode(img, lod, blend, native=True)  # noqa: E731
    G = lambda ws: m.decode(ws, lod, blend, native=True)  # noqa: E731
    D = m.discriminator
    num_ws, L = m.num_ws, m.latent_size
    ed = list(m.encoder.parameters()) + list(D.parameters())
    fg = list(m.mapping.parameters()) + list(m.generator.parameters())

    def track(w):
        with torch.no_grad():
            mean = w.mean(0)
            m.w_avg.copy_(mean + 0.995 * (m.w_avg - mean))

    def styles(mix):
        z = torch.randn(n, L, generator=gen, dtype=torch.float64)
        w = m.mapping(z)
        ws = w[:, None, :].repeat(1, num_ws, 1)
        if mix and style_mixing == "official":
            u, c = torch.rand(2, generator=gen, dtype=torch.float64).tolist()
            if u < mixing_prob:
                cutoff = 1 + int(c * 2 * (lod + 1))  # python's random.randint(1, 2 * (lod + 1))
                w2 = m.mapping(torch.randn(n, L, generator=gen, dtype=torch.float64))
                ws = torch.cat([ws[:, :cutoff], w2[:, None, :].expand(n, num_ws - cutoff, L)], 1)
        elif mix:
            z2 = torch.randn(n, L, generator=gen, dtype=torch.float64)
            u = torch.rand(n, generator=gen)
            cut = torch.randint(1, num_ws, (n,), generator=gen)
            w2 = m.mapping(z2)
            rows = []
            for i in range(n):
                c = int(cut[i]) if u[i] < mixing_prob else num_ws
                rows.append(torch.cat([ws[i, :c], w2[i:i + 1].expand(num_ws - c, L)]))
            ws = torch.stack(rows)
        return ws, w

    # step 1: E, D
    with torch.no_grad():
        ws, w = styles(True)
        x_fake = G(ws)
    if w_avg_update == "every_generate":
        track(w)
    # transformed in the data's [-1, 1] whatever range E reads
    T = lambda img: lo + (augment_ref((img - lo) * (2 / (hi - lo)) - 1, augment, gen) + 1) * ((hi - lo) / 2)  # noqa: E731
    xr = x.clone().requires_grad_(True)
    s_real = D(E(T(xr)))
    (gx,) = torch.autograd.grad(s_real.sum(), xr, create_graph=True)
    loss = F.softplus(-s_real).mean() + F.softplus(D(E(T(x_fake)))).mean() + gamma / 2 * gx.pow(2).sum((1, 2, 3)).mean()
    opts[0].step(torch.autograd.grad(loss, ed, allow_unused=True), lr)
    # step 2: F, G
    ws, w = styles(True)
    loss = F.softplus(-D(E(T(G(ws))))).mean()
    opts[1].step(torch.autograd.grad(loss, fg, allow_unused=True), lr)
    track(w)
    # step 3: E, G, F through G
    w = m.mapping(torch.randn(n, L, generator=gen, dtype=torch.float64))
    loss = ((E(G(w)) - w.detach()) ** 2).mean()
    if w_avg_update == "every_generate":
        track(w)
    grads = torch.autograd.grad(loss * lae_weight, ed + fg, allow_unused=True)
    n_e = len(list(m.encoder.parameters()))
    assert all(g is None for g in grads[n_e:len(ed)])  # D untouched
    if d_zero_grad_step:
        grads = grads[:n_e] + tuple(torch.zeros_like(p) for p in ed[n_e:]) + grads[len(ed):]
    opts[0].step(grads[:len(ed)], lr)
    opts[1].step(grads[len(ed):], lr)
    beta = 0.5 ** (n / 10_000)
    with torch.no_grad():
        for pe, p in zip(ema.parameters(), m.parameters()):
            pe.copy_(beta * pe + (1 - beta) * p)
        ema.w_avg.copy_(m.w_avg)
    return loss.detach()


@pytest.mark.parametrize("modes", [("per_sample", "generator_step", (-1.0, 1.0), False, (), 1.0),
                                   ("official", "every_generate", (-1.0, 1.0), True, (), 1.0),
                                   ("official", "every_generate", (0.0, 1.0), False, (), 1.0),
                                   ("per_sample", "generator_step", (-1.0, 1.0), False,
                                    ("color", "translation", "cutout"), 1.0),
                                   ("official", "every_generate", (0.0, 1.0), True, ("cutout", "color"), 1.0),
                                   ("per_sample", "generator_step", (-1.0, 1.0), False, (), 0.25),
                                   ("official", "every_generate", (0.0, 1.0), True, ("translation",), 3.0)])
def test_iteration_matches_independent_algorithm_1(modes):
    T = toy()
    config = T.ToyPGConfig(lod_kimg=(0.032,), lod_batch=(8,), lod_lr=(0.003, 0.002), pixel_range=modes[2])
    sched = schedule_from_config(config)
    torch.manual_seed(1)
    model = build_model(config).double()
    ref, ref_ema = copy.deepcopy(model), copy.deepcopy(model)
    trainer = ALAETrainer(model, sched, seed=5, style_mixing=modes[0], w_avg_update=modes[1],
                          d_zero_grad_step=modes[3], augment=",".join(modes[4]), lae_weight=modes[5])
    gen = torch.Generator().manual_seed(5)
    ref_opts = lambda: (_RefAdam(list(ref.encoder.parameters()) + list(ref.discriminator.parameters())),  # noqa: E731
                        _RefAdam(list(ref.mapping.parameters()) + list(ref.generator.parameters())))
    opts = ref_opts()
    data = torch.randn(64, 1, 16, 16, dtype=torch.float64).clamp(-1, 1)
    lod = 0
    for it, seen in enumerate((0, 8, 40, 48)):  # two steps at lod 0, then lod 1 mid-fade (optimiser reset), then on
        trainer.images_seen = seen
        if sched.phase(seen).lod != lod:
            lod = sched.phase(seen).lod
            opts = ref_opts()  # the trainer drops its Adam state at the new level; so does the reference
        x = data[8 * it:8 * it + 8]
        model.calls.clear()
        out = trainer.step(x)
        loss_ae = _reference_iteration(ref, ref_ema, gen, x, sched, seen, opts, style_mixing=modes[0],
                                       w_avg_update=modes[1], pixel_range=modes[2], d_zero_grad_step=modes[3],
                                       augment=modes[4], lae_weight=modes[5])
        torch.testing.assert_close(out["loss_ae"], loss_ae, rtol=1e-9, atol=1e-12)  # reported unweighted
        ph = sched.phase(seen)
        assert (out["lod"], out["blend"], out["batch"], out["lr"]) == (ph.lod, ph.blend, 8, ph.lr)
        assert {c[0][-1] for c in model.calls} == {ph.resolution} and {c[2] for c in model.calls} == {ph.blend}
        for (name, a), b in zip(model.named_parameters(), ref.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11, msg=f"iteration {it}: {name}")
        torch.testing.assert_close(model.w_avg, ref.w_avg, rtol=1e-12, atol=1e-14)
        for a, b in zip(trainer.ema.module.parameters(), ref_ema.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
    assert 0 < sched.phase(40).blend < 1


def test_lod_switch_resets_optimisers_and_sets_lr():
    T = toy()
    config = T.ToyPGConfig(lod_kimg=(0.016,), lod_batch=(8, 4), lod_lr=(0.003, 0.001))
    trainer = ALAETrainer(build_model(config), schedule_from_config(config), seed=0)
    x = torch.rand(8, 1, 16, 16) * 2 - 1
    trainer.step(x)
    trainer.step(x)
    d_param = next(trainer.model.discriminator.parameters())
    assert int(trainer.opt_ed.state[d_param]["step"]) == 2
    out = trainer.step(x[:4])  # 16 images seen: lod 1, batch 4
    assert out["lod"] == 1 and out["batch"] == 4 and out["lr"] == 0.001
    assert int(trainer.opt_ed.state[d_param]["step"]) == 1
    assert all(g["lr"] == 0.001 for o in (trainer.opt_ed, trainer.opt_fg) for g in o.param_groups)
    with pytest.raises(ValueError, match="x_real: expected this rank's 4 images"):
        trainer.step(x)


def test_d_zero_grad_step_gives_d_a_second_adam_step_that_moves_nothing():
    """As train_alae.py under torch 1.x: step 3 steps D's Adam with a zero gradient. D's weights
    do not move in that step (the first iteration leaves them as without it), its step count and
    second-moment decay double, and its later real steps grow (v is smaller)."""
    T = toy()
    config = T.ToyPGConfig(lod_kimg=(0.064,), lod_batch=(8,), lod_lr=(0.003,))
    x = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    trainers = []
    for flag in (False, True):
        torch.manual_seed(0)
        trainers.append(ALAETrainer(build_model(config), schedule_from_config(config), seed=0, d_zero_grad_step=flag))
    one, two = trainers
    for t in trainers:
        t.step(x)
    for a, b in zip(one.model.parameters(), two.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    d, e = next(two.model.discriminator.parameters()), next(two.model.encoder.parameters())
    # E has two real steps an iteration (steps 1 and 3), D one, and one more with the flag
    assert int(two.opt_ed.state[d]["step"]) == 2 and int(two.opt_ed.state[e]["step"]) == 2
    assert int(one.opt_ed.state[next(one.model.discriminator.parameters())]["step"]) == 1
    v1, v2 = one.opt_ed.state[next(one.model.discriminator.parameters())]["exp_avg_sq"], two.opt_ed.state[d]["exp_avg_sq"]
    torch.testing.assert_close(v2, 0.99 * v1)
    for t in trainers:
        t.step(x)
    moved = [(a - b).abs().max().item() for a, b in zip(one.model.discriminator.parameters(),
                                                        two.model.discriminator.parameters())]
    assert max(moved) > 0
    with pytest.raises(TypeError, match="d_zero_grad_step: expected a bool"):
        ALAETrainer(build_model(config), schedule_from_config(config), d_zero_grad_step=1)


def test_lazy_r1_interval():
    T = toy()
    config = T.ToyPGConfig(layer_count=1, resolution=4, lod_batch=(4,))
    trainer = ALAETrainer(build_model(config), schedule_from_config(config), r1_interval=2)
    x = torch.rand(4, 1, 4, 4) * 2 - 1
    r1 = [float(trainer.step(x)["r1"]) for _ in range(4)]
    assert r1[0] > 0 and r1[2] > 0 and r1[1] == 0 and r1[3] == 0
    with pytest.raises(ValueError, match="r1_interval"):
        ALAETrainer(build_model(config), schedule_from_config(config), r1_interval=0)
    with pytest.raises(TypeError, match="ALAEModel"):
        ALAETrainer(torch.nn.Linear(2, 2), schedule_from_config(config))


@pytest.mark.parametrize("bad,error,message", [
    (0, ValueError, "a finite number > 0"), (0.0, ValueError, "a finite number > 0"),
    (-1.0, ValueError, "a finite number > 0"), (float("nan"), ValueError, "a finite number > 0"),
    (float("inf"), ValueError, "a finite number > 0"), (True, TypeError, "a number; got bool"),
    ("1", TypeError, "a number; got str"), (None, TypeError, "a number; got NoneType")])
def test_lae_weight_refuses_bad_values(bad, error, message):
    T = toy()
    config = T.ToyPGConfig(layer_count=1, resolution=4, lod_batch=(4,))
    with pytest.raises(error, match=f"lae_weight: expected {message}"):
        ALAETrainer(build_model(config), schedule_from_config(config), lae_weight=bad)
    # a NumPy scalar is a number (e.g. read from an array of settings)
    assert ALAETrainer(build_model(config), schedule_from_config(config), lae_weight=np.float32(0.5)).lae_weight == 0.5


def test_bf16_autocast_trains():
    T = toy()
    config = T.ToyPGConfig(layer_count=1, resolution=4, lod_batch=(4,))
    trainer = ALAETrainer(build_model(config), schedule_from_config(config), amp=True)
    x = torch.rand(4, 1, 4, 4) * 2 - 1
    out = [trainer.step(x) for _ in range(2)]
    assert all(torch.isfinite(o["loss_d"]) and torch.isfinite(o["loss_ae"]) for o in out)
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in trainer.model.parameters())


# --- runs: resume is bit-identical --------------------------------------------------------------

def _compare(a, b, path=""):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            if k != "time_s":
                _compare(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (u, v) in enumerate(zip(a, b)):
            _compare(u, v, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), path
    else:
        assert a == b, (path, a, b)


def _latest(out):
    return load_checkpoint(list_checkpoints(Path(out) / "checkpoints")[-1][1])


def test_resume_is_bit_identical_across_a_level_switch(tmp_path):
    toy()
    base = dict(preset="toy-pg", progress=False, evaluate=False, log_steps=2, checkpoint_kimg=0.016, keep=2,
                seed=3, schedule_overrides={"lod_kimg": [0.024], "lod_batch": [8, 8, 4]})
    full = run_training(TrainOptions(out=str(tmp_path / "a"), kimg=0.088, **base))
    assert full["lod"] == 2
    part = run_training(TrainOptions(out=str(tmp_path / "b"), kimg=0.032, **base))  # stops mid-fade of lod 1
    assert part["lod"] == 1
    with pytest.raises(FileExistsError, match="--resume"):
        run_training(TrainOptions(out=str(tmp_path / "b"), kimg=0.088, **base))
    with pytest.raises(ValueError, match="seed"):
        run_training(TrainOptions(out=str(tmp_path / "b"), kimg=0.088, resume=True, **{**base, "seed": 4}))
    run_training(TrainOptions(out=str(tmp_path / "b"), kimg=0.088, resume=True, **base))
    a, b = _latest(tmp_path / "a"), _latest(tmp_path / "b")
    assert a["trainer"]["images_seen"] == 88
    _compare(a, b)
    # the log of the resumed run continues where the checkpoint was, without duplicates
    recs = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    kimgs = [r["kimg"] for r in recs]
    assert kimgs == sorted(set(kimgs)) and kimgs[-1] == pytest.approx(0.088)
    for name in ("config.json", "loss_curves.png", "eval.json"):
        assert (tmp_path / "a" / name).exists() == (name != "eval.json")
    assert len(list((tmp_path / "a" / "checkpoints").glob("ckpt-*.pt"))) == 2
    assert list((tmp_path / "a" / "images").glob("samples-*.png"))
    assert list((tmp_path / "a" / "images").glob("reconstructions-*.png"))


def test_a_resume_mid_record_logs_what_a_straight_run_logs(tmp_path):
    # a checkpoint between two log records (a signal's, or an interval's): the resumed run's
    # first record averages the same iterations as the straight run's, not only those after it
    import shutil

    toy()
    base = dict(preset="toy-pg", progress=False, evaluate=False, log_steps=3, checkpoint_kimg=0.016, keep=10,
                seed=3, kimg=0.072, schedule_overrides={"lod_kimg": [0.024], "lod_batch": [8, 8, 4]})
    run_training(TrainOptions(out=str(tmp_path / "a"), **base))
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    for step, path in list_checkpoints(tmp_path / "b" / "checkpoints"):
        if step > 32:  # keep the one after 4 iterations: mid-record (records at 3, 6, 9)
            path.unlink()
    assert load_checkpoint(list_checkpoints(tmp_path / "b" / "checkpoints")[-1][1])["log_window"][0]["loss_d"]
    run_training(TrainOptions(out=str(tmp_path / "b"), resume=True, **base))
    recs = {name: [json.loads(line) for line in (tmp_path / name / "log.jsonl").read_text().splitlines()]
            for name in "ab"}
    keys = ("kimg", "step", "loss_d", "loss_g", "loss_ae", "d_real", "d_fake", "r1")
    assert [[r[k] for k in keys] for r in recs["a"]] == [[r[k] for k in keys] for r in recs["b"]]
    assert [r["step"] for r in recs["a"]][:2] == [3, 6]  # the resumed one's first record is at 6


def test_resume_continues_the_options_not_given_again(tmp_path):
    # a scheduler restarting `alae-fast train --resume --out DIR` without the first run's flags
    # must continue that run (seed, R1, EMA), not train another one from its checkpoint
    toy()
    base = dict(preset="toy-pg", progress=False, evaluate=False, log_steps=2, checkpoint_kimg=0.016, keep=2,
                schedule_overrides={"lod_kimg": [0.024], "lod_batch": [8, 8, 4]})
    chosen = dict(seed=3, r1_gamma=5.0, r1_interval=2, ema_half_life_kimg=0.5)
    run_training(TrainOptions(out=str(tmp_path / "a"), kimg=0.048, **base, **chosen))
    run_training(TrainOptions(out=str(tmp_path / "b"), kimg=0.032, **base, **chosen))
    run_training(TrainOptions(out=str(tmp_path / "b"), kimg=0.048, resume=True, **base))  # none given again
    a, b = _latest(tmp_path / "a"), _latest(tmp_path / "b")
    assert {k: b["options"][k] for k in chosen} == chosen
    _compare(a, b)
    with pytest.raises(ValueError, match="--r1-gamma: checkpoint 5.0, now 10.0"):
        run_training(TrainOptions(out=str(tmp_path / "b"), kimg=0.064, resume=True, r1_gamma=10.0, **base))
    # a new run without them takes the defaults, and its checkpoint says so
    run_training(TrainOptions(out=str(tmp_path / "c"), kimg=0.016, **base))
    opts = _latest(tmp_path / "c")["options"]
    assert (opts["seed"], opts["amp"], opts["r1_gamma"]) == (0, False, 10.0)
    # R1's interval is a behaviour: not given, the preset's (toy-pg's: every step), recorded as in effect
    assert opts["r1_interval"] is None
    assert json.loads((tmp_path / "c" / "config.json").read_text())["behaviour"]["r1_interval"] == 1


def test_channels_last_run_resumes_bit_identically_and_keeps_its_layout(tmp_path):
    # --channels-last trains a StyleALAE with its weights and feature maps channels_last; a
    # resume that does not say it again continues in that layout, bit for bit, and one that
    # asks for the other layout is refused (it would be another trajectory)
    base = dict(preset="digits-32", progress=False, evaluate=False, log_steps=2, checkpoint_kimg=0.016, keep=2,
                seed=3, schedule_overrides={"lod_kimg": [0.016], "lod_batch": [8]})
    full = run_training(TrainOptions(out=str(tmp_path / "a"), kimg=0.064, channels_last=True, **base))
    assert full["lod"] >= 1
    run_training(TrainOptions(out=str(tmp_path / "b"), kimg=0.032, channels_last=True, **base))
    with pytest.raises(ValueError, match="--channels-last/--no-channels-last: checkpoint True, now False"):
        run_training(TrainOptions(out=str(tmp_path / "b"), kimg=0.064, resume=True, channels_last=False, **base))
    run_training(TrainOptions(out=str(tmp_path / "b"), kimg=0.064, resume=True, **base))
    a, b = _latest(tmp_path / "a"), _latest(tmp_path / "b")
    assert b["options"]["channels_last"] is True
    _compare(a, b)
    model = b["trainer"]["model"]
    assert model["generator.const"].is_contiguous(memory_format=torch.channels_last)
    assert not model["generator.const"].is_contiguous()
    # the contiguous run of the same seed trains the same model in the other layout (digits-32
    # trains channels_last by default since 2026-12-07: --no-channels-last)
    run_training(TrainOptions(out=str(tmp_path / "c"), kimg=0.016, channels_last=False, **base))
    c = _latest(tmp_path / "c")
    assert c["options"]["channels_last"] is False and c["trainer"]["model"]["generator.const"].is_contiguous()
