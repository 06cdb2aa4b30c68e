"""``InceptionFeatureExtractor``: images -> FID / IS / KID features on the fused FID network, with a tool's
preprocessing preset and a precision mode. It is an ``nn.Module`` with ``num_features``, so it plugs into
torchmetrics' ``FrechetInceptionDistance(feature=...)``, ``KernelInceptionDistance(feature=...)`` and
``InceptionScore(feature=...)``."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inception_core.fid.options import PRECISIONS, PRESETS
from inception_core.fid.presets import preprocess
from inception_core.models.fid_inception_v3 import FID_TAPS, FIDInception3

__all__ = ["PRECISIONS", "InceptionFeatureExtractor", "precision_mode"]

_TAP_DIMS = {"64": 64, "192": 192, "768": 768, "2048": 2048, "logits_unbiased": 1008, "logits": 1008}


@contextlib.contextmanager
def precision_mode(precision: str, device: torch.device) -> Iterator[None]:
    """``exact``: the network's own dtype (fp32, or fp64 on the torch backend), TF32 off on CUDA for the
    duration; ``fast``: bf16 autocast on the device."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {list(PRECISIONS)}, got {precision!r}")
    if precision == "fast":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.autocast(device.type, enabled=False):
            yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


class InceptionFeatureExtractor(nn.Module):
    """RGB images -> features of the FID Inception network, preprocessed as one of the tools does.

    Args:
        features: one of ``FID_TAPS`` ("2048" for FID/KID, "logits_unbiased" for IS), or a sequence of them.
        preset: ``"pytorch-fid"``, ``"torch-fidelity"`` (default), ``"clean-fid"`` or ``"torchmetrics"``
            (see ``inception_core.fid.presets``).
        precision: ``"exact"`` (fp32 without TF32; the features of an image do not depend on its batch) or
            ``"fast"`` (bf16 autocast).
        net: an ``FIDInception3`` holding the weights; default: one built here and loaded from ``weights``.
        weights: a weights file path (or a state_dict) when ``net`` is not given; None looks in torch.hub's
            cache and downloads when the network allows (``fid_weights_state_dict``).
        image_size: the network's input size (299 for every published number; smaller only for tests).

    ``forward(images)``: (N, 3, H, W) uint8 in [0, 255], or float in [0, 1] (pytorch-fid takes these as
    they are; the uint8-based presets quantise them as torchmetrics does, ``(x * 255).byte()``) -> (N, D)
    float32 features (float64 when
    the network is float64), or a tuple of them when ``features`` is a sequence. ``num_features`` is D of
    the (first) feature.
    """

    def __init__(self, features: str | Sequence[str] = "2048", preset: str = "torch-fidelity",
                 precision: str = "exact", net: FIDInception3 | None = None,
                 weights: str | os.PathLike | dict | None = None, image_size: int = 299) -> None:
        super().__init__()
        names = [features] if isinstance(features, str) else list(features)
        bad = [f for f in names if f not in FID_TAPS]
        if bad or not names:
            raise ValueError(f"features: expected one of {list(FID_TAPS)} or a non-empty list of them, got "
                             f"{features!r}")
        if preset not in PRESETS:
            raise ValueError(f"preset: expected one of {list(PRESETS)}, got {preset!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision: expected one of {list(PRECISIONS)}, got {precision!r}")
        if image_size < 75:
            raise ValueError(f"image_size: the network needs at least 75, got {image_size}")
        if net is None:
            from inception_core.fid.weights import fid_weights_state_dict

            state = weights if isinstance(weights, dict) else fid_weights_state_dict(weights)
            net = FIDInception3()
            net.load_state_dict(state, strict=True)
        elif not isinstance(net, FIDInception3):
            raise TypeError(f"net: expected an FIDInception3, got {type(net).__name__}")
        self.net = net.eval().requires_grad_(False)
        self.features = names
        self.single = isinstance(features, str)
        self.preset = preset
        self.precision = precision
        self.image_size = image_size
        self.num_features = _TAP_DIMS[names[0]]

    def train(self, mode: bool = True) -> InceptionFeatureExtractor:
        """The network stays in eval mode (it is a fixed feature extractor, as in the tools)."""
        super().train(mode)
        self.net.eval()
        return self

    def preprocess(self, images: Tensor) -> Tensor:
        """The preset's network input (N, 3, image_size, image_size) float32 in [-1, 1] for (N, 3, H, W) images."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images: expected (N, 3, H, W) RGB, got shape {tuple(images.shape)}")
        if images.is_floating_point():
            if self.preset == "pytorch-fid":  # pytorch-fid's own network takes [0, 1] floats
                x = F.interpolate(images.float(), size=(self.image_size,) * 2, mode="bilinear",
                                  align_corners=False)
                return 2 * x - 1
            images = (images * 255).to(torch.uint8)  # torchmetrics' (x * 255).byte() for its own network
        elif images.dtype != torch.uint8:
            raise ValueError(f"images: expected uint8 or float, got {images.dtype}")
        return preprocess(images, self.preset, self.image_size)

    def embed(self, x: Tensor) -> Tensor | tuple[Tensor, ...]:
        """The features of already preprocessed network input x (N, 3, S, S) in [-1, 1]."""
        param = next(self.net.parameters())
        with torch.no_grad(), precision_mode(self.precision, param.device):
            taps = self.net.forward_taps(x.to(device=param.device, dtype=param.dtype), self.features)
        out_dtype = torch.float64 if param.dtype == torch.float64 else torch.float32
        out = tuple(taps[f].to(out_dtype) for f in self.features)
        return out[0] if self.single else out

    def forward(self, images: Tensor) -> Tensor | tuple[Tensor, ...]:
        param = next(self.net.parameters())
        return self.embed(self.preprocess(images.to(param.device)))

    def extra_repr(self) -> str:
        return f"features={self.features}, preset={self.preset!r}, precision={self.precision!r}"
