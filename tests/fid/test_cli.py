"""``inception-core fid`` / ``isc`` end to end on folders of PNGs written here, against pytorch-fid's and
torch-fidelity's own pipelines on the same random weights; the errors a user can fix."""

import os
import re
import urllib.error
from unittest import mock

import pytest
import torch
from fid_helpers import SMALL, pytorch_fid_resizing_to, write_pngs

from inception_core.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _value(text, label):
    m = re.search(rf"{label}: (\S+)", text)
    assert m, text
    return float(m.group(1))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    return {
        "a70": os.path.dirname(write_pngs(root / "a70", 70, size=(16, 16), seed=1)[0]),
        "b70": os.path.dirname(write_pngs(root / "b70", 70, size=(16, 16), seed=2, shift=0.4)[0]),
        "a8": os.path.dirname(write_pngs(root / "a8", 8, size=(24, 24), seed=3)[0]),
        "b8": os.path.dirname(write_pngs(root / "b8", 8, size=(24, 24), seed=4, shift=0.4)[0]),
    }


def _common(weights, *extra):
    return ["--weights", weights, "--device", "cpu", "--workers", "0", "--image-size", str(SMALL), *extra]


def test_fid_matches_pytorch_fid_end_to_end(capsys, folders, fid_state, fidelity_weights_file, tmp_path):
    import pytorch_fid.inception as pfi
    from pytorch_fid.fid_score import calculate_fid_given_paths, compute_statistics_of_path

    paths = [folders["a70"], folders["b70"]]
    with pytorch_fid_resizing_to(SMALL), mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: fid_state):
        want = calculate_fid_given_paths(paths, 32, "cpu", 64, num_workers=0)
    assert want > 1.0
    code, out, err = _run(capsys, "fid", *paths, *_common(fidelity_weights_file, "--dims", "64", "--batch-size", "32"))
    assert code == 0
    got = _value(out, "FID")
    assert got == pytest.approx(want, rel=1e-5)
    assert re.search(r"70 images, [\d.]+ images/s", err)
    # --save-stats writes pytorch-fid's file; FID from a stats file equals FID from the folder
    npz = str(tmp_path / "a.npz")
    code, out, _ = _run(capsys, "fid", paths[0], npz, "--save-stats",
                        *_common(fidelity_weights_file, "--dims", "64"))
    assert code == 0 and os.path.exists(npz)
    mu, sigma = compute_statistics_of_path(npz, None, 32, 64, "cpu")  # pytorch-fid reads it
    assert mu.shape == (64,) and sigma.shape == (64, 64)
    code, out, _ = _run(capsys, "fid", npz, paths[1], *_common(fidelity_weights_file, "--dims", "64"))
    assert _value(out, "FID") == pytest.approx(got, rel=1e-9)


def test_fid_kid_isc_match_torch_fidelity_end_to_end(capsys, folders, fidelity_weights_file, monkeypatch):
    import torch_fidelity
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    monkeypatch.setattr(FeatureExtractorInceptionV3, "INPUT_IMAGE_SIZE", SMALL)
    a, b = folders["a8"], folders["b8"]
    # FID and KID on the 64 tap (a 2048-d eigen-decomposition in numpy takes a minute on these CPUs); the
    # Inception Score runs the whole network
    want = torch_fidelity.calculate_metrics(input1=a, input2=b, fid=True, kid=True, isc=True, cache=False,
                                            verbose=False, feature_extractor_weights_path=fidelity_weights_file,
                                            feature_layer_fid="64", feature_layer_kid="64", kid_subset_size=6,
                                            isc_splits=2, batch_size=6, save_cpu_ram=True, cuda=False)
    code, out, _ = _run(capsys, "fid", a, b, "--preset", "torch-fidelity", "--dims", "64", "--kid",
                        "--kid-subset-size", "6", *_common(fidelity_weights_file, "--batch-size", "5"))
    assert code == 0
    assert _value(out, "FID") == pytest.approx(want["frechet_inception_distance"], rel=1e-4)
    assert _value(out, "KID") == pytest.approx(want["kernel_inception_distance_mean"], rel=1e-4)
    code, out, _ = _run(capsys, "isc", a, "--splits", "2", *_common(fidelity_weights_file))
    assert code == 0
    assert _value(out, "Inception Score") == pytest.approx(want["inception_score_mean"], rel=1e-5)


