"""BN-Inception (Inception-v2 of Ioffe & Szegedy 2015) with the flat keys of Cadene's Caffe port.

Ioffe & Szegedy 2015, "Batch Normalization: Accelerating Deep Network Training by Reducing Internal
Covariate Shift" (arXiv 1502.03167), as ``pretrainedmodels.bninception`` has it: every convolution and
its BatchNorm are separate top-level modules (``conv1_7x7_s2``, ``conv1_7x7_s2_bn``,
``inception_3a_double_3x3_1``, ...), so that port's checkpoints load unchanged. Caffe conventions:
convolutions have a bias, BatchNorm eps is 1e-5 (torch's default), every pool uses ``ceil_mode=True``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from inception_core import nn as icnn
from inception_core.models._cfg import model_cfg
from inception_core.models._entry import fused_input, runs_fused
from inception_core.models._registry import register_model
from inception_core.nn import functional as icf
from inception_core.nn.blocks import ChannelSlots
from inception_core.nn.pool_branch import avg_pool_conv_bn_act

__all__ = ["BNInception", "bn_inception"]

# name: (in_channels, 1x1, (3x3_reduce, 3x3), (double_3x3_reduce, double_3x3_1, double_3x3_2), pool, pool_proj)
# 1x1 / pool_proj None: a stride-2 reduction block (3x3 and double_3x3_2 at stride 2, 3x3/s2 max pool
# concatenated as it is). Pools are "avg" (3x3/s1/p1, count_include_pad=True) except 5b's "max".
_BLOCKS: dict[str, tuple] = {
    "3a": (192, 64, (64, 64), (64, 96, 96), "avg", 32),
    "3b": (256, 64, (64, 96), (64, 96, 96), "avg", 64),
    "3c": (320, None, (128, 160), (64, 96, 96), "max_s2", None),
    "4a": (576, 224, (64, 96), (96, 128, 128), "avg", 128),
    "4b": (576, 192, (96, 128), (96, 128, 128), "avg", 128),
    "4c": (576, 160, (128, 160), (128, 160, 160), "avg", 128),
    "4d": (608, 96, (128, 192), (160, 192, 192), "avg", 128),
    "4e": (608, None, (128, 192), (192, 256, 256), "max_s2", None),
    "5a": (1056, 352, (192, 320), (160, 224, 224), "avg", 128),
    "5b": (1024, 352, (192, 320), (192, 224, 224), "max", 128),
}


class BNInception(nn.Module):
    """BN-Inception, weight-compatible with Cadene's ``pretrainedmodels.BNInception``.

    The same flat modules under the same names (convolution ``inception_4a_3x3``, its BatchNorm
    ``inception_4a_3x3_bn``, pools ``inception_4a_pool``, head ``global_pool`` / ``last_linear``) and
    the same forward, including the head: a 7x7 average pool (stride 1, ``ceil_mode``) and the linear
    layer, so the network takes 224x224 input (the feature map must be 7x7). Not kept: the port's
    parameter-free ReLU modules (``*_relu_*``): the activation runs in each convolution's epilogue.
    The pretrained weights expect BGR input in [0, 255] minus the mean (104, 117, 128).

    The forward groups the flat modules into Inception blocks: in eval mode without autograd, BN is
    folded into every convolution and each branch writes its channel slice of the block output; in
    training mode the fused training ops run and the branches are concatenated with ``torch.cat``.

    Args:
        num_classes: outputs of ``last_linear``.
    """

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.num_classes = num_classes
        self._conv_bn("conv1_7x7_s2", 3, 64, 7, stride=2, padding=3)
        self.pool1_3x3_s2 = icnn.MaxPool2d((3, 3), stride=(2, 2), dilation=(1, 1), ceil_mode=True)
        self._conv_bn("conv2_3x3_reduce", 64, 64, 1)
        self._conv_bn("conv2_3x3", 64, 192, 3, padding=1)
        self.pool2_3x3_s2 = icnn.MaxPool2d((3, 3), stride=(2, 2), dilation=(1, 1), ceil_mode=True)
        for name, (cin, c1x1, (c3red, c3), (cdred, cd1, cd2), pool, cproj) in _BLOCKS.items():
            p = f"inception_{name}"
            stride = 2 if pool == "max_s2" else 1
            if c1x1 is not None:
                self._conv_bn(f"{p}_1x1", cin, c1x1, 1)
            self._conv_bn(f"{p}_3x3_reduce", cin, c3red, 1)
            self._conv_bn(f"{p}_3x3", c3red, c3, 3, stride=stride, padding=1)
            self._conv_bn(f"{p}_double_3x3_reduce", cin, cdred, 1)
            self._conv_bn(f"{p}_double_3x3_1", cdred, cd1, 3, padding=1)
            self._conv_bn(f"{p}_double_3x3_2", cd1, cd2, 3, stride=stride, padding=1)
            if pool == "avg":
                pool_layer = icnn.AvgPool2d(3, stride=1, padding=1, ceil_mode=True, count_include_pad=True)
            elif pool == "max":
                pool_layer = icnn.MaxPool2d((3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1), ceil_mode=True)
            else:
                pool_layer = icnn.MaxPool2d((3, 3), stride=(2, 2), dilation=(1, 1), ceil_mode=True)
            setattr(self, f"{p}_pool", pool_layer)
            if cproj is not None:
                self._conv_bn(f"{p}_pool_proj", cin, cproj, 1)
        self.global_pool = nn.AvgPool2d(7, stride=1, padding=0, ceil_mode=True, count_include_pad=True)
        self.last_linear = nn.Linear(1024, num_classes)
        # the Caffe weights' input: BGR, [0, 255] pixels minus (104, 117, 128), written here on [0, 1] pixels
        self.pretrained_cfg = self.default_cfg = model_cfg(
            source="pretrainedmodels bninception", first_conv="conv1_7x7_s2", classifier="last_linear",
            num_classes=num_classes, input_size=(3, 224, 224), min_input_size=(3, 224, 224),
            mean=(104 / 255, 117 / 255, 128 / 255), std=(1 / 255,) * 3, interpolation="bilinear", crop_pct=0.875,
            input_space="BGR")

    def _conv_bn(self, name: str, cin: int, cout: int, k: int, stride: int = 1, padding: int = 0) -> None:
        """Add ``name`` (Conv2d with bias, as Caffe) and ``name_bn`` (BatchNorm2d, eps 1e-5)."""
        setattr(self, name, nn.Conv2d(cin, cout, kernel_size=(k, k), stride=(stride, stride),
                                      padding=(padding, padding)))
        setattr(self, f"{name}_bn", nn.BatchNorm2d(cout, affine=True))

    def _unit(self, name: str) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
        """The flat (conv, bn) pair named ``name`` / ``name_bn``."""
        return getattr(self, name), getattr(self, f"{name}_bn")

    def _cbr(self, name: str, x: Tensor, **slot) -> Tensor:
        """relu(bn(conv(x))) of the flat modules ``name`` / ``name_bn``; ``slot``: out / out_offset."""
        return icf.conv_bn_act(x, getattr(self, name), getattr(self, f"{name}_bn"), "relu", **slot)

    def _block(self, x: Tensor, name: str, fused: bool) -> Tensor:
        """One Inception block (``inception_<name>_*``): its branches concatenated along channels.

        Fused path: the block output is allocated once and every branch's last op writes its slice, as
        ``ConcatBlock.concat`` does; torch path: ``torch.cat`` of the branch results, as the port does.
        """
        cin, c1x1, (_, c3), (_, _, cd2), _, cproj = _BLOCKS[name]
        p = f"inception_{name}"
        out = None
        dense = False
        if fused:
            x = x.to(icf.compute_dtype(x))
            dense = icf.dense_block_outputs(x)  # the torch backend: no scratch channels (see ChannelSlots)
            conv = getattr(self, f"{p}_3x3")  # every branch has the output size of this convolution
            oh, ow = ((x.shape[i + 2] + 2 * conv.padding[i] - conv.kernel_size[i]) // conv.stride[i] + 1
                      for i in range(2))
            channels = (c1x1 or 0) + c3 + cd2 + (cproj if cproj is not None else cin)
            # blocks with a 1x1 branch reserve channels in front for the fused 1x1 reductions
            scratch = self._unit(f"{p}_3x3_reduce")[0].out_channels + \
                self._unit(f"{p}_double_3x3_reduce")[0].out_channels if c1x1 is not None and not dense else 0
            out = torch.empty((x.shape[0], scratch + channels, oh, ow), dtype=x.dtype, device=x.device,
                              memory_format=torch.channels_last)
        cat = ChannelSlots(out, scratch if out is not None else 0, dense)
        branches = []
        # the 1x1 convs reading x run as one GEMM on the fused path (horizontal fusion)
        reduce_units = [self._unit(f"{p}_3x3_reduce"), self._unit(f"{p}_double_3x3_reduce")]
        direct = self._unit(f"{p}_1x1") if c1x1 is not None else None
        reduced = cat.siblings(x, reduce_units, direct, owner=getattr(self, f"{p}_3x3_reduce"))
        if direct is not None:
            branches.append(reduced.pop(0))
        y3, yd = reduced
        branches.append(self._cbr(f"{p}_3x3", y3, **cat.slot(c3)))
        y = self._cbr(f"{p}_double_3x3_1", yd)
        branches.append(self._cbr(f"{p}_double_3x3_2", y, **cat.slot(cd2)))
        pool = getattr(self, f"{p}_pool")
        if cproj is None:  # reduction block: the pooled input is concatenated as it is
            branches.append(pool(x, **cat.slot(cin)))
        elif isinstance(pool, nn.AvgPool2d):  # the 1x1 pool_proj first on the torch backend
            branches.append(avg_pool_conv_bn_act(x, pool, self._unit(f"{p}_pool_proj"), **cat.slot(cproj)))
        else:
            branches.append(self._cbr(f"{p}_pool_proj", pool(x), **cat.slot(cproj)))
        if out is None:
            return torch.cat(branches, 1)
        if cat.offset != out.shape[1]:
            raise RuntimeError(f"{p}: branches filled {cat.offset - cat.scratch} of {out.shape[1] - cat.scratch} "
                               "channels")
        return out.narrow(1, cat.scratch, out.shape[1] - cat.scratch) if cat.scratch else out

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, 3, 224, 224) -> the last feature map (N, 1024, 7, 7), before global pooling."""
        icf.check_network_input(x, self)
        fused = runs_fused(self, x)
        x = fused_input(self, x)
        # N x 3 x 224 x 224
        x = self._cbr("conv1_7x7_s2", x)
        # N x 64 x 112 x 112
        x = self.pool1_3x3_s2(x)
        # N x 64 x 56 x 56
        x = self._cbr("conv2_3x3_reduce", x)
        # N x 64 x 56 x 56
        x = self._cbr("conv2_3x3", x)
        # N x 192 x 56 x 56
        x = self.pool2_3x3_s2(x)
        # N x 192 x 28 x 28
        x = self._block(x, "3a", fused)
        # N x 256 x 28 x 28
        x = self._block(x, "3b", fused)
        # N x 320 x 28 x 28
        x = self._block(x, "3c", fused)
        # N x 576 x 14 x 14
        x = self._block(x, "4a", fused)
        # N x 576 x 14 x 14
        x = self._block(x, "4b", fused)
        # N x 576 x 14 x 14
        x = self._block(x, "4c", fused)
        # N x 608 x 14 x 14
        x = self._block(x, "4d", fused)
        # N x 608 x 14 x 14
        x = self._block(x, "4e", fused)
        # N x 1056 x 7 x 7
        x = self._block(x, "5a", fused)
        # N x 1024 x 7 x 7
        x = icf.dense(self._block(x, "5b", fused))  # the fused block output is a view behind its scratch channels
        # N x 1024 x 7 x 7
        return x

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """(N, 1024, 7, 7) -> logits (N, num_classes), or the pooled (N, 1024) features: the port's
        7x7 average pool (stride 1, ceil_mode) and ``last_linear``."""
        x = self.global_pool(x)
        # N x 1024 x 1 x 1
        x = torch.flatten(x, 1)
        # N x 1024 -> N x num_classes
        return x if pre_logits else self.last_linear(x)

    def features(self, x: Tensor) -> Tensor:
        """The port's name for :meth:`forward_features` (kept for code written against it)."""
        return self.forward_features(x)

    def logits(self, features: Tensor) -> Tensor:
        """The port's name for :meth:`forward_head`."""
        return self.forward_head(features)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


@register_model
def bn_inception(num_classes: int = 1000, **kwargs) -> BNInception:
    """BN-Inception with the keys of Cadene's ``pretrainedmodels.bninception``: 11,295,240 parameters
    (1000 classes), 224x224 BGR input in [0, 255] minus the mean (104, 117, 128) for the port's weights.
    Other keyword arguments go to :class:`BNInception` (an unknown one raises ``TypeError``)."""
    return BNInception(num_classes=num_classes, **kwargs)
