"""The digits-mlp preset trains digits in its default length (it gave salt-and-pepper noise at
lr 0.002: in 1875 Adam steps of about lr each, G's last layer never left its white-noise init)."""

from __future__ import annotations

import pytest

from alae_fast.training.run import TrainOptions, run_training


@pytest.mark.slow
def test_digits_mlp_reconstructs_digits_in_its_default_length(tmp_path):
    # seed 0 at lr 0.002: 41.8% of the right class, MSE 1.22, G's outputs -6.2..+5.7; at lr 0.01
    # (2 threads, helper-42's runs): 92.9%, MSE 0.070. Thresholds leave room for another CPU's
    # trajectory while failing the noise clearly.
    summary = run_training(TrainOptions(preset="digits-mlp", out=str(tmp_path / "run"), progress=False, seed=0))
    ev = summary["eval"]
    assert ev["reconstruction_mse"] < 0.15, ev["reconstruction_mse"]
    report = ev["latent"]
    assert report["reconstruction_class"]["reconstructions"] >= 0.8, report["reconstruction_class"]
    assert report["encoder"]["knn1"] > report["random_encoder"]["knn1"], report
    assert report["sample_classes"]["min_fraction"] >= 0.05, report["sample_classes"]


def test_digits_mlp_schedule_is_its_own():
    from alae_fast.training.setups import resolve_setup

    setup = resolve_setup("digits-mlp")
    assert setup.schedule.lod_lr == (0.01,) and setup.schedule.lod_batch == (64,) and setup.kimg == 120.0
    assert resolve_setup("mnist-mlp").schedule.lod_lr == (0.002,)  # the paper's presets keep the paper's lr
