"""Configuration: package defaults < --config YAML < --set overrides, validated.

Values are checked against the type of their default and, where listed in
``CHOICES``, against the allowed values, so a typo fails before any work starts.
"""

from __future__ import annotations

import copy
import difflib
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from midas.errors import ConfigError

CHOICES: dict[str, tuple[Any, ...]] = {
    "method": ("midas", "midas-global", "darts"),
    "amp": ("none", "bf16", "fp16"),
    "progress": ("auto", "bar", "log"),
    "data.source": ("auto", "torchvision", "npz", "imagefolder", "imagenet16"),
    "search.order": ("first", "second"),
    "midas.topology": ("auto", "pairs", "darts"),
    "supernet.impl": ("fast", "reference"),
}
#: keys whose default is null but that take a value of this type
NULLABLE: dict[str, tuple[type, ...]] = {
    "data.train": (str,), "data.test": (str,), "search.unrolled_eta": (float, int),
    "train.epochs": (int,), "train.batch_size": (int,), "train.lr": (float, int),
    "train.nesterov": (bool,), "train.weight_decay": (float, int), "train.channels": (int,),
    "train.layers": (int,), "train.cutout": (int,), "train.drop_path": (float, int),
    "train.auxiliary_weight": (float, int), "benchmark.table": (str,), "benchmark.api_file": (str,),
}
POSITIVE = ("search.epochs", "search.batch_size", "search.eval_batch_size", "supernet.channels",
            "supernet.layers", "supernet.cells_per_stage", "midas.patch_grid", "midas.attn_dim",
            "search.weights_sample_cap")  # weights.npz needs at least one sample


def defaults() -> dict[str, Any]:
    text = resources.files("midas").joinpath("configs/defaults.yaml").read_text()
    return yaml.safe_load(text)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _set(cfg: dict[str, Any], dotted: str, value: Any, known: dict[str, Any]) -> None:
    if dotted not in known:
        close = difflib.get_close_matches(dotted, list(known), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown config key {dotted!r}{hint} (all keys are listed in the README)")
    node = cfg
    *parents, leaf = dotted.split(".")
    for p in parents:
        node = node[p]
    node[leaf] = value


def parse_override(text: str) -> tuple[str, Any]:
    """``key.sub=value`` with value parsed as YAML (so 3 is an int, [1, 2] a list)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key=value, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: value is not valid YAML: {exc}") from None
    return key.strip(), value


def load_yaml(path: str | Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return data


def _check_type(key: str, value: Any, default: Any) -> Any:
    if value is None:
        if default is None:
            return None
        raise ConfigError(f"config key {key!r} may not be null (default {default!r})")
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(f"config key {key!r} = {value!r}; choose one of {list(CHOICES[key])}")
    expected: tuple[type, ...]
    if default is None:
        expected = NULLABLE.get(key, (object,))
    elif isinstance(default, bool):
        expected = (bool,)
    elif isinstance(default, float):
        expected = (float, int)
    elif isinstance(default, int):
        expected = (int,)
    else:
        expected = (type(default),)
    if float in expected and isinstance(value, str):
        try:  # YAML 1.1 reads 1e-3 (no dot) as a string
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) and bool not in expected and object not in expected:
        raise ConfigError(f"config key {key!r} = {value!r} must be {expected[0].__name__}, not a boolean")
    if not isinstance(value, expected):
        raise ConfigError(
            f"config key {key!r} = {value!r} has type {type(value).__name__}; expected {expected[0].__name__}"
        )
    if isinstance(default, float) and isinstance(value, int):
        value = float(value)
    if key in POSITIVE and value <= 0:
        raise ConfigError(f"config key {key!r} must be positive, got {value!r}")
    return value


def resolve(config_file: str | Path | None = None, overrides: list[str] | None = None,
            **top: Any) -> dict[str, Any]:
    """Defaults, then the YAML file, then ``top`` (CLI flags), then ``--set`` overrides."""
    base = defaults()
    known = _flatten(base)
    cfg = copy.deepcopy(base)
    layers: list[tuple[str, Any]] = []
    if config_file:
        layers += list(_flatten(load_yaml(config_file)).items())
    layers += [(k, v) for k, v in top.items() if v is not None]
    layers += [parse_override(o) for o in overrides or []]
    for key, value in layers:
        _set(cfg, key, value, known)
    for key, value in _flatten(cfg).items():
        _set(cfg, key, _check_type(key, value, known[key]), known)
    from midas.spaces import SPACES

    SPACES.get(cfg["space"])  # clear error for an unknown space
    if cfg["train"]["layers"] is not None and cfg["train"]["layers"] < 3:
        raise ConfigError("train.layers must be at least 3 (reductions sit at 1/3 and 2/3 of depth)")
    if not 0.0 < cfg["search"]["train_portion"] < 1.0:
        raise ConfigError("search.train_portion must be between 0 and 1 (exclusive)")
    return cfg


def method_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """Weighting settings implied by method and space.

    midas-global is midas with patch grid 1; darts's static alpha has no patches, so
    its grid is 1 too (what weights.npz and genotype.json record for it).
    """
    from midas.spaces import get_space

    space = get_space(cfg["space"])
    method = cfg["method"]
    weighting = "darts" if method == "darts" else "midas"
    grid = cfg["midas"]["patch_grid"] if method == "midas" else 1
    topology = cfg["midas"]["topology"]
    if space.family == "nb201":
        if topology == "pairs":
            raise ConfigError("midas.topology 'pairs' applies to DARTS-like spaces; NB201 cells sum all edges")
        topology = "darts"
    elif topology == "auto":
        topology = "pairs" if weighting == "midas" else "darts"
    if cfg["search"]["order"] == "second" and weighting != "darts":
        raise ConfigError("search.order 'second' (unrolled) is implemented for the darts method only")
    return {"method": weighting, "patch_grid": grid, "topology": topology}


def diff(a: dict[str, Any], b: dict[str, Any], ignore: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Dotted keys whose values differ between two configurations."""
    fa, fb = _flatten(a), _flatten(b)
    return sorted(k for k in fa.keys() | fb.keys() if k not in ignore and fa.get(k) != fb.get(k))


def dump(cfg: dict[str, Any]) -> str:
    return yaml.safe_dump(cfg, sort_keys=False)
