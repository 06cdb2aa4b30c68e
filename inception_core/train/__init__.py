"""The Inception papers' training recipe: ``train(TrainConfig(...))``, ``python -m inception_core.train``
and ``inception-core train`` (single process, or DistributedDataParallel under torchrun)."""

from inception_core.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from inception_core.train.config import TrainConfig
from inception_core.train.data import SyntheticImages
from inception_core.train.runner import TrainResult, main, train

__all__ = ["CheckpointError", "SyntheticImages", "TrainConfig", "TrainResult", "load_checkpoint", "main",
           "save_checkpoint", "train"]
