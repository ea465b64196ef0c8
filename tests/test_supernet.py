"""Supernets: shapes, gradients, weight normalisation, mosaic attention, pair mixing, size."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from midas import config
from midas.search import make_supernet
from midas.spaces import get_space
from midas.supernet import DartsSupernet, Nb201Supernet, WeightingConfig, build_supernet
from midas.supernet.mixing import EdgeAttention, edge_score, pair_index, pair_mix, pair_weights, patch_scale

SPACES = ("darts", "nb201", "s1", "s2", "s3", "s4")
METHODS = ("midas", "midas-global", "darts")
CLASSES = 5
BATCH = 3


def _tiny(space: str, method: str, *extra: str) -> tuple[dict, torch.nn.Module]:
    cfg = config.resolve(None, ["supernet.channels=4", "supernet.layers=3", "supernet.cells_per_stage=1",
                                "midas.attn_dim=4", *extra], space=space, method=method)
    torch.manual_seed(0)
    return cfg, make_supernet(cfg, get_space(space), CLASSES)


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(BATCH, 3, 16, 16, generator=g), torch.randint(0, CLASSES, (BATCH,), generator=g)


CASES = [(s, m, "fast") for s in SPACES for m in METHODS] + [
    (s, m, "reference") for s in ("darts", "nb201", "s3") for m in METHODS]


@pytest.mark.parametrize("space,method,impl", CASES)
def test_shapes_gradients_and_normalised_weights(space: str, method: str, impl: str) -> None:
    cfg, model = _tiny(space, method, f"supernet.impl={impl}")
    settings = config.method_settings(cfg)
    sp = get_space(space)
    x, y = _batch()
    record: list[dict] = []
    logits = model(x, record)
    assert logits.shape == (BATCH, CLASSES) and torch.isfinite(logits).all()

    # one record per search cell, edges (B or 1, K, G, G) summing to 1 over K
    assert len(record) == 3  # 3 DARTS-like cells (normal, reduce, reduce) or 3 stages x 1 NB201 cell
    if sp.family == "darts":
        assert [r["cell_type"] for r in record] == ["normal", "reduce", "reduce"]
    grid = 1 if method != "midas" else cfg["midas"]["patch_grid"]
    for r in record:
        ops = sp.ops(r["cell_type"])
        assert len(r["edges"]) == sp.num_edges
        for e, w in enumerate(r["edges"]):
            rows = 1 if method == "darts" else BATCH
            assert w.shape == (rows, len(ops[e]), grid, grid)
            assert torch.allclose(w.sum(1), torch.ones(()), atol=1e-5)
            assert (w >= 0).all()
        if settings["topology"] == "pairs":
            sizes = [len(pair_index(len(sp.incoming(n)))) for n in sp.intermediate_nodes]
            assert [p.shape[1] for p in r["pairs"]] == sizes == [1, 3, 6, 10]
            for p in r["pairs"]:
                assert p.shape[-2:] == (grid, grid)
                assert torch.allclose(p.sum(1), torch.ones(()), atol=1e-5)
        else:
            assert r["pairs"] == []

    # gradients: the loss reaches every weight and every architecture parameter
    F.cross_entropy(logits, y).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
    arch = model.arch_parameters()
    assert arch and all(p.grad.abs().sum() > 0 for p in arch)


@pytest.mark.parametrize("space", ["darts", "nb201", "s1"])
@pytest.mark.parametrize("method", METHODS)
def test_arch_and_weight_parameters_are_disjoint_and_complete(space: str, method: str) -> None:
    _, model = _tiny(space, method)
    arch = {id(p) for p in model.arch_parameters()}
    weights = {id(p) for p in model.weight_parameters()}
    assert arch and weights and not arch & weights
    assert arch | weights == {id(p) for p in model.parameters()}
    names = [n for n, _ in model.named_parameters() if model.is_arch_name(n)]
    if method == "darts":
        assert sorted(names) == sorted(f"alphas.{ct}" for ct in get_space(space).cell_types)
    else:
        assert all(".attention." in n and (n.endswith("query.weight") or n.endswith("key.weight")) for n in names)
        assert not any(n.startswith("alphas") for n, _ in model.named_parameters())


def test_s1_static_alpha_builds() -> None:
    """S1 has two ops on every edge (different ones), so DARTS's alpha is (14, 2) per cell type."""
    _, model = _tiny("s1", "darts")
    assert model.alphas["normal"].shape == model.alphas["reduce"].shape == (14, 2)


