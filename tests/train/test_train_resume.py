"""Resuming is exact: n steps straight equal k steps, stop, resume, n - k steps, bit for bit (torch
backend, CPU); a checkpoint that cannot be resumed from raises CheckpointError naming why."""

import os
import stat

import pytest
import torch

from inception_core.train import CheckpointError, load_checkpoint, save_checkpoint, train
from inception_core.train.checkpoint import check_resume_target, remove_stale_temporaries
from inception_core.train.metrics import MetricsLog


def _assert_same_tensors(a, b, where=""):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same_tensors(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_resume_is_bitwise_identical(tmp_path, tiny):
    # 3 steps per epoch: the stop at step 2 is mid-epoch, the 5 steps cross an epoch end (LR step);
    # googlenet's dropout and aux heads, EMA and gradient clipping all carry state across the stop
    common = dict(epochs=2, ema=True, ema_decay=0.9, clip_grad=1.0, lr=0.01)
    straight = tiny(output=str(tmp_path / "straight"), max_steps=5, **common)
    train(straight)
    split = tiny(output=str(tmp_path / "split"), max_steps=2, **common)
    train(split)
    first = load_checkpoint(os.path.join(split.output, "last.pt"))
    assert (first["epoch"], first["step_in_epoch"], first["global_step"]) == (0, 2, 2)
    resumed = tiny(output=split.output, max_steps=5, resume=os.path.join(split.output, "last.pt"), **common)
    train(resumed)

    a = load_checkpoint(os.path.join(straight.output, "last.pt"))
    b = load_checkpoint(os.path.join(split.output, "last.pt"))
    assert (a["epoch"], a["step_in_epoch"], a["global_step"]) == (b["epoch"], b["step_in_epoch"], 5)
    for key in ("model", "optimizer", "scheduler", "scaler", "ema", "rng"):
        _assert_same_tensors(a[key], b[key], key)
    assert a["scheduler"]["last_epoch"] == 1  # one epoch completed
    # the first model really moved: equality above is not trivially true
    assert any(not torch.equal(first["model"][k], a["model"][k]) for k in a["model"] if k.endswith("weight"))
    epochs = [r for r in MetricsLog.read(os.path.join(split.output, "metrics.jsonl")) if r["kind"] == "epoch"]
    assert [(r["epoch"], r["complete"], r["step"]) for r in epochs] == [(0, False, 2), (0, True, 3), (1, False, 5)]
    assert all(0 <= r["ema_val_top1"] <= 100 for r in epochs)  # the EMA weights are evaluated too


def test_checkpoint_of_another_network(tmp_path, tiny, finished_run):
    _, path = finished_run
    with pytest.raises(CheckpointError, match=r"network 'googlenet', but --model is 'inception_v4'"):
        train(tiny("inception_v4", output=str(tmp_path / "other"), resume=path))


def test_mismatched_config_is_named(tmp_path, tiny, finished_run):
    _, path = finished_run
    with pytest.raises(CheckpointError, match=r"batch_size: checkpoint 2, now 3.*lr: checkpoint 0.045, now 0.01"):
        train(tiny(output=str(tmp_path / "other"), resume=path, batch_size=3, lr=0.01))


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_checkpoint(tmp_path, tiny, finished_run, damage):
    _, path = finished_run
    bad = tmp_path / "bad.pt"
    data = open(path, "rb").read()
    bad.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        train(tiny(output=str(tmp_path / "other"), resume=str(bad)))


def test_bare_state_dict_is_not_a_training_checkpoint(tmp_path, tiny, finished_run):
    _, path = finished_run
    bare = tmp_path / "weights.pt"
    torch.save(load_checkpoint(path)["model"], bare)
    with pytest.raises(CheckpointError, match="not an inception_core training checkpoint"):
        train(tiny(output=str(tmp_path / "other"), resume=str(bare)))


def test_missing_checkpoint(tmp_path, tiny):
    with pytest.raises(CheckpointError, match="no such file"):
        train(tiny(resume=str(tmp_path / "nowhere.pt")))


def test_no_silent_fresh_start_over_a_checkpoint(tiny, finished_run):
    cfg, _ = finished_run
    with pytest.raises(CheckpointError, match="already holds a checkpoint"):
        train(tiny(output=cfg.output, max_steps=1))


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    save_checkpoint({"a": torch.arange(3)}, path)

    def failing_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"a": torch.zeros(3)}, path)
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.arange(3))  # the old file, whole
    assert os.listdir(tmp_path) == ["ck.pt"]  # no temporary left behind


