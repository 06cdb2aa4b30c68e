"""tools/resource_report.py: the sm_90 / sm_80 resource report of the Triton configs, on one config."""

import importlib.util
import json
from pathlib import Path

from inception_core import aot, aot_variants

_SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "resource_report.py"


def _load_tool():
    spec = importlib.util.spec_from_file_location("resource_report", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_occupancy_from_registers_shared_memory_and_warps():
    tool = _load_tool()
    # 128 regs x 32 threads = 4096 per warp; 4 warps = 16384 -> 4 blocks by registers.
    assert tool.occupancy(128, 4, 0, 90) == {"blocks_per_sm": 4, "warps_per_sm": 16, "limited_by": "registers"}
    # 96 KiB of shared memory on sm_90 (228 KiB per SM, 1 KiB reserved per block) -> 2 blocks.
    assert tool.occupancy(32, 4, 96 * 1024, 90)["blocks_per_sm"] == 2
    assert tool.occupancy(32, 4, 96 * 1024, 90)["limited_by"] == "shared"
    # 8 warps with few registers and no shared memory: 64 warp slots -> 8 blocks.
    assert tool.occupancy(16, 8, 0, 80) == {"blocks_per_sm": 8, "warps_per_sm": 64, "limited_by": "warps"}


def test_report_of_one_config(tmp_path):
    tool = _load_tool()
    variant = next(v for v in aot_variants.conv_bn_act_variants(full=False) if v.num_warps == 4
                   and v.tags["dtype"] == "bf16")
    rows = tool.compile_rows([variant], (90,))
    assert len(rows) == 1
    row = rows[0]
    assert row["error"] is None
    assert row["variant"] == variant.label and row["arch"] == 90
    assert 0 < row["regs_per_thread"] <= aot.MAX_REGS_PER_THREAD
    assert 0 < row["shared_bytes"] <= row["shared_limit_bytes"] == aot.SMEM_PER_BLOCK_OPTIN[90]
    assert row["wgmma"], row["tensor_core_instructions"]  # a bf16 dot with one warpgroup on sm_90
    assert row["spill_store_bytes"] >= 0 and row["spill_load_bytes"] >= 0
    assert 1 <= row["blocks_per_sm"] <= 32

    meta = tool.run_metadata("test")
    md, js = tool.write_report(rows, tmp_path, meta)
    data = json.loads(js.read_text())
    assert data["rows"] == rows and data["meta"]["triton"] == meta["triton"]
    text = md.read_text()
    assert "## sm_90" in text and variant.label in text
    assert f"| {row['regs_per_thread']} | {row['spill_store_bytes']}/{row['spill_load_bytes']} | " \
           f"{row['shared_bytes']} | yes |" in text


def test_a_failed_compilation_is_a_row_not_a_crash(tmp_path):
    tool = _load_tool()
    variant = next(aot_variants.conv_bn_act_variants(full=False))
    broken = aot.KernelVariant(kernel=variant.kernel, label="broken", fn=variant.fn, signature={},
                               constexprs={}, num_warps=4, num_stages=1, tags={"config": "none"})
    rows = tool.compile_rows([broken], (90,))
    assert rows[0]["error"] and "broken" in tool.render_markdown(rows, tool.run_metadata("test"))
