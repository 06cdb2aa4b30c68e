"""The benchmark core (``inception_core.bench``) and ``inception-core bench`` on CPU: timing, FLOP counts,
the peak table, the JSON/Markdown writers, the chart, a whole CLI run and its argument errors."""

import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest
import torch
import torchvision

from inception_core import bench, cli
from inception_core.shapes import CONV_SHAPES

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def test_time_callable_measures_each_round_after_the_warmup():
    calls = []

    def fn():
        calls.append(1)
        time.sleep(0.01)

    timing = bench.time_callable(fn, warmup=2, rounds=5, device="cpu")
    assert len(calls) == 7
    assert timing.rounds == 5 and len(timing.times_s) == 5 and timing.method == "perf_counter"
    assert 0.009 <= timing.median_s < 0.1
    assert 0 <= timing.iqr_s <= max(timing.times_s) - min(timing.times_s)
    assert timing.min_s == min(timing.times_s)
    single = bench.time_callable(lambda: None, warmup=0, rounds=1, device="cpu")
    assert single.rounds == 1 and single.iqr_s == 0.0
    with pytest.raises(ValueError, match="rounds"):
        bench.time_callable(lambda: None, rounds=0, device="cpu")


def test_interleaved_rounds_pair_the_providers_round_by_round():
    """Each round calls every provider once, in a rotating order; ratios are taken round by round, so a
    machine that slows down for a whole round leaves them alone (a provider timed in its own block would
    absorb the slowdown)."""
    order, state = [], {"slow": 1.0}

    def provider(name, seconds):
        def call():
            order.append(name)
            time.sleep(seconds * state["slow"])
            if name == "b" and len(order) >= 9:  # the machine slows down 3x from round 4 on
                state["slow"] = 3.0
        return call

    timings = bench.time_interleaved({"a": provider("a", 0.004), "b": provider("b", 0.008)}, warmup=1, rounds=6,
                                     device="cpu")
    assert order[:2] == ["a", "b"] and order[2:4] == ["a", "b"] and order[4:6] == ["b", "a"]  # warm-up, rotation
    assert [t.rounds for t in timings.values()] == [6, 6]
    ratio = bench.ratio_summary(timings["b"].times_s, timings["a"].times_s)
    assert ratio["rounds"] == 6 and 1.5 < ratio["median"] < 2.6 and ratio["q1"] <= ratio["median"] <= ratio["q3"]
    assert min(timings["b"].times_s) < 0.02 < max(timings["b"].times_s)  # the slowdown is in the times...
    with pytest.raises(ValueError, match="rounds"):
        bench.time_interleaved({"a": lambda: None}, rounds=0, device="cpu")
    with pytest.raises(ValueError, match="fns"):
        bench.time_interleaved({}, device="cpu")


def test_inception_v3_flops_at_299():
    """torchvision's published 5.713 GMACs (conv + linear, main network) at 299x299, times 2."""
    model = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    macs = bench.count_macs(model, 299)
    assert macs == pytest.approx(5.713e9, rel=0.01)
    # the same count from the shape catalogue: every conv of the main network, plus the 2048 -> 1000 classifier
    catalogue = sum(s.macs * s.count for s in CONV_SHAPES if s.model == "inception_v3" and not s.is_aux)
    assert macs == catalogue + 2048 * 1000
    assert bench.count_macs(model, 299, training=True) > macs  # the aux head runs in training only
    pair = bench.ModelPair("inception_v3", model, 299, "torchvision")
    assert bench.model_flops(pair, "infer") == pytest.approx(2 * 5.713e9, rel=0.01)
    assert bench.model_flops(pair, "train") == 6 * bench.count_macs(model, 299, training=True)


