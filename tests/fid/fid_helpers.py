"""Helpers of the FID tests: the tools' networks built without any download, and folders of PNGs."""

import os
from unittest import mock

import numpy as np
import torch

SMALL = 75  # the network's smallest input: every tap exists, 1x1 after Mixed_7c


def pytorch_fid_model(state: dict, blocks=(3,), **kwargs):
    """pytorch-fid's ``InceptionV3`` wrapper with ``state`` instead of its downloaded weights."""
    import pytorch_fid.inception as pfi

    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: state):
        return pfi.InceptionV3(list(blocks), **kwargs).eval()


def fidelity_model(weights_file: str, features=("2048",), size: int = SMALL):
    """torch-fidelity's ``FeatureExtractorInceptionV3`` reading ``weights_file``, resizing to ``size``."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    model = FeatureExtractorInceptionV3("inception-v3-compat", list(features),
                                        feature_extractor_weights_path=weights_file)
    model.INPUT_IMAGE_SIZE = size  # the class constant it resizes to (299); an instance attribute shadows it
    return model


def pytorch_fid_resizing_to(size: int):
    """A context in which pytorch-fid's wrapper resizes to ``size`` instead of its hard-coded 299 (test
    speed only): its module's ``F`` is replaced by torch.nn.functional with that one call changed."""
    import pytorch_fid.inception as pfi

    class Functional:
        def __getattr__(self, name):
            return getattr(torch.nn.functional, name)

        @staticmethod
        def interpolate(x, size=None, **kwargs):
            return torch.nn.functional.interpolate(x, size=(target, target), **kwargs)

    target = size
    return mock.patch.object(pfi, "F", Functional())


def write_pngs(folder, count: int, size=(24, 24), seed: int = 0, shift: float = 0.0) -> list[str]:
    """``count`` random RGB PNGs in ``folder`` (created); ``shift`` moves the pixel distribution so two
    folders give an FID that is not tiny. Returns the paths, sorted."""
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        base = rng.uniform(0, 255, size=(1, 1, 3)) * (1 - shift) + 255 * shift * rng.uniform(0.5, 1)
        noise = rng.normal(0, 60, size=(*size, 3))
        img = np.clip(base + noise, 0, 255).astype(np.uint8)
        path = os.path.join(folder, f"img_{i:03d}.png")
        Image.fromarray(img).save(path)
        paths.append(path)
    return sorted(paths)


def load_uint8(paths) -> torch.Tensor:
    """(N, 3, H, W) uint8 of the PNGs, as the tools decode them (PIL, RGB)."""
    from PIL import Image

    return torch.stack([torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1) for p in paths])
