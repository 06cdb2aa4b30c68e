"""The launch path (inception_core/launch.py): config order (explicit, table, heuristic, autotune only when
asked), the shape-class heuristic's rules, the counters, and the first eval forward of each network:
one config per problem, one compile per distinct variant, nothing tuned.
"""

import json

import pytest
import torch

import inception_core as ic
from inception_core import heuristics, launch, tuned_tables
from inception_core.kernels import configs

GPU = configs.GPU_CONFIGS
FWD_CONFIGS = GPU["conv_bn_act_fwd"]


def _label(c):
    kw = c.kwargs
    return (kw["BLOCK_M"], kw["BLOCK_N"], kw["BLOCK_K"], c.num_warps)


# ---------------------------------------------------------------------------------------------------
# heuristic rules (GPU config lists, pure functions of the problem)
# ---------------------------------------------------------------------------------------------------

def _fwd(N, C, K, OH, OW, R=1, S=1, elem_size=2, stats=False):
    return heuristics.conv_fwd(FWD_CONFIGS, N=N, C=C, K=K, OH=OH, OW=OW, R=R, S=S, elem_size=elem_size,
                               stats=stats)


def test_heuristic_large_1x1_takes_the_largest_tile():
    # a 17x17 1x1 at batch 256: 73984 pixels x 256 channels, thousands of programs for any tile
    big = _fwd(256, 768, 256, 17, 17)
    assert _label(big) == (128, 256, 64, 8)  # no padding waste, full waves: largest tile


def test_heuristic_avoids_padding_waste_and_respects_the_rules():
    stem = _fwd(256, 3, 32, 149, 149, R=3, S=3)  # 32 output channels: a 256- or 128-wide tile wastes >= 75%
    assert stem.kwargs["BLOCK_N"] == 32
    assert stem.num_warps <= 4  # 8-warp configs are 1x1 only (conv_fwd_fits)
    fp32 = _fwd(256, 768, 256, 17, 17, elem_size=4)
    assert fp32.kwargs["BLOCK_M"] * fp32.kwargs["BLOCK_N"] <= 64 * 32 * fp32.num_warps  # fp32 register rule


