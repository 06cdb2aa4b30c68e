"""Shared pieces of the FID tests: random FID weights (He init, random BatchNorm statistics) loaded into
the tools' networks and ours, the tools' networks built without any download, and folders of PNGs.

Full-network forwards cost about 0.1 s per image at 75x75 on these CPUs: the tests run at 75 (the
network's smallest input) and compare on a few images; stem-only taps ("64") take the larger sets.
"""

import pytest
import torch
from fid_helpers import fidelity_model, pytorch_fid_model

from inception_core.models.fid_inception_v3 import FID_TAPS, FIDInception3
from inception_core.testing import randomize_for_equivalence


@pytest.fixture(scope="session")
def fid_state() -> dict:
    """A random FID state_dict in the layout of pytorch-fid's weights file (torchvision keys, with
    num_batches_tracked)."""
    net = randomize_for_equivalence(FIDInception3(), seed=1)
    return {k: v.clone() for k, v in net.state_dict().items()}


@pytest.fixture(scope="session")
def fidelity_weights_file(fid_state, tmp_path_factory) -> str:
    """The state as torch-fidelity's converter writes its file: a plain dict, no num_batches_tracked."""
    path = tmp_path_factory.mktemp("weights") / "weights-inception-2015-12-05-6726825d.pth"
    torch.save({k: v for k, v in fid_state.items() if not k.endswith("num_batches_tracked")}, path)
    return str(path)


@pytest.fixture(scope="session")
def ours(fid_state) -> FIDInception3:
    net = FIDInception3().eval()
    net.load_state_dict(fid_state, strict=True)
    return net


@pytest.fixture(scope="session")
def pytorch_fid_net(fid_state):
    """pytorch-fid's wrapper with all four blocks on the random state (set ``resize_input`` /
    ``normalize_input`` / ``output_blocks`` on it per test: its forward reads them)."""
    return pytorch_fid_model(fid_state, blocks=(0, 1, 2, 3))


@pytest.fixture(scope="session")
def fidelity_net(fidelity_weights_file):
    """torch-fidelity's extractor at 75x75 on the random weights file (set ``features_list`` per test)."""
    return fidelity_model(fidelity_weights_file, FID_TAPS)
