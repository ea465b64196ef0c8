"""Configuration: layering, --set parsing, validation messages, method-implied settings."""

from __future__ import annotations

import importlib.util
import re
from importlib import resources
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from midas import config
from midas.cli import main
from midas.errors import ConfigError, MidasError


def _flat(d: dict) -> dict:
    return config._flatten(d)


def test_defaults_resolve_unchanged() -> None:
    assert config.resolve() == config.defaults()
    cfg = config.resolve()
    assert cfg["search"]["epochs"] == 50 and cfg["method"] == "midas"


def test_layering_file_then_flags_then_set(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("seed: 3\nspace: nb201\nsearch:\n  epochs: 7\n  lr: 0.05\n")
    cfg = config.resolve(f, ["search.epochs=9"], seed=5, method=None)
    assert cfg["space"] == "nb201"            # from the file
    assert cfg["search"]["lr"] == 0.05        # from the file
    assert cfg["seed"] == 5                   # flag beats file
    assert cfg["search"]["epochs"] == 9       # --set beats everything
    assert cfg["method"] == "midas"           # None flag = not given
    assert cfg["search"]["batch_size"] == 64  # untouched default


@pytest.mark.parametrize("text,key,value", [
    ("search.epochs=3", "search.epochs", 3),
    ("search.lr=0.1", "search.lr", 0.1),
    ("search.lr=1", "search.lr", 1.0),                   # int accepted for a float key, stored as float
    ("search.arch_betas=[0.1, 0.2]", "search.arch_betas", [0.1, 0.2]),
    ("data.train=some/dir/*.npz", "data.train", "some/dir/*.npz"),
    ("data.train=a=b.npz", "data.train", "a=b.npz"),     # only the first '=' splits
    ("data.augment=false", "data.augment", False),
    ("search.unrolled_eta=null", "search.unrolled_eta", None),
    ("search.unrolled_eta=0.01", "search.unrolled_eta", 0.01),
    (" midas.patch_grid = 4", "midas.patch_grid", 4),
    ("train.epochs=", "train.epochs", None),             # empty value = null
])
def test_set_parsing(text: str, key: str, value: object) -> None:
    flat = _flat(config.resolve(None, [text]))
    assert flat[key] == value and type(flat[key]) is type(value)


@pytest.mark.parametrize("text", ["search.epochs", "=3", "search.arch_betas=[0.1"])
def test_set_syntax_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="--set"):
        config.resolve(None, [text])


def test_unknown_key_suggests_the_close_one() -> None:
    with pytest.raises(ConfigError) as err:
        config.resolve(None, ["search.epoch=3"])
    assert "'search.epoch'" in str(err.value) and "did you mean search.epochs" in str(err.value)
    with pytest.raises(ConfigError, match="'zzz'"):
        config.resolve(None, ["zzz=1"])