def test_heuristic_fills_the_gpu_before_growing_tiles():
    # 8x8 map at batch 1: 64 pixels x 384 channels; the 128x256 tile would give 2 programs
    small = _fwd(1, 1280, 384, 8, 8)
    programs = -(-64 // small.kwargs["BLOCK_M"]) * -(-384 // small.kwargs["BLOCK_N"])
    others = [c for c in FWD_CONFIGS
              if configs.conv_fwd_fits(c, M=64, C=1280, K=384, R=1, S=1, elem_size=2, stats=False)]
    assert programs == max(-(-64 // c.kwargs["BLOCK_M"]) * -(-384 // c.kwargs["BLOCK_N"]) for c in others)


def test_heuristic_is_one_config_per_shape_class():
    # batch changes the pixel count but not the class once every config fills the GPU
    assert _fwd(128, 288, 64, 35, 35) is _fwd(256, 288, 64, 35, 35)


def test_heuristics_return_shipped_configs_for_every_network_shape():
    from inception_core.shapes import conv_geometries, pool_geometries

    for g in conv_geometries():
        for es, st in ((2, False), (4, False), (2, True)):
            c = _fwd(32, g.in_channels, g.out_channels, 17, 17, R=g.kernel[0], S=g.kernel[1], elem_size=es, stats=st)
            assert c in FWD_CONFIGS
            dx = heuristics.conv_bwd_dx(GPU["conv_bwd_dx"], N=32, C=g.in_channels, H=35, W=35,
                                        K=g.out_channels, R=g.kernel[0], S=g.kernel[1], STRIDE_H=g.stride[0],
                                        STRIDE_W=g.stride[1], elem_size=es)
            dw = heuristics.conv_bwd_dw(GPU["conv_bwd_dw"], N=32, C=g.in_channels, K=g.out_channels, OH=17,
                                        OW=17, R=g.kernel[0], S=g.kernel[1], P_PER_SPLIT=2048, elem_size=es)
            assert dx in GPU["conv_bwd_dx"] and dw in GPU["conv_bwd_dw"]
    for g in pool_geometries():
        assert heuristics.pool2d_fwd(GPU["pool2d_fwd"], N=32, C=g.channels, OH=17, OW=17) in GPU["pool2d_fwd"]
    assert heuristics.pool2d_fwd(GPU["pool2d_fwd"], N=32, C=288, OH=17, OW=17).kwargs["BLOCK_C"] == 32
    assert heuristics.pool2d_fwd(GPU["pool2d_fwd"], N=32, C=768, OH=17, OW=17).kwargs["BLOCK_C"] == 128
    assert heuristics.pool2d_fwd(GPU["pool2d_fwd"], N=32, C=3, OH=17, OW=17).kwargs["BLOCK_C"] == 16


# ---------------------------------------------------------------------------------------------------
# the launch path on real (interpreted) kernels
# ---------------------------------------------------------------------------------------------------

def _conv(device, c=16, k=32, hw=5, dtype=torch.float32, **kw):
    x = torch.randn(1, c, hw, hw, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(k, c, 3, 3, device=device, dtype=dtype)
    with ic.backend("triton"):
        return ic.ops.conv_bn_act(x, w, torch.rand(k, device=device), torch.randn(k, device=device), padding=1,
                                  **kw), x, w


def test_heuristic_by_default_counts_one_variant(fresh, device):
    y1, x, w = _conv(device)
    _conv(device)
    stats = ic.launch_stats()["per_kernel"]["conv_bn_act_fwd"]
    assert stats["launches"] == 2 and stats["heuristic_hits"] == 1 and stats["memory_hits"] == 1
    assert stats["variants"] == 1 and stats["tuned"] == 0 and stats["table_hits"] == 0
    assert ic.autotune_stats()["variants"] == 1  # the old name reports the same counters


def test_recording_runs_nothing_and_matches_a_real_launch(fresh, device):
    _conv(device)
    real = ic.launch_stats()["per_kernel"]["conv_bn_act_fwd"]["variants"]
    with launch.recording() as records:
        y, _, _ = _conv(device, k=48)
    (rec,) = records
    assert rec.kernel == "conv_bn_act_fwd" and rec.source == "heuristic" and real == 1
    assert rec.problem["K"] == 48 and rec.constexprs["R"] == 3 and "BLOCK_M" in rec.constexprs
    assert ic.launch_stats()["per_kernel"]["conv_bn_act_fwd"]["variants"] == 1  # recording compiled nothing


def test_table_entry_wins_over_the_heuristic(fresh, device, monkeypatch):
    monkeypatch.setenv(tuned_tables.DEVICE_NAME_ENV, "Fake GPU 9000")
    with launch.recording() as records:
        _conv(device)
    (rec,) = records
    chosen = {k: rec.constexprs[k] for k in FWD_CONFIGS[0].kwargs}
    other = next(c for c in FWD_CONFIGS if c.kwargs != chosen)
    entry = {"kernel": rec.kernel, "shape": rec.problem, "dtype": "torch.float32", "flags": rec.meta,
             "config": tuned_tables.config_dict(other), "tuned_ms": 1.0, "heuristic_ms": 2.0, "configs_timed": 2}
    path = tuned_tables.write_table(fresh / "tables", "Fake GPU 9000", [entry])
    assert path.name == "fake_gpu_9000.json"
    launch.reset_launch_stats(forget=True)
    with launch.recording() as again:
        _conv(device)
    assert again[0].source == "table" and again[0].num_warps == other.num_warps
    assert {k: again[0].constexprs[k] for k in other.kwargs} == other.kwargs
    launch.reset_launch_stats(forget=True)
    _conv(device)  # and a real launch of it
    stats = ic.launch_stats()["per_kernel"]["conv_bn_act_fwd"]
    assert stats["table_hits"] == 1 and stats["heuristic_hits"] == 0 and stats["variants"] == 1


def test_table_with_a_config_not_shipped_is_ignored_with_a_warning(fresh, device, monkeypatch):
    monkeypatch.setenv(tuned_tables.DEVICE_NAME_ENV, "Fake GPU 9000")
    with launch.recording() as records:
        _conv(device)
    (rec,) = records
    bogus = {"kwargs": {"BLOCK_M": 999, "BLOCK_N": 16, "BLOCK_K": 16, "GROUP_M": 8}, "num_warps": 4, "num_stages": 2}
    tuned_tables.write_table(fresh / "tables", "Fake GPU 9000", [
        {"kernel": rec.kernel, "shape": rec.problem, "dtype": "torch.float32", "flags": rec.meta, "config": bogus}])
    with pytest.warns(RuntimeWarning, match="not shipped"):
        _conv(device)
    assert ic.launch_stats()["per_kernel"]["conv_bn_act_fwd"]["heuristic_hits"] == 1


def test_unreadable_table_warns_and_falls_back(fresh, device, monkeypatch):
    monkeypatch.setenv(tuned_tables.DEVICE_NAME_ENV, "Fake GPU 9000")
    (fresh / "tables").mkdir()
    (fresh / "tables" / "fake_gpu_9000.json").write_bytes(b"\xff\xfe not json")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        _conv(device)
    assert ic.launch_stats()["per_kernel"]["conv_bn_act_fwd"]["heuristic_hits"] == 1


def test_autotune_only_when_asked(fresh, device, monkeypatch):
    from inception_core import autotune_cache as ac

    calls = []
    monkeypatch.setattr(launch, "shipped_configs", lambda kernel, gpu=False: FWD_CONFIGS[:2]
                        if kernel == "conv_bn_act_fwd" else [configs.CONFIGS["conv_bn_act_fwd"][0]])

    def fake_tune(kernel, autotuner, grid, args, meta, dev):
        calls.append(kernel)
        return configs.CONFIGS["conv_bn_act_fwd"][0]

    monkeypatch.setattr(ac, "launch_autotuned", fake_tune)
    with launch.recording():
        _conv(device)
    assert calls == []  # default: the heuristic
    launch.reset_launch_stats(forget=True)
    monkeypatch.setenv(launch.AUTOTUNE_ENV, "1")
    _conv(device)
    assert calls == ["conv_bn_act_fwd"]


NETWORKS = ("googlenet", "bn_inception", "inception_v3", "inception_v4", "inception_resnet_v1", "inception_resnet_v2")


def _plan(name: str) -> list:
    """The launches of ``name``'s first eval forward (native size, batch 1, GPU config lists), recorded."""
    from inception_core.shapes import NATIVE_INPUT

    with torch.device("meta"):  # skip the weight init: a plan needs shapes only
        model = ic.models.create_model(name)
    model = model.to_empty(device="cpu").eval()
    size = NATIVE_INPUT[name]
    x = torch.randn(1, 3, size, size).contiguous(memory_format=torch.channels_last)
    with ic.backend("triton"), torch.no_grad(), launch.recording(gpu=True) as records:
        model(x)
    return records


@pytest.mark.parametrize("name", NETWORKS)
def test_first_eval_forward_compiles_each_variant_once(fresh, name):
    """Each network's first eval forward: one config per problem (nothing tuned: every config from the
    heuristic), so the compiles are the distinct variants, a bounded number."""
    records = _plan(name)
    configs = {}
    for r in records:
        problem = (r.kernel, json.dumps(r.problem, sort_keys=True), json.dumps(r.meta, sort_keys=True, default=str))
        configs.setdefault(problem, set()).add((json.dumps(r.constexprs, sort_keys=True, default=str), r.num_warps,
                                                r.num_stages))
    assert max(len(v) for v in configs.values()) == 1  # no problem launched with two configs
    assert {r.source for r in records} == {"heuristic"}
    assert {"conv_bn_act_fwd", "pool2d_fwd"} <= {r.kernel for r in records}
    variants = {r.variant for r in records}
    # bounded first use: a few tens of compiles per network, not the ~90 of autotuning every config
    assert len(variants) <= 40, (name, len(variants), len(records))
    assert launch.launch_stats()["launches"] == 0  # a plan counts nothing


def test_real_first_forward_counts_match_the_plan(fresh, device):
    """A real interpreted eval forward (one Inception block: sibling 1x1s, 3x3s, a pool) compiles exactly
    the variants a recording of it plans."""
    model = ic.models.create_model("googlenet", aux_logits=False, init_weights=False).inception3a.eval().to(device)
    x = torch.randn(1, 192, 4, 4, device=device).contiguous(memory_format=torch.channels_last)
    with ic.backend("triton"), torch.no_grad():
        with launch.recording() as records:
            model(x)
        launch.reset_launch_stats(forget=True)
        model(x)
    stats = ic.launch_stats()
    assert len(records) >= 4 and stats["launches"] == len(records)
    assert {r.kernel for r in records} == {"conv_bn_act_fwd", "pool2d_fwd"}
    assert stats["variants"] == len({r.variant for r in records})
    assert stats["tuned"] == 0 and stats["table_hits"] == 0
    assert stats["heuristic_hits"] == len({(r.kernel, json.dumps(r.problem, sort_keys=True),
                                            json.dumps(r.meta, sort_keys=True, default=str))
                                           for r in records if r.source == "heuristic"})
