"""inception_core: fused Triton kernels, drop-in layers and models for the Inception family."""

from inception_core import models, nn, ops
from inception_core._version import __version__
from inception_core.autotune_cache import autotune_stats, reset_autotune_stats
from inception_core.backends import backend, get_backend, set_backend
from inception_core.convert import convert
from inception_core.inference import optimize_for_inference
from inception_core.launch import launch_stats, reset_launch_stats

__all__ = ["__version__", "autotune_stats", "backend", "convert", "get_backend", "launch_stats", "models",
           "nn", "ops", "optimize_for_inference", "reset_autotune_stats", "reset_launch_stats", "set_backend"]
