"""Timing a callable: CUDA events on a GPU, ``time.perf_counter`` + synchronize elsewhere; median and
inter-quartile range."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


def synchronize(device: torch.device | str | None = None) -> None:
    device = torch.device(device) if device is not None else None
    if (device is None or device.type == "cuda") and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """Seconds per call over the timed rounds."""

    median_s: float
    iqr_s: float     # inter-quartile range (q3 - q1); 0 for fewer than two rounds
    min_s: float
    rounds: int
    times_s: list[float]
    method: str      # "cuda_events" or "perf_counter"

    @classmethod
    def from_times(cls, times: Sequence[float], method: str) -> Timing:
        times = [float(t) for t in times]
        if len(times) >= 2:
            q1, _, q3 = statistics.quantiles(times, n=4, method="inclusive")
            iqr = q3 - q1
        else:
            iqr = 0.0
        return cls(statistics.median(times), iqr, min(times), len(times), times, method)


def time_callable(fn: Callable[[], object], warmup: int = 1, rounds: int = 5, *,
                  device: torch.device | str | None = None) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls (autotuning, compilation, CUDA-graph recording), then
    ``rounds`` timed calls.

    On a CUDA device each round is bracketed by CUDA events on the current stream (no host
    synchronisation between rounds; one at the end); elsewhere by ``time.perf_counter`` with a
    synchronize after the call. ``device`` defaults to CUDA when available.
    """
    if rounds < 1:
        raise ValueError(f"rounds: expected >= 1, got {rounds}")
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(rounds)]
        for start, end in events:
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize(device)
        return Timing.from_times([s.elapsed_time(e) / 1e3 for s, e in events], "cuda_events")
    synchronize(device)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return Timing.from_times(times, "perf_counter")


def time_interleaved(fns: dict[str, Callable[[], object]], warmup: int = 1, rounds: int = 5, *,
                     device: torch.device | str | None = None) -> dict[str, Timing]:
    """Time several callables in interleaved rounds: each round calls every one once (A B C, then B C A,
    ...: the order rotates so no callable always runs first), so a machine whose speed drifts (other
    jobs, clocks) slows all of them alike and the per-round ratios stay meaningful.

    ``warmup`` untimed rounds first. Times per call: CUDA events on a CUDA device (no host
    synchronisation between calls), else ``time.perf_counter`` with a synchronize after each call.
    Returns name -> Timing; ``times_s[i]`` of every callable belong to round i.
    """
    if rounds < 1:
        raise ValueError(f"rounds: expected >= 1, got {rounds}")
    if not fns:
        raise ValueError("fns: expected at least one callable")
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    on_cuda = device.type == "cuda"
    if on_cuda:
        torch.cuda.synchronize(device)
    else:
        synchronize(device)
    times: dict[str, list] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            if on_cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fns[name]()
                end.record()
                times[name].append((start, end))
            else:
                t0 = time.perf_counter()
                fns[name]()
                synchronize(device)
                times[name].append(time.perf_counter() - t0)
    if on_cuda:
        torch.cuda.synchronize(device)
        return {n: Timing.from_times([s.elapsed_time(e) / 1e3 for s, e in times[n]], "cuda_events") for n in names}
    return {n: Timing.from_times(times[n], "perf_counter") for n in names}


def ratio_summary(reference_s: Sequence[float], ours_s: Sequence[float]) -> dict:
    """Per-round speed-up ``reference / ours`` of two interleaved timings (round i against round i):
    median, quartiles, min, max and the number of rounds."""
    ratios = [r / o for r, o in zip(reference_s, ours_s, strict=True) if o > 0]
    if not ratios:
        raise ValueError("ours_s: expected at least one positive time")
    if len(ratios) >= 2:
        q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    else:
        q1 = q3 = ratios[0]
    return {"median": statistics.median(ratios), "q1": q1, "q3": q3, "min": min(ratios), "max": max(ratios),
            "rounds": len(ratios)}
