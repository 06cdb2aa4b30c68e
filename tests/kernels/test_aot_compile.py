"""Every GPU autotune config of every kernel compiles for sm_80 and sm_90, no GPU needed.

``triton.compile`` with an explicit target runs to a cubin on a CPU machine (inception_core.aot; under
the interpreter the compilation happens in a non-interpreted worker process). Each unit is what the
launcher would produce at run time (channels_last, C and K multiples of 16, plus int64 and NCHW /
unaligned extras); the CI set gives each config its 1x1 and one spatial geometry class
(``python tools/resource_report.py --full`` compiles every geometry x residual and writes the table).

Checked: a cubin is produced; dynamic shared memory within the per-block limit of the chip; fp16 /
bf16 and TF32 dots run on tensor cores of the right operand type (mma.sync on sm_80; wgmma on sm_90 for
configs of at least one warpgroup, mma.sync below), IEEE fp32 never does. Spills are recorded (junit
properties and the resource report) and fail only for fp16 / bf16 on sm_90: no shipped config may spill
there (``tools/resource_report.py --full`` checks every geometry; benchmarks/results/sm90_resources.md).
"""

import pytest

from inception_core import aot, aot_variants

VARIANTS = aot_variants.all_variants(full=False)
# Operand type of the tensor-core instruction, per dtype (fp32 dots run as TF32 when allowed).
_MMA_OPERAND = {"fp16": "f16", "bf16": "bf16", "fp32": "tf32"}


@pytest.mark.parametrize("arch", aot.ARCHS, ids=lambda a: f"sm{a}")
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.label)
def test_compiles_within_limits(variant, arch, record_property):
    info = aot.compile_variant(variant, arch)
    for key in ("shared", "num_regs", "spill_stores", "spill_loads", "mma_instrs"):
        record_property(key, getattr(info, key))

    assert info.has_cubin
    assert info.shared <= aot.SMEM_PER_BLOCK_OPTIN[arch], (
        f"{variant.label}: {info.shared} bytes of shared memory, sm_{arch} allows "
        f"{aot.SMEM_PER_BLOCK_OPTIN[arch]} per block")
    assert info.num_regs <= aot.MAX_REGS_PER_THREAD
    assert info.ptxas_regs == info.num_regs  # the spill figures describe this very cubin
    if arch == 90 and variant.tags.get("dtype") in ("fp16", "bf16"):
        assert info.spills == 0, f"{variant.label}: {info.spills} bytes of register spills on sm_90"

    if not variant.uses_dot:
        assert not info.has_mma, f"{variant.label}: unexpected tensor-core instructions {info.mma_instrs}"
        return
    assert info.has_mma, f"{variant.label}: no tensor-core instruction in the sm_{arch} PTX"
    operand = _MMA_OPERAND[variant.tags["dtype"]]
    assert all(operand in instr.split(".") for instr in info.mma_instrs), info.mma_instrs
    if arch == 80:
        assert not info.has_wgmma
    elif variant.num_warps >= 4:
        # wgmma needs a warpgroup (4 warps); falling back to mma.sync on H100 costs a lot of speed.
        assert info.has_wgmma, f"{variant.label}: sm_90 uses {info.mma_instrs}, not wgmma"


def test_compiles_the_source_of_the_loaded_kernel():
    # Under the interpreter a worker process imports the kernel module again: it must compile the very
    # source this process loaded (not, say, another installed copy).
    variant = VARIANTS[0]
    info = aot.compile_variant(variant, 90)
    assert info.source_sha256 == aot.source_sha256(variant.fn)


def test_variants_cover_configs_dtypes_and_geometries():
    from inception_core.kernels import configs

    conv = [v for v in VARIANTS if v.kernel == "conv_bn_act"]
    labels = {v.label for v in conv}
    assert len(labels) == len(conv), "duplicate variant labels"
    for dtype in ("fp32", "fp16", "bf16"):
        of_dtype = [v for v in conv if v.tags["dtype"] == dtype]
        assert {v.tags["geometry"] for v in of_dtype} == set(aot_variants.CONV_GEOMETRIES)
        assert {v.tags["residual"] for v in of_dtype} == {False, True}
        assert any(v.tags["int64"] for v in of_dtype)
        assert any(v.tags["layout"] == "nchw" for v in of_dtype)
        compiled_configs = {v.tags["config"] for v in of_dtype}
        for config in configs.GPU_CONFIGS["conv_bn_act_fwd"]:
            fits = configs.conv_fwd_fits(config, M=10**6, C=1024, K=1024, R=1, S=1,
                                         elem_size=4 if dtype == "fp32" else 2)
            assert (aot_variants.config_label(config) in compiled_configs) == fits
    assert any(v.tags["precision"] == "ieee" and v.tags["dtype"] == "fp32" for v in conv)
    # 8-warp configs only on 1x1 (conv_fwd_fits), which is what the launcher can pick.
    assert all(v.tags["geometry"] == "1x1" for v in conv if v.num_warps > 4)


