"""Evaluation: latent classification, reconstruction error, FID (or a named proxy), PPL.

Model-independent: every metric takes callables (encode, reconstruct, sample, mapping,
generator) so it works for any model (the reconstruction metrics also take reconstructions
already computed, so that one evaluation runs the model over its images once); nothing here
imports ``alae_fast.models``.
"""

from .fid import (FeatureNet, InceptionTorchScript, InceptionV3Features, RandomConvFeatures, quantize_uint8, compute_features, feature_network,
                  feature_statistics, fid, fid_from_features, fid_generated, fid_reconstructed, frechet_distance)
from .latent import classify_features, encode_all, latent_report, pca_features
from .ppl import mse_distance, perceptual_path_length, proxy_lpips_distance
from .recon import reconstruct_all, reconstruction_class_accuracy, reconstruction_identification, reconstruction_mse
from .samples import sample_class_histogram

__all__ = [
    "FeatureNet", "InceptionTorchScript", "quantize_uint8", "InceptionV3Features", "RandomConvFeatures", "compute_features", "feature_network",
    "feature_statistics", "fid", "fid_from_features", "fid_generated", "fid_reconstructed", "frechet_distance",
    "classify_features", "encode_all", "latent_report", "pca_features",
    "mse_distance", "perceptual_path_length", "proxy_lpips_distance",
    "reconstruct_all", "reconstruction_class_accuracy", "reconstruction_identification", "reconstruction_mse",
    "sample_class_histogram",
]
