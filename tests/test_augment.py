"""DiffAugment in front of E (alae_fast.training.augment): the transforms against an image-by-image
reference, their gradients, their draws across ranks, and the bad inputs."""

import numpy as np
import pytest
import torch

from alae_fast.training.augment import AUGMENT_POLICIES, augment_images, parse_augment
from alae_fast_tests_support import augment_ref

POLICY_SETS = [("translation",), ("cutout",), ("color",), ("translation", "cutout"),
               ("color", "translation", "cutout")]


@pytest.mark.parametrize("policies", POLICY_SETS)
@pytest.mark.parametrize("shape", [(6, 1, 32, 32), (5, 3, 16, 16), (4, 3, 8, 12), (3, 1, 4, 4), (2, 2, 7, 9)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_augment_matches_the_image_by_image_reference(policies, shape, dtype):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(3), dtype=dtype)
    got = augment_images(x, policies, torch.Generator().manual_seed(11))
    want = augment_ref(x, policies, torch.Generator().manual_seed(11))
    torch.testing.assert_close(got, want, rtol=1e-6 if dtype == torch.float32 else 1e-12, atol=1e-6)
    assert got.shape == x.shape and got.dtype == dtype


def test_translation_is_a_zero_filled_shift_within_an_eighth():
    """Each output image is its input moved by whole pixels, by at most side // 8 each way (found by
    trying every shift: a random image matches exactly one), and over many draws every shift occurs."""
    x = torch.rand(400, 1, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.5
    y = augment_images(x, ("translation",), torch.Generator().manual_seed(1)).numpy()
    xn = x.numpy()
    seen = set()
    for i in range(len(xn)):
        matches = []
        for ty in range(-2, 3):
            for tx in range(-2, 3):
                ref = np.zeros_like(xn[i])
                ref[:, max(0, ty):16 + min(0, ty), max(0, tx):16 + min(0, tx)] = \
                    xn[i][:, max(0, -ty):16 - max(0, ty), max(0, -tx):16 - max(0, tx)]
                if np.array_equal(ref, y[i]):
                    matches.append((ty, tx))
        assert len(matches) == 1, (i, matches)
        seen.add(matches[0])
    assert len(seen) == 25


def test_cutout_zeroes_one_clipped_half_side_square():
    x = torch.rand(300, 2, 10, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.5
    y = augment_images(x, ("cutout",), torch.Generator().manual_seed(1))
    sizes = set()
    for i in range(len(x)):
        zero = (y[i] == 0)
        assert torch.equal(zero[0], zero[1])  # the same square in every channel
        rows, cols = zero[0].any(1).nonzero().flatten(), zero[0].any(0).nonzero().flatten()
        assert 0 < len(rows) <= 5 and 0 < len(cols) <= 5
        assert rows.tolist() == list(range(int(rows[0]), int(rows[-1]) + 1))
        assert bool(zero[0][rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].all()) and int(zero[0].sum()) == len(rows) * len(cols)
        torch.testing.assert_close(y[i][~zero], x[i][~zero], rtol=0, atol=0)
        sizes.add((len(rows), len(cols)))
    assert (5, 5) in sizes and len(sizes) > 3  # whole squares inside, clipped ones at the borders


def test_color_is_an_affine_map_of_each_greyscale_image_in_range():
    x = torch.rand(200, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    y = augment_images(x, ("color",), torch.Generator().manual_seed(1))
    slopes = []
    for i in range(len(x)):
        a, b = np.polyfit(x[i].flatten().numpy(), y[i].flatten().numpy(), 1)
        np.testing.assert_allclose(a * x[i].numpy() + b, y[i].numpy(), atol=1e-10)
        slopes.append(a)
    assert 0.5 <= min(slopes) < 0.6 and 1.4 < max(slopes) <= 1.5


def test_ranks_draw_their_slice_of_the_global_batch():
    """Two ranks with the same generator state, each augmenting its half, give the halves of one
    process augmenting the whole batch (DDP sees a single process's augmentation)."""
    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    policies = ("color", "translation", "cutout")
    whole = augment_images(x, policies, torch.Generator().manual_seed(5))
    halves = [augment_images(x[r * 4:(r + 1) * 4], policies, torch.Generator().manual_seed(5), 8, r * 4)
              for r in range(2)]
    torch.testing.assert_close(torch.cat(halves), whole, rtol=0, atol=0)


@pytest.mark.parametrize("policies", POLICY_SETS)
def test_augment_gradients_float64(policies):
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64, requires_grad=True)

    def f(v):
        return augment_images(v, policies, torch.Generator().manual_seed(2))

    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


def test_no_policy_returns_the_input_and_draws_nothing():
    x = torch.randn(2, 1, 8, 8)
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    assert augment_images(x, (), gen) is x
    assert torch.equal(gen.get_state(), state)


@pytest.mark.parametrize("spec, want", [("translation,cutout", ("translation", "cutout")), ("", ()), ("none", ()),
                                        (" color , translation ", ("color", "translation")), (None, ()),
                                        (["cutout"], ("cutout",))])
def test_parse_augment(spec, want):
    assert parse_augment(spec) == want


@pytest.mark.parametrize("spec, match", [("flip", "--augment: unknown augmentation 'flip'"),
                                         ("cutout,cutout", "--augment: each augmentation may be named once"),
                                         ("none,color", "unknown augmentation 'none'")])
def test_parse_augment_refuses(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_augment(spec, "--augment")
    with pytest.raises(TypeError, match="--augment: expected a comma-separated list"):
        parse_augment(3, "--augment")
    assert parse_augment(["none"]) == () and set(AUGMENT_POLICIES) == {"translation", "cutout", "color"}


def test_augment_images_refuses_bad_shapes_and_slices():
    with pytest.raises(ValueError, match=r"x must be \[N, C, H, W\]"):
        augment_images(torch.randn(2, 8, 8), ("cutout",), torch.Generator())
    with pytest.raises(ValueError, match=r"offset 4 and x's 4 images make the slice \[4, 8\), outside the global "
                                         r"batch of n_global = 6"):
        augment_images(torch.randn(4, 1, 8, 8), ("cutout",), torch.Generator(), 6, 4)
    with pytest.raises(TypeError, match="n_global must be an int; got 6.5"):
        augment_images(torch.randn(4, 1, 8, 8), ("cutout",), torch.Generator(), 6.5, 0)
    with pytest.raises(TypeError, match="offset must be an int"):
        augment_images(torch.randn(4, 1, 8, 8), ("cutout",), torch.Generator(), 8, True)
    with pytest.raises(TypeError, match="x must be a floating-point tensor; got torch.uint8"):
        augment_images(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), ("color",), torch.Generator())
    with pytest.raises(ValueError, match="generator must be a torch.Generator on x's device"):
        augment_images(torch.randn(4, 1, 8, 8), ("cutout",), None)
    # a str would be read letter by letter; an unknown name is refused before anything is drawn
    with pytest.raises(TypeError, match="policies must be a tuple or list"):
        augment_images(torch.randn(4, 1, 8, 8), "translation", torch.Generator())
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    with pytest.raises(ValueError, match="unknown policy 'blur' in policies"):
        augment_images(torch.randn(4, 1, 16, 16), ("translation", "blur"), gen)
    assert torch.equal(gen.get_state(), state)


def test_bfloat16_images_stay_bfloat16_with_gradients():
    x = torch.randn(4, 3, 16, 16, dtype=torch.bfloat16, requires_grad=True)
    y = augment_images(x, ("color", "translation", "cutout"), torch.Generator().manual_seed(0))
    assert y.dtype == torch.bfloat16
    y.float().square().sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.bfloat16 and bool(x.grad.abs().sum() > 0)


def test_an_augmented_trainer_resumes_bit_identically():
    """The augmentation's draws come from the trainer's generator, which its state saves: three steps
    straight equal one step, a save, a fresh trainer loading it, and two more."""
    from alae_fast.models import build_model
    from alae_fast.training.schedule import schedule_from_config
    from alae_fast.training.trainer import ALAETrainer
    from alae_fast_tests_support import toy

    config = toy().ToyPGConfig(lod_kimg=(0.5,), lod_batch=(4,), lod_lr=(0.01,))
    xs = torch.rand(3, 4, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1

    def trainer():
        torch.manual_seed(0)
        return ALAETrainer(build_model(config), schedule_from_config(config), seed=1,
                           augment="translation,cutout,color")

    straight = trainer()
    for x in xs:
        torch.manual_seed(int(straight.step_count) + 10)  # G's noise: the same draws in both runs
        straight.step(x)
    first = trainer()
    torch.manual_seed(10)
    first.step(xs[0])
    second = trainer()
    second.load_state_dict(first.state_dict())
    assert second.augment == ("translation", "cutout", "color")
    for x in xs[1:]:
        torch.manual_seed(int(second.step_count) + 10)
        second.step(x)
    for a, b in zip(straight.model.parameters(), second.model.parameters()):
        assert torch.equal(a, b)
    plain = trainer()
    plain.augment = ()
    torch.manual_seed(10)
    plain.step(xs[0])
    assert not all(torch.equal(a, b) for a, b in zip(plain.model.parameters(), first.model.parameters()))


def test_trainer_and_config_refuse_an_unknown_augmentation():
    from alae_fast.models import StyleALAEConfig, build_model
    from alae_fast.training.schedule import schedule_from_config
    from alae_fast.training.trainer import ALAETrainer
    from alae_fast_tests_support import toy

    config = toy().ToyPGConfig(lod_kimg=(0.5,), lod_batch=(4,), lod_lr=(0.01,))
    with pytest.raises(ValueError, match="augment: unknown augmentation 'mixup'"):
        ALAETrainer(build_model(config), schedule_from_config(config), augment="mixup")
    with pytest.raises(ValueError, match="StyleALAEConfig: augment: unknown augmentation 'blur'"):
        StyleALAEConfig(augment="blur").validate()
    with pytest.raises(TypeError, match="StyleALAEConfig: augment must be a str"):
        StyleALAEConfig(augment=["cutout"]).validate()
    # one spelling per setting, so a flag and --set (or a resume) compare what the run does
    for typed, kept in (("none", ""), (" translation , cutout", "translation,cutout"), ("", "")):
        cfg = StyleALAEConfig(augment=typed)
        cfg.validate()
        assert cfg.augment == kept
