"""Training on the fused path, network level: one step of the papers' recipe (forward with the aux heads,
label-smoothed CE + 0.3 x aux CE, backward, RMSprop) of each network against its reference implementation
with the same weights, parameter by parameter and buffer by buffer (torch backend, float64, so that a
mismatch is a bug and not rounding amplified by BatchNorm over a few values); the same step on the
interpreted triton backend against the torch backend; determinism; autocast; and a compiled training step
without graph breaks.
"""

import copy

import pytest
import torch
import torch.nn.functional as F

import inception_core
from inception_core import bench
from inception_core.testing import randomize_for_equivalence, rel_err

AUX_WEIGHT = 0.3


def _outputs(out) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(logits, aux logits) of a network's output: a tensor or a (logits, aux...) tuple."""
    if isinstance(out, torch.Tensor):
        return out, []
    return out[0], [o for o in out[1:] if isinstance(o, torch.Tensor)]


def _step(model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor, *, dropout_seed: int = 3) -> torch.Tensor:
    """One step of the recipe (RMSprop alpha 0.9, eps 1.0, momentum 0.9, lr 0.045, weight decay 4e-5;
    label smoothing 0.1); returns the loss. Dropout masks come from ``dropout_seed``."""
    opt = torch.optim.RMSprop(model.parameters(), lr=0.045, alpha=0.9, eps=1.0, momentum=0.9, weight_decay=4e-5)
    torch.manual_seed(dropout_seed)
    logits, aux = _outputs(model(x))
    loss = F.cross_entropy(logits, labels, label_smoothing=0.1)
    for a in aux:
        loss = loss + AUX_WEIGHT * F.cross_entropy(a, labels, label_smoothing=0.1)
    loss.backward()
    opt.step()
    return loss.detach()


def _compare_states(ours: torch.nn.Module, ref: torch.nn.Module, before: dict, rtol: float) -> None:
    """Every parameter's update (after - before) and every buffer of ``ours`` equals ``ref``'s."""
    ours_params, ref_params = dict(ours.named_parameters()), dict(ref.named_parameters())
    assert ours_params.keys() == ref_params.keys()
    scale = max((p.detach() - before[k]).abs().max().item() for k, p in ref_params.items())
    for k, p in ref_params.items():
        expected, got = p.detach() - before[k], ours_params[k].detach() - before[k]
        err = (got - expected).abs().max().item()
        # updates of parameters whose gradient is ~0 (a conv bias cancelled by BatchNorm) are compared
        # against the largest update of the network
        assert err <= rtol * max(expected.abs().max().item(), 1e-3 * scale), f"{k}: update off by {err:.3e}"
    ref_buffers = dict(ref.named_buffers())
    for k, b in ours.named_buffers():
        if k in ref_buffers:
            if b.dtype == torch.long:
                assert torch.equal(b, ref_buffers[k]), k
            else:
                assert rel_err(b, ref_buffers[k]) <= rtol, f"{k}: {rel_err(b, ref_buffers[k]):.3e}"


@pytest.mark.parametrize("name", bench.NETWORKS)
def test_training_step_matches_the_reference(name):
    """Torch backend, float64, batch 2, at ``bench.SMALLEST_INPUT[name]["train"]`` (139 for the networks whose
    last grid is 1x1 at 75, where BatchNorm over 2 values per channel would amplify rounding)."""
    size = bench.SMALLEST_INPUT[name]["train"]
    try:
        pair = bench.build_pair(name, input_size=size)
    except bench.ReferenceUnavailable as exc:
        pytest.skip(str(exc))
    ref = copy.deepcopy(pair.reference).double().train()
    ours = inception_core.convert(copy.deepcopy(pair.reference)).double().train()
    before = {k: p.detach().clone() for k, p in ref.named_parameters()}
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    labels = torch.randint(0, bench.NUM_CLASSES, (2,))
    ref_loss = _step(ref, x, labels)
    with inception_core.backend("torch"):
        loss = _step(ours, x, labels)
    assert torch.isfinite(loss) and abs(loss.item() - ref_loss.item()) <= 1e-10 * abs(ref_loss.item()), (loss, ref_loss)
    _compare_states(ours, ref, before, rtol=1e-6)


