"""Top-k accuracy, the metrics file (JSON lines) and the progress bar."""

from __future__ import annotations

import json
import os
import sys

import torch

__all__ = ["MetricsLog", "Progress", "topk_correct"]


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> list[int]:
    """Number of rows of ``logits`` (N, C) whose ``target`` is among the k largest, for each k
    (k capped at C)."""
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices
    hits = top == target.unsqueeze(1)
    return [int(hits[:, : min(k, kmax)].any(dim=1).sum()) for k in ks]


class MetricsLog:
    """Appends one JSON object per line to ``path`` (``metrics.jsonl`` in the run's output directory).
    Records carry ``kind``: ``"epoch"`` (once per epoch), ``"step"`` (every --log-every steps) or
    ``"replicas"`` (the replicas' weight digests at the end of a distributed run)."""

    def __init__(self, path: str | os.PathLike, *, append: bool) -> None:
        self.path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        if not append:
            open(self.path, "w").close()

    def write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=False) + "\n")

    @staticmethod
    def read(path: str | os.PathLike) -> list[dict]:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]


class Progress:
    """A progress bar over one epoch's steps on stderr: tqdm when installed, else a plain line every
    ``every`` steps. Disabled (silent) when ``enabled`` is False."""

    def __init__(self, total: int, desc: str, *, enabled: bool = True, initial: int = 0, every: int = 50) -> None:
        self.enabled, self.total, self.done, self.desc, self.every = enabled, total, initial, desc, every
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                pass
            else:
                self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step", file=sys.stderr,
                                dynamic_ncols=True, leave=False)

    def update(self, postfix: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.update(1)
        elif self.done % self.every == 0 or self.done == self.total:
            print(f"{self.desc} [{self.done}/{self.total}] {postfix}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
