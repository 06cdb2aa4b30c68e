#!/usr/bin/env bash
# A whole GPU run in one call, on a machine with torch and triton preinstalled and no package index:
# install the project (--no-deps --no-build-isolation), the test suite on CUDA, `inception-core check`,
# the pytest-benchmark suite (ops, then models) and `inception-core bench` (inference and a training
# step); every result file goes into OUTDIR, and a summary table comes last (also OUTDIR/SUMMARY.md).
# Copy OUTDIR under benchmarks/results/ and run benchmarks/render_readme_table.py to update the README.
# This is the long form (well over an hour) of the stages of benchmarks/gpu_first_light.py, the one command
# for a short GPU session: install (a), warmup (a), tests/cuda/sanitizer/check (b), inference/bench (c),
# roofline (d), models/bench --mode train (e), tune (f).
#
# Usage: benchmarks/gpu_run.sh OUTDIR
#
# Environment (all optional):
#   PYTHON        interpreter (default: python3)
#   STAGES        which stages, in order (default: "install warmup tests cuda sanitizer check ops models
#                 inference roofline bench tune summary"); warmup: `inception-core warmup` of every network's
#                 inference and training step (bf16) into Triton's cache; tune: `inception-core tune` of every
#                 network (forward and training kernels) into OUTDIR/tuned/; inference: benchmarks/bench_inference.py (optimize_for_inference
#                 with its CUDA graph vs the fused eager path, batch 256 bf16, autotune cost in extra_info);
#                 roofline: benchmarks/roofline.py (per-conv floor vs ours vs cuDNN, batch 256 bf16) into
#                 OUTDIR/roofline/;
#                 cuda: tests/csrc (the cuda backend against the reference over the networks'
#                 shapes) and tests/ops under INCEPTION_CORE_BACKEND=cuda (its cases pick their backend
#                 themselves, so this only shows the setting breaks nothing); sanitizer:
#                 compute-sanitizer memcheck of one cuda-backend forward of Inception-v3 and
#                 Inception-ResNet-v2 (tools/cuda_backend_forward.py); a run
#                 split over several calls into the same OUTDIR adds its files there
#   MODELS        networks of the model benchmarks and of `bench` (comma list; default: all six)
#   OP_DTYPES     dtypes of the op benchmarks (default: fp32,fp16,bf16)
#   MODEL_DTYPES  dtypes of the model benchmarks (default: bf16; each is 6 networks x 2 modes x 3 providers)
#   COMPILE_MODE  torch.compile mode of the 'compiled' provider (default: max-autotune)
#   WHEELS        folder of wheels installed first with --no-deps --no-index (e.g. pretrainedmodels and
#                 facenet-pytorch, the two reference packages a GPU image usually lacks; default: .whl/ if
#                 it exists). A network whose reference package is missing is skipped with the reason.
set -uo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
mkdir -p "$1"
OUT="$(cd "$1" && pwd)"
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
STAGES="${STAGES:-install warmup tests cuda sanitizer check ops models inference roofline bench tune summary}"
MODELS="${MODELS:-googlenet,bn_inception,inception_v3,inception_v4,inception_resnet_v1,inception_resnet_v2}"
OP_DTYPES="${OP_DTYPES:-fp32,fp16,bf16}"
MODEL_DTYPES="${MODEL_DTYPES:-bf16}"
COMPILE_MODE="${COMPILE_MODE:-max-autotune}"
WHEELS="${WHEELS:-.whl}"
STATUS="$OUT/stages.tsv"
[[ -f "$STATUS" ]] || printf 'stage\texit\tseconds\tlog\n' > "$STATUS"

stage() {  # stage NAME COMMAND...: run it, log it to OUT/NAME.log, record exit status and duration
    local name="$1"
    shift
    echo "=== $name: $*" >&2
    local start=$SECONDS
    "$@" 2>&1 | tee "$OUT/$name.log"
    local rc=${PIPESTATUS[0]}
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - start))" "$name.log" >> "$STATUS"
    echo "=== $name: exit $rc in $((SECONDS - start)) s" >&2
}

