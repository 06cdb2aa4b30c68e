"""The generated dataset is deterministic and learnable; the sampling order resumes mid-epoch."""

import torch

from inception_core.train.data import SkipSampler, SyntheticImages, make_train_loader


def test_synthetic_is_deterministic_per_index():
    a = SyntheticImages(8, 5, 19, seed=1)
    b = SyntheticImages(8, 5, 19, seed=1)
    for i in (7, 0, 3):  # any order
        xa, ya = a[i]
        xb, yb = b[i]
        assert torch.equal(xa, xb) and ya == yb
    assert a[0][0].shape == (3, 19, 19) and a[0][0].dtype == torch.float32
    assert not torch.equal(a[0][0], SyntheticImages(8, 5, 19, seed=2)[0][0])
    assert not torch.equal(a[0][0], SyntheticImages(8, 5, 19, seed=1, split="val")[0][0])


def test_synthetic_is_learnable():
    """Nearest class pattern (unknown shift and contrast aside) already beats chance by far."""
    ds = SyntheticImages(100, 10, 16, seed=0)
    correct = 0
    for i in range(len(ds)):
        x, y = ds[i]
        # correlation with each class pattern over every circular shift
        best = max(range(10), key=lambda c: max(
            float((torch.roll(ds.patterns[c], (dy, dx), (1, 2)) * x).sum())
            for dy in range(-4, 5) for dx in range(-4, 5)))
        correct += best == y
    assert correct / len(ds) > 0.6


def test_skip_sampler():
    assert list(SkipSampler(list(range(10)), 4)) == [4, 5, 6, 7, 8, 9]
    assert len(SkipSampler(list(range(10)), 4)) == 6


def test_loader_resumes_order_and_leaves_global_rng_alone():
    ds = SyntheticImages(12, 3, 15, seed=0)
    kwargs = dict(batch_size=2, epoch=1, rank=0, world_size=1, seed=5, workers=0, pin_memory=False)

    def batches(loader):  # every image differs, so its pixel sum identifies it
        return [x.sum(dim=(1, 2, 3)).tolist() for x, _ in loader]

    full = batches(make_train_loader(ds, skip_batches=0, **kwargs))
    state = torch.get_rng_state()
    rest = batches(make_train_loader(ds, skip_batches=2, **kwargs))
    assert torch.equal(state, torch.get_rng_state())
    assert rest == full[2:] and len(full) == 6
    assert batches(make_train_loader(ds, skip_batches=0, **{**kwargs, "epoch": 2})) != full
