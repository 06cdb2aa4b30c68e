"""BN-Inception's own behaviour (the checks every network shares: test_networks.py): the port's layer
details and its ``features`` / ``logits`` method names."""

import importlib

import torch
from torch import nn

import inception_core

bmod = importlib.import_module("inception_core.models.bn_inception")


def test_layers_follow_the_port():
    ours = bmod.bn_inception()
    assert ours.conv1_7x7_s2.bias is not None and ours.conv1_7x7_s2_bn.eps == 1e-5
    assert isinstance(ours.inception_5b_pool, nn.MaxPool2d) and isinstance(ours.inception_5a_pool, nn.AvgPool2d)


def test_port_method_names_are_aliases(monkeypatch):
    """Also: eval on the torch backend keeps no scratch channels in front of a block output, so each block's
    stacked 1x1 GEMM reads a dense tensor, not a view behind scratch channels (which oneDNN copies first)."""
    ours = bmod.bn_inception(num_classes=10).eval()
    x = torch.randn(1, 3, 224, 224)
    real = bmod.icf.sibling_conv_bn_act
    dense_inputs = []

    def recording(inp, *args, **kwargs):
        dense_inputs.append(inp.is_contiguous() or inp.is_contiguous(memory_format=torch.channels_last))
        return real(inp, *args, **kwargs)

    monkeypatch.setattr(bmod.icf, "sibling_conv_bn_act", recording)
    with torch.no_grad(), inception_core.backend("torch"):
        torch.testing.assert_close(ours.logits(ours.features(x)), ours(x), rtol=0, atol=0)
    assert dense_inputs == [True] * 20  # ten blocks, two forwards

