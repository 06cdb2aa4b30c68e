"""The fused ops. Each is a ``torch.library`` custom op (namespace ``inception_core``) that runs on
the backend chosen by ``inception_core.backends``; each has a ``*_ref`` twin in stock PyTorch."""

from inception_core.ops.conv_bn_act import conv_bn_act, conv_bn_act_ref
from inception_core.ops.pool2d import avg_pool2d, avg_pool2d_ref, max_pool2d, max_pool2d_ref

__all__ = ["avg_pool2d", "avg_pool2d_ref", "conv_bn_act", "conv_bn_act_ref", "max_pool2d", "max_pool2d_ref"]
