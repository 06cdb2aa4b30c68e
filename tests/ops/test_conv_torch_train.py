"""The torch backend's CPU training conv (ops/conv_torch_train.py): every formulation's gradients against
``nn.Conv2d``'s, the layout rule's choices on named layers, and its use by training-mode layers."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

import inception_core
from inception_core import nn as icnn
from inception_core.ops import conv_torch_train
from inception_core.ops.conv_torch_train import Conv2dTrainFunction, conv2d_train, formulation
from inception_core.testing import FP32_RTOL, assert_within

CL = torch.channels_last
FORMULATIONS = [("cl", "cl"), ("cl", "nchw"), ("nchw", "cl"), ("nchw", "nchw")]

# (N, C, K, kernel, stride, padding, hw, bias, layout)
CASES = [
    pytest.param(2, 8, 12, (3, 3), (1, 1), (1, 1), (7, 7), False, "channels_last", id="3x3-same"),
    pytest.param(1, 5, 7, (3, 3), (2, 2), (0, 0), (9, 8), True, "channels_last",
                 id="batch1-odd-channels-s2-valid-bias"),
    pytest.param(2, 6, 10, (1, 7), (1, 1), (0, 3), (6, 6), False, "channels_last", id="1x7"),
    pytest.param(2, 6, 10, (7, 1), (1, 1), (3, 0), (6, 6), True, "nchw", id="7x1-nchw-bias"),
    pytest.param(2, 16, 8, (1, 1), (1, 1), (0, 0), (5, 5), False, "nchw", id="1x1-nchw"),
]


def _tensors(n, c, k, kernel, hw, bias, layout, dtype, x_grad=True):
    fmt = CL if layout == "channels_last" else torch.contiguous_format
    x = torch.randn(n, c, *hw, dtype=dtype).contiguous(memory_format=fmt).requires_grad_(x_grad)
    w = torch.randn(k, c, *kernel, dtype=dtype).contiguous(memory_format=fmt).requires_grad_()
    b = torch.randn(k, dtype=dtype, requires_grad=True) if bias else None
    return x, w, b


def _leaves(x, w, b):
    """(names, tensors) of the inputs that take a gradient."""
    pairs = [(n, t) for n, t in zip(("x", "weight", "bias"), (x, w, b), strict=True)
             if t is not None and t.requires_grad]
    return [n for n, _ in pairs], [t for _, t in pairs]


@pytest.mark.parametrize("force", FORMULATIONS, ids=["-".join(f) for f in FORMULATIONS])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, FP32_RTOL), (torch.float64, 1e-12)], ids=["fp32", "fp64"])
@pytest.mark.parametrize("n,c,k,kernel,stride,padding,hw,bias,layout", CASES)
def test_gradients_match_the_stock_conv(n, c, k, kernel, stride, padding, hw, bias, layout, dtype, tol, force):
    x, w, b = _tensors(n, c, k, kernel, hw, bias, layout, dtype)
    y = Conv2dTrainFunction.apply(x, w, b, stride, padding, force)
    expected = F.conv2d(x, w, b, stride, padding)
    torch.testing.assert_close(y, expected, rtol=0, atol=0)  # the forward is the stock conv's
    g = torch.randn_like(expected)
    names, leaves = _leaves(x, w, b)
    grads = torch.autograd.grad(y, leaves, g)
    ref = torch.autograd.grad(expected, leaves, g)
    for name, got, want, leaf in zip(names, grads, ref, leaves, strict=True):
        assert_within(got, want, tol, f"grad {name} ({'/'.join(force)})")
        # each gradient comes back in its tensor's layout, as the stock backward gives it
        assert got.is_contiguous(memory_format=CL if leaf.dim() == 4 and layout == "channels_last"
                                 else torch.contiguous_format), name


@pytest.mark.parametrize("force", FORMULATIONS, ids=["-".join(f) for f in FORMULATIONS])
def test_an_input_without_gradient_gets_none_and_the_weights_theirs(force):
    x, w, b = _tensors(2, 3, 8, (3, 3), (9, 9), True, "channels_last", torch.float64, x_grad=False)
    y = Conv2dTrainFunction.apply(x, w, b, (2, 2), (1, 1), force)
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, (w, b), g, retain_graph=True)
    ref = torch.autograd.grad(F.conv2d(x, w, b, 2, 1), (w, b), g)
    for got, want in zip(grads, ref, strict=True):
        assert_within(got, want, 1e-12, "weight/bias grad")
    y.backward(g)
    assert x.grad is None


class _BackwardMasks(TorchDispatchMode):
    """Records the output_mask of every aten.convolution_backward call."""

    def __init__(self):
        super().__init__()
        self.masks = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.convolution_backward.default:
            self.masks.append(list(args[-1]))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("force,masks", [
    (("cl", "nchw"), [[True, False, False], [False, True, True]]),
    (("nchw", "cl"), [[False, True, True], [True, False, False]]),
    (("cl", "cl"), [[True, True, True]]),
], ids=["cl-nchw", "nchw-cl", "cl-cl"])
def test_the_bias_gradient_comes_with_the_weight_gradient(force, masks):
    # a channels_last dgrad call asked for the bias gradient runs oneDNN's wgrad primitive for it (2.8x its time)
    x, w, b = _tensors(2, 4, 6, (3, 3), (6, 6), True, "channels_last", torch.float32)
    y = Conv2dTrainFunction.apply(x, w, b, (1, 1), (1, 1), force)
    with _BackwardMasks() as mode:
        y.backward(torch.randn_like(y))
    assert mode.masks == masks


@pytest.mark.parametrize("force", [("cl", "nchw"), ("nchw", "cl")], ids=["cl-nchw", "nchw-cl"])
def test_double_backward_matches_the_stock_conv(force):
    x, w, b = _tensors(2, 4, 6, (3, 3), (6, 6), True, "channels_last", torch.float64)

    def penalty(conv):  # a gradient penalty: the backward's output differentiated again
        gx, gw = torch.autograd.grad(conv(x, w, b).square().sum(), (x, w), create_graph=True)
        return torch.autograd.grad(gx.square().sum() + gw.square().sum(), (x, w, b))

    got = penalty(lambda *a: Conv2dTrainFunction.apply(*a, (1, 1), (1, 1), force))
    want = penalty(lambda *a: F.conv2d(*a, 1, 1))
    for name, g, r in zip(("x", "weight", "bias"), got, want, strict=True):
        assert_within(g, r, 1e-12, f"second-order grad {name}")


@pytest.mark.parametrize("x_shape,w_shape,stride,padding,expected", [
    pytest.param((8, 32, 147, 147), (64, 32, 3, 3), (1, 1), (1, 1), ("cl", "nchw"), id="v3-Conv2d_2b-147"),
    pytest.param((8, 80, 73, 73), (192, 80, 3, 3), (1, 1), (0, 0), ("cl", "nchw"), id="v3-Conv2d_4a-73"),
    pytest.param((8, 64, 73, 73), (80, 64, 1, 1), (1, 1), (0, 0), ("cl", "cl"), id="v3-Conv2d_3b-1x1"),
    pytest.param((8, 128, 17, 17), (128, 128, 1, 7), (1, 1), (0, 3), ("cl", "cl"), id="v3-Mixed_6b-1x7-128-17"),
    pytest.param((8, 192, 17, 17), (192, 192, 1, 7), (1, 1), (0, 3), ("cl", "nchw"), id="v3-Mixed_6e-1x7-192-17"),
    pytest.param((8, 64, 147, 147), (96, 64, 3, 3), (2, 2), (0, 0), ("cl", "nchw"), id="v4-mixed_3a-s2-147"),
    pytest.param((8, 3, 224, 224), (64, 3, 7, 7), (2, 2), (3, 3), ("cl", "cl"), id="googlenet-conv1-3ch"),
    pytest.param((8, 1536, 8, 8), (256, 1536, 1, 1), (1, 1), (0, 0), ("cl", "cl"), id="v4-8x8-1x1"),
])
def test_the_rule_on_named_layers(x_shape, w_shape, stride, padding, expected):
    assert formulation(x_shape, w_shape, stride, padding) == expected


def test_eligible_only_for_a_plain_float32_cpu_conv_recording_a_graph():
    conv = torch.nn.Conv2d(4, 6, 3)
    x = torch.randn(2, 4, 7, 7)
    assert conv_torch_train.eligible(x, conv)
    assert not conv_torch_train.eligible(x.double(), conv.double())
    with torch.no_grad():
        assert not conv_torch_train.eligible(x, conv)
    hooked = torch.nn.Conv2d(4, 6, 3)
    hooked.register_forward_pre_hook(lambda m, a: None)  # e.g. pruning's mask: conv(x) must run it
    assert not conv_torch_train.eligible(x, hooked)
    assert not conv_torch_train.eligible(x, torch.nn.Conv2d(4, 6, 3, padding="same"))
    assert not conv_torch_train.eligible(x, torch.nn.Conv2d(4, 6, 3, groups=2))
    assert conv2d_train(x, hooked).grad_fn.name() == "ConvolutionBackward0"
    with torch.autograd.forward_ad.dual_level():  # forward mode: torch's conv has the jvp
        assert not conv_torch_train.eligible(x, conv)
    seen = []
    torch.func.grad(lambda w: seen.append(conv_torch_train.eligible(x, conv)) or w.sum())(torch.ones(2))
    assert seen == [False]  # under a torch.func transform


def _conv_backward_node(y):
    """The grad_fn names between ``y`` and its conv (the first two levels of the graph)."""
    names, frontier = set(), [y.grad_fn]
    for _ in range(3):
        frontier = [f for node in frontier if node is not None for f, _ in node.next_functions if f is not None]
        names |= {type(f).__name__ for f in frontier}
    return names


def test_training_layers_on_the_cpu_torch_backend_run_it(monkeypatch):
    monkeypatch.setattr(conv_torch_train, "_MIN_WORK", 0)  # the rule's NCHW wgrad on a small layer
    layer = icnn.BasicConv2d(16, 6, kernel_size=3, padding=1).train()
    x = torch.randn(2, 16, 8, 8).contiguous(memory_format=CL).requires_grad_()
    with inception_core.backend("torch"):
        assert "Conv2dTrainFunctionBackward" in _conv_backward_node(layer(x))
        layer.eval()  # eval (folded BatchNorm) and float64 keep their paths
        assert "Conv2dTrainFunctionBackward" not in _conv_backward_node(layer(x))
        layer.double().train()
        assert "Conv2dTrainFunctionBackward" not in _conv_backward_node(layer(x.double()))
