"""The conv_bn_act_train tests' torch twin (nn.Conv2d + nn.BatchNorm2d in training mode + residual + ReLU,
float64, same weights, same grad_output) and the runs of the op against it; shared by
test_conv_bn_act_train.py and test_conv_bn_act_train_backward.py."""

import torch
from torch import nn

import inception_core
from inception_core.ops import conv_bn_act_train
from inception_core.testing import assert_grads_within, assert_within

BACKENDS = ["torch", "triton"]
NAMES = ("x", "weight", "gamma", "beta", "residual")


class Twin(nn.Module):
    """The stock layers the fused op replaces."""

    def __init__(self, c, k, kernel, stride, padding, *, eps, momentum, affine=True, track=True):
        super().__init__()
        self.conv = nn.Conv2d(c, k, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(k, eps=eps, momentum=momentum, affine=affine, track_running_stats=track)

    def forward(self, x, residual=None, res_scale=1.0, act="relu"):
        y = self.bn(self.conv(x))
        if residual is not None:
            y = residual + res_scale * y
        return torch.relu(y) if act == "relu" else y


def make(c, k, kernel, stride, padding, hw, dtype, device, *, n=2, residual=True, eps=1e-3, momentum=0.1,
          affine=True, track=True, layout="channels_last", x_mean=0.0):
    twin = Twin(c, k, kernel, stride, padding, eps=eps, momentum=momentum, affine=affine, track=track)
    twin = twin.double().to(device)
    with torch.no_grad():
        twin.conv.weight.normal_(0, (2.0 / (c * kernel[0] * kernel[1])) ** 0.5)
        twin.conv.weight.copy_(twin.conv.weight.to(dtype))  # the twin sees the rounded weights
        if affine:
            twin.bn.weight.uniform_(0.5, 1.5)
            twin.bn.bias.normal_(0, 0.5)
        if track:
            twin.bn.running_mean.normal_(0, 0.1)
            twin.bn.running_var.uniform_(0.5, 1.5)
    x = (torch.randn(n, c, *hw, device=device) + x_mean).to(dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    oh = (hw[0] + 2 * padding[0] - kernel[0]) // stride[0] + 1
    ow = (hw[1] + 2 * padding[1] - kernel[1]) // stride[1] + 1
    res = torch.randn(n, k, oh, ow, device=device).to(dtype) if residual else None
    grad_y = torch.randn(n, k, oh, ow, device=device).to(dtype)
    return twin, x, res, grad_y


def run_twin(twin, x, res, grad_y, **kw):
    xd = x.double().requires_grad_()
    rd = res.double().requires_grad_() if res is not None else None
    twin.zero_grad()
    y = twin(xd, rd, **kw)
    y.backward(grad_y.double())
    bn = twin.bn
    grads = [xd.grad, twin.conv.weight.grad, None if bn.weight is None else bn.weight.grad,
             None if bn.bias is None else bn.bias.grad, None if rd is None else rd.grad]
    return y.detach(), grads


def ours(backend, twin, x, res, grad_y, dtype, *, factor=None, **kw):
    """The op with the twin's parameters (weight in x's dtype, gamma/beta fp32 leaves) and a copy of its
    running statistics taken before the twin ran; returns output, grads, (running_mean, running_var)."""
    conv, bn = twin.conv, twin.bn
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    w = conv.weight.detach().to(dtype).requires_grad_()
    gamma = bn.weight.detach().to(acc).requires_grad_() if bn.affine else None
    beta = bn.bias.detach().to(acc).requires_grad_() if bn.affine else None
    rm = bn.running_mean.detach().float().clone() if bn.track_running_stats else None
    rv = bn.running_var.detach().float().clone() if bn.track_running_stats else None
    xl = x.detach().clone().requires_grad_()
    rl = res.detach().clone().requires_grad_() if res is not None else None
    with inception_core.backend(backend):
        y = conv_bn_act_train(xl, w, gamma, beta, rm, rv, momentum_factor=bn.momentum if factor is None else factor,
                              eps=bn.eps, stride=conv.stride, padding=conv.padding, residual=rl, **kw)
        y.backward(grad_y)
    grads = [xl.grad, w.grad, None if gamma is None else gamma.grad, None if beta is None else beta.grad,
             None if rl is None else rl.grad]
    return y.detach(), grads, (rm, rv)


def check(backend, twin, x, res, grad_y, dtype, tol, **kw):
    y, grads, (rm, rv) = ours(backend, twin, x, res, grad_y, dtype, **kw)
    y_ref, ref = run_twin(twin, x, res, grad_y, **kw)
    assert y.dtype == dtype and y.is_contiguous(memory_format=torch.channels_last)
    assert_within(y, y_ref, tol, "output")
    assert_grads_within(NAMES, grads, ref, tol)
    if rm is not None:
        assert_within(rm, twin.bn.running_mean, tol, "running_mean")
        assert_within(rv, twin.bn.running_var, tol, "running_var")
    return grads
