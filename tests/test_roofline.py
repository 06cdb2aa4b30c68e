"""benchmarks/roofline.py: the analytic columns without a GPU (FLOPs, minimum bytes, floor time, bound),
the peak table and its overrides, bad arguments; the measured columns on a GPU only."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from inception_core import shapes

_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "roofline.py"


@pytest.fixture(scope="module")
def roofline():
    spec = importlib.util.spec_from_file_location("benchmarks_roofline", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def _run(roofline, tmp_path, *args):
    assert roofline.main([str(tmp_path), *args]) == 0
    return json.loads((tmp_path / "roofline.json").read_text()), (tmp_path / "roofline.md").read_text()


def test_analytic_table_on_h100_peaks(roofline, tmp_path):
    report, md = _run(roofline, tmp_path, "--device-peak", "h100", "--models", "inception_v3,inception_resnet_v2",
                      "--no-measure")
    assert report["meta"]["batch"] == 256 and report["meta"]["dtype"] == "bf16"
    assert report["meta"]["peak"]["tflops"]["bf16"] == 790.0 and report["meta"]["peak"]["gbps"] == 3350.0
    # the figures: 11.4 GFLOP per 299x299 image for Inception-v3, 26.3 for Inception-ResNet-v2
    v3 = report["networks"]["inception_v3"]
    assert v3["summary"]["flops_per_image"] / 1e9 == pytest.approx(11.4, rel=0.01)
    assert report["networks"]["inception_resnet_v2"]["summary"]["flops_per_image"] / 1e9 == pytest.approx(
        26.3, rel=0.01)
    rows = v3["rows"]
    assert len(rows) == sum(1 for s in shapes.CONV_SHAPES if s.model == "inception_v3" and not s.is_aux)
    assert not any(r["layer"].startswith("AuxLogits") for r in rows)
    stem = next(r for r in rows if r["layer"] == "Conv2d_1a_3x3.conv")  # 3 -> 32, 3x3 s2, 299 -> 149
    assert stem["flops"] == 2 * 256 * 149 * 149 * 32 * 3 * 9
    assert stem["min_bytes"] == 2 * (256 * 3 * 299 * 299 + 32 * 3 * 9 + 256 * 32 * 149 * 149) + 8 * 32
    assert stem["bound"] == "memory"
    assert stem["floor_s"] == pytest.approx(stem["min_bytes"] / 3350e9)
    for r in rows:
        assert r["floor_s"] == pytest.approx(max(r["flops"] / 790e12, r["min_bytes"] / 3350e9))
        assert r["ours_s"] is None and r["gap"] is None
    totals = [r["floor_s"] * r["count"] for r in rows]
    assert totals == sorted(totals, reverse=True)  # largest floor first when nothing is measured
    assert v3["summary"]["floor_s"] == pytest.approx(sum(totals))
    assert "## inception_v3" in md and "not measured (no GPU)" in md and "| Conv2d_1a_3x3.conv |" in md


def test_peak_overrides_and_dtype(roofline, tmp_path):
    report, _ = _run(roofline, tmp_path, "--device-peak", "a100", "--models", "googlenet", "--dtype", "fp32",
                     "--peak-gbps", "1000", "--batch", "8", "--no-measure")
    assert report["meta"]["peak"]["gbps"] == 1000 and report["meta"]["peak"]["tflops"]["fp32"] == 156.0
    row = report["networks"]["googlenet"]["rows"][0]
    assert row["floor_s"] == pytest.approx(max(row["flops"] / 156e12, row["min_bytes"] / 1000e9))
    assert report["networks"]["googlenet"]["summary"]["flops_per_image"] / 1e9 == pytest.approx(3.0, rel=0.01)


def test_peak_table_matches_device_names(roofline):
    assert roofline.peak_for_device_name("NVIDIA H100 80GB HBM3").name == "NVIDIA H100 SXM"
    assert roofline.peak_for_device_name("NVIDIA H200").gbps == 4800.0
    assert roofline.peak_for_device_name("NVIDIA GeForce RTX 4090") is None


def test_bad_arguments(roofline, tmp_path, capsys):
    with pytest.raises(SystemExit):
        roofline.main([str(tmp_path), "--device-peak", "h100", "--models", "resnet50"])
    assert "--models: unknown ['resnet50']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        roofline.main([str(tmp_path), "--device-peak", "h100", "--batch", "0"])
    assert "--batch" in capsys.readouterr().err
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            roofline.main([str(tmp_path)])
        assert "no GPU: pass --device-peak" in capsys.readouterr().err


def test_measured_columns_on_a_gpu(roofline, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("the measured columns time kernels on a CUDA device")
    report, md = _run(roofline, tmp_path, "--models", "inception_v3", "--batch", "8", "--rounds", "3")
    rows = report["networks"]["inception_v3"]["rows"]
    assert all(r["ours_s"] > 0 and r["torch_s"] > 0 and r["gap"] > 0 for r in rows)
    lost = [r["lost_s"] for r in rows]
    assert lost == sorted(lost, reverse=True)
    assert "autotune" in report["meta"]
