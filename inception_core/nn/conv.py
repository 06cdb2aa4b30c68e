"""BasicConv2d: Conv2d + BatchNorm2d + ReLU with torchvision's parameter names (``conv.*``, ``bn.*``)."""

from __future__ import annotations

from torch import Tensor, nn

from inception_core.nn import functional as icf

__all__ = ["BasicConv2d"]


class BasicConv2d(nn.Module):
    """Convolution, BatchNorm and ReLU as one layer.

    Holds exactly the parameters and buffers of torchvision's ``BasicConv2d`` (``conv.weight``,
    ``conv.bias`` when ``bias=True``, ``bn.{weight,bias,running_mean,running_var,num_batches_tracked}``),
    so its checkpoints, timm's ``ConvNormAct`` ones and Cadene's/facenet's load unchanged.

    Eval mode without autograd: BatchNorm is folded into the convolution's per-channel scale and shift
    (cached, rebuilt whenever a parameter or buffer changes) and the whole layer is one fused kernel,
    which can write its result into a channel slice of a block's output. Training mode: the fused training
    op (batch statistics, running statistics updated as BatchNorm2d does; on the torch backend without
    autocast, torch's own conv and BatchNorm); eval with gradients: the fused op, differentiable.

    Args:
        in_channels, out_channels: channel counts.
        eps: BatchNorm epsilon (1e-3 in the TF-derived networks, 1e-5 in BN-Inception).
        bias: give the convolution a bias (BN-Inception's Caffe-derived convolutions have one).
        act: "relu" (default) or "none".
        **conv_kwargs: kernel_size, stride, padding of ``nn.Conv2d``; dilation, groups and non-zero
            padding modes are not supported (no Inception network uses them).
    """

    def __init__(self, in_channels: int, out_channels: int, eps: float = 1e-3, bias: bool = False,
                 act: str = "relu", momentum: float | None = 0.1, **conv_kwargs) -> None:
        super().__init__()
        for name, default in (("dilation", 1), ("groups", 1), ("padding_mode", "zeros")):
            value = conv_kwargs.get(name, default)
            if value not in (default, (default, default)):
                raise ValueError(f"{name}: BasicConv2d supports only {name}={default!r}, got {value!r}")
        if isinstance(conv_kwargs.get("padding"), str):
            raise ValueError(f"padding: expected an int or a pair, got {conv_kwargs['padding']!r}")
        if act not in ("relu", "none"):
            raise ValueError(f"act: expected 'relu' or 'none', got {act!r}")
        self.conv = nn.Conv2d(in_channels, out_channels, bias=bias, **conv_kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=eps, momentum=momentum)
        self.act = act

    @property
    def out_channels(self) -> int:
        return self.conv.out_channels

    def forward(self, x: Tensor, *, out: Tensor | None = None, out_offset: int = 0) -> Tensor:
        """x: (N, C_in, H, W) -> (N, C_out, OH, OW); with ``out`` the result goes into
        ``out[:, out_offset:out_offset + C_out]`` and that slice is returned."""
        modules = self._modules  # what self.conv / self.bn return, without Module.__getattr__ (~3 us a layer)
        return icf.conv_bn_act(x, modules["conv"], modules["bn"], self.act, out=out, out_offset=out_offset)

    def extra_repr(self) -> str:
        return "" if self.act == "relu" else f"act={self.act!r}"
