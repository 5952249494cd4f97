"""The benchmark cases time what their names say. filtered_lrelu's full case list once built its
forward candidates as lambdas that read the loop's x and args when called, so all three forward
cases timed the last shape (up 4 / down 2 at 36x36): the README's three forward rows were one
configuration. Here each case is built at small shapes of the same kinds and run once."""

import pytest
import torch

import alae_fast.bench.filtered_lrelu as bench_flrelu
from alae_fast.ops import filtered_lrelu

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = [  # the suite's three kinds of layer, at sizes a test can run
    ("12x12 up2 down2", (1, 3, 12, 12), 2, 2, [9, 8, 9, 8]),
    ("20x16 up2 down2", (2, 2, 20, 16), 2, 2, [9, 8, 9, 8]),
    ("12x12 up4 down2", (1, 3, 12, 12), 4, 2, [23, 20, 23, 20]),
]


def test_each_filtered_lrelu_case_runs_its_own_shape(monkeypatch):
    monkeypatch.setattr(bench_flrelu, "SHAPES", SMALL)
    monkeypatch.setattr(bench_flrelu, "SHAPES_2D", SMALL[1:2])
    cases = bench_flrelu.cases(torch.device("cpu"), quick=False, compile=False)
    assert len(cases) == 2 * len(SMALL) + 2
    layout = cases.pop()
    label, shape, up, down, padding = SMALL[0]
    assert label in layout.name and layout.name.endswith("channels_last")
    out = layout.candidates["fused"]()
    assert out.is_contiguous(memory_format=torch.channels_last) and out.shape[:2] == shape[:2]
    contiguous = layout.candidates["contiguous"]()
    assert contiguous.is_contiguous() and torch.equal(contiguous, out)  # the same values, another layout
    torch.testing.assert_close(layout.candidates["ref"](), out, rtol=1e-4, atol=1e-4)
    two_d = cases.pop()
    label, shape, up, down, padding = SMALL[1]
    assert label in two_d.name and "2-D fd" in two_d.name
    fu, fd = bench_flrelu._filters(torch.device("cpu"))
    out = two_d.candidates["fused"]()
    assert out.shape == filtered_lrelu(torch.zeros(shape), fu, torch.outer(fd, fd), up=up, down=down,
                                       padding=padding).shape
    torch.testing.assert_close(two_d.candidates["ref"](), out, rtol=1e-4, atol=1e-4)
    assert len(bench_flrelu.cases(torch.device("cpu"), quick=True, compile=False)) == 2  # quick: no 2-D case
    fu, fd = bench_flrelu._filters(torch.device("cpu"))
    for (label, shape, up, down, padding), fwd, fwd_bwd in zip(SMALL, cases[0::2], cases[1::2]):
        assert label in fwd.name and fwd.name.startswith("fwd ") and fwd_bwd.name.startswith("fwd+bwd ")
        out = fwd.candidates["fused"]()
        assert out.shape[:2] == shape[:2]
        # the output of this case's own input shape through this case's own resampling
        expected = filtered_lrelu(torch.zeros(shape), fu, fd, torch.zeros(shape[1]), up=up, down=down,
                                  padding=padding).shape
        assert out.shape == expected, (label, tuple(out.shape), tuple(expected))
        torch.testing.assert_close(fwd.candidates["ref"](), out, rtol=1e-4, atol=1e-4)
        assert fwd.candidates["copy"]().shape == shape
        gx, gb = fwd_bwd.candidates["fused"]()
        assert gx.shape == shape and gb.shape == (shape[1],)


def test_every_candidate_of_the_quick_model_cases_runs():
    # The model cases feed E images; when the models began refusing pixels beyond ±4, the E and
    # R1 cases (fed torch.randn images) raised, and only running them shows it.
    import alae_fast.bench.alae_models as bench_models
    import alae_fast.bench.upfirdn2d as bench_upfirdn2d
    import alae_fast.bench.bias_act as bench_bias_act

    cases = bench_models.cases(torch.device("cpu"), quick=True, compile=False)
    assert len(cases) == 3
    for case in cases:
        for name, run in case.candidates.items():
            run()
    # and the channels_last cases added with a contiguous column: the same values either way
    import alae_fast.bench.adain as bench_adain

    # (adain's statistics are sums taken in another order in either layout: float32 rounding)
    for module, first, tol in ((bench_upfirdn2d, 1, {}), (bench_bias_act, 1, {}),
                               (bench_adain, None, dict(rtol=1e-4, atol=1e-4))):
        layout = [c for c in module.cases(torch.device("cpu"), quick=False, compile=False)
                  if c.name.endswith("vs contiguous")]
        assert layout
        for case in layout[:first]:
            out, contiguous = case.candidates["fused"](), case.candidates["contiguous"]()
            out = out if isinstance(out, (tuple, list)) else (out,)
            contiguous = contiguous if isinstance(contiguous, (tuple, list)) else (contiguous,)
            assert out[0].is_contiguous(memory_format=torch.channels_last) and contiguous[0].is_contiguous(), case.name
            for a, b in zip(out, contiguous):
                torch.testing.assert_close(a, b, **tol)



def test_training_cases_and_the_profile_run_each_preset_in_its_training_layout(monkeypatch):
    # digits-32 trains channels_last since 2026-12-07 (alae-fast train moves the model): the
    # benchmark's iteration and the --profile breakdown time that layout; the MLP has none
    import alae_fast.bench.profile as bench_profile
    import alae_fast.bench.train as bench_train
    import alae_fast.training.trainer as trainer_mod
    from alae_fast.inference.metrics import memory_format_of

    for name, layout in (("digits-32", torch.channels_last), ("photos-32", torch.channels_last),
                         ("digits-mlp", torch.contiguous_format)):
        _, model, *_ = bench_train._last_level(name, torch.device("cpu"))
        assert memory_format_of(model) is layout, name
    seen = []

    class Spy(trainer_mod.ALAETrainer):  # iteration_breakdown imports the trainer when called
        def __init__(self, model, *a, **k):
            seen.append(memory_format_of(model))
            super().__init__(model, *a, **k)

    monkeypatch.setattr(trainer_mod, "ALAETrainer", Spy)
    r = bench_profile.iteration_breakdown("digits-32", batch=2, iterations=1, warmup=0)
    assert seen == [torch.channels_last]
    assert r["lod"] == 3 and r["batch"] == 2 and r["ms"]["conv/GEMM"] > 0
