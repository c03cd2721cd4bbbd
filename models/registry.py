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

Architectures from other packages join the same registry: an installed package names its
constructors in the `vidbench.models` entry-point group (name = the architecture's name),
and a sweep may name a constructor that is not packaged as `module:callable`. Both are
checked against the interface above when they are first looked up; a plugin that fails
to import or breaks the contract is left out with one error naming its package (`broken_plugins`),
and the others still list and build.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
from collections.abc import Callable
from importlib import metadata
from typing import Any

from torch import nn

from vidbench.datasets.clip_spec import FIELDS as CLIP_FIELDS
from vidbench.datasets.clip_spec import ClipSpec

_MODELS: dict[str, Callable[..., nn.Module]] = {}
# where each architecture came from: {"package", "version"} (a module: {"module"} as well)
_ORIGINS: dict[str, dict[str, str]] = {}
_BROKEN: dict[str, str] = {}  # plugin name -> why it is left out
_PLUGINS_LOADED = False
ENTRY_POINT_GROUP = "vidbench.models"
HEAD_METHODS = ("get_classifier", "reset_classifier")
log = logging.getLogger(__name__)


def register_model(name: str, origin: dict[str, str] | None = None) -> Callable:
    """Decorator adding a constructor under `name` after checking the interface above;
    `origin` (default: vidbench itself) is what the records say built it."""

    def add(constructor: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice ({describe_origin(name)})")
        check_contract(name, constructor)
        _MODELS[name] = constructor
        _ORIGINS[name] = origin or {"package": "vidbench", "version": _version("vidbench")}
        return constructor

    return add


def check_contract(name: str, constructor: Any) -> None:
    """TypeError naming what `constructor` lacks of the interface every model keeps."""
    if not callable(constructor):
        raise TypeError(f"model {name!r}: {constructor!r} is not a constructor (not callable)")
    lacking = [m for m in ("input_spec", *HEAD_METHODS) if not hasattr(constructor, m)]
    if lacking:
        raise TypeError(
            f"model {name!r} lacks {lacking}, which every model has (an `input_spec` "
            "ClipSpec, get_classifier() and reset_classifier(num_classes))"
        )
    if not isinstance(constructor.input_spec, ClipSpec):
        raise TypeError(
            f"model {name!r}: input_spec must be a ClipSpec, got {type(constructor.input_spec)}"
        )
    try:
        parameters = list(inspect.signature(constructor).parameters)
    except (TypeError, ValueError):
        return  # a builtin without a signature: its call will say
    if parameters[:1] == ["self"]:
        parameters = parameters[1:]
    if not parameters or parameters[0] != "num_classes":
        raise TypeError(f"model {name!r}: the constructor's first argument must be num_classes")


def load_plugins() -> None:
    """Register the architectures of every installed package's `vidbench.models` entry
    points, once; one that fails is logged with its package and kept in `broken_plugins`."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        origin = {
            "package": point.dist.name if point.dist else "unknown",
            "version": point.dist.version if point.dist else "unknown",
        }
        where = f"plugin {point.name!r} ({point.value}) of {origin['package']} {origin['version']}"
        try:
            if point.name in _MODELS:
                raise ValueError(f"the name is taken by {describe_origin(point.name)}")
            register_model(point.name, origin)(point.load())
        except Exception as error:  # an import of foreign code can raise anything
            _BROKEN[point.name] = f"{where}: {type(error).__name__}: {error}"
            log.error("left out %s", _BROKEN[point.name])


def broken_plugins() -> dict[str, str]:
    """Plugin name -> why it was left out (an import error, a taken name, the contract)."""
    load_plugins()
    return dict(_BROKEN)


def resolve_callable(name: str) -> None:
    """Register `module:callable` (a constructor in any importable module) under `name`;
    ValueError naming the module or the attribute that does not resolve."""
    module_name, _, attribute = name.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"architecture {name!r}: write a constructor as module:callable")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise ValueError(
            f"architecture {name!r}: module {module_name!r} cannot be imported "
            f"({type(error).__name__}: {error})"
        ) from None
    constructor = module
    for part in attribute.split("."):
        if not hasattr(constructor, part):
            raise ValueError(
                f"architecture {name!r}: module {module_name!r} has no attribute {attribute!r}"
            )
        constructor = getattr(constructor, part)
    top = module_name.split(".")[0]
    packages = metadata.packages_distributions().get(top, [])
    origin = {"module": module_name}
    if packages:
        origin |= {"package": packages[0], "version": _version(packages[0])}
    try:
        register_model(name, origin)(constructor)
    except TypeError as error:
        raise ValueError(str(error)) from None


def model_origin(name: str) -> dict[str, str]:
    """What built architecture `name`: {"package", "version"} (and "module" for one named
    as module:callable)."""
    _constructor(name)
    return dict(_ORIGINS[name])


def describe_origin(name: str) -> str:
    origin = _ORIGINS.get(name, {})
    package = origin.get("package") or origin.get("module", "?")
    return f"{package} {origin.get('version', '')}".strip()


@functools.cache
def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def list_models() -> list[str]:
    """The built-in architectures, those of installed plugins, and any `module:callable`
    resolved so far."""
    load_plugins()
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
    load_plugins()
    if name not in _MODELS and ":" in name:
        resolve_callable(name)
    if name not in _MODELS:
        broken = f" ({_BROKEN[name]})" if name in _BROKEN else ""
        raise ValueError(
            f"unknown architecture {name!r}{broken}; choose one of {', '.join(list_models())} "
            "or name a constructor as module:callable"
        )
    return _MODELS[name]


def check_architecture(name: str) -> str:
    """`name` if it names an architecture (built in, a plugin's, or module:callable),
    else the ValueError `create_model` would raise."""
    _constructor(name)
    return name


def create_model(name: str, num_classes: int, **options) -> nn.Module:
    """Build architecture `name`; ValueError for an unknown name or option, listing choices."""
    constructor = _constructor(name)
    allowed = model_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"{name} does not take {unknown}; its options are {allowed}")
    return constructor(num_classes, **options)
