"""GPU first light: the most valuable evidence one short GPU session can give, in one command.

Stages, in priority order, each in its own process with its own time box under one global deadline;
each writes its results as it finishes (a stage that fails or runs out of time never loses the ones
before it), and SUMMARY.md is rewritten after every stage:

  a. setup: ``pip install --no-deps --no-build-isolation -e .`` (csrc build skipped; wheels in .whl/
     first), ``inception-core info``, ``nvidia-smi``, then ``inception-core warmup`` of what b-e launch;
  b. correctness on CUDA: ``inception-core check`` (every fused forward op over the distinct conv and
     pool shapes of Inception-v3, Inception-v4, Inception-ResNet-v2 and GoogLeNet, fp32 and bf16), the
     training and backward op tests over the networks' geometries (tests/ops, ``-k network``), and the
     six networks' logits against their references at batch 8 (fp32, and bf16 autocast);
  c. inference, batch 256, bf16 autocast, channels_last, Inception-v3/v4/Inception-ResNet-v2: ours
     (fused eager; ``optimize_for_inference`` with its CUDA graph), the reference eager and the reference
     under ``torch.compile`` (default mode, when the time box allows), images/s timed in interleaved rounds;
  d. the per-conv roofline of Inception-v3 (benchmarks/roofline.py: ours vs cuDNN vs the floor);
  e. a training step, batch 128 bf16, Inception-v3 and Inception-ResNet-v2: ours vs eager AMP;
  f. with the time left: ``inception-core tune`` over Inception-v3's problems, the table into OUTDIR.

Files (8 at most, plus SUMMARY.md): stages.log (every stage's output), stages.json, b_correctness.json,
c_inference.json, d_roofline/roofline.md and .json, e_training.json, f_tuned/<device>.json.

``--cpu-dry-run`` runs every stage on the CPU at tiny sizes (GoogLeNet at 64x64 for the speed stages;
the torch backend, and the Triton interpreter where a stage is about our kernels: check, the op tests,
tune), so CI proves the script end to end; the long form of the same stages
(the whole suite on CUDA, every op benchmark, all six networks) is benchmarks/gpu_run.sh.

Usage: python benchmarks/gpu_first_light.py OUTDIR [--cpu-dry-run] [--budget SECONDS] [--stages abcdef]
Runs under torch >= 2.4 and triton >= 3.0 (the GPU machine has torch 2.11 and triton 3.6).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (key, name, time box in seconds on a GPU, on a CPU dry run); f takes what is left. The dry run's boxes
# only catch a hang: a shared 2-core CI machine can be several times slower than a quiet one.
STAGES = [("a", "setup", 110, 150), ("b", "correctness", 150, 200), ("c", "inference", 120, 200),
          ("d", "roofline", 50, 100), ("e", "training", 60, 150), ("f", "tune", None, 150)]
GPU_BUDGET_S = 540
DRY_BUDGET_S = 960
RESERVE_S = 5  # kept for the last SUMMARY.md
GPU_NETS_B = ("inception_v3", "inception_v4", "inception_resnet_v2", "googlenet")
ALL_NETS = ("googlenet", "bn_inception", "inception_v3", "inception_v4", "inception_resnet_v1",
            "inception_resnet_v2")


def _py(*args: str) -> list[str]:
    return [sys.executable, *args]


def _run(cmd: list[str], env: dict | None = None, timeout: float | None = None) -> int:
    """Run a command with its output going to this stage's log (our stdout); returns its exit status
    (124 when it ran past ``timeout`` seconds and was killed)."""
    print(f"$ {' '.join(cmd)}", flush=True)
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        print(f"killed after {timeout:.0f} s: {' '.join(cmd)}", flush=True)
        return 124


def _write_json(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------------------
# stages (each runs in its own process: ``--run-stage KEY``)
# ------------------------------------------------------------------------------------------------------

def stage_a(out: Path, dry: bool, deadline: float) -> int:
    wheels = sorted((ROOT / ".whl").glob("*.whl"))
    install = _py("-m", "pip", "install", "--no-deps", "--no-build-isolation", "-e", ".")
    if dry:
        print(f"dry run: would run {' '.join(install)} (INCEPTION_CORE_SKIP_CUDA_BUILD=1)"
              + (f" after {len(wheels)} wheels from .whl/" if wheels else ""), flush=True)
    else:
        if wheels:
            _run(_py("-m", "pip", "install", "--no-deps", "--no-index", *map(str, wheels)))
        if _run(install, {"INCEPTION_CORE_SKIP_CUDA_BUILD": "1"}) != 0:
            return 1
    rc = _run(_py("-m", "inception_core", "info"))
    try:
        _run(["nvidia-smi"])
    except FileNotFoundError:
        print("nvidia-smi: not found", flush=True)
    if dry:  # planning runs; compiling 20+ variants on 2 CPU cores is what the warmup test covers
        rc |= _run(_py("-m", "inception_core", "warmup", "--models", "googlenet", "--batch-size", "1",
                       "--image-size", "16", "--target", "sm_90", "--list"))
        return rc
    nets = ",".join(GPU_NETS_B)
    # inference (b's logits at batch 8 with bf16 and fp32 too; c at 256 in bf16), then training (e)
    for models, dtypes, batches, mode in ((nets, "bf16", "256,8,2", "infer"), (nets, "fp32", "8,2", "infer"),
                                          ("inception_v3,inception_resnet_v2", "bf16", "128", "train")):
        if time.time() > deadline - 20:
            print("warmup: stopping, the stage's time box is nearly used", flush=True)
            break
        rc |= _run(_py("-m", "inception_core", "warmup", "--models", models, "--dtype", dtypes, "--batch-size",
                       batches, "--mode", mode), timeout=deadline - time.time() - 5)
    return rc


def _logits_rows(dry: bool, deadline: float) -> list[dict]:
    import torch

    import inception_core as ic
    from inception_core.bench.references import ReferenceUnavailable, build_pair
    from inception_core.testing import rel_err

    device = "cpu" if dry else "cuda"
    nets = ("googlenet",) if dry else ALL_NETS
    rows = []
    for name in nets:
        if time.time() > deadline - 10:
            rows.append({"network": name, "status": "skipped: time box"})
            continue
        try:
            pair = build_pair(name, input_size=64 if dry else None)
        except ReferenceUnavailable as e:
            rows.append({"network": name, "status": f"skipped: {e}"})
            continue
        ref = pair.reference.to(device).eval()
        ours = ic.convert(__import__("copy").deepcopy(pair.reference)).to(device).eval()
        x = torch.randn(2 if dry else 8, 3, pair.input_size, pair.input_size, device=device)
        x = x.contiguous(memory_format=torch.channels_last)
        for dtype in ("fp32",) if dry else ("fp32", "bf16"):
            low = dtype == "bf16"
            with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16, enabled=low):
                with ic.backend("torch" if dry else "triton"):
                    y = ours(x)
                y_ref = ref(x)
            if low:  # the reference's own bf16 error is the yardstick
                with torch.no_grad():
                    exact = ref(x)
                err, ref_err = rel_err(y, exact), rel_err(y_ref, exact)
                ok = err <= max(2 * ref_err, 1e-3)
            else:
                err, ref_err = rel_err(y, y_ref), 0.0
                ok = err <= (1e-4 if dry else 1e-2)  # TF32 on a GPU
            rows.append({"network": name, "dtype": dtype, "rel_err": float(err), "ref_bf16_err": float(ref_err),
                         "status": "pass" if ok else "FAIL"})
            print(f"logits {name} {dtype}: rel err {err:.2e} ({rows[-1]['status']})", flush=True)
    return rows


# stage b's op tests (pytest arguments); tests/test_gpu_first_light.py checks that each selects tests
DRY_RUN_OP_TESTS = ["tests/ops/test_conv_bn_act_backward.py", "-k",
                    "test_network_geometries_fp32 and Mixed_5b and branch1x1 and triton"]
GPU_OP_TESTS = ["tests/ops/test_conv_bn_act_train.py", "tests/ops/test_conv_bn_act_backward.py",
                "tests/ops/test_pool2d_backward.py", "-k", "network or low_precision"]


def stage_b(out: Path, dry: bool, deadline: float) -> int:
    result: dict = {}
    path = out / "b_correctness.json"
    check_json = out / ".b_check.json"
    if dry:
        check = ["--models", "inception_resnet_v1", "--ops", "pool", "--dtypes", "fp32", "--batch-size", "1"]
        pytest_k = DRY_RUN_OP_TESTS
    else:
        check = ["--models", ",".join(GPU_NETS_B), "--dtypes", "fp32,bf16", "--batch-size", "2"]
        pytest_k = GPU_OP_TESTS
    # the logits first (the six networks end to end), then check, then the op tests, each with a share
    # of the time box so that one slow part cannot starve the others
    result["logits"] = _logits_rows(dry, deadline - 0.6 * max(0.0, deadline - time.time()))
    _write_json(path, result)
    left = deadline - time.time()
    rc_check = _run(_py("-m", "inception_core", "check", "--json", str(check_json), *check),
                    timeout=max(5.0, 0.55 * left))
    rows = json.loads(check_json.read_text()) if check_json.exists() else []
    rows = rows.get("rows", rows) if isinstance(rows, dict) else rows
    result["check"] = {"exit": rc_check, "rows": len(rows),
                       "failed": [r for r in rows if isinstance(r, dict) and not r.get("passed", True)][:50]}
    check_json.unlink(missing_ok=True)
    _write_json(path, result)
    rc_tests = _run(_py("-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_k),
                    timeout=max(5.0, deadline - time.time() - 3))
    result["op_tests"] = {"exit": rc_tests, "selection": pytest_k}
    _write_json(path, result)
    bad = any(r.get("status") == "FAIL" for r in result["logits"])
    return int(rc_check != 0 or rc_tests != 0 or bad)


def _time_providers(fns: dict, device, warmup: int, rounds: int, batch: int) -> dict:
    from inception_core.bench.timing import time_interleaved

    timings = time_interleaved(fns, warmup=warmup, rounds=rounds, device=device)
    base = timings.get("eager")
    out = {}
    for name, t in timings.items():
        row = {"median_ms": t.median_s * 1e3, "iqr_ms": t.iqr_s * 1e3, "images_per_s": batch / t.median_s,
               "rounds": t.rounds, "method": t.method}
        if base is not None and name != "eager":  # per-round ratios: the rounds are interleaved
            ratios = sorted(b / o for b, o in zip(base.times_s, t.times_s, strict=True))
            row["speedup_vs_eager_median"] = ratios[len(ratios) // 2]
        out[name] = row
    return out


def stage_c(out: Path, dry: bool, deadline: float) -> int:
    """First pass: ours (eager, and the CUDA graph of optimize_for_inference) and the reference eager for
    each network; second pass, with the time left: the reference under torch.compile (default mode) with
    ours and eager again, interleaved, network by network (its compile takes a minute per network)."""
    import torch

    import inception_core as ic
    from inception_core.bench.references import build_pair
    from inception_core.bench.runner import ModelRunner

    device = torch.device("cpu" if dry else "cuda")
    nets = ("googlenet",) if dry else ("inception_v3", "inception_v4", "inception_resnet_v2")
    batch, dtype = (2, torch.float32) if dry else (256, torch.bfloat16)
    path = out / "c_inference.json"
    result = {"batch": batch, "dtype": str(dtype), "device": str(device), "networks": {}}
    rc = 0
    for with_compile in (False, True):
        for name in nets:
            key = f"{name}+compiled" if with_compile else name
            start = time.time()
            if with_compile and not dry and deadline - start < 100:
                result["networks"][key] = {"error": f"skipped: {deadline - start:.0f} s left in the time box"}
                _write_json(path, result)
                continue
            try:
                pair = build_pair(name, input_size=64 if dry else None)
                kw = dict(device=device, dtype=dtype, mode="infer", batch=batch)
                ours = ModelRunner(pair, "inception_core", backend="torch" if dry else "auto", **kw)
                fns = {"ours": ours, "eager": ModelRunner(pair, "eager", **kw)}
                if with_compile:
                    compiled = ModelRunner(pair, "compiled", **kw)
                    if dry:  # dynamo's tracing only: inductor's C++ build would dominate a CPU run
                        compiled.module = torch.compile(compiled.model, backend="eager")
                    fns["compiled"] = compiled
                else:
                    example = ours.x.to(dtype) if dtype != torch.float32 else ours.x
                    graph = ic.optimize_for_inference(ours.model, example)
                    fns["ours_graph"] = lambda g=graph, x=example: g(x)
                for fn in fns.values():  # first calls (compiles, graph capture) outside the timed rounds
                    fn()
                rounds = 2 if dry else max(3, min(10, int((deadline - time.time()) / (4 * len(nets)))))
                result["networks"][key] = _time_providers(fns, device, warmup=1 if dry else 3, rounds=rounds,
                                                          batch=batch)
                result["networks"][key]["_seconds"] = time.time() - start
                del ours, fns
            except Exception as e:
                traceback.print_exc()
                result["networks"][key] = {"error": f"{type(e).__name__}: {e}"}
                rc = 1
            result["launch_stats"] = {k: v for k, v in ic.launch_stats().items() if k != "per_kernel"}
            _write_json(path, result)
            if not dry:
                torch.cuda.empty_cache()
    return rc


def stage_d(out: Path, dry: bool, deadline: float) -> int:
    args = ["--models", "inception_v3", "--device-peak", "h200"]
    args += ["--batch", "2", "--no-measure"] if dry else ["--batch", "256", "--dtype", "bf16", "--rounds", "10"]
    return _run(_py(str(ROOT / "benchmarks" / "roofline.py"), str(out / "d_roofline"), *args))


def stage_e(out: Path, dry: bool, deadline: float) -> int:
    import torch

    from inception_core.bench.references import build_pair
    from inception_core.bench.runner import ModelRunner

    device = torch.device("cpu" if dry else "cuda")
    nets = ("googlenet",) if dry else ("inception_v3", "inception_resnet_v2")
    batch, dtype = (2, torch.float32) if dry else (128, torch.bfloat16)
    path = out / "e_training.json"
    result = {"batch": batch, "dtype": str(dtype), "device": str(device), "networks": {}}
    rc = 0
    for name in nets:
        start = time.time()
        try:
            pair = build_pair(name, input_size=64 if dry else None)
            kw = dict(device=device, dtype=dtype, mode="train", batch=batch)
            fns = {"ours": ModelRunner(pair, "inception_core", backend="torch" if dry else "auto", **kw),
                   "eager": ModelRunner(pair, "eager", **kw)}
            for fn in fns.values():
                fn()
            result["networks"][name] = _time_providers(fns, device, warmup=0 if dry else 2, rounds=1 if dry else 8,
                                                       batch=batch)
            result["networks"][name]["_seconds"] = time.time() - start
            del fns
        except Exception as e:
            traceback.print_exc()
            result["networks"][name] = {"error": f"{type(e).__name__}: {e}"}
            rc = 1
        _write_json(path, result)
        if not dry:
            torch.cuda.empty_cache()
    return rc


def stage_f(out: Path, dry: bool, deadline: float) -> int:
    left = int(deadline - time.time()) - 40  # a problem started just before the limit still compiles its configs
    args = ["--models", "inception_v3", "--output", str(out / "f_tuned"), "--time-limit", str(max(5, left))]
    env = None
    if dry:
        args = ["--models", "googlenet", "--dtype", "fp32", "--batch-size", "4", "--image-size", "16", "--device",
                "cpu", "--device-name", "dry run", "--max-problems", "1", "--max-configs", "2", "--repeats", "1",
                "--output", str(out / "f_tuned")]
        env = {"TRITON_INTERPRET": "1"}
    else:
        args += ["--dtype", "bf16", "--batch-size", "256"]
    return _run(_py("-m", "inception_core", "tune", *args), env)


STAGE_FUNCS = {"a": stage_a, "b": stage_b, "c": stage_c, "d": stage_d, "e": stage_e, "f": stage_f}


# ------------------------------------------------------------------------------------------------------
# the driver: time boxes, the global deadline, stages.json and SUMMARY.md
# ------------------------------------------------------------------------------------------------------

def _table(rows: list[list], head: list[str]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + [
        "| " + " | ".join(str(c) for c in r) + " |" for r in rows]


def _speed_lines(path: Path, title: str) -> list[str]:
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except ValueError as e:
        return [f"## {title}", "", f"unreadable {path.name}: {e}", ""]
    rows = []
    for net, provs in data.get("networks", {}).items():
        if "error" in provs:
            rows.append([net, "error", provs["error"][:120], "", ""])
            continue
        for prov, r in provs.items():
            if prov.startswith("_"):
                continue
            rows.append([net, prov, f"{r['images_per_s']:.1f}", f"{r['median_ms']:.2f}",
                         f"{r['speedup_vs_eager_median']:.3f}" if "speedup_vs_eager_median" in r else ""])
    return [f"## {title} (batch {data.get('batch')}, {data.get('dtype')}, {data.get('device')})", "",
            *_table(rows, ["network", "provider", "images/s", "median ms", "x vs eager (median of rounds)"]), ""]


def write_summary(out: Path, status: list[dict], meta: dict) -> None:
    lines = ["# GPU first light", "", f"`{meta['command']}`", "",
             f"{meta['mode']}; budget {meta['budget_s']} s; started {meta['started_utc']}", ""]
    lines += _table([[s["key"], s["name"], s["status"], f"{s.get('seconds', 0):.0f}", s.get("box_s", "")]
                     for s in status], ["stage", "name", "status", "seconds", "time box s"])
    lines.append("")
    for s in status:
        if s.get("error_tail"):
            lines += [f"### stage {s['key']} ({s['name']}): {s['status']}", "", "```", *s["error_tail"], "```", ""]
    b = out / "b_correctness.json"
    if b.exists():
        try:
            data = json.loads(b.read_text())
            lines += ["## b. correctness", ""]
            if "check" in data:
                c = data["check"]
                lines.append(f"- inception-core check: exit {c['exit']}, {c['rows']} rows, {len(c['failed'])} failed")
            if "op_tests" in data:
                lines.append(f"- training/backward op tests: exit {data['op_tests']['exit']}")
            lines.append("")
            rows = [[r["network"], r.get("dtype", ""), f"{r['rel_err']:.2e}" if "rel_err" in r else "",
                     f"{r['ref_bf16_err']:.2e}" if r.get("ref_bf16_err") else "", r["status"][:100]]
                    for r in data.get("logits", [])]
            if rows:
                lines += _table(rows, ["network", "dtype", "rel err vs reference", "reference's own bf16 err",
                                       "status"]) + [""]
        except (ValueError, KeyError) as e:
            lines += [f"unreadable b_correctness.json: {e}", ""]
    lines += _speed_lines(out / "c_inference.json", "c. inference")
    roof = out / "d_roofline" / "roofline.md"
    if roof.exists():
        lines += ["## d. roofline (first lines of d_roofline/roofline.md)", "",
                  *roof.read_text().splitlines()[:24], ""]
    lines += _speed_lines(out / "e_training.json", "e. training step")
    tables = sorted((out / "f_tuned").glob("*.json")) if (out / "f_tuned").exists() else []
    for t in tables:
        try:
            entries = json.loads(t.read_text())["entries"]
            lines += ["## f. tune", "", f"{len(entries)} problems tuned into f_tuned/{t.name}", ""]
        except (ValueError, KeyError) as e:
            lines += [f"unreadable {t.name}: {e}", ""]
    tmp = out / ".SUMMARY.md.tmp"
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, out / "SUMMARY.md")


def _log_tail(log: Path, offset: int, n: int = 15) -> list[str]:
    with open(log, "rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace")
    return text.splitlines()[-n:]


def drive(out: Path, dry: bool, budget: float, keys: str) -> int:
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    deadline = start + budget
    meta = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "mode": "CPU dry run (tiny sizes, torch backend and the Triton interpreter)" if dry else "GPU",
            "budget_s": budget, "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))}
    log = out / "stages.log"
    status = [{"key": k, "name": n, "status": "pending" if k in keys else "not selected"}
              for k, n, _, _ in STAGES]
    write_summary(out, status, meta)
    for entry, (key, name, gpu_box, dry_box) in zip(status, STAGES, strict=True):
        if key not in keys:
            continue
        left = deadline - time.time() - RESERVE_S
        box = dry_box if dry else gpu_box
        timeout = left if box is None else min(box, left)
        entry["box_s"] = round(timeout)
        if timeout < 10:
            entry["status"] = "skipped: global deadline"
            write_summary(out, status, meta)
            continue
        with open(log, "ab") as f:
            f.write(f"\n===== stage {key} ({name}), time box {timeout:.0f} s =====\n".encode())
            offset = f.tell()
            f.flush()
            t0 = time.time()
            cmd = _py(str(Path(__file__).resolve()), str(out), "--run-stage", key, "--stage-deadline",
                      str(t0 + timeout), *(["--cpu-dry-run"] if dry else []))
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout)
                entry["status"] = "ok" if rc == 0 else f"failed (exit {rc})"
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                rc = None
                entry["status"] = f"timed out after {timeout:.0f} s"
        entry["seconds"] = time.time() - t0
        if rc != 0:
            entry["error_tail"] = _log_tail(log, offset)
        _write_json(out / "stages.json", {"meta": meta, "stages": status})
        write_summary(out, status, meta)
    print((out / "SUMMARY.md").read_text())
    return 0 if all(s["status"] in ("ok", "not selected") for s in status) else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="folder for the results (created)")
    p.add_argument("--cpu-dry-run", action="store_true", help="every stage on the CPU at tiny sizes")
    p.add_argument("--budget", type=float, default=None,
                   help=f"global deadline in seconds (default {GPU_BUDGET_S} on a GPU, {DRY_BUDGET_S} dry)")
    p.add_argument("--stages", default="abcdef", help="which stages (default abcdef)")
    p.add_argument("--run-stage", help=argparse.SUPPRESS)
    p.add_argument("--stage-deadline", type=float, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    unknown = set(a.stages) - set(STAGE_FUNCS)
    if unknown or not a.stages:
        p.error(f"--stages: expected letters of abcdef, got {a.stages!r}")
    if a.run_stage:  # (a dry run interprets Triton only where a stage asks: check, the op tests, tune)
        return STAGE_FUNCS[a.run_stage](a.out, a.cpu_dry_run, a.stage_deadline or time.time() + 600)
    if not a.cpu_dry_run:
        import torch

        if not torch.cuda.is_available():
            p.error("no CUDA device: run with --cpu-dry-run on a machine without a GPU")
    return drive(a.out, a.cpu_dry_run, a.budget or (DRY_BUDGET_S if a.cpu_dry_run else GPU_BUDGET_S), a.stages)


if __name__ == "__main__":
    sys.exit(main())
