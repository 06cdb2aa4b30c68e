"""The one builder of the reference networks (``inception_core.bench.references``): its options, and the errors
for an option a network lacks or a package that is not installed (each before anything is built)."""

import sys

import pytest

from inception_core.bench.references import REFERENCES, ReferenceUnavailable, build_reference


def test_options_reach_the_reference():
    assert build_reference("googlenet").aux1 is not None  # torchvision's default
    assert build_reference("googlenet", aux_logits=False).aux1 is None
    # num_classes reaches facenet's network: None (its embedding network) in test_networks' parameter count of
    # inception_resnet_v1, 1000 (classify=True) in test_training's cross-entropy over 1000 classes


@pytest.mark.parametrize(("name", "options", "message"), [
    ("inception_v4", dict(aux_logits=False), r"^aux_logits: inception_v4's reference \(timm inception_v4\) has no"),
    ("bn_inception", dict(num_classes=None), r"^num_classes: expected a class count for bn_inception, got None"),
    ("inception_v5", {}, r"^network: expected one of \['googlenet', .*got 'inception_v5'"),
])
def test_an_option_the_network_lacks_is_refused(name, options, message):
    with pytest.raises(ValueError, match=message):
        build_reference(name, **options)


def test_a_missing_package_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "facenet_pytorch", None)  # makes the import fail
    with pytest.raises(ReferenceUnavailable, match=r"^inception_resnet_v1: its reference \(facenet-pytorch "
                       r"InceptionResnetV1 \(face embedding\)\) needs the package 'facenet_pytorch'.*"
                       r"pip install --no-deps facenet-pytorch==2\.6\.0"):
        build_reference("inception_resnet_v1", num_classes=None)


def test_the_source_names_the_configuration():
    assert REFERENCES["googlenet"].describe(1000, aux_logits=True) == "torchvision googlenet (aux heads)"
    assert REFERENCES["googlenet"].describe(1000, aux_logits=False) == "torchvision googlenet"
    assert REFERENCES["inception_resnet_v1"].describe(1000, aux_logits=True) == \
        "facenet-pytorch InceptionResnetV1 (1000 classes)"
