"""The fused ops. Each is a ``torch.library`` custom op (namespace ``inception_core``) that runs on
the backend chosen by ``inception_core.backends``; each has a ``*_ref`` twin in stock PyTorch.

Every op ``X`` is two files: ``X.py`` (reference, launcher, custom op + fake, public function) and
``X_backward.py`` (backward custom op + ``register_autograd``). ``conv_bn_act``, ``conv_bn_act_train``,
``max_pool2d`` and ``avg_pool2d`` are differentiable, except for their ``out=`` slice writes.
"""

from inception_core.ops import conv_bn_act_backward as _conv_bn_act_backward  # noqa: F401  (registers autograd)
from inception_core.ops import conv_bn_act_train_backward as _conv_bn_act_train_backward  # noqa: F401  (same)
from inception_core.ops import pool2d_backward as _pool2d_backward  # noqa: F401  (registers autograd)
from inception_core.ops.conv_bn_act import conv_bn_act, conv_bn_act_ref
from inception_core.ops.conv_bn_act_train import conv_bn_act_train, conv_bn_act_train_ref
from inception_core.ops.pool2d import avg_pool2d, avg_pool2d_ref, max_pool2d, max_pool2d_ref

__all__ = [
    "avg_pool2d",
    "avg_pool2d_ref",
    "conv_bn_act",
    "conv_bn_act_ref",
    "conv_bn_act_train",
    "conv_bn_act_train_ref",
    "max_pool2d",
    "max_pool2d_ref",
]
