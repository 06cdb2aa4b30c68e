"""Each preset against the tool's own preprocessing code on the same images, bit for bit on the CPU."""

import numpy as np
import pytest
import torch

from inception_core.fid import InceptionFeatureExtractor, normalize, preprocess, resize_clean


def _images(n, h, w, seed=0):
    return torch.randint(0, 256, (n, 3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("hw", [(32, 32), (37, 53), (320, 310)])  # upsampling, odd aspect, downsampling
def test_pytorch_fid_preset_is_its_wrapper_input(pytorch_fid_net, monkeypatch, hw):
    # the wrapper's forward resizes and normalises, then runs its blocks: with one identity block it returns
    # exactly the network input it builds
    import torchvision.transforms as TF

    monkeypatch.setattr(pytorch_fid_net, "blocks", torch.nn.ModuleList([torch.nn.Identity()]))
    monkeypatch.setattr(pytorch_fid_net, "output_blocks", [0])
    monkeypatch.setattr(pytorch_fid_net, "last_needed_block", 0)
    monkeypatch.setattr(pytorch_fid_net, "resize_input", True)
    monkeypatch.setattr(pytorch_fid_net, "normalize_input", True)
    images = _images(2, *hw)
    as_tool_loads = torch.stack([TF.ToTensor()(img.permute(1, 2, 0).numpy()) for img in images])
    with torch.no_grad():
        want = pytorch_fid_net(as_tool_loads)[0]
    got = preprocess(images, "pytorch-fid")
    assert got.shape == (2, 3, 299, 299) and torch.equal(got, want)


@pytest.mark.parametrize("hw", [(32, 32), (37, 53), (320, 310)])
def test_torch_fidelity_preset_is_its_resize(hw):
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    images = _images(2, *hw)
    want = interpolate_bilinear_2d_like_tensorflow1x(images.float(), size=(299, 299), align_corners=False)
    want = (want - 128) / 128
    assert torch.equal(preprocess(images, "torch-fidelity"), want)


@pytest.mark.parametrize("hw", [(32, 32), (37, 53), (320, 310)])
def test_clean_fid_preset_is_its_resize(hw):
    from cleanfid.resize import build_resizer

    images = _images(2, *hw)
    arrays = images.permute(0, 2, 3, 1).numpy()
    tool = build_resizer("clean")
    for a in arrays:
        want = tool(a)
        got = resize_clean(a)
        assert got.dtype == want.dtype == np.float32 and np.array_equal(got, want)
    want = torch.stack([torch.from_numpy(tool(a)).permute(2, 0, 1) for a in arrays])
    assert torch.equal(preprocess(images, "clean-fid"), (want - 128) / 128)
    assert torch.equal(normalize(want, "clean-fid"), (want - 128) / 128)


def test_float_input_quantised_as_torchmetrics(ours):
    ex = InceptionFeatureExtractor(preset="torch-fidelity", net=ours)
    floats = torch.rand(1, 3, 20, 20)
    assert torch.equal(ex.preprocess(floats), preprocess((floats * 255).byte(), "torch-fidelity"))


def test_bad_input():
    with pytest.raises(ValueError, match="preset"):
        preprocess(_images(1, 8, 8), "tf")
    with pytest.raises(ValueError, match="images: expected uint8"):
        preprocess(torch.rand(1, 3, 8, 8), "pytorch-fid")
    with pytest.raises(ValueError, match="images: expected"):
        preprocess(_images(1, 8, 8)[:, :1], "torch-fidelity")
    with pytest.raises(ValueError, match="image:"):
        resize_clean(np.zeros((8, 8), dtype=np.uint8))
