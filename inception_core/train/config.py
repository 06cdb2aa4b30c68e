"""The training recipe as a config: the papers' defaults, the command-line flags, and what each network
needs (builder arguments, native and smallest input sizes)."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

__all__ = [
    "AUX_NETWORKS",
    "DESCRIPTION",
    "NETWORKS",
    "MIN_IMAGE_SIZE",
    "NATIVE_IMAGE_SIZE",
    "RESUME_MUST_MATCH",
    "TrainConfig",
    "add_train_arguments",
    "build_parser",
    "config_from_args",
    "model_kwargs",
]

DESCRIPTION = ("Train an Inception network with the papers' recipe (RMSprop alpha 0.9 eps 1.0 momentum 0.9, lr 0.045 "
               "x0.94 every 2 epochs, label smoothing 0.1, aux loss weight 0.3, weight decay 4e-5) on an ImageFolder "
               "directory or generated data; under torchrun --nproc_per_node N as DistributedDataParallel.")

# Networks whose builder takes ``aux_logits`` and whose forward returns the aux logits in training mode.
AUX_NETWORKS = ("googlenet", "inception_v3")

NATIVE_IMAGE_SIZE = {
    "bn_inception": 224,
    "googlenet": 224,
    "inception_resnet_v1": 160,
    "inception_resnet_v1_imagenet": 299,
    "inception_resnet_v2": 299,
    "inception_v3": 299,
    "inception_v4": 299,
}

NETWORKS = tuple(sorted(NATIVE_IMAGE_SIZE))  # every registered builder (a test keeps the two in step)

# Smallest square input each network accepts in training mode (measured on the models as built here).
# Inception-v3's aux head (5x5 pool stride 3, then a 5x5 conv) needs the 17x17 map of a 299 input.
MIN_IMAGE_SIZE = {
    "bn_inception": 223,  # the port's fixed 7x7 final average pool
    "googlenet": 15,
    "inception_resnet_v1": 75,
    "inception_resnet_v1_imagenet": 75,
    "inception_resnet_v2": 75,
    "inception_v3": 75,
    "inception_v4": 75,
}
MIN_IMAGE_SIZE_WITH_AUX = {"googlenet": 15, "inception_v3": 299}

# Fields a resumed run must share with its checkpoint: any of them changing changes the run itself.
RESUME_MUST_MATCH = (
    "model", "data", "num_classes", "image_size", "batch_size", "world_size", "lr", "lr_decay",
    "lr_decay_epochs", "momentum", "rmsprop_alpha", "rmsprop_eps", "weight_decay", "label_smoothing",
    "aux_weight", "clip_grad", "ema", "ema_decay", "amp", "channels_last", "seed", "sync_bn",
    "train_samples", "val_samples",
)


@dataclass
class TrainConfig:
    """One training run. Defaults are the Inception papers' recipe: RMSprop (decay 0.9, epsilon 1.0,
    momentum 0.9), learning rate 0.045 decayed by 0.94 every 2 epochs, label smoothing 0.1, auxiliary
    losses weighted 0.3, weight decay 4e-5 (TF-slim's Inception setting; the papers do not state one)."""

    model: str = "inception_v3"
    data: str = "synthetic"
    output: str | None = None
    resume: str | None = None
    epochs: int = 100
    batch_size: int = 32
    lr: float = 0.045
    lr_decay: float = 0.94
    lr_decay_epochs: int = 2
    momentum: float = 0.9
    rmsprop_alpha: float = 0.9
    rmsprop_eps: float = 1.0
    weight_decay: float = 4e-5
    label_smoothing: float = 0.1
    aux_weight: float = 0.3
    clip_grad: float | None = None
    ema: bool = False
    ema_decay: float = 0.9999
    amp: str = "none"
    channels_last: bool = False
    image_size: int | None = None
    num_classes: int | None = None
    train_samples: int = 4096
    val_samples: int = 512
    workers: int | None = None
    seed: int = 0
    sync_bn: bool = False
    skip_bad_images: bool = False
    max_steps: int | None = None
    save_every: int | None = None
    log_every: int | None = None
    device: str | None = None
    backend: str = "auto"
    progress: bool = True
    world_size: int = 1

    def validate(self) -> None:
        """Raise ValueError naming the flag and what was expected."""
        if self.model not in NETWORKS:
            raise ValueError(f"--model: unknown network {self.model!r}; expected one of {list(NETWORKS)}")
        positive = {"--epochs": self.epochs, "--batch-size": self.batch_size, "--train-samples": self.train_samples,
                    "--val-samples": self.val_samples, "--lr-decay-epochs": self.lr_decay_epochs}
        for flag, value in positive.items():
            if value < 1:
                raise ValueError(f"{flag}: expected >= 1, got {value}")
        if self.batch_size < 2:
            raise ValueError(f"--batch-size: expected >= 2 (BatchNorm batch statistics need two images), "
                             f"got {self.batch_size}")
        for flag, value in {"--max-steps": self.max_steps, "--save-every": self.save_every,
                            "--log-every": self.log_every, "--num-classes": self.num_classes}.items():
            if value is not None and value < 1:
                raise ValueError(f"{flag}: expected >= 1, got {value}")
        if self.num_classes is not None and self.num_classes < 2:
            raise ValueError(f"--num-classes: expected >= 2, got {self.num_classes}")
        if self.lr <= 0:
            raise ValueError(f"--lr: expected > 0, got {self.lr}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"--label-smoothing: expected in [0, 1), got {self.label_smoothing}")
        if self.aux_weight < 0:
            raise ValueError(f"--aux-weight: expected >= 0, got {self.aux_weight}")
        if self.clip_grad is not None and self.clip_grad <= 0:
            raise ValueError(f"--clip-grad: expected a max norm > 0, got {self.clip_grad}")
        if not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"--ema-decay: expected in (0, 1), got {self.ema_decay}")
        if self.amp not in ("none", "bf16", "fp16"):
            raise ValueError(f"--amp: expected none, bf16 or fp16, got {self.amp!r}")
        if self.workers is not None and self.workers < 0:
            raise ValueError(f"--workers: expected >= 0, got {self.workers}")
        size = self.resolved_image_size
        smallest = self.min_image_size
        if size < smallest:
            # --aux-weight 0 is worth naming only where the network without its aux head takes this size
            without_aux = self.uses_aux and size >= MIN_IMAGE_SIZE[self.model]
            why = " with its auxiliary head" if self.uses_aux else ""
            hint = ("; --aux-weight 0 builds it without, which takes this size" if without_aux
                    else f"; use --image-size {smallest} or more")
            raise ValueError(f"--image-size: {self.model}{why} needs >= {smallest}, got {size}{hint}")

    @property
    def uses_aux(self) -> bool:
        """The network is built with auxiliary classifiers (it has them and their loss weight is > 0)."""
        return self.model in AUX_NETWORKS and self.aux_weight > 0

    @property
    def min_image_size(self) -> int:
        return MIN_IMAGE_SIZE_WITH_AUX[self.model] if self.uses_aux else MIN_IMAGE_SIZE[self.model]

    @property
    def resolved_image_size(self) -> int:
        return self.image_size if self.image_size is not None else NATIVE_IMAGE_SIZE[self.model]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def model_kwargs(cfg: TrainConfig, num_classes: int) -> dict:
    """Builder arguments that make ``cfg.model`` a ``num_classes``-way classifier."""
    kwargs: dict = {"num_classes": num_classes}
    if cfg.model in AUX_NETWORKS:
        kwargs["aux_logits"] = cfg.uses_aux
    if cfg.model == "inception_resnet_v1":  # the face-embedding network with its `logits` layer
        kwargs["classify"] = True
    return kwargs


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``inception-core train`` / ``python -m inception_core.train`` flags."""
    d = TrainConfig()
    add = parser.add_argument
    add("--model", default=d.model, help=f"network: {', '.join(NETWORKS)} (default {d.model})")
    add("--data", default=d.data, help="'synthetic' (generated, learnable, no download) or an ImageFolder "
                                       "directory holding train/ and val/ (default synthetic)")
    add("--output", help="directory for checkpoints (last.pt) and metrics.jsonl (default runs/<model>)")
    add("--resume", help="continue from this checkpoint (a last.pt written by this trainer)")
    add("--epochs", type=int, default=d.epochs, help=f"(default {d.epochs})")
    add("--batch-size", type=int, default=d.batch_size, help=f"images per step per process (default {d.batch_size})")
    add("--lr", type=float, default=d.lr, help=f"initial learning rate (default {d.lr})")
    add("--lr-decay", type=float, default=d.lr_decay, help=f"StepLR gamma (default {d.lr_decay})")
    add("--lr-decay-epochs", type=int, default=d.lr_decay_epochs, help=f"StepLR step (default {d.lr_decay_epochs})")
    add("--momentum", type=float, default=d.momentum, help=f"RMSprop momentum (default {d.momentum})")
    add("--rmsprop-alpha", type=float, default=d.rmsprop_alpha, help=f"RMSprop decay (default {d.rmsprop_alpha})")
    add("--rmsprop-eps", type=float, default=d.rmsprop_eps, help=f"RMSprop epsilon (default {d.rmsprop_eps})")
    add("--weight-decay", type=float, default=d.weight_decay, help=f"(default {d.weight_decay})")
    add("--label-smoothing", type=float, default=d.label_smoothing, help=f"(default {d.label_smoothing})")
    add("--aux-weight", type=float, default=d.aux_weight,
        help=f"weight of each auxiliary loss (googlenet, inception_v3); 0 builds no aux heads (default {d.aux_weight})")
    add("--clip-grad", type=float, default=None, help="clip the gradient norm to this value (default off)")
    add("--ema", action="store_true", help="keep an exponential moving average of the weights and evaluate it")
    add("--ema-decay", type=float, default=d.ema_decay, help=f"(default {d.ema_decay})")
    add("--amp", choices=["none", "bf16", "fp16"], default=d.amp, help="autocast dtype; fp16 uses a GradScaler")
    add("--channels-last", action="store_true", help="model and inputs in channels_last memory format")
    add("--image-size", type=int, default=None, help="square input size (default: the network's native size)")
    add("--num-classes", type=int, default=None, help="classes (default: synthetic 10; ImageFolder: as found)")
    add("--train-samples", type=int, default=d.train_samples, help="synthetic training images (default 4096)")
    add("--val-samples", type=int, default=d.val_samples, help="synthetic held-out images (default 512)")
    add("--workers", type=int, default=None, help="DataLoader workers per process (default: 0 synthetic, else 4)")
    add("--seed", type=int, default=d.seed, help=f"(default {d.seed})")
    add("--sync-bn", action="store_true", help="synchronise BatchNorm statistics across processes (CUDA)")
    add("--skip-bad-images", action="store_true",
        help="--data DIR: an image file that cannot be read is skipped (its batch slot takes the next readable "
             "image) and counted in metrics.jsonl (skipped_images), instead of stopping the run")
    add("--max-steps", type=int, default=None, help="stop (and checkpoint) after this many optimizer steps in all")
    add("--save-every", type=int, default=None, help="also checkpoint every N steps (default: each epoch)")
    add("--log-every", type=int, default=None, help="also log a step record every N steps to metrics.jsonl")
    add("--device", help="cpu or cuda (default: cuda when available; under torchrun cuda:LOCAL_RANK)")
    add("--backend", choices=["auto", "triton", "torch"], default=d.backend, help="inception_core backend")
    add("--no-progress", dest="progress", action="store_false", help="no progress bar")


def build_parser(prog: str = "inception-core train") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_train_arguments(parser)
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    names = {f.name for f in dataclasses.fields(TrainConfig)} - {"world_size"}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names})
