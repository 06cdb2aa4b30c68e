"""The papers' recipe from torch's own parts: the network (optionally SyncBatchNorm, channels_last),
RMSprop, StepLR, label-smoothed cross-entropy with weighted auxiliary losses, the AMP scaler and the
EMA of the weights."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from inception_core.models import create_model
from inception_core.train.config import TrainConfig, model_kwargs

__all__ = ["AMP_DTYPES", "build_ema", "build_model", "build_optimizer", "build_scheduler", "recipe_loss",
           "split_outputs"]

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def build_model(cfg: TrainConfig, num_classes: int, device: torch.device, *, distributed: bool) -> nn.Module:
    """``cfg.model`` as a ``num_classes``-way classifier on ``device`` (aux heads when the recipe uses
    them), BatchNorm layers converted to SyncBatchNorm with ``cfg.sync_bn``."""
    model = create_model(cfg.model, **model_kwargs(cfg, num_classes))
    if cfg.sync_bn:
        if distributed and device.type == "cpu":
            raise ValueError("--sync-bn: torch's SyncBatchNorm synchronises CUDA tensors only; on CPU (gloo) "
                             "leave it off (each process then normalises with its own batch statistics)")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(model.parameters(), lr=cfg.lr, alpha=cfg.rmsprop_alpha, eps=cfg.rmsprop_eps,
                               momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per epoch: lr x ``lr_decay`` every ``lr_decay_epochs`` epochs."""
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_decay_epochs, gamma=cfg.lr_decay)


def build_ema(model: nn.Module, cfg: TrainConfig) -> AveragedModel | None:
    """Exponential moving average of the parameters and buffers, or None without ``cfg.ema``."""
    if not cfg.ema:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)


def split_outputs(out) -> tuple[Tensor, list[Tensor]]:
    """(main logits, aux logits) of a network's output: a tensor, or a training-mode tuple such as
    ``InceptionOutputs(logits, aux_logits)`` / ``GoogLeNetOutputs(logits, aux_logits2, aux_logits1)``."""
    if isinstance(out, Tensor):
        return out, []
    return out[0], [o for o in out[1:] if isinstance(o, Tensor)]


def recipe_loss(criterion: nn.Module, out, target: Tensor, aux_weight: float) -> tuple[Tensor, Tensor]:
    """(loss, main logits): CE(logits) + ``aux_weight`` x CE(each aux head's logits)."""
    logits, aux = split_outputs(out)
    loss = criterion(logits, target)
    for a in aux:
        loss = loss + aux_weight * criterion(a, target)
    return loss, logits
