"""A tiny name -> constructor registry and one `create_model`, as timm does.

Every model takes `num_classes` first and is a plain `nn.Module` with one small interface:
- `forward(inputs: dict[str, Tensor]) -> Tensor (B, num_classes)` takes the data layer's
  batch dict;
- `input_spec`: the input it expects by default;
- `get_classifier() -> nn.Module`: the layer that outputs the classes (an `nn.ModuleDict`
  of them, one a stream, for the two-stream models), which the `fixed` protocol trains;
- `reset_classifier(num_classes)`: a freshly initialised head for another label set.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}


@dataclass(frozen=True)
class InputSpec:
    """What a model eats by default: at train time, and at its paper input size.

    modalities: batch keys it reads ("rgb", "flow"); clip_len frames every
    frame_interval; crop_size square crops; flow_stack flow fields per time step
    (10 for the 2D two-stream models, 1 for 3D ones).
    """

    modalities: tuple[str, ...] = ("rgb",)
    clip_len: int = 64
    frame_interval: int = 1
    crop_size: int = 224
    flow_stack: int = 1


HEAD_METHODS = ("get_classifier", "reset_classifier")


def register_model(name: str) -> Callable:
    def add(constructor: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        lacking = [m for m in ("input_spec", *HEAD_METHODS) if not hasattr(constructor, m)]
        if lacking:
            raise TypeError(f"model {name!r} lacks {lacking}, which every model has")
        _MODELS[name] = constructor
        return constructor

    return add


def list_models() -> list[str]:
    return sorted(_MODELS)


def model_options(name: str) -> list[str]:
    """Keyword options that architecture `name` takes (besides num_classes)."""
    parameters = inspect.signature(_constructor(name)).parameters
    return [p for p in parameters if p not in ("self", "num_classes")]


def default_input_spec(name: str) -> InputSpec:
    """The input architecture `name` declares with its default options."""
    return _constructor(name).input_spec


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
