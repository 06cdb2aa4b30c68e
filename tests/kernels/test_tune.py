"""``inception-core tune`` on the CPU (interpreter, named fake device): plan, time, write the table, load
it, launch from it; the table format; and ``inception_core.plan``'s records."""

import json

import pytest
import torch

import inception_core as ic
from inception_core import cli, tuned_tables
from inception_core.plan import distinct_problems, plan_launches

FAKE = "Fake GPU 9000"


@pytest.fixture
def fresh(fresh, monkeypatch):
    """tests/kernels/conftest.py's, with the tuned tables read from an empty ``none`` folder (the tests
    write theirs to ``tables``) and TRITON_INTERPRET=1 in the environment."""
    monkeypatch.setenv(tuned_tables.TUNED_DIR_ENV, str(fresh / "none"))
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    return fresh


def test_plan_of_a_training_step_has_the_backward_kernels(fresh):
    records = plan_launches(["inception_resnet_v2"], dtype="fp32", batch_size=2, image_size=75, mode="train")
    kernels = {r.kernel for r in records}
    assert {"conv_bn_act_fwd", "conv_bwd_dx", "conv_bwd_dw", "bn_stats_finalize", "affine_act",
            "bn_bwd_apply", "pool2d_fwd", "pool2d_bwd"} <= kernels
    assert all(len(r.grid) >= 1 for r in records)
    with pytest.raises(ValueError, match="mode"):
        plan_launches(["inception_v3"], mode="eval")


def _tune(out, *extra):
    return cli.main(["tune", "--models", "googlenet", "--dtype", "fp32", "--batch-size", "4", "--image-size", "16",
                     "--device", "cpu", "--device-name", FAKE, "--max-problems", "3", "--max-configs", "2",
                     "--repeats", "1", "--output", str(out), *extra])


def test_tune_writes_a_table_that_the_launch_path_uses(fresh, monkeypatch, capsys):
    # GoogLeNet at 16x16, batch 4: its first three problems (7x7 stem conv, max pool, 1x1 conv), at most
    # two configs each, interpreted and timed on the wall clock
    out = fresh / "tables"
    assert _tune(out) == 0
    printed = capsys.readouterr().out
    assert "conv_bn_act_fwd" in printed and "tuned vs heuristic" in printed
    path = out / "fake_gpu_9000.json"
    table = json.loads(path.read_text())
    assert table["format"] == tuned_tables.FORMAT and table["device"] == FAKE
    assert set(table["versions"]) == {"torch", "triton", "cuda", "inception_core"}
    assert [e["kernel"] for e in table["entries"]].count("conv_bn_act_fwd") == 2
    assert [e["kernel"] for e in table["entries"]].count("pool2d_fwd") == 1
    for e in table["entries"]:
        assert set(e) == {"kernel", "shape", "dtype", "flags", "config", "tuned_ms", "heuristic_ms", "configs_timed"}
        assert 1 <= e["configs_timed"] <= 2 and e["tuned_ms"] <= e["heuristic_ms"]
        assert e["dtype"] == "torch.float32"
    assert max(e["configs_timed"] for e in table["entries"]) == 2
    # load: the same problems now come from the table, on the fake device only
    monkeypatch.setenv(tuned_tables.TUNED_DIR_ENV, str(out))
    monkeypatch.setenv(tuned_tables.DEVICE_NAME_ENV, FAKE)
    tuned_tables.clear_cache()
    records = plan_launches(["googlenet"], dtype="fp32", batch_size=4, image_size=16, gpu=True)
    first = distinct_problems(records)[:3]
    assert [r.source for r in first] == ["table"] * 3
    for r in first:
        e = next(e for e in table["entries"] if e["kernel"] == r.kernel and e["shape"] == r.problem)
        assert {k: r.constexprs[k] for k in e["config"]["kwargs"]} == e["config"]["kwargs"]
        assert r.num_warps == e["config"]["num_warps"]
    # launch: the stem, pool and 1x1 conv run the table's configs through the interpreter, right
    model = ic.models.create_model("googlenet", aux_logits=False, init_weights=False).eval()
    x = torch.randn(4, 3, 16, 16).contiguous(memory_format=torch.channels_last)
    stem = torch.nn.Sequential(model.conv1, model.maxpool1, model.conv2)
    with torch.no_grad():
        with ic.backend("triton"):
            y = stem(x)
        with ic.backend("torch"):
            ref = stem(x)
    stats = ic.launch_stats()["per_kernel"]
    assert stats["conv_bn_act_fwd"]["table_hits"] == 2 and stats["pool2d_fwd"]["table_hits"] == 1
    assert stats["conv_bn_act_fwd"]["heuristic_hits"] == 0
    torch.testing.assert_close(y, ref, rtol=1e-4, atol=1e-4)
    monkeypatch.setenv(tuned_tables.DEVICE_NAME_ENV, "Another GPU")  # another device model: no table
    again = distinct_problems(plan_launches(["googlenet"], dtype="fp32", batch_size=4, image_size=16, gpu=True))
    assert again[0].source == "heuristic"


def test_tune_usage_errors(fresh, capsys):
    for argv, message in ((["--models", "nope"], "--models"), (["--batch-size", "0"], "--batch-size")):
        with pytest.raises(SystemExit) as e:
            cli.main(["tune", "--device", "cpu", *argv])
        assert e.value.code == 2 and message in capsys.readouterr().err
