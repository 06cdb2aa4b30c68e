"""Tiny training configurations shared by the training tests."""

import os

import pytest

from inception_core.train import TrainConfig, train
from inception_core.train.config import MIN_IMAGE_SIZE

# Small inputs each network accepts; inception_v3 runs at 299, where its aux head works.
TINY_IMAGE_SIZE = {**MIN_IMAGE_SIZE, "googlenet": 32, "inception_v3": 299}


def tiny_config(tmp_path, model: str = "googlenet", **overrides) -> TrainConfig:
    """Batch 2, 4 classes, 6 training images (3 steps per epoch), 4 held-out images, CPU, no progress bar,
    the torch backend (the suite sets TRITON_INTERPRET=1, under which `auto` would evaluate through the
    Triton interpreter)."""
    kwargs = dict(model=model, data="synthetic", output=str(tmp_path / "run"), epochs=1, batch_size=2,
                  image_size=TINY_IMAGE_SIZE[model], num_classes=4, train_samples=6, val_samples=4, device="cpu",
                  progress=False, seed=3, backend="torch")
    kwargs.update(overrides)
    return TrainConfig(**kwargs)


@pytest.fixture
def tiny(tmp_path):
    return lambda model="googlenet", **overrides: tiny_config(tmp_path, model, **overrides)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """(config, checkpoint path) of one finished tiny googlenet run, shared by a module's tests (none of
    them may write into its output)."""
    cfg = tiny_config(tmp_path_factory.mktemp("done"), max_steps=1)
    train(cfg)
    return cfg, os.path.join(cfg.output, "last.pt")
