"""torch.compile traces whole networks on the fused path (eval, no autograd) without a graph break."""

import pytest
import torch
from network_cases import NETWORKS

import inception_core


@pytest.mark.parametrize("variant", ["thinned", pytest.param("full", marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", ["inception_v3", "inception_resnet_v2"])
def test_fullgraph_compile_of_a_network(name, variant, device, slow_selected):
    """The network thinned to one block of each kind (``network_cases``: a graph break comes from a block's
    code, and every block of a kind runs the same code) traces in one graph and equals eager; the whole
    network (tens of seconds more on 2 cores) with -m slow."""
    if variant == "full" and device == "cpu" and not slow_selected:
        pytest.skip("tracing the whole network takes tens of seconds on 2 cores: select it with -m slow")
    model = inception_core.models.create_model(name).eval()
    if variant == "thinned":
        model = NETWORKS[name].triton(model)
    x = torch.randn(1, 3, 75, 75)
    with torch.no_grad(), inception_core.backend("torch"):
        expected = model(x)
        compiled = torch.compile(model, fullgraph=True, backend="aot_eager")  # fullgraph: a break raises
        torch.testing.assert_close(compiled(x), expected, rtol=1e-5, atol=1e-5)
