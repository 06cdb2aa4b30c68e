"""Exact mode: an image's features do not depend on the batch it is in (CPU torch backend, 75x75);
fast mode (bf16 autocast) stays close to exact."""

import pytest
import torch
from fid_helpers import SMALL

import inception_core
from inception_core.fid import InceptionFeatureExtractor, precision_mode
from inception_core.testing import rel_err


@pytest.fixture(scope="module")
def batch64():
    return torch.randint(0, 256, (64, 3, SMALL, SMALL), dtype=torch.uint8, generator=torch.Generator().manual_seed(9))


def test_exact_features_do_not_depend_on_the_batch(ours, batch64):
    extractor = InceptionFeatureExtractor("2048", preset="torch-fidelity", net=ours, image_size=SMALL)
    with inception_core.backend("torch"):
        f64 = extractor(batch64)
        f7 = extractor(batch64[:7])
        f1 = extractor(batch64[:1])
    assert rel_err(f7, f64[:7]) <= 1e-6
    assert rel_err(f1, f64[:1]) <= 1e-6


def test_fast_mode_close_to_exact(ours, batch64):
    x = batch64[:2]
    exact = InceptionFeatureExtractor("2048", preset="torch-fidelity", net=ours, image_size=SMALL)
    fast = InceptionFeatureExtractor("2048", preset="torch-fidelity", net=ours, image_size=SMALL, precision="fast")
    with inception_core.backend("torch"):
        e, f = exact(x), fast(x)
    assert f.dtype == torch.float32
    assert 0 < rel_err(f, e) <= 5e-2  # bf16 compute: ~3 significant digits through 94 layers


def test_precision_mode_restores_tf32_flags():
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = True
    try:
        with precision_mode("exact", torch.device("cpu")):
            assert not torch.backends.cudnn.allow_tf32
        assert torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32 = saved
    with pytest.raises(ValueError, match="precision"):
        with precision_mode("tf32", torch.device("cpu")):
            pass