def test_peak_table_and_derived_metrics():
    assert bench.peak_for_name("NVIDIA H100 80GB HBM3").tflops["bf16"] == pytest.approx(989.4)
    assert bench.peak_for_name("NVIDIA H200").gbps == 4800.0
    assert bench.peak_for_name("NVIDIA H100 PCIe").tflops["bf16"] == 756.0
    assert bench.peak_for_name("NVIDIA GeForce GTX 1080") is None
    assert bench.device_peak("cpu") is None
    m = bench.derived_metrics(0.5, device="cpu", dtype=torch.float32, flops=2e12, nbytes=1e9, images=64)
    assert m["images_per_s"] == 128 and m["tflops"] == pytest.approx(4.0) and m["gbps"] == pytest.approx(2.0)
    assert m["peak_fraction"] is None and m["median_ms"] == 500


def _results():
    return [
        bench.Result("model", "inception_v3", "inception_core", "infer", "bf16", 256, 0.02, 0.001, 20, 12800.0,
                     914.0, None, 0.92, 3e-3, note="triton backend", times_s=[0.02] * 20),
        bench.Result("model", "inception_v3", "eager", "infer", "bf16", 256, 0.04, 0.002, 20, 6400.0,
                     457.0, None, 0.46, 4e-3),
        bench.Result("model", "inception_v3", "compiled", "infer", "bf16", 256, 0.03, 0.001, 20, 8533.3,
                     609.0, None, 0.62, 5e-3, note="mode=max-autotune, freezing"),
        bench.Result("model", "googlenet", "compiled", "infer", "bf16", 256, note="failed: RuntimeError: boom"),
    ]


def test_json_and_markdown_writers_round_trip(tmp_path):
    meta = bench.run_metadata("cpu", command="inception-core bench --dtype bf16", mode="infer", dtype="bf16",
                              batch=256)
    assert meta["format"] == bench.FORMAT and meta["torch"] == torch.__version__ and meta["device_type"] == "cpu"
    results = _results()
    path = tmp_path / "r.json"
    bench.write_json(path, meta, results)
    meta2, results2 = bench.read_json(path)
    assert meta2 == meta and results2 == results
    md = tmp_path / "r.md"
    bench.write_markdown(md, meta, results)
    text = md.read_text()
    assert "inception-core bench --dtype bf16" in text and "| network | provider | images/s |" in text
    assert "| inception_v3 | inception_core | 12,800.0 | 2.00x | 1.50x | 3.0e-03 | triton backend |" in text
    assert "failed: RuntimeError: boom" in text
    table = bench.format_table(results)
    assert "inception_core" in table and "2.00x" in table and "0.75x" in table
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"meta": {}, "rows": []}))
    with pytest.raises(ValueError, match="not an inception_core benchmark result"):
        bench.read_json(other)


def test_plot_without_matplotlib_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(ImportError, match=r"inception_core\[plot\]"):
        bench.plot_results(tmp_path / "x.png", {}, _results())


def test_training_step_runs_ours_and_the_reference():
    """GoogLeNet (two aux heads) one SGD step per call; ours on its training path, same logits."""
    pair = bench.build_pair("googlenet")
    results = bench.run_network(pair, providers=("inception_core", "eager"), device="cpu", dtype=torch.float32,
                                mode="train", batch=2, warmup=0, rounds=1)
    assert [r.provider for r in results] == ["inception_core", "eager"]
    assert all(r.ok and r.images_per_s > 0 for r in results), [r.note for r in results]
    assert all(r.max_rel_diff <= 1e-4 for r in results)
    assert results[0].note == "torch backend"
    with pytest.raises(ValueError, match="at least 2"):
        bench.ModelRunner(pair, "eager", device="cpu", dtype=torch.float32, mode="train", batch=1)


