"""The FID Inception network: the 2015-12-05 TensorFlow Inception graph as pytorch-fid and torch-fidelity port it.

It is Inception-v3 (torchvision's module names and state_dict keys) with a 1008-class ``fc``, no
``AuxLogits``, and the TensorFlow graph's pools: the ``branch_pool`` average pools of Mixed_5b-d,
Mixed_6b-e and Mixed_7b do not count the zero padding (``count_include_pad=False``) and Mixed_7c's
``branch_pool`` is a 3x3 stride-1 max pool. pytorch-fid's ``pt_inception-2015-12-05`` weights and
torch-fidelity's ``weights-inception-2015-12-05`` file (no ``num_batches_tracked``) load with
``strict=True``. The fused path is Inception-v3's: slice writes, horizontal fusion, both pools in the pooling
kernel (on the torch backend the average pools after their 1x1 convs).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import Tensor, nn

from inception_core.models._entry import fused_input
from inception_core.models.inception_v3 import InceptionA, InceptionC, InceptionE, inception3_layers
from inception_core.nn import ChannelSlots
from inception_core.nn import functional as icf
from inception_core.nn.pool_branch import avg_pool_conv_bn_act

__all__ = [
    "FID_STAGES",
    "FID_TAPS",
    "FIDInception3",
    "FIDInceptionA",
    "FIDInceptionC",
    "FIDInceptionE_1",
    "FIDInceptionE_2",
    "fid_inception_v3",
    "fid_layers",
]

# Outputs on request, as torch-fidelity names them: spatial means of MaxPool_1 (64), MaxPool_2 (192) and
# Mixed_6e (768) (pytorch-fid's 64/192/768 dims average its block outputs the same way), pool3 (2048),
# the logits without the fc bias (torch-fidelity's Inception Score input) and the logits.
FID_TAPS = ("64", "192", "768", "2048", "logits_unbiased", "logits")

# The layers of each spatial tap's stage, in network order: pytorch-fid's four blocks
FID_STAGES = (
    ("64", ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1")),
    ("192", ("Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2")),
    ("768", ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e")),
    ("2048", ("Mixed_7a", "Mixed_7b", "Mixed_7c")),
)


# the TensorFlow graph's branch_pool average pool (padding not counted); on the torch backend the 1x1 conv after
# it runs first (inception_core.nn.pool_branch)
_TF_AVG_POOL = {"kernel_size": 3, "stride": 1, "padding": 1, "count_include_pad": False}


def _tf_pool_branch(parent: Iterator[Tensor], branches_before: int) -> Iterator[Tensor]:
    """The parent block's branches up to its ``branch_pool`` (which is then never computed): the FID
    blocks differ from torchvision's only in that pool, the last branch of each block."""
    for _ in range(branches_before):
        yield next(parent)
    parent.close()


class FIDInceptionA(InceptionA):
    """Mixed_5b-d: torchvision's ``InceptionA`` with a ``count_include_pad=False`` average pool."""

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        yield from _tf_pool_branch(super()._forward(x, cat), 3)
        yield avg_pool_conv_bn_act(x, _TF_AVG_POOL, self.branch_pool, **cat.slot(self.branch_pool.out_channels))


class FIDInceptionC(InceptionC):
    """Mixed_6b-e: torchvision's ``InceptionC`` with a ``count_include_pad=False`` average pool."""

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        yield from _tf_pool_branch(super()._forward(x, cat), 3)
        yield avg_pool_conv_bn_act(x, _TF_AVG_POOL, self.branch_pool, **cat.slot(192))


class FIDInceptionE_1(InceptionE):  # noqa: N801  (pytorch-fid's and torch-fidelity's class name)
    """Mixed_7b: torchvision's ``InceptionE`` with a ``count_include_pad=False`` average pool."""

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        yield from _tf_pool_branch(super()._forward(x, cat), 5)
        yield avg_pool_conv_bn_act(x, _TF_AVG_POOL, self.branch_pool, **cat.slot(192))


class FIDInceptionE_2(InceptionE):  # noqa: N801
    """Mixed_7c: torchvision's ``InceptionE`` with a 3x3 stride-1 max pool in ``branch_pool`` (the graph's)."""

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        yield from _tf_pool_branch(super()._forward(x, cat), 5)
        pooled = icf.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        yield self.branch_pool(pooled, **cat.slot(192))