def test_val_loss_moves_only_architecture_gradients_when_weights_are_frozen() -> None:
    """The first-order architecture step: weights frozen, the val loss still reaches alpha/attention."""
    for method in ("midas", "darts"):
        _, model = _tiny("darts", method)
        for p in model.weight_parameters():
            p.requires_grad_(False)
        x, y = _batch(1)
        F.cross_entropy(model(x), y).backward()
        assert all(p.grad is None for p in model.weight_parameters())
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.arch_parameters())


def test_midas_global_forces_grid_one_in_the_network() -> None:
    _, model = _tiny("darts", "midas-global", "midas.patch_grid=4")
    record: list[dict] = []
    model(_batch()[0], record)
    assert model.wcfg.patch_grid == 1
    assert all(w.shape[-2:] == (1, 1) for r in record for w in r["edges"])


def test_per_sample_weights_differ_between_inputs() -> None:
    """MIDAS's point: different images get different edge weights (DARTS's are shared)."""
    _, model = _tiny("nb201", "midas")
    record: list[dict] = []
    model.eval()
    with torch.no_grad():
        model(_batch()[0], record)
    w = record[0]["edges"][0]
    assert not torch.allclose(w[0], w[1])
    assert not torch.allclose(w[..., 0, 0], w[..., 1, 1])  # and different patches too


# --------------------------------------------------------------------------- mosaic attention

def _patch_mean(t: torch.Tensor, g: int, i: int, j: int) -> torch.Tensor:
    h, w = t.shape[-2] // g, t.shape[-1] // g
    return t[:, :, i * h:(i + 1) * h, j * w:(j + 1) * w].mean(dim=(2, 3))


def _direct_logits(att: EdgeAttention, x: torch.Tensor, ys: list[torch.Tensor | None],
                   temperature: float) -> torch.Tensor:
    """l_{k,p} = <W_q xbar_p, W_k ybar_{k,p}> / (sqrt(d) tau), patch means computed by hand."""
    g = att.grid
    wq = att.query.weight[:, :, 0, 0]
    wk = att.key.weight[:, :, 0, 0]
    d = wq.shape[0]
    out = torch.zeros(x.shape[0], len(ys), g, g)
    for i in range(g):
        for j in range(g):
            q = _patch_mean(x, g, i, j) @ wq.T
            for k, y in enumerate(ys):
                if y is not None:
                    out[:, k, i, j] = (q * (_patch_mean(y, g, i, j) @ wk.T)).sum(1) / (math.sqrt(d) * temperature)
    return out


@pytest.mark.parametrize("grid", [1, 2, 4])
@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_edge_attention_equals_direct_computation(grid: int, temperature: float) -> None:
    torch.manual_seed(grid)
    att = EdgeAttention(6, 5, grid, temperature)
    x = torch.randn(3, 6, 8, 8)
    ys = [torch.randn(3, 6, 4, 4), None, torch.randn(3, 6, 4, 4)]  # a stride-2 edge with `none`
    with torch.no_grad():
        logits = att(x, ys)
        ref = _direct_logits(att, x, ys, temperature)
    assert logits.shape == (3, 3, grid, grid)
    assert torch.allclose(logits, ref, atol=1e-5)
    assert (logits[:, 1] == 0).all()  # `none`: key 0, logit 0


def test_grid_one_is_attention_on_globally_pooled_features() -> None:
    torch.manual_seed(0)
    att = EdgeAttention(4, 3, 1, 1.0)
    x = torch.randn(2, 4, 8, 8)
    ys = [torch.randn(2, 4, 8, 8) for _ in range(3)]
    with torch.no_grad():
        q = att.query.weight[:, :, 0, 0] @ x.mean(dim=(2, 3)).T  # d, B
        keys = torch.stack([att.key.weight[:, :, 0, 0] @ y.mean(dim=(2, 3)).T for y in ys])  # K, d, B
        ref = (keys * q).sum(1).T / math.sqrt(3)  # B, K
        assert torch.allclose(att(x, ys)[:, :, 0, 0], ref, atol=1e-5)