def _thin_v3(model):
    """Inception-v3 with Mixed_5b, 5c (5c's 288 channels feed Mixed_6a), 6a, 6b, 7a, 7b and no aux head: every
    layer kind of the network at a fraction of the interpreter's time."""
    thin = copy.deepcopy(model)
    for name in ("Mixed_5d", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7c"):
        setattr(thin, name, torch.nn.Identity())
    thin.AuxLogits, thin.aux_logits = None, False
    return thin


def _thin_irv2(model):
    """Inception-ResNet-v2 with one Block35, one Block17, no Block8 but the final no-ReLU ``block8``."""
    thin = copy.deepcopy(model)
    thin.repeat, thin.repeat_1, thin.repeat_2 = thin.repeat[:1], thin.repeat_1[:1], thin.repeat_2[:0]
    return thin


THIN = {"inception_v3": _thin_v3, "inception_resnet_v2": _thin_irv2}


@pytest.fixture(scope="module")
def thin_models():
    """name -> a thinned network (float64, random weights and BatchNorm statistics)."""
    models = {}
    for name, thin in THIN.items():
        torch.manual_seed(0)
        model = inception_core.models.create_model(name)
        randomize_for_equivalence(model.eval(), seed=1)
        models[name] = thin(model).double()
    return models


def _needs_triton(device: str) -> None:
    if device == "cpu" and not inception_core.backends.interpreter_enabled():
        pytest.skip("the triton backend needs a GPU or TRITON_INTERPRET=1")


@pytest.mark.parametrize("name", [pytest.param("inception_v3", marks=pytest.mark.slow),
                                  pytest.param("inception_resnet_v2", marks=pytest.mark.slow)])
def test_triton_training_step_matches_torch_backend(name, thin_models, device, monkeypatch, slow_selected):
    """Thinned Inception-v3 / Inception-ResNet-v2, smallest input (75), batch 2, float64 on the interpreter
    (its dots are exact), float32 on a GPU (TF32 off): the triton step equals the torch-backend step. The
    1x1 last grid makes BatchNorm over 2 values amplify rounding (float64 gradients then agree to ~1e-9):
    the float64 bound is 1e-6, far below any indexing or reduction bug. On a CPU both run with -m slow
    (~150 s and ~110 s interpreted on 2 cores); ``test_triton_training_blocks_match_torch_backend`` covers
    Inception-ResNet-v2's blocks in the default suite."""
    _needs_triton(device)
    if device == "cpu" and not slow_selected:
        pytest.skip(f"thinned {name} training through Triton's interpreter takes minutes on 2 cores: -m slow")
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    dtype = torch.float64 if device == "cpu" else torch.float32
    base = copy.deepcopy(thin_models[name]).to(device, dtype).train()
    before = {k: p.detach().clone() for k, p in base.named_parameters()}
    x = torch.randn(2, 3, 75, 75, dtype=dtype, device=device)
    labels = torch.randint(0, 1000, (2,), device=device)
    ref, ours = copy.deepcopy(base), copy.deepcopy(base)
    with inception_core.backend("torch"):
        ref_loss = _step(ref, x, labels)
    with inception_core.backend("triton"):
        loss = _step(ours, x, labels)
    rtol = 1e-6 if dtype == torch.float64 else 2e-3
    assert abs(loss.item() - ref_loss.item()) <= rtol * abs(ref_loss.item())
    _compare_states(ours, ref, before, rtol=rtol)


def test_triton_training_blocks_match_torch_backend(thin_models, device, monkeypatch):
    """Inception-ResNet-v2's Block35 (on 2x320x7x7, what the stem gives at 75 px), Block17 (2x1088x3x3) and the
    no-ReLU Block8 (2x2080x2x2): BatchNorm batch statistics, the 1x7/7x1 and 1x3/3x1 convs, the scaled residual
    epilogues with and without ReLU. Float64 on the interpreter, float32 on a GPU (TF32 off): the triton
    backward and SGD update equal the torch backend's, parameter by parameter, and so do the running
    statistics. (The whole thinned network's step is ``test_triton_training_step_matches_torch_backend``.)"""
    _needs_triton(device)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    dtype = torch.float64 if device == "cpu" else torch.float32
    net = thin_models["inception_resnet_v2"]
    base = copy.deepcopy(torch.nn.ModuleList([net.repeat[0], net.repeat_1[0], net.block8])).to(device, dtype).train()
    before = {k: p.detach().clone() for k, p in base.named_parameters()}
    gen = torch.Generator().manual_seed(5)
    inputs = [torch.randn(2, c, hw, hw, generator=gen, dtype=dtype).to(device)
              for c, hw in ((320, 7), (1088, 3), (2080, 2))]
    weights = [torch.randn(x.shape, generator=gen, dtype=dtype).to(device) for x in inputs]
    states = []
    for backend in ("torch", "triton"):
        model = copy.deepcopy(base)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with inception_core.backend(backend):
            sum((block(x) * w).sum() for block, x, w in zip(model, inputs, weights, strict=True)).backward()
        opt.step()
        states.append(model)
    rtol = 1e-6 if dtype == torch.float64 else 2e-3
    _compare_states(states[1], states[0], before, rtol=rtol)


def test_triton_training_step_is_deterministic(thin_models, device):
    """Two forward + backward runs of Inception-ResNet-v2's Block35 and Block17 (BN batch statistics, dgrad,
    wgrad, 1x7/7x1, residual epilogues) on the triton backend give bit-identical gradients and running
    statistics."""
    _needs_triton(device)
    net = thin_models["inception_resnet_v2"]
    blocks = torch.nn.ModuleList([net.repeat[0], net.repeat_1[0]]).to(device, torch.float32).train()
    inputs = [torch.randn(2, c, hw, hw, device=device) for c, hw in ((320, 5), (1088, 3))]
    runs = []
    for _ in range(2):
        model = copy.deepcopy(blocks)
        with inception_core.backend("triton"):
            sum(block(x).square().mean() for block, x in zip(model, inputs, strict=True)).backward()
        runs.append(({k: p.grad for k, p in model.named_parameters()}, dict(model.named_buffers())))
    for k, g in runs[0][0].items():
        assert torch.equal(g, runs[1][0][k]), k
    for k, b in runs[0][1].items():
        assert torch.equal(b, runs[1][1][k]), k


def _grad_errors(grads: dict, truth: dict) -> list[float]:
    """Per parameter ||g - truth|| / ||truth|| (parameters whose true gradient is exactly 0 left out)."""
    return [((grads[k].double() - t.double()).norm() / t.double().norm()).item() for k, t in truth.items()
            if t.norm() > 0]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_training_step_like_the_reference(dtype, device):
    """Under autocast, a GoogLeNet forward + backward on our layers is as close to the float32 gradients as
    the reference's own autocast step (within 3x, per parameter, median and worst), and every gradient comes
    back in its parameter's dtype (float32)."""
    if device == "cpu" and dtype == torch.float16:
        pytest.skip("fp16 convolution backward on a CPU is too slow for the suite; covered on CUDA")
    pair = bench.build_pair("googlenet", input_size=64)
    ref = copy.deepcopy(pair.reference).to(device).train()
    ours = inception_core.convert(copy.deepcopy(pair.reference)).to(device).train()
    for m in (ref, ours):
        for module in m.modules():
            if isinstance(module, torch.nn.Dropout):
                module.eval()
    x = torch.randn(4, 3, 64, 64, device=device)

    def grads(model, low_precision: bool) -> tuple[float, dict]:
        model = copy.deepcopy(model)
        with torch.autocast(torch.device(device).type, dtype=dtype, enabled=low_precision), \
                inception_core.backend("torch"):
            logits, aux = _outputs(model(x))
            loss = logits.float().square().mean() + sum(a.float().square().mean() for a in aux)
        loss.backward()
        return loss.item(), {k: p.grad for k, p in model.named_parameters()}

    truth_loss, truth = grads(ref, False)
    ref_loss, ref_grads = grads(ref, True)
    loss, our_grads = grads(ours, True)
    assert all(g.dtype == torch.float32 for g in our_grads.values())
    assert abs(loss - truth_loss) <= 3 * abs(ref_loss - truth_loss) + 1e-3 * abs(truth_loss)
    ref_err, our_err = sorted(_grad_errors(ref_grads, truth)), sorted(_grad_errors(our_grads, truth))
    assert our_err[len(our_err) // 2] <= 3 * ref_err[len(ref_err) // 2] + 1e-3, (our_err[len(our_err) // 2],
                                                                              ref_err[len(ref_err) // 2])
    assert our_err[-1] <= 3 * ref_err[-1] + 1e-3, (our_err[-1], ref_err[-1])


def test_compiled_training_step_has_no_graph_break():
    """``torch.compile(fullgraph=True)`` of a training forward + backward (thinned Inception-ResNet-v2: every
    block kind, residual epilogues, BN batch statistics) traces on the fused ops and matches eager."""
    torch.manual_seed(0)
    model = _thin_irv2(inception_core.models.create_model("inception_resnet_v2")).train()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.eval()
    x = torch.randn(2, 3, 75, 75)
    eager_model, compiled_model = copy.deepcopy(model), copy.deepcopy(model)
    with inception_core.backend("torch"):
        eager_model(x).square().mean().backward()
        compiled = torch.compile(compiled_model, fullgraph=True, backend="aot_eager")  # a graph break raises
        compiled(x).square().mean().backward()
    grads = dict(eager_model.named_parameters())
    for k, p in compiled_model.named_parameters():
        assert rel_err(p.grad, grads[k].grad) <= 1e-4, k
    for (k, b), (_, e) in zip(compiled_model.named_buffers(), eager_model.named_buffers(), strict=True):
        assert torch.equal(b, e) if b.dtype == torch.long else rel_err(b, e) <= 1e-5, k