def fid_layers() -> dict[str, nn.Module]:
    """The FID network's layers from the stem to Mixed_7c under torchvision's names, in network order:
    Inception-v3's with the FID blocks' pools."""
    return inception3_layers(block_a=FIDInceptionA, block_c=FIDInceptionC, block_7b=FIDInceptionE_1,
                             block_7c=FIDInceptionE_2)


class FIDInception3(nn.Module):
    """The FID Inception network: 23,850,960 parameters (21,785,568 without ``fc``).

    Input: (N, 3, H, W) float, already resized (299x299 for the published numbers; 75x75 is the
    smallest) and scaled to [-1, 1] (``inception_core.fid.presets`` does both as each tool does).
    ``forward`` returns the logits (N, 1008), fc bias included;
    ``forward_taps`` returns the outputs the FID tools read (``FID_TAPS``), stopping after the last one
    asked for. Eval mode without autograd runs the fused path (channels_last once at the entry).

    Args:
        num_classes: ``fc`` outputs (1008 in the published weights), or None for no ``fc`` (pool3 and the
            earlier taps only: pytorch-fid's wrapper holds no ``fc``).
    """

    def __init__(self, num_classes: int | None = 1008) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_features = 2048
        for name, layer in fid_layers().items():
            setattr(self, name, layer)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(2048, num_classes) if num_classes is not None else None

    def _stages(self):
        """(tap name, layers up to it) in network order."""
        return tuple((tap, tuple(getattr(self, name) for name in names)) for tap, names in FID_STAGES)

    def forward_maps(self, x: Tensor, last: str = "2048") -> dict[str, Tensor]:
        """The unpooled stage outputs up to ``last`` ("64": N x 64 x 73 x 73, "192": N x 192 x 35 x 35,
        "768": N x 768 x 17 x 17, "2048": N x 2048 x 8 x 8 at 299), keyed by tap name; dense tensors
        (channels_last on the fused path). pytorch-fid's blocks return these (pool3 after its avg pool)."""
        names = [name for name, _ in self._stages()]
        if last not in names:
            raise ValueError(f"last: expected one of {names}, got {last!r}")
        x = fused_input(self, x)
        maps = {}
        for name, layers in self._stages():
            for layer in layers:
                x = layer(x)
            x = icf.dense(x)  # fused block outputs are views behind their scratch channels
            maps[name] = x
            if name == last:
                break
        return maps

    def forward_taps(self, x: Tensor, taps: Iterable[str] = ("2048",)) -> dict[str, Tensor]:
        """The requested ``FID_TAPS`` for (N, 3, H, W) input in [-1, 1], each (N, D) in the compute dtype:
        spatial means for "64"/"192"/"768"/"2048", ``pool3 @ fc.weight.T`` for "logits_unbiased",
        ``fc(pool3)`` for "logits". Runs the network only as far as the last tap asked for."""
        taps = list(taps)
        bad = [t for t in taps if t not in FID_TAPS]
        if bad or not taps:
            raise ValueError(f"taps: expected a non-empty list of {list(FID_TAPS)}, got {taps!r}")
        logit_taps = {"logits", "logits_unbiased"} & set(taps)
        if logit_taps and self.fc is None:
            raise ValueError(f"taps: {sorted(logit_taps)} need the fc layer; this network has num_classes=None")
        last = max((t for t in taps if t in FID_TAPS[:4]), key=FID_TAPS.index, default="2048")
        if logit_taps:
            last = "2048"
        maps = self.forward_maps(x, last)
        out = {name: torch.flatten(self.avgpool(m), 1) for name, m in maps.items() if name in taps or name == "2048"}
        if "logits_unbiased" in taps:
            out["logits_unbiased"] = out["2048"].mm(self.fc.weight.T.to(out["2048"].dtype))
        if "logits" in taps:
            out["logits"] = self.fc(out["2048"])
        return {t: out[t] for t in taps}

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) in [-1, 1] -> logits (N, num_classes); pool3 (N, 2048) when built without ``fc``."""
        taps = ("logits",) if self.fc is not None else ("2048",)
        return self.forward_taps(x, taps)[taps[0]]


def fid_inception_v3(num_classes: int | None = 1008) -> FIDInception3:
    """The FID Inception network, random init (no weights are downloaded: load pytorch-fid's or
    torch-fidelity's file with ``load_state_dict``, or use ``inception_core.fid.load_fid_weights``)."""
    return FIDInception3(num_classes=num_classes)