def _other_run(folder, run_id="another-run"):
    """A folder holding a checkpoint (of run ``run_id``) and metrics of some other run."""
    folder.mkdir()
    save_checkpoint({"format": "inception_core.train/1", "run_id": run_id}, folder / "last.pt")
    (folder / "metrics.jsonl").write_text('{"kind": "epoch", "epoch": 0}\n')
    return folder


def test_resume_never_overwrites_another_run(tmp_path, tiny, finished_run):
    _, path = finished_run
    other = _other_run(tmp_path / "B")
    before = ((other / "last.pt").read_bytes(), (other / "metrics.jsonl").read_text())
    with pytest.raises(CheckpointError, match="another run") as info:
        train(tiny(output=str(other), resume=path))
    assert path in str(info.value) and str(other) in str(info.value)  # both paths named
    assert ((other / "last.pt").read_bytes(), (other / "metrics.jsonl").read_text()) == before


def test_resume_never_appends_to_another_runs_metrics(tmp_path, tiny, finished_run):
    _, path = finished_run
    other = tmp_path / "B"
    other.mkdir()
    (other / "metrics.jsonl").write_text('{"kind": "epoch", "epoch": 0}\n')
    with pytest.raises(CheckpointError, match="metrics of another run"):
        train(tiny(output=str(other), resume=path))


def test_resume_target_rules(tmp_path, finished_run):
    """Allowed: the checkpoint's own folder, an empty or missing folder, a folder holding the same run."""
    cfg, path = finished_run
    state = load_checkpoint(path)
    assert isinstance(state["run_id"], str) and state["run_id"]
    check_resume_target(path, cfg.output, "last.pt", "metrics.jsonl", state)
    check_resume_target(path, str(tmp_path / "new"), "last.pt", "metrics.jsonl", state)
    (tmp_path / "empty").mkdir()
    check_resume_target(path, str(tmp_path / "empty"), "last.pt", "metrics.jsonl", state)
    same = _other_run(tmp_path / "copy", run_id=state["run_id"])
    check_resume_target(path, str(same), "last.pt", "metrics.jsonl", state)
    legacy = _other_run(tmp_path / "legacy", run_id=None)  # written before runs had an identity
    with pytest.raises(CheckpointError, match="another run"):
        check_resume_target(path, str(legacy), "last.pt", "metrics.jsonl", state)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "last.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="cannot be read"):
        check_resume_target(path, str(tmp_path / "junk"), "last.pt", "metrics.jsonl", state)


def test_empty_checkpoint_file(tmp_path, tiny):
    empty = tmp_path / "last.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty \(0 bytes\)"):
        train(tiny(output=str(tmp_path / "other"), resume=str(empty)))


def test_checkpoint_mode_follows_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        save_checkpoint({"a": torch.arange(3)}, tmp_path / "ck.pt")
        (tmp_path / "plain").write_text("")
    finally:
        os.umask(old)
    mode = stat.S_IMODE(os.stat(tmp_path / "ck.pt").st_mode)
    assert mode == stat.S_IMODE(os.stat(tmp_path / "plain").st_mode) == 0o664


def test_stale_temporaries_are_removed_when_a_run_starts(tmp_path, tiny):
    # what a process killed in the middle of save_checkpoint leaves behind (mkstemp's name)
    out = tmp_path / "run"
    out.mkdir()
    stale = out / ".tmp-last.pt-k1ll3d"
    stale.write_bytes(b"half a checkpoint")
    (out / ".tmp-other.pt-x").write_bytes(b"")  # another file's temporary: not ours to remove
    assert remove_stale_temporaries(out / "last.pt") == [str(stale)]
    stale.write_bytes(b"half a checkpoint")
    with pytest.raises(ValueError, match="--batch-size"):  # fails after the start-up, before any step
        train(tiny(output=str(out), batch_size=7))
    assert sorted(os.listdir(out)) == [".tmp-other.pt-x"]
