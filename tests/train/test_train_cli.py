"""``inception-core train`` / ``python -m inception_core.train``: bad arguments exit with status 2 and
one line naming the flag and what was expected."""

import pytest

from inception_core.cli import main as cli_main
from inception_core.train import main as module_main


def _error(capsys, argv, entry=cli_main) -> str:
    with pytest.raises(SystemExit) as info:
        entry(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


def test_unknown_network(capsys, tmp_path):
    err = _error(capsys, ["train", "--model", "resnet50", "--output", str(tmp_path)])
    assert "--model: unknown network 'resnet50'" in err and "inception_v3" in err


def test_unknown_network_module_entry(capsys, tmp_path):
    err = _error(capsys, ["--model", "resnet50", "--output", str(tmp_path)], entry=module_main)
    assert "--model: unknown network 'resnet50'" in err


def test_missing_data_directory(capsys, tmp_path):
    err = _error(capsys, ["train", "--data", str(tmp_path / "imagenet"), "--output", str(tmp_path / "out")])
    assert "--data" in err and "is not a directory" in err


def test_data_directory_without_splits(capsys, tmp_path):
    (tmp_path / "data" / "train").mkdir(parents=True)
    err = _error(capsys, ["train", "--data", str(tmp_path / "data"), "--output", str(tmp_path / "out")])
    assert "has no val/ subdirectory" in err


def test_image_size_below_the_networks_minimum(capsys, tmp_path):
    err = _error(capsys, ["train", "--model", "inception_v3", "--image-size", "75", "--output", str(tmp_path)])
    assert "--image-size: inception_v3 with its auxiliary head" in err and ">= 299" in err


@pytest.mark.parametrize("argv, flag", [
    (["--batch-size", "1"], "--batch-size: expected >= 2"),
    (["--lr", "0"], "--lr: expected > 0"),
    (["--clip-grad", "-1"], "--clip-grad"),
    (["--ema-decay", "1.5"], "--ema-decay"),
    (["--label-smoothing", "1"], "--label-smoothing"),
    (["--max-steps", "0"], "--max-steps"),
])
def test_bad_numbers(capsys, tmp_path, argv, flag):
    assert flag in _error(capsys, ["train", *argv, "--output", str(tmp_path)])


def test_corrupt_checkpoint_via_cli(capsys, tmp_path):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"\x00" * 64)
    err = _error(capsys, ["train", "--resume", str(bad), "--output", str(tmp_path / "out"), "--model", "googlenet",
                          "--image-size", "32", "--device", "cpu"])
    assert f"--resume {bad}" in err and "corrupt" in err


def test_cli_trains(capsys, tmp_path):
    """The subcommand runs the recipe end to end."""
    code = cli_main(["train", "--model", "googlenet", "--image-size", "32", "--batch-size", "2", "--num-classes", "3",
                     "--train-samples", "4", "--val-samples", "2", "--epochs", "1", "--output", str(tmp_path),
                     "--device", "cpu", "--backend", "torch", "--no-progress"])
    assert code == 0
    assert (tmp_path / "last.pt").is_file() and (tmp_path / "metrics.jsonl").is_file()
    err = capsys.readouterr().err
    assert "epoch 0: step 2" in err
    # before the first step: what runs, on what, from which data, and where its files go
    assert "inception-core train: googlenet (" in err and "3 classes, 32x32 input) on cpu, torch backend, fp32" in err
    assert "data: synthetic (generated from --seed 0, no download): 4 training and 2 held-out images" in err
    assert "steps: 1 epoch x 2 steps of 2 images per process" in err
    assert f"files: {tmp_path / 'last.pt'} (checkpoint, each epoch), {tmp_path / 'metrics.jsonl'}" in err
    assert err.index("inception-core train:") < err.index("epoch 0: step 2")


@pytest.mark.parametrize("device", ["tpu", "meta"])
def test_unknown_device_is_one_line(capsys, tmp_path, device):
    err = _error(capsys, ["train", "--device", device, "--output", str(tmp_path / "out")])
    assert f"--device: expected cpu or cuda[:i], got '{device}'" in err and "Traceback" not in err


def test_output_that_is_a_file(capsys, tmp_path):
    (tmp_path / "file").write_text("")
    err = _error(capsys, ["train", "--output", str(tmp_path / "file"), "--model", "googlenet", "--image-size", "32",
                          "--device", "cpu"])
    assert f"--output {tmp_path / 'file'}: is a file, expected a directory" in err


def test_backend_that_cannot_run_is_refused_up_front(capsys, tmp_path, monkeypatch):
    # what a CPU machine without the interpreter reports for triton (no step may run first)
    monkeypatch.setattr("inception_core.backends.triton_status", lambda device: "no interpreter here")
    monkeypatch.setattr("inception_core.train.runner.build_datasets", _must_not_run)
    err = _error(capsys, ["train", "--backend", "triton", "--output", str(tmp_path / "out"), "--model", "googlenet",
                          "--image-size", "32", "--device", "cpu"])
    assert "--backend triton: cannot run on cpu: no interpreter here" in err


def _must_not_run(*args, **kwargs):
    raise AssertionError("the run started before its settings were checked")


def test_image_size_hint_names_what_helps(capsys, tmp_path):
    # googlenet needs 15 with or without its aux heads: --aux-weight 0 would not help
    err = _error(capsys, ["train", "--model", "googlenet", "--image-size", "14", "--output", str(tmp_path)])
    assert "needs >= 15, got 14; use --image-size 15 or more" in err and "--aux-weight 0" not in err
    err = _error(capsys, ["train", "--model", "inception_v3", "--image-size", "74", "--output", str(tmp_path)])
    assert "needs >= 299, got 74; use --image-size 299 or more" in err and "--aux-weight 0" not in err
    err = _error(capsys, ["train", "--model", "inception_v3", "--image-size", "75", "--output", str(tmp_path)])
    assert "--aux-weight 0 builds it without" in err
