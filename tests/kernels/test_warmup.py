"""``inception-core warmup`` (inception_core/warmup.py): a recorded launch becomes the compile request
Triton's launcher would make (types and specialization), and compiling it fills Triton's cache (a second
compile of the same request is a cache hit)."""

import pytest
import torch

import inception_core as ic
from inception_core import launch, warmup
from inception_core.kernels.configs import GPU_CONFIGS


def _record_conv(dtype=torch.float16, n=2, c=64, k=96, hw=17):
    x = torch.randn(n, c, hw, hw, dtype=dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(k, c, 3, 3, dtype=dtype).contiguous(memory_format=torch.channels_last)
    with ic.backend("triton"), launch.recording(gpu=True) as records:
        ic.ops.conv_bn_act(x, w, torch.rand(k), torch.randn(k), padding=1)
    return records


def test_requests_follow_the_launchers_specialization():
    (rec,) = _record_conv()
    (req,) = warmup.compile_requests([rec], 90)
    assert req["kernel"] == "conv_bn_act_fwd" and req["arch"] == 90
    sig, const, aligned = req["signature"], req["constexprs"], set(req["aligned"])
    assert sig["x_ptr"] == sig["w_ptr"] == sig["y_ptr"] == "*fp16" and sig["scale_ptr"] == "*fp32"
    assert sig["res_scale"] == "fp32"
    # channels_last: unit channel strides are constants (Triton specializes integers equal to 1)
    assert const["stride_xc"] == 1 and const["stride_yc"] == 1 and "stride_xc" not in sig
    assert {"x_ptr", "w_ptr", "y_ptr", "C", "K", "stride_xh"} <= aligned  # 16-aligned pointers, 64 and 96
    assert "H" not in aligned and sig["H"] == "i32"  # 17
    assert const["DOT_FP32"] is False and const["BLOCK_M"] == rec.constexprs["BLOCK_M"]
    assert rec.constexprs["BLOCK_M"] in {c.kwargs["BLOCK_M"] for c in GPU_CONFIGS["conv_bn_act_fwd"]}
    assert (req["num_warps"], req["num_stages"]) == (rec.num_warps, rec.num_stages)
    # two launches of one problem are one variant, one request
    assert len(warmup.compile_requests(_record_conv() + _record_conv(), 90)) == 1


def test_compiles_into_tritons_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path / "triton"))
    requests = warmup.compile_requests(_record_conv(), 90)
    # one worker, the same request twice: compiled, then found in Triton's cache
    result = warmup.compile_all(requests * 2, jobs=1, log=pytest.fail)
    assert result["variants"] == 2 and result["errors"] == 0 and result["hits"] == 1
    assert any((tmp_path / "triton").rglob("*.cubin"))


def test_usage_errors(capsys):
    from inception_core import cli

    for argv, message in ((["--models", "nope"], "--models"), (["--dtype", "fp8"], "--dtype"),
                          (["--batch-size", "0"], "--batch-size"), (["--target", "sm_75"], "--target")):
        with pytest.raises(SystemExit) as e:
            cli.main(["warmup", *argv])
        assert e.value.code == 2 and message in capsys.readouterr().err