def test_unknown_key_in_a_config_file(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("supernet:\n  channel: 8\n")
    with pytest.raises(ConfigError, match="supernet.channels"):
        config.resolve(f)


@pytest.mark.parametrize("text,needle", [
    ("search.epochs=abc", "expected int"),
    ("search.epochs=2.5", "expected int"),
    ("search.epochs=true", "not a boolean"),
    ("search.lr=fast", "expected float"),
    ("data.augment=1", "expected bool"),
    ("search.epochs=null", "may not be null"),
    ("train.epochs=many", "expected int"),
    ("supernet.channels=0", "must be positive"),
    ("midas.patch_grid=-1", "must be positive"),
    ("search.weights_sample_cap=0", "must be positive"),
    ("search.train_portion=1.0", "train_portion"),
    ("train.layers=2", "at least 3"),
])
def test_wrong_types_and_values(text: str, needle: str) -> None:
    key = text.split("=")[0]
    with pytest.raises(ConfigError) as err:
        config.resolve(None, [text])
    assert needle in str(err.value) and key.split(".")[-1] in str(err.value)


@pytest.mark.parametrize("key,bad", [("method", "enas"), ("amp", "fp8"), ("progress", "quiet"),
                                     ("data.source", "hdf5"), ("search.order", "third"),
                                     ("midas.topology", "chain")])
def test_choices(key: str, bad: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.resolve(None, [f"{key}={bad}"])
    msg = str(err.value)
    assert repr(bad) in msg
    for choice in config.CHOICES[key]:
        assert repr(choice) in msg


def test_unknown_space_is_a_midas_error() -> None:
    with pytest.raises(MidasError, match="'s7'"):
        config.resolve(space="s7")


def test_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        config.resolve(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("search: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.resolve(bad)
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        config.resolve(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert config.resolve(empty) == config.defaults()


# --------------------------------------------------------------------------- implied settings

def test_midas_global_forces_patch_grid_one() -> None:
    cfg = config.resolve(None, ["midas.patch_grid=4"], method="midas-global")
    assert config.method_settings(cfg) == {"method": "midas", "patch_grid": 1, "topology": "pairs"}
    cfg = config.resolve(None, ["midas.patch_grid=4"], method="midas")
    assert config.method_settings(cfg)["patch_grid"] == 4
    cfg = config.resolve(None, ["midas.patch_grid=4"], method="darts")  # static alpha: no patches
    assert config.method_settings(cfg) == {"method": "darts", "patch_grid": 1, "topology": "darts"}


@pytest.mark.parametrize("space,method,topology,expected", [
    ("darts", "midas", "auto", "pairs"),
    ("s3", "midas-global", "auto", "pairs"),
    ("darts", "darts", "auto", "darts"),
    ("darts", "midas", "darts", "darts"),
    ("darts", "darts", "pairs", "pairs"),
    ("nb201", "midas", "auto", "darts"),
    ("nb201", "darts", "darts", "darts"),
])
def test_topology(space: str, method: str, topology: str, expected: str) -> None:
    cfg = config.resolve(None, [f"midas.topology={topology}"], space=space, method=method)
    assert config.method_settings(cfg)["topology"] == expected


def test_pairs_topology_rejected_on_nb201() -> None:
    cfg = config.resolve(None, ["midas.topology=pairs"], space="nb201")
    with pytest.raises(ConfigError, match="DARTS-like"):
        config.method_settings(cfg)


def test_second_order_only_for_darts() -> None:
    cfg = config.resolve(None, ["search.order=second"], method="darts")
    assert config.method_settings(cfg)["method"] == "darts"
    for method in ("midas", "midas-global"):
        cfg = config.resolve(None, ["search.order=second"], method=method)
        with pytest.raises(ConfigError, match="darts method only"):
            config.method_settings(cfg)


def test_dump_loads_back() -> None:
    cfg = config.resolve(None, ["search.arch_betas=[0.4, 0.9]", "data.train=x/*.npz"], space="s2")
    assert yaml.safe_load(config.dump(cfg)) == cfg


def test_cli_reports_a_config_error_in_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc = main(["search", "--out", str(tmp_path / "o"), "--set", "search.epoch=1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("midas: error:") and "search.epochs" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_every_key_is_documented_in_the_readme() -> None:
    """The README's configuration table lists every key of defaults.yaml (and no stale ones)."""
    text = (REPO / "README.md").read_text()
    m = re.search(r"<!-- section:config -->(.*)<!-- /section:config -->", text, re.S)
    assert m, "README lacks the config section markers"
    documented = set(re.findall(r"^\| `([a-z0-9_.\-]+)` \|", m.group(1), re.M))
    keys = set(_flat(config.defaults()))
    fix = "regenerate it: python scripts/config_table.py --write README.md"
    assert keys - documented == set(), f"keys missing from the README table; {fix}"
    assert documented - keys == set(), f"README documents keys that do not exist; {fix}"


def test_readme_table_is_current_and_every_key_has_a_meaning() -> None:
    spec = importlib.util.spec_from_file_location("config_table", REPO / "scripts" / "config_table.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    text = resources.files("midas").joinpath("configs/defaults.yaml").read_text()
    comments = tool.key_comments(text)
    assert set(comments) >= set(_flat(config.defaults()))
    assert [k for k in _flat(config.defaults()) if not comments[k]] == [], "add a # comment in defaults.yaml"
    assert tool.main(["--check", str(REPO / "README.md")]) == 0, \
        "README table is stale: python scripts/config_table.py --write README.md"
