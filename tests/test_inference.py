"""optimize_for_inference: the frozen copy computes the original's outputs, the input normalisation folded
into the first convolution exactly (float64 on the torch backend: the folding is algebra, not an
approximation; float32 within its tolerance), the original model untouched, bad arguments refused.

The six networks run at reduced sizes (75x75, GoogLeNet 64x64; BN-Inception's head needs 224x224) on the
torch backend: whole networks in float32, and for one network per kind of stem the first convolution (where
the folding happens) in float64, where it must agree to rounding. The border-corrected GoogLeNet stem also
runs through the Triton kernel (interpreted on CPU). The CUDA-graph tests need a GPU.
"""

import pytest
import torch

import inception_core as ic
from inception_core import inference
from inception_core.inference import optimize_for_inference
from inception_core.testing import passes, randomize_for_equivalence, rel_err

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# name, builder kwargs, input size, normalize, expected folding, float64 proof of the folding (one network per
# kind of stem: Inception-v4's and Inception-ResNet-v2's fold exactly as Inception-v3's and -ResNet-v1's do)
CASES = [
    ("googlenet", dict(transform_input=True, aux_logits=False), 64, None, "weights+border", True),  # 7x7 pad 3
    ("googlenet", dict(transform_input=True, aux_logits=False), 64, (MEAN, STD), "weights+border", True),  # both
    ("bn_inception", {}, 224, ((0.4, 0.45, 0.5), (0.2, 0.25, 0.3)), "separate", True),  # flat 7x7 pad 3
    ("inception_v3", dict(transform_input=True, aux_logits=False), 75, None, "weights", True),  # 3x3 s2 valid
    ("inception_v4", {}, 75, ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)), "weights", False),
    ("inception_resnet_v1", {}, 75, ((0.5, 0.4, 0.3), (0.5, 0.6, 0.7)), "weights", True),
    ("inception_resnet_v2", {}, 75, ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)), "weights", False),
]


def _build(name, kwargs):
    if name in ("googlenet", "inception_v3"):  # their truncated-normal init is slow and overwritten anyway
        kwargs = dict(kwargs, init_weights=False)
    return randomize_for_equivalence(ic.models.create_model(name, num_classes=10, **kwargs)).eval()


def _normalized(x, normalize):
    if normalize is None:
        return x
    mean, std = (torch.tensor(v, dtype=x.dtype).view(1, -1, 1, 1) for v in normalize)
    return (x - mean) / std


def _reference(model, x, normalize):
    with torch.no_grad():
        return model(_normalized(x, normalize))


class _Stop(Exception):
    pass


