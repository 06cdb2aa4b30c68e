"""Tuned config tables: the config ``inception-core tune`` measured fastest per problem, one JSON file
per device model, read by the launch path (``inception_core/launch.py``) before its heuristic.

File: ``<dir>/<device slug>.json``, the slug being the device name lower-cased with every run of other
characters than letters and digits turned into ``_`` ("NVIDIA H200" -> ``nvidia_h200.json``). Folders
searched, first hit wins: ``$INCEPTION_CORE_TUNED_DIR`` (if set), then ``inception_core/tuned/`` (the
shipped tables). Format (``FORMAT`` = 1)::

    {"format": 1, "device": "NVIDIA H200",
     "versions": {"torch": "2.11.0", "triton": "3.6.0", "cuda": "12.8", "inception_core": "0.1.0"},
     "created_utc": "2026-12-01T22:00:00Z",
     "entries": [
       {"kernel": "conv_bn_act_fwd",                   # a name of inception_core.launch.kernel_names()
        "shape": {"N": 256, "C": 192, ...},            # the kernel's autotune key values
        "dtype": "torch.bfloat16",                     # dtype of its input (x_ptr / dy_ptr)
        "flags": {"ACT_RELU": true, ...},              # the launcher's other constexprs
        "config": {"kwargs": {"BLOCK_M": 128, ...}, "num_warps": 4, "num_stages": 4},
        "tuned_ms": 0.081, "heuristic_ms": 0.093,      # median times measured by `tune`
        "configs_timed": 6}]}

An entry whose config is not one the kernel ships (any more) is ignored with a one-time warning: a
table can only choose among tested configs. The versions are recorded, not enforced (a config tuned
under one Triton stays correct under another; only its rank may change).

The device name is ``torch.cuda.get_device_name`` on CUDA, ``"cpu"`` otherwise;
``$INCEPTION_CORE_DEVICE_NAME`` overrides it (a named fake device, for tests of the whole path on a CPU).
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["DEVICE_NAME_ENV", "FORMAT", "TUNED_DIR_ENV", "device_name", "device_slug", "load_table",
           "table_config", "table_path", "write_table"]

FORMAT = 1
TUNED_DIR_ENV = "INCEPTION_CORE_TUNED_DIR"
DEVICE_NAME_ENV = "INCEPTION_CORE_DEVICE_NAME"
SHIPPED_DIR = Path(__file__).resolve().parent / "tuned"

_TABLES: dict[tuple[str, str], dict | None] = {}
_WARNED: set[str] = set()


def device_name(device: torch.device) -> str:
    """The device model a table is keyed by (see the module docstring)."""
    override = os.environ.get(DEVICE_NAME_ENV)
    if override:
        return override
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


def device_slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise ValueError(f"device name {name!r} has no letters or digits")
    return slug


def _dirs() -> list[Path]:
    extra = os.environ.get(TUNED_DIR_ENV)
    return ([Path(extra).expanduser()] if extra else []) + [SHIPPED_DIR]


def table_path(name: str) -> Path | None:
    """The table file used for device ``name``, or None."""
    for d in _dirs():
        p = d / f"{device_slug(name)}.json"
        if p.is_file():
            return p
    return None


def _warn_once(tag: str, message: str) -> None:
    if tag not in _WARNED:
        _WARNED.add(tag)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def _entry_key(kernel: str, shape: dict, dtype: str, flags: dict) -> tuple:
    return kernel, json.dumps(shape, sort_keys=True), dtype, json.dumps(flags, sort_keys=True, default=str)


def load_table(name: str) -> dict | None:
    """The parsed table of device ``name`` (``{"meta": {...}, "index": {key: config dict}}``) or None.

    A table that cannot be read or parsed warns once and counts as absent (the heuristic then runs).
    """
    path = table_path(name)
    cache_key = (name, str(path))
    if cache_key in _TABLES:
        return _TABLES[cache_key]
    table = None
    if path is not None:
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError(f"format is not {FORMAT}")
            index = {_entry_key(e["kernel"], e["shape"], e["dtype"], e["flags"]): e["config"]
                     for e in data["entries"]}
            table = {"meta": {k: v for k, v in data.items() if k != "entries"}, "index": index, "path": str(path)}
        except (OSError, ValueError, KeyError, TypeError) as e:
            _warn_once(str(path), f"tuned table {path} is unreadable ({e}); using the shape heuristic")
    _TABLES[cache_key] = table
    return table


def clear_cache() -> None:
    """Forget the tables read so far (the next lookup reads the files again)."""
    _TABLES.clear()


def config_dict(config) -> dict[str, Any]:
    return {"kwargs": dict(config.kwargs), "num_warps": config.num_warps, "num_stages": config.num_stages}


def table_config(name: str, kernel: str, shape: dict, dtype: str, flags: dict, shipped: Sequence[Any]):
    """The shipped config that device ``name``'s table names for this problem, or None."""
    table = load_table(name)
    if table is None:
        return None
    wanted = table["index"].get(_entry_key(kernel, shape, dtype, flags))
    if wanted is None:
        return None
    for c in shipped:
        if config_dict(c) == wanted:
            return c
    _warn_once(f"{table['path']}:{kernel}:{wanted}",
               f"tuned table {table['path']}: {kernel} config {wanted} is not shipped; using the shape heuristic")
    return None


def write_table(path: Path, name: str, entries: Iterable[dict[str, Any]]) -> Path:
    """Write a table for device ``name`` at ``path`` (a file, or a folder to put ``<slug>.json`` in),
    atomically. ``entries`` as in the module docstring."""
    import triton

    from inception_core._version import __version__

    path = Path(path)
    if path.is_dir() or not path.suffix:
        path = path / f"{device_slug(name)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "device": name,
            "versions": {"torch": torch.__version__, "triton": triton.__version__, "cuda": torch.version.cuda,
                         "inception_core": __version__},
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "entries": sorted(entries, key=lambda e: _entry_key(e["kernel"], e["shape"], e["dtype"], e["flags"]))}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    clear_cache()
    return path