install() {
    if [[ -d "$WHEELS" ]] && compgen -G "$WHEELS/*.whl" > /dev/null; then
        "$PY" -m pip install --no-deps --no-index "$WHEELS"/*.whl || return $?
    fi
    INCEPTION_CORE_SKIP_CUDA_BUILD="${INCEPTION_CORE_SKIP_CUDA_BUILD:-0}" \
        "$PY" -m pip install --no-deps --no-build-isolation -e . || return $?
    "$PY" -m inception_core info
    nvidia-smi || true
}

bench_cli() {
    local rc=0
    "$PY" -m inception_core bench --models "$MODELS" --compile-mode "$COMPILE_MODE" --json "$OUT/bench_infer.json" \
        --markdown "$OUT/bench_infer.md" --plot "$OUT/bench_infer.png" || rc=$?
    "$PY" -m inception_core bench --mode train --models "$MODELS" --compile-mode "$COMPILE_MODE" \
        --json "$OUT/bench_train.json" --markdown "$OUT/bench_train.md" --plot "$OUT/bench_train.png" || rc=$?
    return $rc
}

summary() {
    OUT="$OUT" "$PY" - <<'EOF'
import csv, os
from pathlib import Path
from inception_core import bench

out = Path(os.environ["OUT"])
for name in ("bench_ops", "bench_models"):
    src = out / f"{name}.json"
    if src.exists():
        meta, results = bench.results_from_pytest_benchmark(src)
        bench.write_markdown(out / f"{name}.md", meta, results)
lines = ["# GPU run summary", "", "| stage | exit | seconds | log |", "|---|---:|---:|---|"]
with open(out / "stages.tsv", encoding="utf-8") as f:
    for row in csv.DictReader(f, delimiter="\t"):
        lines.append(f"| {row['stage']} | {row['exit']} | {row['seconds']} | {row['log']} |")
for name in ("bench_infer", "bench_train"):
    src = out / f"{name}.json"
    if src.exists():
        meta, results = bench.read_json(src)
        lines += ["", f"## {name}: {bench.describe_run(meta)}", "", f"`{meta.get('command')}`", "",
                  bench.format_table(results, markdown=True)]
(out / "SUMMARY.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
EOF
}

for s in $STAGES; do
    case "$s" in
        install) stage install install ;;
        warmup) stage warmup "$PY" -m inception_core warmup --models "$MODELS" --dtype bf16 --batch-size 256,128 \
                    --mode infer,train ;;
        tune) stage tune "$PY" -m inception_core tune --models "$MODELS" --dtype bf16 --batch-size 256 --mode train \
                  --output "$OUT/tuned" ;;
        tests) stage tests "$PY" -m pytest tests -q -p no:cacheprovider --junitxml="$OUT/tests.xml" ;;
        cuda) stage cuda env INCEPTION_CORE_BACKEND=cuda "$PY" -m pytest tests/ops tests/csrc -q -p no:cacheprovider \
                  --junitxml="$OUT/tests_cuda.xml" ;;
        sanitizer) stage sanitizer compute-sanitizer --tool memcheck --error-exitcode 1 "$PY" tools/cuda_backend_forward.py \
                       --models inception_v3,inception_resnet_v2 --dtypes fp32,bf16 ;;
        check) stage check "$PY" -m inception_core check --json "$OUT/check.json" ;;
        ops) stage ops "$PY" -m pytest benchmarks/bench_conv_bn_act.py benchmarks/bench_pool2d.py -q \
                 -p no:cacheprovider --benchmark-only --benchmark-json="$OUT/bench_ops.json" \
                 --bench-dtypes "$OP_DTYPES" --bench-compile-mode "$COMPILE_MODE" ;;
        models) stage models "$PY" -m pytest benchmarks/bench_models.py -q -p no:cacheprovider --benchmark-only \
                    --benchmark-json="$OUT/bench_models.json" --bench-dtypes "$MODEL_DTYPES" \
                    --bench-models "$MODELS" --bench-compile-mode "$COMPILE_MODE" ;;
        inference) stage inference "$PY" -m pytest benchmarks/bench_inference.py -q -p no:cacheprovider \
                       --benchmark-only --benchmark-json="$OUT/bench_inference.json" --bench-models "$MODELS" ;;
        roofline) stage roofline "$PY" benchmarks/roofline.py "$OUT/roofline" --models "$MODELS" ;;
        bench) stage bench bench_cli ;;
        summary) summary ;;
        *) echo "unknown stage $s (expected install warmup tests cuda sanitizer check ops models inference roofline bench tune summary)" >&2; exit 2 ;;
    esac
done

if [[ -f "$OUT/SUMMARY.md" ]]; then
    cat "$OUT/SUMMARY.md"
fi
# exit status: 1 when any stage failed
awk -F'\t' 'NR > 1 && $2 != 0 { bad = 1 } END { exit bad }' "$STATUS"
