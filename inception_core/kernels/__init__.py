"""Triton kernels of inception_core (installed as ``inception_core.kernels``).

``INTERPRETED`` records whether the kernels were decorated under Triton's CPU interpreter
(``TRITON_INTERPRET=1`` at import time); the launchers choose their configs from it.
"""

import os

try:
    from triton import knobs as _knobs

    INTERPRETED: bool = bool(_knobs.runtime.interpret)
except (ImportError, AttributeError):  # older triton without knobs
    INTERPRETED = os.environ.get("TRITON_INTERPRET", "0") == "1"

# Import the kernel modules now, under the same TRITON_INTERPRET setting as INTERPRETED.
from . import batch_norm, conv_bn_act, conv_bwd, pool2d, pool2d_bwd  # noqa: E402,F401
