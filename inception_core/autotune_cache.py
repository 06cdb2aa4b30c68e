"""Persistent autotune cache: the config ``triton.autotune`` picked for a problem, kept on disk so that a
second process launches it without tuning again.

Why not ``triton.autotune(cache_results=True)``: its key (Triton's version and source hash, the target's
architecture, the kernel source, the autotune key values and argument dtypes) names neither the device
model (an H100 PCIe and an H200 share sm_90) nor torch's or inception_core's versions, nor the constexpr
flags outside the key; a corrupt entry raises in ``json.load``; the entries live in Triton's compile cache;
and its tuning cost is visible only through a process-wide listener (``triton.knobs.autotuning.listener``).

One JSON file per entry: ``<cache dir>/<kernel>/<sha256 of the key>.json``, holding the key itself
(checked on load), the chosen config and the seconds spent tuning. Writes go to a temporary file in the
same folder, then ``os.replace``: a reader sees the old entry or the new one, never half of one.

Cache dir: ``$INCEPTION_CORE_CACHE_DIR/autotune`` if that variable is set, else
``$XDG_CACHE_HOME/inception_core/autotune`` (``~/.cache/inception_core/autotune``).
``INCEPTION_CORE_AUTOTUNE_CACHE=0`` turns the disk layer off (tuning results then live per process).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "AutotuneStats",
    "autotune_stats",
    "cache_dir",
    "environment_key",
    "launch_autotuned",
    "reset_autotune_stats",
    "tuning_key",
]

CACHE_DIR_ENV = "INCEPTION_CORE_CACHE_DIR"
ENABLE_ENV = "INCEPTION_CORE_AUTOTUNE_CACHE"
_FORMAT = 1


@dataclasses.dataclass
class AutotuneStats:
    """Counts for one kernel since the process started (or the last reset).

    ``tuned``: problems tuned here (each cost ``tune_s`` seconds in total, compilation of every config
    included); ``disk_hits``: problems whose config came from the disk cache; ``memory_hits``: launches
    of a problem already resolved in this process. The launch path (``inception_core/launch.py``) adds
    ``launches``, ``variants`` (distinct compile units first launched here), ``compile_s`` (seconds of
    those first launches) and where the other configs came from (``table_hits``, ``heuristic_hits``,
    ``fixed_hits``, ``explicit_hits``).
    """

    tuned: int = 0
    tune_s: float = 0.0
    disk_hits: int = 0
    memory_hits: int = 0
    launches: int = 0
    variants: int = 0
    compile_s: float = 0.0
    table_hits: int = 0
    heuristic_hits: int = 0
    fixed_hits: int = 0
    explicit_hits: int = 0


_STATS: dict[str, AutotuneStats] = {}
# Launch-time lookup: (kernel, autotuner id, device, shape, dtypes, flags) -> triton.Config. Cheap to build
# on every launch, unlike the JSON key and its digest, which only a miss computes.
_MEMORY: dict[tuple, Any] = {}
_ENVIRONMENTS: dict[str, dict[str, Any]] = {}
_SOURCES: dict[int, str] = {}
_WARNED: set[str] = set()


def cache_dir() -> Path:
    """Folder of the autotune entries (see the module docstring for the environment variables)."""
    root = os.environ.get(CACHE_DIR_ENV)
    if root:
        return Path(root).expanduser() / "autotune"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "inception_core" / "autotune"


def _disk_enabled() -> bool:
    return os.environ.get(ENABLE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def autotune_stats() -> dict[str, Any]:
    """Tuning cost and cache use since the process started: totals, per kernel, and the cache dir.

    Returns the ``AutotuneStats`` fields summed over kernels (``tuned``, ``tune_s``, ``disk_hits``,
    ``memory_hits``, ``launches``, ``variants``, ``compile_s``, ``table_hits``, ``heuristic_hits``,
    ``fixed_hits``, ``explicit_hits``), ``"per_kernel": {kernel: {...same fields}}``, ``"cache_dir": str``
    and ``"disk_cache": bool``.
    """
    per_kernel = {k: dataclasses.asdict(s) for k, s in sorted(_STATS.items())}
    totals = {f.name: sum(s[f.name] for s in per_kernel.values()) for f in dataclasses.fields(AutotuneStats)}
    return {**totals, "per_kernel": per_kernel, "cache_dir": str(cache_dir()), "disk_cache": _disk_enabled()}


def reset_autotune_stats(*, forget: bool = False) -> None:
    """Zero the counters; ``forget`` also drops the configs resolved in this process (not the disk)."""
    _STATS.clear()
    if forget:
        _MEMORY.clear()


def environment_key(device: torch.device) -> dict[str, Any]:
    """What besides the problem decides the best config: the device model and the software versions."""
    cached = _ENVIRONMENTS.get(str(device))
    if cached is not None:
        return dict(cached)
    import triton

    from inception_core import __version__

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        capability = ".".join(map(str, torch.cuda.get_device_capability(device)))
    else:
        name, capability = f"{device.type}:{platform.machine()}:{platform.processor()}", None
    env = {"device": name, "capability": capability, "torch": torch.__version__, "cuda": torch.version.cuda,
           "triton": triton.__version__, "inception_core": __version__}
    _ENVIRONMENTS[str(device)] = env
    return dict(env)


def _source_digest(autotuner) -> str:
    """sha256 (16 hex digits) of the kernel's source, through autotune / heuristics wrappers."""
    if id(autotuner) in _SOURCES:
        return _SOURCES[id(autotuner)]
    fn = autotuner.fn
    while getattr(fn, "src", None) is None and hasattr(fn, "fn"):
        fn = fn.fn
    src = getattr(fn, "src", None) or inspect.getsource(fn)
    _SOURCES[id(autotuner)] = hashlib.sha256(src.encode()).hexdigest()[:16]
    return _SOURCES[id(autotuner)]


