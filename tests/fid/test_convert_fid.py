"""``inception_core.convert`` on pytorch-fid's ``InceptionV3`` wrapper and torch-fidelity's extractor: the
same weights loaded strictly into a module with the tool's forward, equal outputs."""

import pytest
import torch
from fid_helpers import SMALL, pytorch_fid_model

import inception_core
from inception_core.fid.compat import FidelityInceptionV3, PytorchFIDInceptionV3
from inception_core.testing import rel_err


def test_convert_pytorch_fid_wrapper(pytorch_fid_net, monkeypatch):
    monkeypatch.setattr(pytorch_fid_net, "resize_input", False)
    ours = inception_core.convert(pytorch_fid_net)
    assert isinstance(ours, PytorchFIDInceptionV3) and not ours.training
    assert set(ours.state_dict()) == set(pytorch_fid_net.state_dict())
    ours.resize_input = False
    x = torch.rand(1, 3, SMALL, SMALL, generator=torch.Generator().manual_seed(4))
    with torch.no_grad(), inception_core.backend("torch"):
        want = pytorch_fid_net(x)
        got = ours(x)
    assert len(got) == 4
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and rel_err(g, w) <= 1e-5


def test_convert_partial_pytorch_fid_wrapper(fid_state):
    ref = pytorch_fid_model(fid_state, blocks=(0,), resize_input=False)  # what pytorch-fid builds for --dims 64
    ours = inception_core.convert(ref)
    assert len(ours.blocks) == 1
    x = torch.rand(2, 3, SMALL, SMALL)
    with torch.no_grad(), inception_core.backend("torch"):
        assert rel_err(ours(x)[0], ref(x)[0]) <= 1e-5


def test_convert_torch_fidelity_extractor(fidelity_net):
    ours = inception_core.convert(fidelity_net)
    assert isinstance(ours, FidelityInceptionV3) and ours.INPUT_IMAGE_SIZE == SMALL
    images = torch.randint(0, 256, (1, 3, 40, 40), dtype=torch.uint8)
    with torch.no_grad(), inception_core.backend("torch"):
        want = fidelity_net(images)
        got = ours(images)
    assert len(got) == len(want) == 6
    for g, w in zip(got, want, strict=True):
        assert g.dtype == torch.float32 and rel_err(g, w) <= 1e-5
    with pytest.raises(ValueError, match="uint8"):
        ours(images.float())


def test_convert_rejects_the_torchvision_variant(fid_state):
    import pytorch_fid.inception as pfi

    tv = pfi.InceptionV3.__new__(pfi.InceptionV3)
    torch.nn.Module.__init__(tv)
    tv.blocks = torch.nn.ModuleList([torch.nn.Sequential(), torch.nn.Sequential(),
                                     torch.nn.Sequential(torch.nn.Identity())])
    tv.output_blocks, tv.resize_input, tv.normalize_input = [2], True, True
    with pytest.raises(TypeError, match="use_fid_inception=False"):
        inception_core.convert(tv)
