"""torch.compile traces whole networks on the fused path (eval, no autograd) without a graph break."""

import pytest
import torch

import inception_core


@pytest.mark.parametrize("name", ["inception_v3", "inception_resnet_v2"])
def test_fullgraph_compile_of_a_network(name):
    model = inception_core.models.create_model(name).eval()
    x = torch.randn(1, 3, 75, 75)
    with torch.no_grad(), inception_core.backend("torch"):
        expected = model(x)
        compiled = torch.compile(model, fullgraph=True, backend="aot_eager")  # fullgraph: a break raises
        torch.testing.assert_close(compiled(x), expected, rtol=1e-5, atol=1e-5)