def test_cli_bench_end_to_end(tmp_path, capsys):
    out_json, out_md, out_png = tmp_path / "b.json", tmp_path / "b.md", tmp_path / "b.png"
    argv = ["bench", "--models", "inception_v3", "--batch-size", "1", "--device", "cpu", "--warmup", "0", "--rounds",
            "2", "--json", str(out_json), "--markdown", str(out_md)]
    if HAS_MATPLOTLIB:
        argv += ["--plot", str(out_png)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "network" in printed and "images/s" in printed and "vs eager" in printed and "max rel diff" in printed
    assert "compiled: skipped" in printed  # compile is off by default on CPU, and the output says so
    meta, results = bench.read_json(out_json)
    assert meta["command"] == "inception-core " + " ".join(argv) and meta["batch"] == 1 and meta["dtype"] == "fp32"
    assert [r.provider for r in results] == ["inception_core", "eager", "fx_fused"]
    ours = results[0]
    assert ours.ok and ours.images_per_s > 0 and ours.max_rel_diff <= 1e-4 and "torch backend" in ours.note
    assert results[2].ok and results[2].max_rel_diff <= 1e-4  # BN folded by torch.fx: the same function
    assert set(ours.speedups) == {"eager", "fx_fused"} and ours.speedups["eager"]["rounds"] == ours.rounds == 2
    assert len(meta["loadavg"]) == 3 and len(meta["loadavg_end"]) == 3
    assert "interleaved rounds" in printed and "load average" in printed
    assert "| inception_v3 | inception_core |" in out_md.read_text()
    if not HAS_MATPLOTLIB:
        pytest.skip("matplotlib is not installed (the 'plot' extra): the chart part did not run")
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, message", [
    (["--models", "bogus"], "--models: expected a comma list of googlenet"),
    (["--dtype", "int8"], "invalid choice: 'int8'"),
    (["--mode", "train", "--batch-size", "1"], "--batch-size: expected an integer >= 2"),
    (["--backend", "cuda"], "invalid choice: 'cuda'"),
    # issue 13 items 8, 9, 13: usage errors, one line each, naming the option
    (["--batch-size", "0"], "--batch-size: expected an integer >= 1, got 0"),
    (["--batch-size", "-3"], "--batch-size: expected an integer >= 1, got -3"),
    (["--rounds", "0"], "--rounds: expected an integer >= 1, got 0"),
    (["--warmup", "-1"], "--warmup: expected an integer >= 0, got -1"),
    (["--device", "tpu"], "--device: expected cpu or cuda[:i], got 'tpu'"),
    (["--device", "meta"], "--device: expected cpu or cuda[:i], got 'meta'"),
    (["--device", "cpu", "--json", "/proc/no/such/dir/b.json"], "--json /proc/no/such/dir/b.json: cannot be written"),
    (["--device", "cpu", "--markdown", "/"], "--markdown /: is a folder"),
])
def test_cli_bench_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_readme_table_renders_the_newest_gpu_result(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "render_readme_table", Path(__file__).resolve().parent.parent / "benchmarks" / "render_readme_table.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{render.START}\nold\n{render.END}\n\nrest\n")
    results = tmp_path / "results"
    results.mkdir()
    bench.write_json(results / "cpu.json", {"format": bench.FORMAT, "device_type": "cpu", "time": "2030"}, _results())
    assert render.main(["--results", str(results), "--readme", str(readme)]) == 0
    assert render.NO_RESULT in readme.read_text() and "rest" in readme.read_text()  # a CPU result is no GPU result
    for day, device in (("2026-01-01", "NVIDIA A100"), ("2026-02-01", "NVIDIA H100 80GB HBM3")):
        meta = {"format": bench.FORMAT, "device_type": "cuda", "device": device, "time": day, "mode": "infer",
                "dtype": "bf16", "batch": 256, "command": "inception-core bench"}
        (results / day).mkdir()
        bench.write_json(results / day / "bench_infer.json", meta, _results())
    assert render.main(["--results", str(results), "--readme", str(readme), "--check"]) == 1
    assert render.main(["--results", str(results), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "Measured on NVIDIA H100 80GB HBM3" in text and "A100" not in text
    assert "| inception_v3 | inception_core | 12,800.0 | 2.00x | 1.50x |" in text
    assert render.main(["--results", str(results), "--readme", str(readme), "--check"]) == 0
