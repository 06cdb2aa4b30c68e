"""Our extractor as the ``feature`` module of torchmetrics' FID, KID and IS, against the same metrics on
torchmetrics' own network (``NoTrainInceptionV3``) holding the same random weights."""

import pytest
import torch
from fid_helpers import SMALL

import inception_core
from inception_core.fid import InceptionFeatureExtractor, preprocess


def _tm_network(weights_file, feature):
    from torchmetrics.image.fid import NoTrainInceptionV3

    net = NoTrainInceptionV3(name="inception-v3-compat", features_list=[feature],
                             feature_extractor_weights_path=weights_file)
    net.INPUT_IMAGE_SIZE = SMALL
    return net


def _images(n, seed, shift=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 200, (n, 3, 24, 24), generator=g) + shift).clamp(0, 255).to(torch.uint8)


@pytest.fixture(scope="module")
def sets():
    return _images(70, 1), _images(70, 2, shift=50)


def test_torchmetrics_preset_is_its_resize(fidelity_weights_file):
    net = _tm_network(fidelity_weights_file, "64")
    images = _images(2, 3)
    seen = {}
    real_conv = net.Conv2d_1a_3x3.forward

    def capture(x):
        seen["x"] = x
        return real_conv(x)

    net.Conv2d_1a_3x3.forward = capture
    with torch.no_grad():
        net(images)
    assert torch.equal(preprocess(images, "torchmetrics", SMALL), seen["x"])


def test_fid_with_our_extractor(ours, fidelity_weights_file, sets):
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = sets
    theirs = FrechetInceptionDistance(feature=64, feature_extractor_weights_path=fidelity_weights_file)
    theirs.inception.INPUT_IMAGE_SIZE = SMALL
    extractor = InceptionFeatureExtractor("64", preset="torchmetrics", net=ours, image_size=SMALL)
    mine = FrechetInceptionDistance(feature=extractor)
    assert mine.inception is extractor
    with inception_core.backend("torch"):
        for metric in (theirs, mine):
            metric.update(real, real=True)
            metric.update(fake, real=False)
        want, got = theirs.compute().item(), mine.compute().item()
    assert want > 1.0
    assert got == pytest.approx(want, rel=1e-4)


def test_kid_and_is_with_our_extractor(ours, fidelity_weights_file, sets):
    from torchmetrics.image.inception import InceptionScore
    from torchmetrics.image.kid import KernelInceptionDistance

    real, fake = sets
    values = []
    for feature in (_tm_network(fidelity_weights_file, "64"),
                    InceptionFeatureExtractor("64", preset="torchmetrics", net=ours, image_size=SMALL)):
        kid = KernelInceptionDistance(feature=feature, subsets=10, subset_size=20)
        with inception_core.backend("torch"):
            kid.update(real, real=True)
            kid.update(fake, real=False)
            torch.manual_seed(7)  # the subsets come from torch.randperm
            values.append(kid.compute()[0].item())
    assert values[1] == pytest.approx(values[0], rel=1e-4)

    few = real[:6]
    scores = []
    for feature in (_tm_network(fidelity_weights_file, "logits_unbiased"),
                    InceptionFeatureExtractor("logits_unbiased", preset="torchmetrics", net=ours, image_size=SMALL)):
        isc = InceptionScore(feature=feature, splits=2)
        with inception_core.backend("torch"):
            isc.update(few)
            torch.manual_seed(7)
            scores.append(isc.compute()[0].item())
    assert scores[1] == pytest.approx(scores[0], rel=1e-5)
