"""Registration of the differentiable ops: torch.library.opcheck (schema, fake strides, autograd
registration, AOT dispatch) on the forward and backward custom ops, and torch.compile(fullgraph=True)
of a small training block (forward + backward) on the CPU torch backend."""

import pytest
import torch
import torch.nn.functional as F

import inception_core
from inception_core.ops import avg_pool2d, conv_bn_act, conv_bn_act_train, max_pool2d

CL = torch.channels_last


def _opcheck_cases(device):
    """case id -> (op overload, args) on ``device``."""

    def cl(*shape, requires_grad=True):
        t = torch.randn(*shape, device=device).contiguous(memory_format=CL)
        return t.requires_grad_(requires_grad)

    def vec(k, requires_grad=True):
        return (torch.rand(k, device=device) + 0.5).requires_grad_(requires_grad)

    ops = torch.ops.inception_core
    x, w, res = cl(2, 8, 6, 6), cl(12, 8, 3, 3), cl(2, 12, 6, 6)
    dy = cl(2, 12, 6, 6, requires_grad=False)
    y = torch.relu(torch.randn(2, 12, 6, 6, device=device)).contiguous(memory_format=CL)
    mean, invstd = torch.randn(12, device=device), torch.rand(12, device=device) + 0.5
    rm, rv = torch.zeros(12, device=device), torch.ones(12, device=device)
    xp = cl(2, 8, 7, 7)
    every = [True] * 5
    return {
        "conv_bn_act": (ops.conv_bn_act.default, (x, w, vec(12), vec(12), res, [1, 1], [1, 1], "relu", 0.3)),
        "conv_bn_act_backward": (ops.conv_bn_act_backward.default,
                                 (dy, x.detach(), w.detach(), vec(12, False), y, [1, 1], [1, 1], "relu", 0.3, every)),
        "conv_bn_act_train": (ops.conv_bn_act_train.default,
                              (x, w, vec(12), vec(12), rm, rv, res, [1, 1], [1, 1], "relu", 0.3, 0.1, 1e-3)),
        "conv_bn_act_train-no-affine-no-stats": (
            ops.conv_bn_act_train.default,
            (x, w, None, None, None, None, None, [2, 2], [0, 0], "none", 1.0, 0.1, 1e-3)),
        "conv_bn_act_train_backward": (
            ops.conv_bn_act_train_backward.default,
            (dy, x.detach(), w.detach(), vec(12, False), y, y, mean, invstd, [1, 1], [1, 1], "relu", 0.3, every)),
        "max_pool2d": (ops.max_pool2d.default, (xp, [3, 3], [2, 2], [1, 1], True)),
        "avg_pool2d": (ops.avg_pool2d.default, (xp, [3, 3], [1, 1], [1, 1], False, False)),
        "max_pool2d_backward": (ops.max_pool2d_backward.default,
                                (cl(2, 8, 4, 4, requires_grad=False), xp.detach(), [3, 3], [2, 2], [1, 1], True)),
        "avg_pool2d_backward": (ops.avg_pool2d_backward.default,
                                (cl(2, 8, 7, 7, requires_grad=False), [2, 8, 7, 7], [3, 3], [1, 1], [1, 1], False,
                                 True)),
    }


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("case", list(_opcheck_cases("cpu")))
def test_opcheck(case, backend, device):
    op, args = _opcheck_cases(device)[case]
    with inception_core.backend(backend):
        torch.library.opcheck(op, args)


class _Block(torch.nn.Module):
    """conv (BN train) -> max pool -> conv (BN train) with a scaled residual -> avg pool -> conv (folded BN)."""

    def __init__(self):
        super().__init__()
        self.w1 = torch.nn.Parameter(torch.randn(16, 8, 3, 3) * 0.2)
        self.g1, self.b1 = torch.nn.Parameter(torch.rand(16) + 0.5), torch.nn.Parameter(torch.randn(16))
        self.w2 = torch.nn.Parameter(torch.randn(16, 16, 1, 1) * 0.25)
        self.w3 = torch.nn.Parameter(torch.randn(12, 16, 3, 3) * 0.1)
        self.s3, self.t3 = torch.nn.Parameter(torch.rand(12) + 0.5), torch.nn.Parameter(torch.randn(12))
        self.register_buffer("rm1", torch.zeros(16))
        self.register_buffer("rv1", torch.ones(16))

    def forward(self, x):
        y = conv_bn_act_train(x, self.w1, self.g1, self.b1, self.rm1, self.rv1, momentum_factor=0.1, eps=1e-3,
                              padding=1)
        y = max_pool2d(y, 3, 2, 1)
        y = conv_bn_act_train(y, self.w2, None, None, None, None, momentum_factor=0.1, eps=1e-3, residual=y,
                              res_scale=0.2)
        y = avg_pool2d(y, 3, 1, 1, count_include_pad=False)
        return conv_bn_act(y, self.w3, self.s3, self.t3, padding=1, act="none")


def _step(model, x, grad_y):
    y = model(x)
    y.backward(grad_y)
    return y.detach(), [p.grad.clone() for p in model.parameters()], [b.clone() for b in model.buffers()]


@pytest.mark.parametrize("compile_backend", ["aot_eager", "inductor"])
def test_compile_fullgraph_forward_backward(compile_backend):
    """fullgraph=True raises on any graph break; compiled and eager agree on output, grads and buffers."""
    torch.manual_seed(0)
    eager = _Block()
    compiled = _Block()
    compiled.load_state_dict(eager.state_dict())
    x = torch.randn(2, 8, 9, 9).contiguous(memory_format=CL)
    grad_y = torch.randn(2, 12, 5, 5)
    with inception_core.backend("torch"):
        expected = _step(eager, x, grad_y)
        fn = torch.compile(compiled, fullgraph=True, backend=compile_backend)
        got = _step(fn, x, grad_y)
    torch.testing.assert_close(got[0], expected[0], rtol=1e-5, atol=1e-5)
    for a, b in zip(got[1] + got[2], expected[1] + expected[2], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_compiled_block_matches_stock_layers():
    """The same block from stock layers in training mode (the twin of the compiled one)."""
    torch.manual_seed(0)
    block = _Block()
    x = torch.randn(2, 8, 9, 9)
    with inception_core.backend("torch"):
        y = block(x)
    bn1 = torch.nn.BatchNorm2d(16, eps=1e-3).train()
    with torch.no_grad():
        bn1.weight.copy_(block.g1)
        bn1.bias.copy_(block.b1)
    ref = F.relu(bn1(F.conv2d(x, block.w1, padding=1)))
    ref = F.max_pool2d(ref, 3, 2, 1)
    ref = F.relu(ref + 0.2 * F.batch_norm(F.conv2d(ref, block.w2), None, None, training=True, eps=1e-3))
    ref = F.avg_pool2d(ref, 3, 1, 1, count_include_pad=False)
    ref = F.conv2d(ref, block.w3, padding=1) * block.s3.view(1, -1, 1, 1) + block.t3.view(1, -1, 1, 1)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(block.rm1, bn1.running_mean)
    torch.testing.assert_close(block.rv1, bn1.running_var)