@pytest.mark.parametrize("size", [(8, 8), (7, 5)])
def test_patch_scale_is_nearest_upsampling(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    y = torch.randn(2, 3, *size)
    w = torch.rand(2, 2, 2)
    ref = y * F.interpolate(w.unsqueeze(1), size=size, mode="nearest")
    assert torch.allclose(patch_scale(y, w), ref)
    assert torch.allclose(patch_scale(y, w[:, :1, :1]), y * w[:, 0, 0].view(2, 1, 1, 1))


# --------------------------------------------------------------------------- pairs

def test_edge_score_and_pair_weights() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 2, 2)
    with_none = edge_score(logits, ("none", "skip_connect", "sep_conv_3x3"))
    assert torch.allclose(with_none, torch.logsumexp(logits[:, 1:], 1) - logits[:, 0])
    assert torch.allclose(edge_score(logits, ("a", "b", "c")), torch.logsumexp(logits, 1))

    scores = [torch.randn(2, 2, 2) for _ in range(4)]
    beta = pair_weights(scores)
    pairs = pair_index(4)
    assert pairs == [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
    assert beta.shape == (2, 6, 2, 2)
    assert torch.allclose(beta.sum(1), torch.ones(()))
    ref = torch.softmax(torch.stack([scores[a] + scores[b] for a, b in pairs], 1), 1)
    assert torch.allclose(beta, ref)


def test_pair_mix_is_sum_over_pairs() -> None:
    torch.manual_seed(0)
    zs = [torch.randn(2, 3, 4, 4) for _ in range(3)]
    beta = torch.softmax(torch.randn(2, 3, 2, 2), 1)
    ref = sum(patch_scale(zs[a] + zs[b], beta[:, p]) for p, (a, b) in enumerate(pair_index(3)))
    assert torch.allclose(pair_mix(zs, beta), ref, atol=1e-6)


# --------------------------------------------------------------------------- builder and size

def test_paper_size_darts_supernet_has_published_parameter_count() -> None:
    """DARTS's search log prints 1.930618MB for C=16, 8 cells, 10 classes (alpha excluded)."""
    wcfg = WeightingConfig(method="darts", topology="darts")
    model = build_supernet(get_space("darts"), 10, wcfg, channels=16, layers=8, cells_per_stage=5)
    assert isinstance(model, DartsSupernet)
    n = sum(p.numel() for p in model.weight_parameters())
    assert round(n / 1e6, 2) == 1.93
    assert n == 1_930_618
    assert sum(p.numel() for p in model.arch_parameters()) == 2 * 14 * 8
    # DARTS's own design (every op evaluated, `none` included, nothing shared) has the same weights
    ref = WeightingConfig("darts", "darts", skip_none=False, impl="reference")
    slow = build_supernet(get_space("darts"), 10, ref, 16, 8, 5)
    assert sum(p.numel() for p in slow.weight_parameters()) == n


def test_reduction_cells_at_one_and_two_thirds() -> None:
    model = build_supernet(get_space("darts"), 10, WeightingConfig("darts", "darts"), 4, 8, 1)
    assert [c.reduction for c in model.cells] == [i in (2, 5) for i in range(8)]


def test_nb201_supernet_layout() -> None:
    model = build_supernet(get_space("nb201"), 10, WeightingConfig("darts", "darts"), 16, 8, 5)
    assert isinstance(model, Nb201Supernet)
    assert len(model.cells) == 17 and model.alphas["normal"].shape == (6, 5)
    with pytest.raises(ValueError, match="pairs"):
        build_supernet(get_space("nb201"), 10, WeightingConfig("midas", "pairs"), 4, 8, 1)


def test_skip_none_fast_path_matches_evaluating_none() -> None:
    """Skipping `none` is an optimisation only: same outputs as evaluating its zeros."""
    outs = []
    for skip in (True, False):
        torch.manual_seed(0)
        model = build_supernet(get_space("s3"), CLASSES, WeightingConfig("midas", "pairs", 2, 4, 1.0, skip),
                               4, 3, 1)
        model.eval()
        with torch.no_grad():
            outs.append(model(_batch()[0]))
    assert torch.allclose(outs[0], outs[1], atol=1e-5)
