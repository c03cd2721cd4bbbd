"""What `vidbench run` checks before it imports torch or Lightning: the mistakes that need
no tensors, answered in well under a second.

- the sweep: a built-in name or a file; otherwise the closest built-in name is offered;
- its YAML and every `--set` override (`KEY=VALUE`, the value YAML);
- every key, against the sweep's key tree (`schemas/sweep_keys.json`, generated from
  `config.SweepConfig` with `python -m vidbench.bench.schema`; a test keeps it current):
  an unknown key is answered with the keys allowed there and the closest one;
- the dataset folders and annotation paths a sweep names (a sweep file's relative to its
  folder, `--set`'s to the current one: `read_sweep`, which `config.load_sweep` reads
  through too) and the output folder being writable;
- the devices it asks for (`train.accelerator: gpu` with `train.devices`), and any
  command's `--device`, against the GPUs the NVIDIA driver lists (`check_device`).

Values are judged by the full validation (`config.load_sweep`) after this, which needs
the model registry and so torch.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

MAX_YAML_VALUES = 20_000
# Keys whose values are paths: in a sweep file, relative ones are relative to its folder.
DATASET_PATHS = ("videos", "annotations", "flow")
WEIGHT_FILE_OPTIONS = ("backbone_weights", "inflate_from")
ANY_KEY = "*"  # in the key tree: a mapping whose keys are names (datasets, architectures)


class SweepError(ValueError):
    """A sweep file or override that cannot run; the message names the key at fault."""


def builtin_sweeps() -> list[str]:
    """The built-in sweeps' names (`bench/sweeps/<name>.yaml`)."""
    folder = resources.files("vidbench.bench").joinpath("sweeps")
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def did_you_mean(word: str, choices: list[str]) -> str:
    """` (did you mean `x`?)` for the closest of `choices`, or "" when none is close."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def sweep_text(source: str | Path | None) -> tuple[str, str, Path | None]:
    """(YAML text, where it came from, the folder relative paths are relative to: the
    file's, or None for a built-in sweep) of a sweep name or file (None: `smoke`)."""
    source = str(source or "smoke")
    builtin = builtin_sweeps()
    if source in builtin:
        text = resources.files("vidbench.bench").joinpath(f"sweeps/{source}.yaml").read_text()
        return text, f"built-in sweep {source!r}", None
    path = Path(source)
    if not path.is_file():
        raise SweepError(
            f"{source}: no such sweep file or built-in sweep{did_you_mean(source, builtin)}; "
            f"built-in sweeps: {', '.join(builtin)}"
        )
    return path.read_text(), str(path), path.resolve().parent


def load_yaml(text: str, where: str) -> Any:
    """`yaml.safe_load(text)`, refusing aliases that expand past MAX_YAML_VALUES values;
    syntax errors become SweepError naming `where`."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_YAML_VALUES:
            raise SweepError(
                f"{where}: its aliases expand to more than {MAX_YAML_VALUES:,} values "
                "(a YAML bomb?); write the values out"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        raise SweepError(f"{where}: not valid YAML: {error}") from None
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values `node` stands for once every alias is expanded (memoised per node,
    so a bomb is measured in linear time)."""
    if id(node) not in sizes:
        sizes[id(node)] = 1  # a node that contains itself counts once
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        total = 1
        for child in children:
            total += _expanded_size(child, sizes)
            if total > MAX_YAML_VALUES:
                break
        sizes[id(node)] = total
    return sizes[id(node)]


def parse_override(text: str) -> tuple[list[str], Any]:
    """`train.max_steps=200` -> (["train", "max_steps"], 200); values are YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SweepError(f"override {text!r} is not KEY=VALUE (e.g. train.max_steps=200)")
    return key.split("."), load_yaml(value, f"override {text!r}")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> None:
    """Set each `--set KEY=VALUE` in the sweep's mapping `data`."""
    for override in overrides:
        keys, value = parse_override(override)
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise SweepError(f"override {override!r}: {key} is not a section")
        node[keys[-1]] = value


@cache
def key_tree() -> dict[str, Any]:
    """The sweep's keys as the package ships them: {key: subtree, or None where the value
    is not a section of fixed keys}; `*` stands for any name (datasets)."""
    text = resources.files("vidbench.bench").joinpath("schemas/sweep_keys.json").read_text()
    return json.loads(text)


def check_keys(data: Any, tree: dict[str, Any] | None = None, where: str = "") -> None:
    """SweepError at the first key of `data` the tree does not have, naming its path, the
    keys allowed there and the closest of them."""
    tree = key_tree() if tree is None else tree
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key in tree:
            subtree = tree[key]
        elif ANY_KEY in tree:
            subtree = tree[ANY_KEY]
        else:
            allowed = sorted(tree)
            raise SweepError(
                f"unknown key `{path}`{did_you_mean(str(key), allowed)}; allowed "
                + (f"under `{where}`" if where else "at the top")
                + f": {', '.join(allowed)}"
            )
        if isinstance(subtree, dict):
            check_keys(value, subtree, path)


def anchor_paths(data: dict[str, Any], folder: Path) -> None:
    """Make the relative paths of a sweep file's `data` relative to `folder` (the file's
    own): dataset folders, `train.init_checkpoint` and weight-file options. Paths given
    with `--set`, and those of the built-in sweeps, stay relative to the current folder."""

    def anchored(value: Any) -> Any:
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            return str(folder / value)
        return value

    for dataset in (data.get("datasets") or {}).values():
        if isinstance(dataset, dict):
            for key in DATASET_PATHS:
                if key in dataset:
                    dataset[key] = anchored(dataset[key])
    train = data.get("train")
    if isinstance(train, dict) and "init_checkpoint" in train:
        train["init_checkpoint"] = anchored(train["init_checkpoint"])
    options = [data.get("model"), *(data.get("per_arch") or {}).values()]
    for section in options:
        if isinstance(section, dict):
            for key in WEIGHT_FILE_OPTIONS:
                if key in section:
                    section[key] = anchored(section[key])


def read_sweep(source: str | Path | None, overrides: list[str]) -> tuple[dict[str, Any], str]:
    """(the sweep's mapping, where it came from): read, its file's relative paths anchored
    to the file's folder, the overrides applied (their paths stay relative to the current
    folder), every key checked. What `config.load_sweep` then validates."""
    text, where, folder = sweep_text(source)
    data = load_yaml(text, where)
    if not isinstance(data, dict):
        raise SweepError(f"{where}: a sweep is a mapping of keys, got {type(data).__name__}")
    if folder is not None:
        anchor_paths(data, folder)
    apply_overrides(data, overrides)
    check_keys(data)
    return data, where


def check_paths(data: dict[str, Any]) -> None:
    """SweepError naming the first dataset folder or annotation path a sweep gives that
    does not exist (synthetic datasets are made, so they have none); `data` as
    `read_sweep` returns it."""
    for name, dataset in (data.get("datasets") or {}).items():
        if not isinstance(dataset, dict) or dataset.get("synthetic") is not None:
            continue
        for key in DATASET_PATHS:
            value = dataset.get(key)
            if isinstance(value, str) and value and not Path(value).expanduser().exists():
                raise SweepError(
                    f"datasets.{name}.{key}: {Path(value).expanduser()} does not exist "
                    f"(a typo? `--set datasets.{name}=null` leaves the dataset out)"
                )


def check_out(out: Path) -> None:
    """SweepError when the results folder `out` cannot be made or written."""
    existing = out
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise SweepError(f"--out {out}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SweepError(f"--out {out}: {existing} is not writable")


def visible_gpus(listed: Path = Path("/proc/driver/nvidia/gpus")) -> int | None:
    """The NVIDIA GPUs this process may use, counted without torch: the driver's list
    (`/proc/driver/nvidia/gpus`), narrowed by CUDA_VISIBLE_DEVICES as CUDA reads it (up to
    the first invalid entry); None where that cannot tell (not Linux, or a ROCm machine,
    whose GPUs torch also calls cuda)."""
    if not sys.platform.startswith("linux") or Path("/dev/kfd").exists():
        return None
    count = sum(1 for _ in listed.iterdir()) if listed.is_dir() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        entries = [v.strip() for v in visible.split(",")]
        usable = 0
        while usable < len(entries) and re.fullmatch(r"\d+|GPU-[0-9a-fA-F-]+", entries[usable]):
            usable += 1
        count = min(count, usable)
    return count


def check_device(text: str, flag: str = "--device") -> None:
    """SweepError unless `text` is cpu, cuda or cuda:N and that GPU is visible here."""
    match = re.fullmatch(r"cpu|cuda(?::(\d+))?", text)
    if match is None:
        raise SweepError(f"{flag} {text}: not a device; use cpu, cuda or cuda:N")
    if text == "cpu":
        return
    count = visible_gpus()
    if count == 0:
        raise SweepError(
            f"{flag} {text}: no CUDA GPU is visible here (the NVIDIA driver lists none, or "
            "CUDA_VISIBLE_DEVICES hides them); use cpu"
        )
    if count is not None and match.group(1) is not None and int(match.group(1)) >= count:
        raise SweepError(f"{flag} {text}: this machine has cuda:0 to cuda:{count - 1}")


def check_devices(data: dict[str, Any]) -> None:
    """SweepError when a sweep's training asks for more GPUs than are visible here:
    `accelerator` gpu or cuda with `devices` a count (or -1, all), `data` as `read_sweep`
    returns it."""
    train = data.get("train") if isinstance(data.get("train"), dict) else {}
    if str(train.get("accelerator", "auto")).lower() not in ("gpu", "cuda"):
        return
    count = visible_gpus()
    devices = train.get("devices", 1)
    wanted = devices if isinstance(devices, int) and not isinstance(devices, bool) else 1
    if count is not None and count < max(wanted, 1):
        raise SweepError(
            f"train.accelerator {train['accelerator']} with train.devices {devices}: "
            f"{count} CUDA GPU(s) visible here; use accelerator cpu or auto, or fewer devices"
        )


def precheck(
    source: str | Path | None, overrides: list[str], out: Path | None, data: bool = True
) -> None:
    """Every check above, in that order (the dataset paths only with `data`: a dry run
    reports them in its preflight, with every other problem); SweepError at the first."""
    sweep, _ = read_sweep(source, overrides)
    if data:
        check_paths(sweep)
        check_devices(sweep)
    if out is not None:
        check_out(out)
