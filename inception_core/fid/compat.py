"""Drop-ins for the tools' own FID modules, holding their exact state_dict layouts, so ``inception_core.convert``
turns one into ours with a strict ``load_state_dict``:

  ``PytorchFIDInceptionV3``: pytorch-fid's ``InceptionV3`` wrapper (``blocks.N.M`` keys, list of block outputs,
      float input in [0, 1], ``resize_input`` / ``normalize_input``).
  ``FidelityInceptionV3``: torch-fidelity's ``FeatureExtractorInceptionV3`` (torchvision keys with ``fc``,
      uint8 input, a tuple of the requested features).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inception_core.fid.presets import resize_tf1_bilinear
from inception_core.models._entry import fused_input
from inception_core.models.fid_inception_v3 import FID_STAGES, FID_TAPS, FIDInception3, fid_layers
from inception_core.nn import functional as icf

__all__ = ["FidelityInceptionV3", "PytorchFIDInceptionV3", "from_pytorch_fid", "from_torch_fidelity"]


class PytorchFIDInceptionV3(nn.Module):
    """pytorch-fid's ``InceptionV3`` on the fused layers: same constructor arguments (the FID network only),
    same ``blocks.N.M`` state_dict keys, same forward: (N, 3, H, W) float in [0, 1] -> list of the
    ``output_blocks`` outputs in ascending order (N x 64 x 73 x 73, N x 192 x 35 x 35, N x 768 x 17 x 17,
    N x 2048 x 1 x 1 at 299). Random init: weights come by ``load_state_dict`` (``convert`` does it)."""

    BLOCK_INDEX_BY_DIM = {64: 0, 192: 1, 768: 2, 2048: 3}

    def __init__(self, output_blocks: Sequence[int] = (3,), resize_input: bool = True, normalize_input: bool = True,
                 requires_grad: bool = False) -> None:
        super().__init__()
        if not output_blocks or not all(b in (0, 1, 2, 3) for b in output_blocks):
            raise ValueError(f"output_blocks: expected indices in 0..3, got {output_blocks!r}")
        self.resize_input, self.normalize_input = resize_input, normalize_input
        self.output_blocks = sorted(output_blocks)
        self.last_needed_block = max(output_blocks)
        layers = fid_layers()
        stages = [[layers[name] for name in names] for _, names in FID_STAGES]
        stages[-1].append(nn.AdaptiveAvgPool2d((1, 1)))  # pool3
        self.blocks = nn.ModuleList(nn.Sequential(*s) for s in stages[:self.last_needed_block + 1])
        self.requires_grad_(requires_grad)

    def forward(self, inp: Tensor) -> list[Tensor]:
        x = inp
        if self.resize_input:
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        if self.normalize_input:
            x = 2 * x - 1
        x = fused_input(self, x)
        out = []
        for idx, block in enumerate(self.blocks):
            x = icf.dense(block(x))
            if idx in self.output_blocks:
                out.append(x)
            if idx == self.last_needed_block:
                break
        return out


class FidelityInceptionV3(FIDInception3):
    """torch-fidelity's ``FeatureExtractorInceptionV3`` on the fused network: same state_dict keys, same
    forward: (N, 3, H, W) uint8 -> tuple of the ``features_list`` features, (N, D) float32, after its
    TF1 bilinear resize to ``INPUT_IMAGE_SIZE`` and (x - 128) / 128. Random init (``convert`` loads)."""

    INPUT_IMAGE_SIZE = 299

    def __init__(self, features_list: Sequence[str] = ("2048",)) -> None:
        super().__init__(num_classes=1008)
        bad = [f for f in features_list if f not in FID_TAPS]
        if bad or not features_list:
            raise ValueError(f"features_list: expected a non-empty list of {list(FID_TAPS)}, got {features_list!r}")
        self.features_list = list(features_list)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        if not torch.is_tensor(x) or x.dtype != torch.uint8:
            raise ValueError("x: expected a torch.uint8 tensor of images")
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"x: expected (N, 3, H, W), got shape {tuple(x.shape)}")
        dtype = self.Conv2d_1a_3x3.conv.weight.dtype
        # resized in the network's dtype, as torch-fidelity does (feature_extractor_internal_dtype)
        net_input = (resize_tf1_bilinear(x.to(dtype), self.INPUT_IMAGE_SIZE) - 128) / 128
        taps = self.forward_taps(net_input, self.features_list)
        return tuple(taps[f].to(torch.float32) for f in self.features_list)


def from_pytorch_fid(model: nn.Module) -> PytorchFIDInceptionV3:
    """The unloaded equivalent of a pytorch-fid ``InceptionV3`` (same blocks, flags and output_blocks)."""
    if len(model.blocks) > 2 and type(model.blocks[2][0]).__name__ != "FIDInceptionA":
        raise TypeError("model: pytorch-fid InceptionV3 built with use_fid_inception=False (torchvision's "
                        "Inception3 blocks) is not the FID network; convert torchvision's inception_v3 instead")
    return PytorchFIDInceptionV3(model.output_blocks, resize_input=model.resize_input,
                                 normalize_input=model.normalize_input,
                                 requires_grad=any(p.requires_grad for p in model.parameters()))


def from_torch_fidelity(model: nn.Module) -> FidelityInceptionV3:
    """The unloaded equivalent of a torch-fidelity ``FeatureExtractorInceptionV3`` (same features_list and
    input size)."""
    ours = FidelityInceptionV3(model.features_list)
    ours.INPUT_IMAGE_SIZE = model.INPUT_IMAGE_SIZE
    return ours
