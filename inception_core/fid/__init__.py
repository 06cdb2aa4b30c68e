"""FID, Inception Score and KID on the fused FID Inception network, matching pytorch-fid, torch-fidelity,
clean-fid and torchmetrics (facts and measured differences: README, "FID, IS and KID")."""

from inception_core.fid.extractor import PRECISIONS, InceptionFeatureExtractor, precision_mode
from inception_core.fid.metrics import frechet_distance, inception_score, kernel_inception_distance
from inception_core.fid.presets import PRESETS, normalize, preprocess, resize_clean, resize_tf1_bilinear
from inception_core.fid.stats import FeatureStats, load_stats, save_stats
from inception_core.fid.weights import WEIGHT_FILES, WeightsNotFoundError, fid_weights_state_dict

__all__ = [
    "PRECISIONS",
    "PRESETS",
    "WEIGHT_FILES",
    "FeatureStats",
    "InceptionFeatureExtractor",
    "WeightsNotFoundError",
    "fid_weights_state_dict",
    "frechet_distance",
    "inception_score",
    "kernel_inception_distance",
    "load_stats",
    "normalize",
    "precision_mode",
    "preprocess",
    "resize_clean",
    "resize_tf1_bilinear",
    "save_stats",
]
