"""DistributedDataParallel under torchrun: 2 CPU processes (gloo) train a few steps and end with
bit-identical parameters; only rank 0 writes. SyncBatchNorm conversion works on every network."""

import os
import subprocess
import sys

import pytest
import torch
from torch import nn

import inception_core
from inception_core.models import create_model
from inception_core.train import TrainConfig
from inception_core.train.config import model_kwargs
from inception_core.train.distributed import replica_digest
from inception_core.train.metrics import MetricsLog
from inception_core.train.recipe import build_model


def test_torchrun_two_processes_identical_replicas(tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "inception_core.train", "--model", "googlenet", "--image-size", "32", "--batch-size", "2",
           "--num-classes", "3", "--train-samples", "12", "--val-samples", "4", "--epochs", "2", "--max-steps", "4",
           "--output", str(out), "--device", "cpu", "--backend", "torch", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    assert sorted(os.listdir(out)) == ["last.pt", "metrics.jsonl"]  # rank 0 alone writes
    records = MetricsLog.read(out / "metrics.jsonl")
    epochs = [r for r in records if r["kind"] == "epoch"]
    # 12 images / 2 ranks / batch 2 = 3 steps per epoch; each step sees 2 x 2 images
    assert [(r["epoch"], r["step"], r["world_size"], r["train_images"]) for r in epochs] == [(0, 3, 2, 12),
                                                                                               (1, 4, 2, 4)]
    (replicas,) = [r for r in records if r["kind"] == "replicas"]
    assert len(replicas["param_sha256"]) == 2
    assert replicas["param_sha256"][0] == replicas["param_sha256"][1] and replicas["params_identical"]
    # each rank normalised its own batches: the BN running statistics differ (no --sync-bn on CPU)
    assert replicas["buffer_sha256"][0] != replicas["buffer_sha256"][1]
    state = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert state["global_step"] == 4 and len(state["rng"]) == 2
    model = create_model("googlenet", **model_kwargs(TrainConfig(model="googlenet"), 3))
    model.load_state_dict(state["model"])
    assert replica_digest(dict(model.named_parameters())) == replicas["param_sha256"][0]


def test_replica_digest_sees_one_bit():
    a = {"w": torch.randn(5), "n": torch.tensor(3)}
    b = {"w": a["w"].clone(), "n": torch.tensor(3)}
    assert replica_digest(a) == replica_digest(b)
    b["w"].view(torch.int32)[2] ^= 1  # flip the lowest mantissa bit of one value
    assert replica_digest(a) != replica_digest(b)


# the three ways the networks hold BatchNorm: BasicConv2d's `bn`, BN-Inception's flat `<conv>_bn`
# attributes, and Inception-ResNet-v1's BatchNorm1d `last_bn` (with residual blocks in between)
@pytest.mark.parametrize("model", ["googlenet", "bn_inception", "inception_resnet_v1"])
def test_sync_bn_conversion(model):
    """Every BatchNorm becomes a SyncBatchNorm that the training forward really calls, and eval outputs
    are unchanged (single process: SyncBatchNorm normalises locally)."""
    size = {"googlenet": 32, "bn_inception": 223}.get(model, 75)
    cfg = TrainConfig(model=model, sync_bn=True, aux_weight=0.0, image_size=size)
    torch.manual_seed(0)
    plain = create_model(model, **model_kwargs(cfg, 3)).eval()
    torch.manual_seed(0)
    synced = build_model(cfg, 3, torch.device("cpu"), distributed=False)
    kinds = {type(m) for m in synced.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
    assert kinds == {nn.SyncBatchNorm}
    calls = []
    hooks = [m.register_forward_hook(lambda *_: calls.append(1)) for m in synced.modules()
             if isinstance(m, nn.SyncBatchNorm)]
    x = torch.randn(2, 3, size, size)
    with inception_core.backend("torch"):  # the SyncBatchNorm calls are the check, not the conv kernels
        synced.train()(x)
    assert len(calls) == len(hooks)
    synced.load_state_dict(plain.state_dict())
    with torch.no_grad(), inception_core.backend("torch"):
        torch.testing.assert_close(synced.eval()(x), plain(x), rtol=1e-5, atol=1e-5)


def test_sync_bn_on_cpu_processes_is_refused():
    cfg = TrainConfig(model="googlenet", sync_bn=True)
    with pytest.raises(ValueError, match="--sync-bn: torch's SyncBatchNorm synchronises CUDA tensors only"):
        build_model(cfg, 3, torch.device("cpu"), distributed=True)
