"""inception_core.nn: torch.nn, with the layers the Inception networks are made of accelerated.

Everything in ``torch.nn`` is re-exported unchanged, except these, which run the fused ops (eval: BN
folded, slice writes; training: BN batch statistics in the conv epilogue, differentiable):

- ``BasicConv2d``: Conv2d + BatchNorm2d + ReLU (BN folded into the conv's epilogue).
- ``MaxPool2d``, ``AvgPool2d``: subclasses of torch's, able to write into a channel slice.
- ``ConcatBlock``, ``ScaledResidualBlock``, ``ChannelSlots``: block bases whose branches write their
  own channel slices of the block output (no ``torch.cat``), and the Inception-ResNet residual block
  whose scaled add and activation run in the up-projection's epilogue.
- ``freeze_folding(model)``: cache the BatchNorm folds (by default every eval forward folds again, so
  every edit, ``.data`` writes included, is seen by the next call).
"""

import inspect as _inspect

import torch.nn as _torch_nn

from inception_core.nn import functional
from inception_core.nn.blocks import Branch, ChannelSlots, ConcatBlock, ReductionBlock, ScaledResidualBlock
from inception_core.nn.conv import BasicConv2d
from inception_core.nn.functional import freeze_folding
from inception_core.nn.pooling import AvgPool2d, GlobalAvgPool2d, MaxPool2d

_OURS = [
    "AvgPool2d",
    "BasicConv2d",
    "Branch",
    "ChannelSlots",
    "ConcatBlock",
    "GlobalAvgPool2d",
    "MaxPool2d",
    "ReductionBlock",
    "ScaledResidualBlock",
    "freeze_folding",
    "functional",
]
_FROM_TORCH = [
    name for name in dir(_torch_nn)
    if not name.startswith("_") and name not in _OURS and not _inspect.ismodule(getattr(_torch_nn, name))
]
globals().update({name: getattr(_torch_nn, name) for name in _FROM_TORCH})
# torch.nn's submodules that user code reaches through the package (nn.init, nn.utils, nn.parameter)
init = _torch_nn.init
utils = _torch_nn.utils
parameter = _torch_nn.parameter

__all__ = [  # our names first, then torch.nn's
    "AvgPool2d",
    "BasicConv2d",
    "Branch",
    "ChannelSlots",
    "ConcatBlock",
    "GlobalAvgPool2d",
    "MaxPool2d",
    "ReductionBlock",
    "ScaledResidualBlock",
    "freeze_folding",
    "functional",
    "init",
    "parameter",
    "utils",
    *_FROM_TORCH,
]
