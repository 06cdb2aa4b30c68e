"""inception_core: fused Triton kernels, drop-in layers and models for the Inception family.

The public names load on first use: ``import inception_core`` imports neither torch nor triton (the
command line's ``--help`` answers at once); the custom ops ``torch.ops.inception_core.*`` are registered
when ``inception_core.ops`` is imported, which any use of the ops, layers or models does."""

import sys
import types

from inception_core._lazy import lazy_exports
from inception_core._version import __version__

_EXPORTS = {
    "models": None,
    "nn": None,
    "ops": None,
    "autotune_stats": "inception_core.autotune_cache",
    "reset_autotune_stats": "inception_core.autotune_cache",
    "backend": "inception_core.backends",
    "get_backend": "inception_core.backends",
    "set_backend": "inception_core.backends",
    "optimize_for_inference": "inception_core.inference",
    "launch_stats": "inception_core.launch",
    "reset_launch_stats": "inception_core.launch",
}

__all__ = ["__version__", "autotune_stats", "backend", "convert", "get_backend", "launch_stats", "models",
           "nn", "ops", "optimize_for_inference", "reset_autotune_stats", "reset_launch_stats", "set_backend"]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


class _Package(types.ModuleType):
    """``convert`` names both a submodule and the function it defines: the package attribute stays the
    function, even after an import of the submodule binds the module there."""

    @property
    def convert(self):
        assigned = vars(self).get("_assigned_convert")
        if assigned is not None:
            return assigned
        from inception_core.convert import convert

        return convert

    @convert.setter
    def convert(self, value) -> None:
        if not isinstance(value, types.ModuleType):  # the submodule, bound by the import system, is not kept
            vars(self)["_assigned_convert"] = value


sys.modules[__name__].__class__ = _Package
