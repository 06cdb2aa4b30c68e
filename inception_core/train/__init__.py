"""The Inception papers' training recipe: ``train(TrainConfig(...))``, ``python -m inception_core.train``
and ``inception-core train`` (single process, or DistributedDataParallel under torchrun). The names load
on first use, so the command line's flags (``inception_core.train.config``) come without torch."""

from inception_core._lazy import lazy_exports

_EXPORTS = {
    "CheckpointError": "inception_core.train.checkpoint",
    "load_checkpoint": "inception_core.train.checkpoint",
    "save_checkpoint": "inception_core.train.checkpoint",
    "TrainConfig": "inception_core.train.config",
    "SyntheticImages": "inception_core.train.data",
    "TrainResult": "inception_core.train.runner",
    "main": "inception_core.train.runner",
    "train": "inception_core.train.runner",
}

__all__ = ["CheckpointError", "SyntheticImages", "TrainConfig", "TrainResult", "load_checkpoint", "main",
           "save_checkpoint", "train"]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
