"""The persistent autotune cache (inception_core/autotune_cache.py): key contents, atomic writes, hits
and misses across processes, corrupt entries, the environment variables, the tuning-cost counters.

The cache logic runs on CPU with a stand-in autotuner (the interpreter ships one config per kernel, so
the shipped kernels have nothing to tune there); a small kernel under ``triton.autotune`` itself (interpreted,
with a stand-in timer) goes through two processes; one test checks the key of a real conv launch, and a
GPU-only test checks that a second process does not tune the shipped kernels again.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import triton

import inception_core
from inception_core import autotune_cache as ac

_FAKE = textwrap.dedent('''
    import triton

    class FakeKernel:
        src = "def fake_kernel(x_ptr, N, C, FLAG): pass"

        def __init__(self):
            self.launches = []

        def __getitem__(self, grid):
            return lambda *args, **kw: self.launches.append(kw)


    class FakeAutotuner:
        """What launch_autotuned uses of triton.autotune: configs, keys, arg_names, fn, [grid], best_config."""

        def __init__(self, best=1):
            self.configs = [triton.Config({"BLOCK": b}, num_warps=w, num_stages=2) for b, w in ((32, 2), (64, 4))]
            self.keys = ["N", "C"]
            self.arg_names = ["x_ptr", "N", "C", "FLAG"]
            self.fn = FakeKernel()
            self.best = best
            self.tunings = 0

        def __getitem__(self, grid):
            def run(*args, **meta):
                self.tunings += 1
                self.best_config = self.configs[self.best]
                self.fn.launches.append({**meta, **self.best_config.all_kwargs()})
            return run
''')
_FAKE_NAMES: dict = {}
exec(_FAKE, _FAKE_NAMES)  # the same source runs in the child processes below
FakeAutotuner = _FAKE_NAMES["FakeAutotuner"]

CPU = torch.device("cpu")


def _grid(meta):
    return (1,)


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv(ac.CACHE_DIR_ENV, str(tmp_path))
    monkeypatch.delenv(ac.ENABLE_ENV, raising=False)
    ac.reset_autotune_stats(forget=True)
    ac._WARNED.clear()
    yield tmp_path
    ac.reset_autotune_stats(forget=True)


def _launch(tuner, n=8, c=16, dtype=torch.float32, flag=True):
    x = torch.randn(4, dtype=dtype)
    return ac.launch_autotuned("fake", tuner, _grid, (x, n, c), {"FLAG": flag}, CPU)


def test_key_holds_problem_device_and_versions():
    tuner = FakeAutotuner()
    x = torch.randn(4, dtype=torch.float16)
    key = ac.tuning_key("fake", tuner, (x, 8, 16), {"FLAG": True}, CPU)
    assert key["kernel"] == "fake"
    assert key["shape"] == {"N": 8, "C": 16}
    assert key["dtypes"] == {"x_ptr": "torch.float16"}
    assert key["flags"] == {"FLAG": True}
    assert key["torch"] == torch.__version__ and key["triton"] == triton.__version__
    assert key["inception_core"] == inception_core.__version__
    assert key["device"].startswith("cpu") and "cuda" in key
    assert key["source"] and key["configs"]
    json.dumps(key)  # plain JSON types
    digests = {ac._digest(ac.tuning_key("fake", tuner, args, meta, CPU)) for args, meta in [
        ((x, 8, 16), {"FLAG": True}), ((x, 8, 32), {"FLAG": True}), ((x, 8, 16), {"FLAG": False}),
        ((x.float(), 8, 16), {"FLAG": True})]}
    assert len(digests) == 4  # shape, flag and dtype each change the key
    other_configs = FakeAutotuner()
    other_configs.configs = other_configs.configs[:1] + [triton.Config({"BLOCK": 128}, num_warps=4)]
    assert ac.tuning_key("fake", other_configs, (x, 8, 16), {"FLAG": True}, CPU)["configs"] != key["configs"]


def test_missing_key_argument_is_named():
    with pytest.raises(ValueError, match=r"\['C'\]"):
        ac.tuning_key("fake", FakeAutotuner(), (torch.randn(2), 8), {"FLAG": True}, CPU)


def test_miss_tunes_once_then_memory_hits(cache_root):
    tuner = FakeAutotuner(best=1)
    assert _launch(tuner) is tuner.configs[1]
    assert _launch(tuner) is tuner.configs[1]
    assert tuner.tunings == 1
    # the second launch went straight to the kernel with the chosen config's launch options
    assert tuner.fn.launches[-1] == {"FLAG": True, "BLOCK": 64, "num_warps": 4, "num_ctas": 1, "num_stages": 2}
    stats = ac.autotune_stats()
    fake = stats["per_kernel"]["fake"]
    assert {k: fake[k] for k in ("tuned", "tune_s", "disk_hits", "memory_hits")} == {
        "tuned": 1, "tune_s": pytest.approx(stats["tune_s"]), "disk_hits": 0, "memory_hits": 1}
    assert stats["tuned"] == 1 and stats["tune_s"] >= 0 and stats["cache_dir"] == str(cache_root / "autotune")
    _launch(tuner, c=32)  # another shape: tuned again
    assert tuner.tunings == 2 and ac.autotune_stats()["tuned"] == 2


def test_entry_is_written_atomically_with_its_key(cache_root, monkeypatch):
    replaced = []
    real_replace = os.replace

    def spy(src, dst):
        replaced.append((Path(src), Path(dst), Path(src).read_text()))
        real_replace(src, dst)

    monkeypatch.setattr(ac.os, "replace", spy)
    tuner = FakeAutotuner()
    _launch(tuner)
    (src, dst, text), = replaced
    assert src.parent == dst.parent == cache_root / "autotune" / "fake"  # same folder: os.replace is atomic
    assert src.name.endswith(".tmp") and not src.exists()
    assert dst.suffix == ".json" and json.loads(text) == json.loads(dst.read_text())
    entry = json.loads(dst.read_text())
    assert entry["key"]["shape"] == {"N": 8, "C": 16} and entry["config"]["kwargs"] == {"BLOCK": 64}
    assert entry["tune_s"] >= 0
    assert [p.name for p in dst.parent.iterdir()] == [dst.name]  # no temporary file left behind


def _child(cache: Path, best: int) -> dict:
    code = _FAKE + textwrap.dedent(f'''
        import json, torch
        from inception_core import autotune_cache as ac
        tuner = FakeAutotuner(best={best})
        config = ac.launch_autotuned("fake", tuner, lambda m: (1,), (torch.ones(4), 8, 16), {{"FLAG": True}},
                                     torch.device("cpu"))
        print(json.dumps({{"tunings": tuner.tunings, "block": config.kwargs["BLOCK"],
                          "stats": ac.autotune_stats()}}))
    ''')
    env = {**os.environ, ac.CACHE_DIR_ENV: str(cache)}
    env.pop(ac.ENABLE_ENV, None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_process_does_not_tune(tmp_path):
    first = _child(tmp_path, best=1)
    assert first["tunings"] == 1 and first["stats"]["tuned"] == 1 and first["stats"]["disk_hits"] == 0
    # the second process would pick config 0 if it tuned: it must take config 1 from the disk instead
    second = _child(tmp_path, best=0)
    assert second["tunings"] == 0 and second["block"] == 64
    assert second["stats"]["tuned"] == 0 and second["stats"]["disk_hits"] == 1 and second["stats"]["tune_s"] == 0


def test_corrupt_entry_warns_and_is_replaced(cache_root):
    tuner = FakeAutotuner()
    _launch(tuner)
    (path,) = (cache_root / "autotune" / "fake").glob("*.json")
    path.write_text('{"format": 1, "key": {"trunc')
    ac.reset_autotune_stats(forget=True)
    with pytest.warns(RuntimeWarning, match="corrupt entry .*" + path.name):
        assert _launch(tuner) is tuner.configs[1]
    assert tuner.tunings == 2
    assert json.loads(path.read_text())["config"]["kwargs"] == {"BLOCK": 64}


@pytest.mark.parametrize("content", [b"\xff\xfe{not utf-8", b'{"format": 1, "key": "\xc3\x28"}', b"\x00" * 64,
                                     b"[1, 2]", b'"a string"'])
def test_undecodable_entry_warns_and_is_replaced(cache_root, content):
    tuner = FakeAutotuner()
    _launch(tuner)
    (path,) = (cache_root / "autotune" / "fake").glob("*.json")
    path.write_bytes(content)
    ac.reset_autotune_stats(forget=True)
    with pytest.warns(RuntimeWarning, match="corrupt entry .*" + path.name):
        assert _launch(tuner) is tuner.configs[1]
    assert tuner.tunings == 2
    assert json.loads(path.read_text())["config"]["kwargs"] == {"BLOCK": 64}
    ac.reset_autotune_stats(forget=True)
    _launch(tuner)  # the replaced entry is read back in a later "process"
    assert tuner.tunings == 2 and ac.autotune_stats()["disk_hits"] == 1


def test_entry_of_another_key_or_a_config_no_longer_shipped_is_a_miss(cache_root):
    tuner = FakeAutotuner()
    _launch(tuner)
    (path,) = (cache_root / "autotune" / "fake").glob("*.json")
    entry = json.loads(path.read_text())
    entry["config"]["kwargs"] = {"BLOCK": 999}  # a config the kernel no longer ships
    path.write_text(json.dumps(entry))
    ac.reset_autotune_stats(forget=True)
    _launch(tuner)
    assert tuner.tunings == 2
    entry["key"]["shape"]["N"] = 9  # a file whose key is not the one its name stands for
    path.write_text(json.dumps(entry))
    ac.reset_autotune_stats(forget=True)
    with pytest.warns(RuntimeWarning, match="does not hold this key"):
        _launch(tuner)
    assert tuner.tunings == 3


def test_cache_dir_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(ac.CACHE_DIR_ENV, str(tmp_path / "mine"))
    assert ac.cache_dir() == tmp_path / "mine" / "autotune"
    monkeypatch.delenv(ac.CACHE_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ac.cache_dir() == tmp_path / "xdg" / "inception_core" / "autotune"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert ac.cache_dir() == Path.home() / ".cache" / "inception_core" / "autotune"


def test_disk_layer_can_be_switched_off(cache_root, monkeypatch):
    monkeypatch.setenv(ac.ENABLE_ENV, "0")
    tuner = FakeAutotuner()
    _launch(tuner)
    _launch(tuner)
    assert tuner.tunings == 1  # still resolved once per process
    assert not (cache_root / "autotune").exists()
    assert ac.autotune_stats()["disk_cache"] is False


def test_unwritable_cache_dir_warns_and_keeps_going(cache_root):
    (cache_root / "autotune").write_text("a file where the folder should be")
    tuner = FakeAutotuner()
    with pytest.warns(RuntimeWarning, match="cannot write"):
        assert _launch(tuner) is tuner.configs[1]
    assert _launch(tuner) is tuner.configs[1] and tuner.tunings == 1


_REAL_KERNEL = textwrap.dedent('''
    import json, sys
    import torch, triton, triton.language as tl
    from inception_core import autotune_cache as ac

    @triton.jit
    def _scale_kernel(x_ptr, y_ptr, N, FACTOR: tl.constexpr, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < N
        tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask) * FACTOR, mask=mask)

    # a stand-in timer (no GPU timer under the interpreter): the config benchmarked in position
    # `fastest` wins, so two processes disagree unless the second one reads the first one's choice
    calls = []

    def bench(fn, quantiles):
        fn()
        calls.append(1)
        return [1.0 if len(calls) - 1 == int(sys.argv[1]) else 2.0] * 3

    configs = [triton.Config({"BLOCK": 32}, num_warps=1), triton.Config({"BLOCK": 64}, num_warps=1)]
    kernel = triton.autotune(configs=configs, key=["N"], do_bench=bench)(_scale_kernel)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x = torch.randn(100, device=device)
    y = torch.full_like(x, float("nan"))
    config = ac.launch_autotuned("scale", kernel, lambda m: (triton.cdiv(100, m["BLOCK"]),), (x, y, 100),
                                 {"FACTOR": 2.0}, x.device)
    print(json.dumps({"block": config.kwargs["BLOCK"], "benchmarked": len(calls),
                      "right": bool(torch.equal(y, 2 * x)), "stats": ac.autotune_stats()}))
''')


def test_real_autotuner_across_processes(tmp_path):
    # triton.autotune itself (interpreted on CPU, with a stand-in timer): tuned in the first process, read
    # from the disk in the second, whose own timer would have picked the other config.
    script = tmp_path / "scale.py"
    script.write_text(_REAL_KERNEL)
    env = {**os.environ, ac.CACHE_DIR_ENV: str(tmp_path / "cache")}
    env.pop(ac.ENABLE_ENV, None)
    if not torch.cuda.is_available():
        env["TRITON_INTERPRET"] = "1"
    runs = []
    for fastest in ("1", "0"):
        out = subprocess.run([sys.executable, str(script), fastest], env=env, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    first, second = runs
    assert first["right"] and first["block"] == 64 and first["benchmarked"] == 2 and first["stats"]["tuned"] == 1
    assert second["right"] and second["block"] == 64 and second["benchmarked"] == 0
    assert second["stats"]["disk_hits"] == 1 and second["stats"]["tuned"] == 0


def test_key_of_a_real_conv_launch(monkeypatch, device):
    # the key autotuning would file a real conv launch under (INCEPTION_CORE_AUTOTUNE=1 with a config list);
    # its backward's dgrad and wgrad take the same launch path, so they are tuned (and cached) too
    from inception_core import launch
    from inception_core.kernels.configs import GPU_CONFIGS

    seen = []
    monkeypatch.setenv(launch.AUTOTUNE_ENV, "1")
    monkeypatch.setattr(launch, "shipped_configs", lambda kernel, gpu=False: GPU_CONFIGS[kernel])
    launch.reset_launch_stats(forget=True)

    def record(kernel, autotuner, grid, args, meta, dev):
        seen.append(ac.tuning_key(kernel, autotuner, args, meta, dev))
        autotuner.fn[grid](*args, **meta, **autotuner.configs[0].all_kwargs())
        return autotuner.configs[0]

    monkeypatch.setattr(ac, "launch_autotuned", record)
    x = torch.randn(1, 16, 5, 5, device=device).contiguous(memory_format=torch.channels_last).requires_grad_()
    w = torch.randn(32, 16, 3, 3, device=device, requires_grad=True)
    with inception_core.backend("triton"):
        inception_core.ops.conv_bn_act(x, w, torch.rand(32, device=device), torch.randn(32, device=device),
                                       padding=1).sum().backward()
    key, dx_key, dw_key = seen
    assert [k["kernel"] for k in seen] == ["conv_bn_act_fwd", "conv_bwd_dx", "conv_bwd_dw"]
    assert dx_key["shape"]["C"] == 16 and dw_key["shape"]["K"] == 32
    assert key["shape"] == {"N": 1, "C": 16, "H": 5, "W": 5, "K": 32, "OH": 5, "OW": 5, "R": 3, "S": 3,
                            "STRIDE_H": 1, "STRIDE_W": 1, "PAD_H": 1, "PAD_W": 1}
    assert key["dtypes"]["x_ptr"] == "torch.float32" and key["flags"]["ACT_RELU"] is True


def test_second_process_skips_tuning_of_the_real_kernels(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device: the interpreter ships one config per kernel, nothing to tune")
    code = textwrap.dedent('''
        import json, torch, inception_core as ic
        from inception_core import autotune_cache as ac
        x = torch.randn(4, 64, 17, 17, device="cuda", dtype=torch.float16).contiguous(memory_format=torch.channels_last)
        w = torch.randn(96, 64, 3, 3, device="cuda", dtype=torch.float16)
        ic.ops.conv_bn_act(x, w, padding=1)
        ic.ops.max_pool2d(x, 3, 2)
        torch.cuda.synchronize()
        print(json.dumps(ac.autotune_stats()))
    ''')
    env = {**os.environ, ac.CACHE_DIR_ENV: str(tmp_path)}
    env.pop(ac.ENABLE_ENV, None)
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert runs[0]["tuned"] >= 1 and runs[0]["tune_s"] > 0
    assert runs[1]["tuned"] == 0 and runs[1]["disk_hits"] == runs[0]["tuned"]
