"""GoogLeNet's own behaviour (the checks every network shares: test_networks.py): transform_input and no
aux heads against torchvision, the GoogLeNetOutputs type in training mode (with and without torchvision),
the parameter count without the aux heads."""

import importlib
import sys

import pytest
import torch
import torchvision
from torchvision.models.googlenet import GoogLeNetOutputs as TVGoogLeNetOutputs

import inception_core
from inception_core.testing import count_parameters, no_concat, randomize_for_equivalence, rel_err

gmod = importlib.import_module("inception_core.models.googlenet")

RTOL = 1e-4


def test_transform_input_and_no_aux_match_torchvision():
    torch.manual_seed(0)
    kwargs = dict(aux_logits=False, transform_input=True, num_classes=10)
    ref = randomize_for_equivalence(torchvision.models.googlenet(init_weights=False, **kwargs).eval())
    ours = gmod.googlenet(init_weights=False, **kwargs).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert ours.aux1 is None and ours.aux2 is None
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = ref(x)
        with inception_core.backend("torch"), no_concat():  # transform_input too runs without torch.cat
            y = ours(x)
    assert rel_err(y, expected) <= RTOL
    with inception_core.backend("torch"):  # the output type; the training kernels: test_training.py
        assert isinstance(ours.train()(x), torch.Tensor)  # no aux heads: a Tensor in training mode too


def test_training_mode_returns_googlenet_outputs():
    """With aux heads, training mode returns torchvision's namedtuple (values: test_training.py)."""
    ours = gmod.googlenet(num_classes=10, init_weights=False).train()
    with inception_core.backend("torch"):
        out = ours(torch.randn(2, 3, 96, 96))
    assert type(out) is TVGoogLeNetOutputs and type(out) is gmod.GoogLeNetOutputs
    assert out._fields == ("logits", "aux_logits2", "aux_logits1")
    assert all(o.shape == (2, 10) for o in out)


def test_outputs_namedtuple_without_torchvision(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision.models.googlenet", None)  # makes the import fail
    outputs = gmod._outputs_type.__wrapped__()
    assert outputs is not TVGoogLeNetOutputs
    assert outputs.__name__ == "GoogLeNetOutputs" and outputs._fields == TVGoogLeNetOutputs._fields


def test_parameter_count_without_aux_heads():
    assert count_parameters(gmod.googlenet(aux_logits=False, init_weights=False)) == 6_624_904  # torchvision's
    with pytest.raises(TypeError):
        gmod.googlenet(not_an_argument=1)
