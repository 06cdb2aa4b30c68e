"""The recipe's options on a tiny run: an ImageFolder directory, bf16 autocast with channels_last, fp16 with a
GradScaler whose state is checkpointed."""

import os

import pytest
import torch

from inception_core.train import load_checkpoint, train
from inception_core.train.data import UnreadableImageError
from inception_core.train.metrics import MetricsLog

pytest.importorskip("torchvision")


def _last_epoch(cfg) -> dict:
    return [r for r in MetricsLog.read(os.path.join(cfg.output, "metrics.jsonl")) if r["kind"] == "epoch"][-1]


def test_image_folder(tmp_path, tiny):
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    for split, per_class in (("train", 2), ("val", 1)):
        for cls in ("cat", "dog", "fox"):
            folder = tmp_path / "data" / split / cls
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = torch.randint(0, 256, (40, 48, 3), dtype=torch.uint8, generator=gen).numpy()
                Image.fromarray(pixels).save(folder / f"{i}.png")
    cfg = tiny(data=str(tmp_path / "data"), num_classes=None, workers=0)
    train(cfg)
    rec = _last_epoch(cfg)
    assert rec["train_images"] == 6 and rec["complete"]
    assert load_checkpoint(os.path.join(cfg.output, "last.pt"))["config"]["num_classes"] == 3  # found in the data


def test_image_folder_class_count_mismatch(tmp_path, tiny):
    from PIL import Image

    for split in ("train", "val"):
        (tmp_path / "data" / split / "only").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "data" / split / "only" / "0.png")
    with pytest.raises(ValueError, match="--num-classes: 4, but .* holds 1 classes"):
        train(tiny(data=str(tmp_path / "data"), num_classes=4))


def _image_folder(root, classes=("cat", "dog"), per_class=2, size=(20, 24)):
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        for cls in classes:
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = torch.randint(0, 256, (*size, 3), dtype=torch.uint8, generator=gen).numpy()
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def test_image_folder_different_classes_are_named(tmp_path, tiny):
    data = _image_folder(tmp_path / "data", per_class=1)
    (data / "train" / "dog").rename(data / "train" / "wolf")  # 2 classes each side, one of them differs
    with pytest.raises(ValueError, match=r"\(2 vs 2\): only in train/: wolf; only in val/: dog"):
        train(tiny(data=str(data), num_classes=None))


def test_truncated_image_is_named(tmp_path, tiny):
    data = _image_folder(tmp_path / "data", per_class=1)  # one step of 2 images
    bad = data / "train" / "dog" / "0.png"
    bad.write_bytes(bad.read_bytes()[:-200])  # cut off mid-stream: PIL opens it, decoding fails
    with pytest.raises(UnreadableImageError, match=f"cannot read image {bad}"):
        train(tiny(data=str(data), num_classes=None, workers=0))
    # --skip-bad-images: the run goes on, the file is counted once per epoch
    cfg = tiny(data=str(data), num_classes=None, workers=0, skip_bad_images=True, output=str(tmp_path / "skip"))
    train(cfg)
    rec = _last_epoch(cfg)
    assert rec["complete"] and rec["train_images"] == 2
    assert (rec["skipped_images"], rec["val_skipped_images"]) == (1, 0)


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp(tiny, amp):
    cfg = tiny(amp=amp, channels_last=amp == "bf16", max_steps=2)
    result = train(cfg)
    assert _last_epoch(cfg)["train_loss"] > 0
    assert all(p.dtype == torch.float32 for p in result.model.parameters())  # autocast: fp32 weights
    scaler = load_checkpoint(os.path.join(cfg.output, "last.pt"))["scaler"]
    assert ("scale" in scaler) == (amp == "fp16")