def _config_dict(config) -> dict[str, Any]:
    return {"kwargs": dict(config.kwargs), "num_warps": config.num_warps, "num_stages": config.num_stages,
            "num_ctas": getattr(config, "num_ctas", 1), "maxnreg": getattr(config, "maxnreg", None)}


def _json_value(v: Any) -> Any:
    return v if isinstance(v, (bool, int, float, str)) or v is None else str(v)


def tuning_key(kernel: str, autotuner, args: Sequence[Any], meta: dict[str, Any], device: torch.device
               ) -> dict[str, Any]:
    """The cache key of one launch: kernel name and source, the shipped config list, the autotune key
    values (the problem's shape), the dtype of every tensor argument, the compile-time flags, and
    ``environment_key(device)``. Plain JSON types only."""
    named = {**dict(zip(autotuner.arg_names, args, strict=False)), **meta}  # positional args, then constexprs
    missing = [k for k in autotuner.keys if k not in named]
    if missing:
        raise ValueError(f"{kernel}: autotune key arguments {missing} were not passed")
    return {
        "kernel": kernel,
        "source": _source_digest(autotuner),
        "configs": hashlib.sha256("|".join(str(c) for c in autotuner.configs).encode()).hexdigest()[:16],
        "shape": {k: _json_value(named[k]) for k in autotuner.keys},
        "dtypes": {k: str(v.dtype) for k, v in named.items() if isinstance(v, torch.Tensor)},
        "flags": {k: _json_value(v) for k, v in sorted(meta.items()) if k not in autotuner.keys},
        **environment_key(device),
    }


def _digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _entry_path(kernel: str, digest: str) -> Path:
    return cache_dir() / kernel / f"{digest}.json"


def _warn_once(tag: str, message: str) -> None:
    if tag not in _WARNED:
        _WARNED.add(tag)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _load(kernel: str, digest: str, key: dict[str, Any], configs: Sequence[Any]):
    """The shipped config recorded for ``key``, or None (absent, unreadable, or no longer shipped)."""
    path = _entry_path(kernel, digest)
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        _warn_once(str(path), f"autotune cache: cannot read {path} ({e}); tuning again")
        return None
    try:
        entry = json.loads(raw.decode("utf-8"))  # UnicodeDecodeError is a ValueError: a corrupt entry too
        if entry.get("format") != _FORMAT or entry["key"] != key:
            raise ValueError("entry does not hold this key")
        wanted = entry["config"]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        _warn_once(str(path), f"autotune cache: ignoring corrupt entry {path} ({e}); tuning again and replacing it")
        return None
    return next((c for c in configs if _config_dict(c) == wanted), None)


def _store(kernel: str, digest: str, key: dict[str, Any], config, tune_s: float) -> None:
    """Write the entry atomically (temporary file in the same folder, then os.replace)."""
    path = _entry_path(kernel, digest)
    entry = {"format": _FORMAT, "key": key, "config": _config_dict(config), "tune_s": round(tune_s, 4),
             "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{digest[:16]}.",
                                         suffix=".tmp", delete=False) as f:
            tmp = f.name
            json.dump(entry, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        _warn_once(f"write:{path.parent}", f"autotune cache: cannot write {path} ({e}); results stay in memory")


def launch_autotuned(kernel: str, autotuner, grid: Callable[[dict], tuple], args: Sequence[Any],
                     meta: dict[str, Any], device: torch.device):
    """Launch ``autotuner``'s kernel (a ``triton.autotune`` wrapper) with the config cached for this
    problem, tuning once on a miss (then the autotuner's own last launch is the real one).

    Args:
        kernel: cache namespace (a folder name), e.g. "conv_bn_act_fwd".
        autotuner: the ``triton.autotune``-decorated kernel.
        grid: grid function of the launch meta-parameters.
        args, meta: positional run-time arguments and keyword constexprs, as for ``autotuner[grid]``.
        device: the tensors' device (names the cache entry).

    Returns:
        The ``triton.Config`` launched.
    """
    if len(autotuner.configs) == 1:  # nothing to choose (the interpreter's single config)
        autotuner[grid](*args, **meta)
        return autotuner.configs[0]
    stats = _STATS.setdefault(kernel, AutotuneStats())
    named = dict(zip(autotuner.arg_names, args, strict=False))
    fast = (kernel, id(autotuner), str(device), tuple(named.get(k, meta.get(k)) for k in autotuner.keys),
            tuple(str(v.dtype) for v in args if isinstance(v, torch.Tensor)), tuple(sorted(meta.items())))
    config = _MEMORY.get(fast)
    if config is not None:
        stats.memory_hits += 1
        autotuner.fn[grid](*args, **meta, **config.all_kwargs())
        return config
    key = tuning_key(kernel, autotuner, args, meta, device)
    digest = _digest(key)
    if _disk_enabled() and (config := _load(kernel, digest, key, autotuner.configs)) is not None:
        stats.disk_hits += 1
    else:
        cuda = device.type == "cuda"
        if cuda and torch.cuda.is_current_stream_capturing():
            raise RuntimeError(f"{kernel}: autotuning would run during CUDA graph capture for {key['shape']}; "
                               "run the forward once before capturing (inception_core.optimize_for_inference "
                               "does)")
        if cuda:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        autotuner[grid](*args, **meta)
        if cuda:
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - start
        config = autotuner.best_config
        stats.tuned += 1
        stats.tune_s += elapsed
        _MEMORY[fast] = config
        if _disk_enabled():
            _store(kernel, digest, key, config, elapsed)
        return config
    _MEMORY[fast] = config
    autotuner.fn[grid](*args, **meta, **config.all_kwargs())
    return config