def _stem_output(call, stem: torch.nn.Module, x):
    """What ``stem`` (the network's first conv) returns while ``call(x)`` runs; the forward stops there."""
    seen = []

    def hook(module, inputs, output):
        seen.append(output)
        raise _Stop

    handle = stem.register_forward_hook(hook)
    try:
        with torch.no_grad():
            call(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    (out,) = seen
    return out


def _fingerprint(model):
    """Identity, version and dtype of every parameter and buffer: any in-place write or replacement changes it."""
    return {k: (v.data_ptr(), v._version, v.dtype) for k, v in model.state_dict(keep_vars=True).items()}


@pytest.mark.parametrize("name,kwargs,size,normalize,folding,prove64", CASES,
                         ids=[f"{c[0]}-{c[4]}" + ("-norm" if c[3] else "") for c in CASES])
def test_same_outputs_as_the_original(name, kwargs, size, normalize, folding, prove64):
    model = _build(name, kwargs)
    stem_path = inference._stem_name(model)
    with ic.backend("torch"):
        # float32: the whole network, within float32 tolerance; the original untouched
        x = torch.rand(1, 3, size, size)  # raw [0, 1) pixels
        before = _fingerprint(model)
        opt = optimize_for_inference(model, x, normalize=normalize)
        assert _fingerprint(model) == before
        assert opt.folding == folding
        out, ref = opt(x), _reference(model, x, normalize)
        assert out.dtype == ref.dtype and out.shape == ref.shape
        assert rel_err(out, ref) <= 1e-5, rel_err(out, ref)
        if prove64:
            # float64: the folding is exact (algebra, not an approximation) where it happens, at the first
            # conv; the rest of the network is the same code on the same weights
            model = model.double()
            x = x.double()
            opt = optimize_for_inference(model, x, normalize=normalize)
            if folding == "separate":  # the network is untouched; its input goes through the affine first
                out, ref = x * opt.input_scale + opt.input_shift, _normalized(x, normalize)
            else:
                out = _stem_output(opt, opt.model.get_submodule(stem_path), x)
                ref = _stem_output(lambda t: model(_normalized(t, normalize)), model.get_submodule(stem_path), x)
            assert rel_err(out, ref) <= 1e-12, rel_err(out, ref)
    assert not model.training and all(p.requires_grad for p in model.parameters())
    assert getattr(model, "transform_input", False) == kwargs.get("transform_input", False)


def test_bfloat16_example_means_autocast():
    # A half-precision example: the copy runs under autocast of that dtype with its weights pre-cast. Its
    # error against float64 stays within 2x of the original's own under autocast (the derived policy).
    model = _build("googlenet", dict(transform_input=True, aux_logits=False))
    x = torch.rand(2, 3, 32, 32)
    with ic.backend("torch"), torch.no_grad():
        ref64 = model.double()(x.double())
        model.float()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch_err = rel_err(model(x.bfloat16()), ref64)
        opt = optimize_for_inference(model, x.bfloat16())
        out = opt(x.bfloat16())
    assert out.dtype == torch.bfloat16
    conv1 = opt.model.conv1
    assert conv1.conv.weight.dtype == torch.bfloat16  # pre-cast; the folded bias and BN stay float32
    assert conv1.conv.bias.dtype == torch.float32 and conv1.bn.running_var.dtype == torch.float32
    assert passes(rel_err(out, ref64), torch.bfloat16, torch_err=torch_err, interpreted=False), (
        rel_err(out, ref64), torch_err)


def test_no_normalisation_leaves_the_stem_alone():
    model = _build("googlenet", dict(aux_logits=False))
    x = torch.rand(1, 3, 32, 32)
    with ic.backend("torch"):
        opt = optimize_for_inference(model, x)
        assert opt.folding == "none" and opt.model.conv1.conv.bias is None
        assert rel_err(opt(x), _reference(model, x, None)) <= 1e-5


def test_frozen_copy_layout_and_mode():
    model = _build("googlenet", dict(transform_input=True, aux_logits=False)).train()
    x = torch.rand(1, 3, 32, 32)
    with ic.backend("torch"):  # optimize_for_inference runs one image: not through the Triton interpreter
        opt = optimize_for_inference(model, x)
    assert model.training and model.transform_input  # the original keeps its mode and flag
    assert not opt.model.training and not opt.model.transform_input
    assert not any(p.requires_grad for p in opt.model.parameters())
    assert opt.model.inception3a.branch2[1].conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert opt.graph is None and "folding='weights+border'" in repr(opt)
    with pytest.raises(RuntimeError, match="inference-only"):
        opt.train()


def test_border_corrected_stem_on_the_triton_kernel():
    # GoogLeNet's 7x7 stride-2 pad-3 stem with the border term as a batch-broadcast residual, through the
    # Triton kernel (interpreted on CPU): the zero-stride batch dimension must be read right.
    model = _build("googlenet", dict(transform_input=True, aux_logits=False))
    x = torch.rand(2, 3, 16, 16)
    with ic.backend("torch"):
        opt = optimize_for_inference(model, torch.rand(2, 3, 16, 16))
    stem = opt.model.conv1
    assert type(stem).__name__ == "_BorderCorrectedStem"
    xl = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = model.conv1(model._transform_input(x))
        with ic.backend("triton"):
            out = stem(xl)
    assert rel_err(out, ref) <= 1e-5
    assert rel_err(out[:, :, 0], ref[:, :, 0]) <= 1e-5  # the padded border row
    with pytest.raises(ValueError, match="16x16"):
        stem(torch.rand(2, 3, 18, 18))


def test_bad_arguments_are_named():
    model = _build("googlenet", dict(aux_logits=False))
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(TypeError, match="model"):
        optimize_for_inference("googlenet", x)
    with pytest.raises(TypeError, match="example_input"):
        optimize_for_inference(model, x.numpy())
    with pytest.raises(ValueError, match=r"example_input: .*\(N, C, H, W\)"):
        optimize_for_inference(model, x[0])
    with pytest.raises(TypeError, match="example_input: .*int64"):
        optimize_for_inference(model, x.long())
    with pytest.raises(ValueError, match="example_input: the model's first convolution takes 3 channels"):
        optimize_for_inference(model, torch.rand(1, 4, 32, 32))
    with pytest.raises(TypeError, match="normalize: expected a \\(mean, std\\) pair"):
        optimize_for_inference(model, x, normalize=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="normalize: std must have 3 values"):
        optimize_for_inference(model, x, normalize=(MEAN, (0.5, 0.5)))
    with pytest.raises(ValueError, match="normalize: std must be non-zero"):
        optimize_for_inference(model, x, normalize=(MEAN, (0.5, 0.0, 0.5)))
    with pytest.raises(ValueError, match="normalize: mean must be finite"):
        optimize_for_inference(model, x, normalize=((0.5, float("nan"), 0.5), STD))
    with pytest.raises(TypeError, match="normalize: mean must be a sequence"):
        optimize_for_inference(model, x, normalize=("abc", STD))
    with pytest.raises(TypeError, match="cuda_graph"):
        optimize_for_inference(model, x, cuda_graph="yes")


def test_other_shape_dtype_or_device_is_refused():
    model = _build("googlenet", dict(aux_logits=False))
    with ic.backend("torch"):
        opt = optimize_for_inference(model, torch.rand(1, 3, 32, 32))
        with pytest.raises(ValueError, match=r"optimized for input of shape \(1, 3, 32, 32\)"):
            opt(torch.rand(2, 3, 32, 32))
        with pytest.raises(ValueError, match="torch.float32"):
            opt(torch.rand(1, 3, 32, 32, dtype=torch.float64))
        with pytest.raises(TypeError, match="x: expected a Tensor"):
            opt([1, 2, 3])


def test_unknown_network_keeps_normalisation_separate():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten())
    x = torch.rand(2, 3, 8, 8)
    opt = optimize_for_inference(net, x, normalize=(MEAN, STD))
    assert opt.folding == "separate"
    assert rel_err(opt(x), _reference(net, x, (MEAN, STD))) <= 1e-5


