"""Block bases: branches concatenated without ``torch.cat``, and the scaled residual block.

A block's ``_forward(x, cat)`` yields its branches in output-channel order; each branch's last op takes
``**cat.slot(channels)``, which on the fused path makes it write straight into its channel slice of
the block output (allocated once by ``forward``), and on the torch path is empty (the branches
return tensors and ``forward`` concatenates them as torchvision does).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from inception_core.nn import functional as icf

__all__ = ["Branch", "ChannelSlots", "ConcatBlock", "ReductionBlock", "ScaledResidualBlock", "runs_fused"]


def runs_fused(module: nn.Module, x: Tensor) -> bool:
    """Whether this call of ``module`` on ``x`` takes the fused path: eval mode and no autograd graph to
    record (then blocks write their branches into slices of one preallocated output). The one definition:
    the blocks, the networks' entry (``inception_core.models._entry``) and the FID wrappers ask it."""
    return not module.training and not icf.needs_autograd(x, module)


class ChannelSlots:
    """Hands out consecutive channel slices of one channels_last buffer (or nothing when ``out`` is None).

    The buffer may begin with ``scratch`` reserved channels (see ``ConcatBlock.scratch_channels``): the
    slots start after them, and ``siblings`` writes there the 1x1 convs that feed other convolutions.
    ``dense`` (the torch backend, whose convolutions copy a strided input before reading it): no scratch
    channels; ``siblings`` writes a fresh tensor and copies the direct branch into its slot, so the
    block output and every conv input stay dense.
    """

    def __init__(self, out: Tensor | None, scratch: int = 0, dense: bool = False) -> None:
        self.out = out
        self.scratch = scratch
        self.offset = scratch
        self.dense = dense

    def slot(self, channels: int) -> dict:
        """kwargs (``out``, ``out_offset``) for the op that produces the next ``channels`` channels."""
        if self.out is None:
            return {}
        kwargs = {"out": self.out, "out_offset": self.offset}
        self.offset += channels
        return kwargs

    def siblings(self, x: Tensor, reduce_units, direct=None, *, owner: nn.Module) -> list[Tensor]:
        """Run sibling 1x1 convs that read ``x`` as one GEMM with stacked weights (horizontal fusion).

        ``reduce_units`` feed other convs of their branches; ``direct`` (optional) is a branch of its own
        whose result is the next slot of the block output. With ``direct``, the GEMM writes
        ``[reduce..., direct]`` into the block's reserved scratch channels followed, without a gap, by
        the direct branch's slot (so this must be the block's first slot, and the block's
        ``scratch_channels`` the reductions' channel count). Without ``direct``, the reductions go to a
        buffer of their own (at x's spatial size, which reduction blocks need). Unfused path, or convs
        that cannot be stacked: each conv runs on its own. Returns ``[direct?] + reductions``.
        """
        units = list(reduce_units) + ([direct] if direct is not None else [])
        if self.out is None or not icf.siblings_fusable(units):
            results = [self._run(direct, x, self.slot(_channels(direct)))] if direct is not None else []
            return results + [self._run(u, x, {}) for u in reduce_units]
        reduce_channels = sum(_channels(u) for u in reduce_units)
        if direct is None and self.dense:
            return icf.sibling_conv_bn_act(x, units, owner, out=None)
        if direct is None:
            scratch = torch.empty((x.shape[0], reduce_channels, x.shape[2], x.shape[3]), dtype=self.out.dtype,
                                  device=x.device, memory_format=torch.channels_last)
            return icf.sibling_conv_bn_act(x, units, owner, out=scratch, out_offset=0)
        if self.dense:  # no scratch channels: the GEMM writes a tensor of its own, the direct branch is copied
            slices = icf.sibling_conv_bn_act(x, units, owner, out=None)
            kwargs = self.slot(_channels(direct))
            slot = kwargs["out"].narrow(1, kwargs["out_offset"], _channels(direct)).copy_(slices[-1])
            return [slot, *slices[:-1]]
        if self.offset != self.scratch or reduce_channels != self.scratch:
            raise RuntimeError(f"{type(owner).__name__}: siblings with a direct branch need the block's first slot "
                               f"and scratch_channels == {reduce_channels} (got {self.scratch})")
        slices = icf.sibling_conv_bn_act(x, units, owner, out=self.out, out_offset=0)
        self.offset += _channels(direct)
        return [slices[-1], *slices[:-1]]

    @staticmethod
    def _run(unit, x: Tensor, kwargs: dict) -> Tensor:
        if isinstance(unit, tuple):
            conv, bn = unit[:2]
            return icf.conv_bn_act(x, conv, bn, unit[2] if len(unit) > 2 else "relu", **kwargs)
        return unit(x, **kwargs)


