"""A tiny name -> constructor registry and one `create_model`, as timm does.

Every model takes `num_classes` first and is a plain `nn.Module` with one small interface:
- `forward(inputs: dict[str, Tensor]) -> Tensor (B, num_classes)` takes the data layer's
  batch dict;
- `input_spec`: the `ClipSpec` it is fed by default (its paper input), declared once on
  the class; a constructor option named like a ClipSpec field (`modalities`,
  `flow_stack`) sets that field, and the instance holds the changed spec;
- `auto_modalities` (optional): the modalities a sweep's `modality: auto` runs it on
  (default: every one it takes);
- `streams_trained_apart` (optional, default False): its `rgb+flow` is the sum of an rgb
  and a flow model trained separately (I3D, docs/protocol.md 1e), not one network trained on both;
- `imagenet_option` (optional): the constructor option that takes a file of 2D ImageNet
  weights its trunk starts from (`backbone_weights`, I3D's `inflate_from`); absent for
  the models that have no ImageNet version (C3D, R3D);
- `rgb_motion` (optional, default "none"): what it can see of motion in RGB alone:
  "local" (3D convolutions over neighbouring frames), "pooled" (a recurrence over
  globally pooled per-frame features, blind to fine low-level motion, Quo Vadis 2.3) or
  "none" (single frames); a flow stream sees motion whatever this says;
- `get_classifier() -> nn.Module`: the layer that outputs the classes (an `nn.ModuleDict`
  of them, one a stream, for the two-stream models), which the `fixed` protocol trains;
- `reset_classifier(num_classes)`: a freshly initialised head for another label set.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from vidbench.datasets.clip_spec import FIELDS as CLIP_FIELDS
from vidbench.datasets.clip_spec import ClipSpec

_MODELS: dict[str, Callable[..., nn.Module]] = {}


HEAD_METHODS = ("get_classifier", "reset_classifier")


def register_model(name: str) -> Callable:
    def add(constructor: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        lacking = [m for m in ("input_spec", *HEAD_METHODS) if not hasattr(constructor, m)]
        if lacking:
            raise TypeError(f"model {name!r} lacks {lacking}, which every model has")
        if not isinstance(constructor.input_spec, ClipSpec):
            raise TypeError(f"model {name!r}: input_spec must be a ClipSpec")
        _MODELS[name] = constructor
        return constructor

    return add


def list_models() -> list[str]:
    return sorted(_MODELS)


def model_options(name: str) -> list[str]:
    """Keyword options that architecture `name` takes (besides num_classes)."""
    parameters = inspect.signature(_constructor(name)).parameters
    return [p for p in parameters if p not in ("self", "num_classes")]


def default_input_spec(name: str, **options: Any) -> ClipSpec:
    """The input architecture `name` declares, with `options` (constructor options) that
    share a name with a ClipSpec field (`modalities`, `flow_stack`) applied, as the model
    built with them would declare it; nothing is built or loaded."""
    spec = _constructor(name).input_spec
    changes = {k: v for k, v in options.items() if k in CLIP_FIELDS}
    return spec.replace(**changes) if changes else spec


def changed_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options of `options` that change architecture `name`'s network from the paper's:
    those whose value differs from the constructor's default, without the ClipSpec fields
    (the input says those) and the ImageNet weights file (the start says that)."""
    constructor = _constructor(name)
    defaults = {
        p.name: p.default
        for p in inspect.signature(constructor).parameters.values()
        if p.default is not inspect.Parameter.empty
    }
    ignored = {*CLIP_FIELDS, getattr(constructor, "imagenet_option", None)}
    return {
        k: v
        for k, v in options.items()
        if k not in ignored and (k not in defaults or defaults[k] != v)
    }


def imagenet_weights(name: str, options: dict[str, Any]) -> str | None:
    """The ImageNet weights file architecture `name` starts from with `options`, if any."""
    option = getattr(_constructor(name), "imagenet_option", None)
    return options.get(option) if option else None


RGB_MOTION = ("none", "pooled", "local")


def rgb_motion(name: str) -> str:
    """What architecture `name` sees of motion in RGB frames (one of RGB_MOTION)."""
    kind = getattr(_constructor(name), "rgb_motion", "none")
    if kind not in RGB_MOTION:
        raise ValueError(f"model {name!r}: rgb_motion {kind!r} is not one of {RGB_MOTION}")
    return kind


def auto_modalities(name: str) -> tuple[str, ...] | None:
    """The modalities architecture `name` declares for `modality: auto` (None: all)."""
    return getattr(_constructor(name), "auto_modalities", None)


def streams_trained_apart(name: str) -> bool:
    """Whether architecture `name`'s two-stream result fuses separately trained streams."""
    return bool(getattr(_constructor(name), "streams_trained_apart", False))


def _constructor(name: str) -> Callable[..., nn.Module]:
    if name not in _MODELS:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(list_models())}")
    return _MODELS[name]


def create_model(name: str, num_classes: int, **options) -> nn.Module:
    """Build architecture `name`; ValueError for an unknown name or option, listing choices."""
    constructor = _constructor(name)
    allowed = model_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"{name} does not take {unknown}; its options are {allowed}")
    return constructor(num_classes, **options)
