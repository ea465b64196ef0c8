"""A tiny end-to-end search on synthetic npz data writes every documented output."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import tiny_overrides

from midas import config
from midas.cli import main
from midas.data import load_split
from midas.genotypes import DartsGenotype, Nb201Arch, load_genotype_file, parse_genotype
from midas.search import BilevelSearcher, make_supernet, run_search
from midas.spaces import get_space
from midas.supernet.mixing import pair_index

LOG_COLUMNS = ["epoch", "lr", "train_loss", "train_acc", "arch_loss", "arch_acc", "val_loss", "val_acc",
               "genotype", "global_weights", "epoch_time_s", "wall_time_s"]
CAP = 25  # < the 60 validation images of the tiny set


def _search(tmp: Path, data: dict[str, str], space: str, method: str, *extra: str, epochs: int = 2) -> tuple:
    cfg = config.resolve(None, [*tiny_overrides(data, epochs), f"search.weights_sample_cap={CAP}", *extra],
                         space=space, method=method, dataset="tiny", seed=1)
    out = tmp / f"{space}-{method}"
    record = run_search(cfg, out)
    return cfg, out, record


def _check_common(cfg: dict, out: Path, record: dict, epochs: int) -> dict:
    space = get_space(cfg["space"])
    # genotype.json: documented keys, parseable with load_genotype_file, matches the returned record
    on_disk = json.loads((out / "genotype.json").read_text())
    assert on_disk == json.loads(json.dumps(record))
    for key in ("space", "method", "seed", "dataset", "patch_grid", "topology", "genotype", "decoding",
                "val_acc", "epochs", "search_time_s", "global_weights"):
        assert key in on_disk, key
    assert (on_disk["space"], on_disk["method"], on_disk["seed"], on_disk["dataset"], on_disk["epochs"]) == (
        cfg["space"], cfg["method"], 1, "tiny", epochs)
    sp, geno, _ = load_genotype_file(out / "genotype.json")
    assert sp is space
    assert 0.0 <= on_disk["val_acc"] <= 1.0 and on_disk["search_time_s"] > 0
    gw = on_disk["global_weights"]
    assert sorted(gw) == sorted(space.cell_types)
    for ct in space.cell_types:
        assert gw[ct]["ops"] == [list(o) for o in space.ops(ct)]
        w = np.asarray(gw[ct]["weights"])
        assert w.shape == (space.num_edges, len(space.ops(ct)[0]))
        assert np.allclose(w.sum(1), 1.0, atol=1e-4)  # a mean of softmaxes

    # search_log.csv: one row per epoch, the documented columns, genotype per epoch parseable
    with (out / "search_log.csv").open() as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        assert reader.fieldnames == LOG_COLUMNS
    assert [int(r["epoch"]) for r in rows] == list(range(1, epochs + 1))
    for r in rows:
        parse_genotype(json.loads(r["genotype"]), space)
        assert sorted(json.loads(r["global_weights"])) == sorted(space.cell_types)
        for k in ("train_loss", "arch_loss", "val_loss"):
            assert np.isfinite(float(r[k]))
        assert 0 <= float(r["train_acc"]) <= 1 and float(r["epoch_time_s"]) > 0
    walls = [float(r["wall_time_s"]) for r in rows]
    assert walls == sorted(walls)
    lrs = [float(r["lr"]) for r in rows]
    assert lrs[0] == cfg["search"]["lr"] and (epochs == 1 or lrs[1] < lrs[0])  # cosine schedule
    assert json.loads(rows[-1]["genotype"]) == on_disk["genotype"]

    # config.yaml: the fully resolved configuration
    assert yaml.safe_load((out / "config.yaml").read_text()) == cfg

    # weights.npz: documented arrays, float16 per-sample weights, sample cap respected
    z = dict(np.load(out / "weights.npz"))
    val_labels = load_split(cfg, train=True).y[60:]  # the validation half of the 120 train images
    assert z["labels"].dtype == np.int64 and z["labels"].tolist() == val_labels[:CAP].tolist()
    assert z["edges"].dtype == np.int64 and z["edges"].tolist() == [list(e) for e in space.edges]
    grid = on_disk["patch_grid"]
    for ct in space.cell_types:
        k = len(space.ops(ct)[0])
        w = z[f"{ct}_weights"]
        assert w.dtype == np.float16 and w.shape == (CAP, space.num_edges, k, grid, grid)
        assert np.allclose(w.astype(np.float32).sum(2), 1.0, atol=5e-3)
        assert z[f"{ct}_ops"].tolist() == [list(o) for o in space.ops(ct)]
        assert z[f"{ct}_global"].dtype == np.float32
        assert np.allclose(z[f"{ct}_global"], np.asarray(gw[ct]["weights"]), atol=1e-5)
    for key in ("space", "method", "seed", "dataset", "patch_grid", "topology"):
        assert z[key].shape == () and z[key].item() == on_disk[key], key
    assert not (out / "checkpoint.pt").exists() or (out / "checkpoint.pt").stat().st_size > 0
    return {"z": z, "genotype": geno, "record": on_disk}


def test_nb201_midas_search_writes_all_outputs(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    cfg, out, record = _search(tmp_path, tiny_data, "nb201", "midas")
    res = _check_common(cfg, out, record, epochs=2)
    assert isinstance(res["genotype"], Nb201Arch)
    assert record["genotype"] == res["genotype"].to_str() and record["decoding"] == "nb201"
    assert record["patch_grid"] == 2 and record["topology"] == "darts"
    assert "reduce_weights" not in res["z"] and "pair_columns" not in res["z"]
    # per-sample weights differ across samples (input-specific)
    w = res["z"]["normal_weights"].astype(np.float32)
    assert np.abs(w - w.mean(0, keepdims=True)).max() > 1e-4


def test_darts_space_midas_pairs_search(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    cfg, out, record = _search(tmp_path, tiny_data, "darts", "midas", epochs=1)
    res = _check_common(cfg, out, record, epochs=1)
    space = get_space("darts")
    geno = res["genotype"]
    assert isinstance(geno, DartsGenotype) and record["decoding"] == "pairs" and record["topology"] == "pairs"
    z = res["z"]
    n_pairs = sum(len(pair_index(len(space.incoming(n)))) for n in space.intermediate_nodes)
    assert z["pair_columns"].shape == (n_pairs, 3) == (20, 3)
    for node, ea, eb in z["pair_columns"]:
        assert space.edges[ea][1] == space.edges[eb][1] == node and ea < eb
    for ct in ("normal", "reduce"):
        p = z[f"{ct}_pairs"]
        assert p.dtype == np.float16 and p.shape == (CAP, 20, 2, 2)
        for node in space.intermediate_nodes:  # beta sums to 1 over each node's pairs
            cols = z["pair_columns"][:, 0] == node
            assert np.allclose(p[:, cols].astype(np.float32).sum(1), 1.0, atol=5e-3)
        pairs_json = record["global_weights"][ct]["pairs"]
        assert [len(v) for v in pairs_json] == [1, 3, 6, 10]
        # decoded inputs of every node are the best mean pair
        for k, node in enumerate(space.intermediate_nodes):
            a, b = pair_index(len(space.incoming(node)))[int(np.argmax(pairs_json[k]))]
            assert [src for _, src in geno.cell(ct)[2 * k:2 * k + 2]] == [a, b]


def test_s1_darts_baseline_via_the_cli(tmp_path: Path, tiny_data: dict[str, str],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    sets = [a for s in tiny_overrides(tiny_data, 1) for a in ("--set", s)]
    rc = main(["search", "--space", "s1", "--method", "darts", "--dataset", "tiny", "--seed", "1",
               "--out", str(out), *sets, "--set", f"search.weights_sample_cap={CAP}"])
    assert rc == 0
    assert "s1 darts seed 1" in capsys.readouterr().out
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    record = json.loads((out / "genotype.json").read_text())
    res = _check_common(cfg, out, record, epochs=1)
    assert record["decoding"] == "darts" and record["patch_grid"] == 1 and record["topology"] == "darts"
    assert res["z"]["normal_weights"].shape == (CAP, 14, 2, 1, 1)
    # static alpha: every sample has the same weights
    w = res["z"]["reduce_weights"]
    assert (w == w[:1]).all()
    for ct in ("normal", "reduce"):  # s1 genotype ops come from each edge's own list
        for k, (op, src) in enumerate(res["genotype"].cell(ct)):
            assert op in get_space("s1").ops(ct)[get_space("s1").edges.index((src, 2 + k // 2))]


def test_missing_data_fails_cleanly_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["search", "--space", "nb201", "--out", str(tmp_path / "o"), "--set", "data.source=npz",
               "--set", f"data.train={tmp_path / 'missing.npz'}", "--set", "device=cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and str(tmp_path / "missing.npz") in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "genotype.json").exists()


# --------------------------------------------------------------------------- optimizer separation

def _snapshot(params: list[torch.nn.Parameter]) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


@pytest.mark.parametrize("method,order", [("midas", "first"), ("darts", "first"), ("darts", "second")])
def test_each_optimizer_updates_only_its_parameters(tiny_data: dict[str, str], method: str, order: str) -> None:
    cfg = config.resolve(None, [*tiny_overrides(tiny_data), f"search.order={order}", "search.arch_lr=0.01"],
                         space="darts", method=method)
    torch.manual_seed(0)
    model = make_supernet(cfg, get_space("darts"), 4)
    searcher = BilevelSearcher(model, cfg, torch.device("cpu"))
    model.train()
    g = torch.Generator().manual_seed(0)
    xt, xv = torch.randn(4, 3, 16, 16, generator=g), torch.randn(4, 3, 16, 16, generator=g)
    yt, yv = torch.randint(0, 4, (4,), generator=g), torch.randint(0, 4, (4,), generator=g)

    w0, a0 = _snapshot(searcher.weight_params), _snapshot(searcher.arch_params)
    searcher.arch_step(xv, yv, xt, yt, "test")
    assert all(torch.equal(p, q) for p, q in zip(searcher.weight_params, w0)), "arch step changed weights"
    assert any(not torch.equal(p, q) for p, q in zip(searcher.arch_params, a0)), "arch step changed nothing"

    w1, a1 = _snapshot(searcher.weight_params), _snapshot(searcher.arch_params)
    searcher.weight_step(xt, yt, "test")
    assert all(torch.equal(p, q) for p, q in zip(searcher.arch_params, a1)), "weight step changed arch params"
    assert any(not torch.equal(p, q) for p, q in zip(searcher.weight_params, w1))
    assert {id(p) for g in searcher.w_opt.param_groups for p in g["params"]}.isdisjoint(
        {id(p) for g in searcher.a_opt.param_groups for p in g["params"]})