def test_configs_that_spilled_on_sm90_are_not_shipped_there():
    """The fp16/bf16 units that spilled on sm_90 (resource report at feca511): 128x128 (4 warps) and 128x256
    (8 warps) conv tiles with a residual are pruned; dgrad's 32x64 tile reduces 32 channels per step."""
    from inception_core.kernels import configs

    for bm, bn, warps in ((128, 128, 4), (128, 256, 8)):
        config = next(c for c in configs.GPU_CONFIGS["conv_bn_act_fwd"]
                      if (c.kwargs["BLOCK_M"], c.kwargs["BLOCK_N"], c.num_warps) == (bm, bn, warps))
        assert configs.conv_fwd_fits(config, M=10**6, C=1024, K=1024, R=1, S=1, elem_size=2)
        assert not configs.conv_fwd_fits(config, M=10**6, C=1024, K=1024, R=1, S=1, elem_size=2, residual=True)
    (dx,) = [c for c in configs.GPU_CONFIGS["conv_bwd_dx"] if c.kwargs["BLOCK_M"] == 32]
    assert dx.kwargs["BLOCK_K"] == 32  # 32x64x64 with 2 warps: 128 registers, 4 bytes of spills (bf16 3x3s2)
    for geometry in ("3x3s2", "1x7"):  # (with 4 warps instead, 1x7 spilled 8 bytes)
        unit = next(v for v in aot_variants.training_variants(full=True)
                    if v.label.startswith("conv_bwd_dx/32x64x32-w2s4") and f"/bf16/{geometry}" in v.label)
        assert aot.compile_variant(unit, 90).spills == 0


def test_fixed_tile_units_carry_the_launchers_real_arguments():
    """The fixed-tile units come from recorded launches, not restated by hand: the wgrad sum writes a
    weight gradient in the weight's layout (KCRS by default: unit stride S; channels_last: unit stride
    C), the average-pool backward reads no int8 window index (its idx argument is a placeholder of dy's
    dtype), and the tiles are the GPU's: a GPU plan made under the interpreter records the GPU tiles
    (launch.launch_fixed), not the interpreter's."""
    from inception_core.kernels.configs import fixed_gpu_tiles

    units = {v.label: v for v in VARIANTS if v.tags.get("config") == "fixed"}
    sums = units["conv_bwd_sum/fixed/bf16/splits"]  # a KCRS weight (a model's default)
    assert sums.constexprs["stride_dws"] == 1 and sums.signature["stride_dwc"] == "i32"
    sums_cl = units["conv_bwd_sum/fixed/bf16/splits_cl_weight"]  # a channels_last weight
    assert sums_cl.constexprs["stride_dwc"] == 1 and sums_cl.signature["stride_dws"] == "i32"
    assert sums.signature["SPLITS"] == "i32"  # a problem large enough to split the wgrad reduction
    assert units["pool2d_bwd/fixed/bf16/avg3x3p1"].signature["idx_ptr"] == "*bf16"
    assert units["pool2d_bwd/fixed/bf16/max3x3s2"].signature["idx_ptr"] == "*i8"
    for unit in units.values():
        tiles = fixed_gpu_tiles(unit.tags["launch_kernel"])
        assert {k: unit.constexprs[k] for k in tiles} == tiles, unit.label
    assert {"batch_norm/fixed/fp32/stats_finalize", "batch_norm/fixed/fp32/bwd_finalize",
            "batch_norm/fixed/bf16/affine_act", "batch_norm/fixed/bf16/bwd_apply",
            "pool2d_bwd/fixed/bf16/argmax"} <= set(units)


def test_training_units_carry_the_launchers_real_arguments():
    """The training GEMM units are recorded launches too: the STATS conv runs without scale / shift (the
    launcher passes placeholders of x's dtype) and a 1x1 weight's tap strides are 1, so constants."""
    stats = next(v for v in VARIANTS if v.kernel == "conv_bn_act_stats" and v.tags["dtype"] == "bf16"
                 and v.tags["geometry"] == "1x1")
    assert stats.constexprs["STATS"] is True and stats.constexprs["HAS_SCALE"] is False
    assert stats.signature["scale_ptr"] == "*bf16" and stats.signature["stat_sum_ptr"] == "*fp32"
    dx_1x1 = next(v for v in VARIANTS if v.kernel == "conv_bwd_dx" and v.tags["geometry"] == "1x1")
    assert dx_1x1.constexprs["stride_wr"] == dx_1x1.constexprs["stride_ws"] == 1
    bf16_dx = next(v for v in VARIANTS if v.kernel == "conv_bwd_dx" and v.tags["dtype"] == "bf16")
    assert bf16_dx.constexprs["DOT_FP32"] is False  # planned for a GPU, not the interpreter's bf16 workaround


def test_inference_units_carry_the_launchers_real_arguments():
    """The inference conv and pooling units are recorded launches (on meta tensors): a 1x1 weight's tap
    strides are 1, so constants (the kernel must not let them cost the weight loads their alignment: the
    128x256x64 1x1 unit spilled 688 bytes on sm_90 before); the int64 units are a >= 2**31-element input
    at batch 1, so N is the constant 1 (pool2d's int64 path did not compile with it) and the batch
    stride i64; the stem reads a contiguous NCHW input and KCRS weight with 3 channels."""
    conv = [v for v in VARIANTS if v.kernel == "conv_bn_act"]
    one_by_one = [v for v in conv if v.tags["geometry"] == "1x1"]
    assert one_by_one and all(v.constexprs["stride_wr"] == v.constexprs["stride_ws"] == 1 for v in one_by_one)
    int64 = [v for v in VARIANTS if v.kernel in ("conv_bn_act", "pool2d") and v.tags["int64"]]
    assert {v.kernel for v in int64} == {"conv_bn_act", "pool2d"}
    for v in int64:
        assert v.constexprs["USE_INT64"] is True and v.constexprs["N"] == 1, v.label
        assert v.signature["stride_xn"] == "i64", v.label
    stem = next(v for v in conv if v.tags["layout"] == "nchw")
    assert stem.signature["C"] == "i32" and "C" not in stem.aligned
    assert stem.constexprs["stride_xw"] == stem.constexprs["stride_ws"] == 1 and "stride_xc" in stem.signature


def test_rejected_conv_units_are_marked():
    units = aot_variants.all_variants(full=False, include_rejected=True)
    assert any(not v.tags["fits"] for v in units if v.kernel == "conv_bn_act")
    assert all(v.tags.get("fits", True) for v in VARIANTS)