def test_missing_weights_says_which_file_where(capsys, folders, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    argv = ["fid", folders["a8"], folders["b8"], "--device", "cpu", "--workers", "0"]
    code, _, err = _run(capsys, *argv, "--no-download")
    assert code == 1
    assert "pt_inception-2015-12-05-6726825d.pth" in err and str(tmp_path / "home" / "hub" / "checkpoints") in err
    assert "--weights FILE" in err
    with mock.patch("torch.hub.download_url_to_file", side_effect=urllib.error.URLError("no network")):
        code, _, err = _run(capsys, *argv)
    assert code == 1 and "download failed" in err and "pt_inception-2015-12-05-6726825d.pth" in err
    code, _, err = _run(capsys, *argv, "--weights", str(tmp_path / "nope.pth"))
    assert code == 1 and "nope.pth: no such file" in err


def test_empty_folder_and_corrupt_image(capsys, folders, fidelity_weights_file, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    code, _, err = _run(capsys, "fid", str(empty), folders["a8"], *_common(fidelity_weights_file, "--dims", "64"))
    assert code == 1 and f"{empty}: no image files" in err

    bad = tmp_path / "bad"
    write_pngs(bad, 3, size=(16, 16), seed=5)
    (bad / "img_001.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    code, _, err = _run(capsys, "fid", str(bad), folders["a8"], *_common(fidelity_weights_file, "--dims", "64"))
    assert code == 1 and "img_001.png: cannot read the image" in err and "--skip-bad-images" in err
    # from a DataLoader worker process: the same one-line message, no worker traceback
    code, _, err = _run(capsys, "fid", str(bad), folders["a8"], *_common(fidelity_weights_file, "--dims", "64"),
                        "--workers", "1")
    assert code == 1 and "img_001.png: cannot read the image" in err and "Traceback" not in err
    code, out, err = _run(capsys, "fid", str(bad), folders["a8"], "--skip-bad-images",
                          *_common(fidelity_weights_file, "--dims", "64"))
    assert code == 0 and "2 images, 1 unreadable skipped" in err and "FID:" in out


def test_bad_options(capsys, folders, fidelity_weights_file):
    with pytest.raises(SystemExit):
        main(["fid", folders["a8"], folders["b8"], "--batch-size", "0"])
    assert "--batch-size: expected >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fid", folders["a8"], "/no/such/folder", *_common(fidelity_weights_file)])
    assert "does not exist" in capsys.readouterr().err


def test_clean_fid_preset_matches_clean_fid_end_to_end(capsys, folders, fidelity_weights_file, pytorch_fid_net,
                                                       monkeypatch):
    # clean-fid's own loader, PIL resize (at 75 through its custom_fn_resize hook), statistics and FID; its
    # network is NVlabs' TorchScript file (not available here): the same graph's stem from pytorch-fid's
    # wrapper on clean-fid's (x - 128) / 128 input stands in for it
    from cleanfid.fid import compare_folders
    from cleanfid.resize import make_resizer

    monkeypatch.setattr(pytorch_fid_net, "output_blocks", [0])
    monkeypatch.setattr(pytorch_fid_net, "last_needed_block", 0)
    monkeypatch.setattr(pytorch_fid_net, "resize_input", False)
    monkeypatch.setattr(pytorch_fid_net, "normalize_input", False)

    def feat_model(x):
        return pytorch_fid_net((x - 128) / 128)[0].mean((2, 3))

    paths = [folders["a70"], folders["b70"]]
    want = compare_folders(*paths, feat_model, "clean", num_workers=0, batch_size=16, device=torch.device("cpu"),
                           verbose=False, custom_fn_resize=make_resizer("PIL", False, "bicubic", (SMALL, SMALL)))
    code, out, _ = _run(capsys, "fid", *paths, "--preset", "clean-fid",
                        *_common(fidelity_weights_file, "--dims", "64", "--batch-size", "16"))
    assert code == 0
    assert _value(out, "FID") == pytest.approx(want, rel=1e-5)
