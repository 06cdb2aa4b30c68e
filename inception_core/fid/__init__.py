"""FID, Inception Score and KID on the fused FID Inception network, matching pytorch-fid, torch-fidelity,
clean-fid and torchmetrics (facts and measured differences: README, "FID, IS and KID"). The names load on
first use, so the command line's flags (``inception_core.fid.options``) come without torch."""

from inception_core._lazy import lazy_exports

_EXPORTS = {
    "PRECISIONS": "inception_core.fid.options",
    "PRESETS": "inception_core.fid.options",
    "InceptionFeatureExtractor": "inception_core.fid.extractor",
    "precision_mode": "inception_core.fid.extractor",
    "frechet_distance": "inception_core.fid.metrics",
    "inception_score": "inception_core.fid.metrics",
    "kernel_inception_distance": "inception_core.fid.metrics",
    "normalize": "inception_core.fid.presets",
    "preprocess": "inception_core.fid.presets",
    "resize_clean": "inception_core.fid.presets",
    "resize_tf1_bilinear": "inception_core.fid.presets",
    "FeatureStats": "inception_core.fid.stats",
    "load_stats": "inception_core.fid.stats",
    "save_stats": "inception_core.fid.stats",
    "WEIGHT_FILES": "inception_core.fid.weights",
    "WeightsNotFoundError": "inception_core.fid.weights",
    "fid_weights_state_dict": "inception_core.fid.weights",
}

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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
