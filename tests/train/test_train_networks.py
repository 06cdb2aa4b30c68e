"""Every network trains for a couple of steps with the recipe on synthetic data: finite loss, a metrics
record per epoch, a checkpoint that loads into a freshly built network."""

import math
import os

import pytest
import torch

from inception_core.models import create_model, list_models
from inception_core.train import load_checkpoint, train
from inception_core.train.config import NETWORKS, model_kwargs
from inception_core.train.metrics import MetricsLog


def test_every_registered_network_is_trainable():
    assert set(NETWORKS) == set(list_models())


@pytest.mark.parametrize("model", NETWORKS)
def test_tiny_run(tiny, model):
    # inception_v3 at 299 with its aux head is the slow one: one step there
    cfg = tiny(model, max_steps=1 if model == "inception_v3" else 2, val_samples=2)
    result = train(cfg)

    records = MetricsLog.read(os.path.join(cfg.output, "metrics.jsonl"))
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert len(epochs) == 1
    rec = epochs[0]
    assert rec["step"] == cfg.max_steps
    assert math.isfinite(rec["train_loss"]) and rec["train_loss"] > 0
    assert rec["images_per_s"] > 0 and rec["train_images"] == 2 * cfg.max_steps
    assert 0 <= rec["val_top1"] <= rec["val_top5"] <= 100
    assert rec["lr"] == pytest.approx(0.045)

    state = load_checkpoint(os.path.join(cfg.output, "last.pt"))
    assert state["model_name"] == model and state["global_step"] == cfg.max_steps
    fresh = create_model(model, **model_kwargs(cfg, 4))
    fresh.load_state_dict(state["model"])  # strict: same keys as the builder's
    trained = result.model.state_dict()
    for name, p in fresh.state_dict().items():
        assert torch.equal(p, trained[name]), name


def test_aux_heads_are_trained(tiny):
    """googlenet with the recipe's aux weight builds both aux heads and their weights move."""
    cfg = tiny("googlenet", max_steps=1)
    torch.manual_seed(cfg.seed)  # the trainer seeds with cfg.seed before building the network
    before = create_model("googlenet", **model_kwargs(cfg, 4))
    result = train(cfg)
    for head in ("aux1", "aux2"):
        w0 = before.get_submodule(head).fc2.weight
        w1 = result.model.get_submodule(head).fc2.weight
        assert w0.shape == w1.shape and not torch.equal(w0, w1), head


def test_no_aux_heads_with_aux_weight_zero(tiny):
    cfg = tiny("inception_v3", image_size=75, aux_weight=0.0, max_steps=1, val_samples=2)
    result = train(cfg)
    assert result.model.AuxLogits is None
