"""The networks' entry check: a dtype, rank or channel count that torch's own modules refuse is refused
by ours with a message naming ``x``, before any layer runs; autocast inputs stay accepted."""

import pytest
import torch

import inception_core
from inception_core.models import googlenet, inception_resnet_v2, inception_v3
from inception_core.nn.functional import InputDtypeError

NETWORKS = {"googlenet": (googlenet, 64), "inception_v3": (inception_v3, 75),
            "inception_resnet_v2": (inception_resnet_v2, 75)}


@pytest.fixture(scope="module", params=sorted(NETWORKS))
def network(request):
    build, size = NETWORKS[request.param]
    torch.manual_seed(0)
    return build(num_classes=10).eval(), size


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_other_dtype_than_the_parameters_is_refused(network, dtype):
    model, size = network
    x = torch.randn(1, 3, size, size, dtype=dtype)
    with torch.no_grad(), inception_core.backend("torch"), pytest.raises(InputDtypeError, match=r"^x: expected dtype "
                                                                         r"torch.float32 .*got torch\.float"):
        model(x)
    # the same inputs are refused by torch's conv too (RuntimeError): code catching that keeps working
    assert issubclass(InputDtypeError, RuntimeError)


def test_float32_input_to_a_float64_model_names_x(network):
    model, size = network
    model = model.double()
    try:
        with torch.no_grad(), inception_core.backend("torch"), pytest.raises(
                InputDtypeError, match=r"^x: expected dtype torch.float64"):
            model(torch.randn(1, 3, size, size))
    finally:
        model.float()


def test_three_dimensional_input_asks_for_a_batch(network):
    model, size = network
    with torch.no_grad(), pytest.raises(ValueError, match=r"^x: expected a 4-D \(N, C, H, W\) image batch, got a "
                                                          r"3-D tensor .*unsqueeze\(0\)"):
        model(torch.randn(3, size, size))


def test_autocast_input_is_accepted(network):
    model, size = network
    x = torch.randn(1, 3, size, size, dtype=torch.bfloat16)
    with torch.no_grad(), inception_core.backend("torch"), torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(x)
    assert y.shape == (1, 10) and torch.isfinite(y.float()).all()