def _channels(unit) -> int:
    return unit[0].out_channels if isinstance(unit, tuple) else unit.conv.out_channels


class ConcatBlock(nn.Module):
    """Base of the Inception blocks: parallel branches whose results are concatenated along channels.

    Subclasses set ``self.out_channels`` (the concatenated channel count), implement
    ``_forward(x, cat)`` yielding each branch's result (its last op called with ``**cat.slot(c)``)
    and, for blocks that change the spatial size, ``out_hw(h, w)``.
    """

    out_channels: int
    # Channels reserved in front of the block output for horizontally fused 1x1 convs that feed other
    # convs (ChannelSlots.siblings); the block output is the view that follows them.
    scratch_channels: int = 0

    def out_hw(self, h: int, w: int) -> tuple[int, int]:
        """Spatial size of the block's output for an (h, w) input."""
        return h, w

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        raise NotImplementedError

    def concat(self, x: Tensor) -> Tensor:
        """Run the branches and return their concatenation (N, out_channels, *out_hw)."""
        if not runs_fused(self, x):
            return torch.cat(list(self._forward(x, ChannelSlots(None))), 1)
        x = x.to(icf.compute_dtype(x))
        oh, ow = self.out_hw(x.shape[2], x.shape[3])
        dense = icf.dense_block_outputs(x)
        scratch = 0 if dense else self.scratch_channels
        buf = torch.empty((x.shape[0], scratch + self.out_channels, oh, ow), dtype=x.dtype, device=x.device,
                          memory_format=torch.channels_last)
        cat = ChannelSlots(buf, scratch, dense)
        for _ in self._forward(x, cat):
            pass
        if cat.offset != scratch + self.out_channels:
            raise RuntimeError(f"{type(self).__name__}: branches filled {cat.offset - scratch} of "
                               f"{self.out_channels} channels")
        return buf.narrow(1, scratch, self.out_channels) if scratch else buf

    def forward(self, x: Tensor) -> Tensor:
        return self.concat(x)


class ReductionBlock(ConcatBlock):
    """A grid-size reduction: every branch ends in a 3x3 stride-2 'valid' conv or pool (35 -> 17, 17 -> 8)."""

    def out_hw(self, h: int, w: int) -> tuple[int, int]:
        return (h - 3) // 2 + 1, (w - 3) // 2 + 1


class ScaledResidualBlock(ConcatBlock):
    """Inception-ResNet block: ``act(x + scale * up(concat(branches)))``.

    Subclasses build the branches and the up-projection ``self.conv2d`` (an ``nn.Conv2d`` with bias,
    no BatchNorm) and set ``self.out_channels`` to the branches' concatenated channel count. The
    scaled residual add and the activation run in the up-projection's epilogue, in every mode.
    ``relu=False`` is the last block of the network (scale 1.0, no activation).
    """

    conv2d: nn.Conv2d

    def __init__(self, scale: float = 1.0, relu: bool = True) -> None:
        super().__init__()
        self.scale = scale
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        branches = self.concat(x)
        act = "relu" if self.relu else "none"
        return icf.conv_bn_act(branches, self.conv2d, None, act, residual=x, res_scale=self.scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale}" + ("" if self.relu else ", relu=False")


class Branch(nn.Sequential):
    """``nn.Sequential`` whose LAST layer can write into a channel slice of a block output.

    Same keys as ``nn.Sequential`` (``branch1.0.conv.weight``...). ``forward(x, out=, out_offset=)`` runs
    the layers in order and hands ``out``/``out_offset`` to the last one (a ``BasicConv2d`` or a pooling
    layer of ``inception_core.nn``); ``tail(y, ...)`` does the same from the second layer on, for a
    branch whose first 1x1 conv ran horizontally fused with its siblings.
    """

    def forward(self, x: Tensor, *, out: Tensor | None = None, out_offset: int = 0) -> Tensor:
        return self._run(list(self), x, out, out_offset)

    def tail(self, y: Tensor, *, out: Tensor | None = None, out_offset: int = 0) -> Tensor:
        """The branch after its first layer, applied to that layer's output ``y``."""
        return self._run(list(self)[1:], y, out, out_offset)

    @staticmethod
    def _run(layers, x: Tensor, out: Tensor | None, out_offset: int) -> Tensor:
        *inner, last = layers
        for layer in inner:
            x = layer(x)
        return last(x, out=out, out_offset=out_offset) if out is not None else last(x)