def _cuda_model():
    if not torch.cuda.is_available():
        pytest.skip("CUDA graphs need a CUDA device")
    return _build("inception_v3", dict(transform_input=True, aux_logits=False)).cuda()


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_cuda_graph_matches_eager(dtype):
    model = _cuda_model()
    x = torch.rand(4, 3, 75, 75, device="cuda", dtype=dtype)
    opt = optimize_for_inference(model, x)
    assert opt.graph is not None
    for _ in range(2):  # replays read the new input each time
        x.copy_(torch.rand_like(x))
        with torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
            ref = _reference(model, x, None)
        out = opt(x)
        tol = 1e-5 if dtype == torch.float32 else 3e-2
        assert rel_err(out.float(), ref.float()) <= tol
    tuned = ic.autotune_stats()["tuned"]
    opt(x)
    assert ic.autotune_stats()["tuned"] == tuned  # replays never tune


@pytest.mark.gpu
def test_cuda_graph_refuses_another_shape():
    model = _cuda_model()
    opt = optimize_for_inference(model, torch.rand(2, 3, 75, 75, device="cuda"))
    with pytest.raises(ValueError, match=r"\(2, 3, 75, 75\)"):
        opt(torch.rand(3, 3, 75, 75, device="cuda"))


def test_an_example_too_small_for_the_network_fails_at_once():
    """issue 13 item 12: refused by optimize_for_inference itself, naming the argument, not at the first call."""
    model = _build("inception_v3", dict(aux_logits=False))
    with ic.backend("torch"), pytest.raises(ValueError, match=r"example_input: the network cannot run on inputs "
                                                              r"of shape \(2, 3, 40, 40\)"):
        optimize_for_inference(model, torch.rand(2, 3, 40, 40))


def test_the_first_convolution_comes_from_the_models_metadata():
    """The layer the normalisation folds into, read from each network's ``pretrained_cfg``: the
    ``BasicConv2d`` around ``first_conv`` (the flat conv for BN-Inception); None for a foreign model."""
    stems = {"googlenet": "conv1", "bn_inception": "conv1_7x7_s2", "inception_v3": "Conv2d_1a_3x3",
             "inception_v4": "features.0", "inception_resnet_v1": "conv2d_1a", "inception_resnet_v2": "conv2d_1a"}
    for name, stem in stems.items():
        model = ic.models.create_model(name, **({"init_weights": False} if name in ("googlenet", "inception_v3")
                                                else {}))
        assert inference._stem_name(model) == stem, name
    assert inference._stem_name(torch.nn.Conv2d(3, 8, 3)) is None


def _tv_googlenet():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.googlenet(weights=None, aux_logits=False, transform_input=True, init_weights=False)
    return randomize_for_equivalence(model).eval()


def test_a_reference_network_is_converted_to_ours():
    """A torchvision network runs as ours (fused kernels; transform_input and ``normalize`` folded into the
    first conv) with the same outputs; the original stays as it was."""
    ref = _tv_googlenet()
    x = torch.rand(1, 3, 64, 64)
    before = _fingerprint(ref)
    with ic.backend("torch"):
        opt = optimize_for_inference(ref, x, normalize=(MEAN, STD))
        out = opt(x)
    assert opt.converted_from == "torchvision.models.googlenet.GoogLeNet"
    assert isinstance(opt.model, ic.models.GoogLeNet) and opt.folding == "weights+border"
    assert _fingerprint(ref) == before and type(ref).__module__.startswith("torchvision")
    assert rel_err(out, _reference(ref, x, (MEAN, STD))) <= 1e-5


def test_a_modified_reference_network_warns_and_runs_as_it_is():
    ref = _tv_googlenet()
    ref.fc = torch.nn.Sequential(torch.nn.Linear(1024, 10))  # not the reference's head: convert refuses it
    x = torch.rand(1, 3, 64, 64)
    with pytest.warns(RuntimeWarning, match=r"not converted .*inception_core\.convert"):
        opt = optimize_for_inference(ref, x, normalize=(MEAN, STD))
    assert opt.converted_from is None and opt.folding == "separate"
    assert rel_err(opt(x), _reference(ref, x, (MEAN, STD))) <= 1e-5
