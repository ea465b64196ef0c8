"""Candidate ops (shapes, registry errors) and the search-space records (edges, op lists)."""

from __future__ import annotations

import re

import pytest
import torch
from conftest import SHARED_DATA

from midas.errors import MidasError
from midas.ops import OPS, build_op
from midas.spaces import SPACES, SearchSpace, get_space

ALL_SPACES = ("darts", "nb201", "s1", "s2", "s3", "s4")
SK, S3, S5, D3, D5, MP, AP = ("skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
                              "dil_conv_5x5", "max_pool_3x3", "avg_pool_3x3")


def _space_ops() -> list[str]:
    names: set[str] = set()
    for s in ALL_SPACES:
        space = get_space(s)
        for ct in space.cell_types:
            for ops in space.ops(ct):
                names.update(ops)
    return sorted(names)


# --------------------------------------------------------------------------- ops

@pytest.mark.parametrize("name", _space_ops())
@pytest.mark.parametrize("stride", [1, 2])
def test_every_space_op_builds_with_right_shape(name: str, stride: int) -> None:
    torch.manual_seed(0)
    op = build_op(name, 4, 4, stride, affine=False)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    y = op(x)
    assert y.shape == (2, 4, 8 // stride, 8 // stride)
    assert torch.isfinite(y).all()
    if name not in ("none", "noise"):  # the others depend on their input
        y.square().sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"])
@pytest.mark.parametrize("stride", [1, 2])
def test_nb201_ops_change_channels(name: str, stride: int) -> None:
    """NB201's ops map c_in -> c_out (its search cells never need it, its API allows it)."""
    if name == "skip_connect" and stride == 1:
        return  # test_skip_connect_changes_channels_at_stride_1
    y = build_op(name, 4, 6, stride, True)(torch.randn(2, 4, 8, 8))
    assert y.shape == (2, 6, 8 // stride, 8 // stride)


def test_skip_connect_changes_channels_at_stride_1() -> None:
    y = build_op("skip_connect", 4, 6, 1, True)(torch.randn(2, 4, 8, 8))
    assert y.shape == (2, 6, 8, 8)


def test_odd_sizes_round_up_like_the_reference_code() -> None:
    for name in ("none", "skip_connect", "sep_conv_3x3", "dil_conv_5x5", "max_pool_3x3", "noise"):
        assert build_op(name, 4, 4, 2, False)(torch.randn(1, 4, 7, 7)).shape == (1, 4, 4, 4), name


def test_skip_connect_is_identity_at_stride_1_and_none_is_zero() -> None:
    x = torch.randn(2, 4, 8, 8)
    assert torch.equal(build_op("skip_connect", 4, 4, 1, False)(x), x)
    assert build_op("none", 4, 4, 1, False)(x).abs().sum() == 0
    assert build_op("none", 4, 4, 2, False)(x).abs().sum() == 0


def test_sep_conv_parameter_count_matches_darts() -> None:
    """Two depthwise-separable blocks: 2 x (C*k*k + C*C) conv weights, plus 4C affine BN params."""
    c = 16
    n = sum(p.numel() for p in build_op("sep_conv_3x3", c, c, 1, True).parameters())
    assert n == 2 * (c * 9 + c * c) + 2 * 2 * c
    n = sum(p.numel() for p in build_op("dil_conv_5x5", c, c, 1, False).parameters())
    assert n == c * 25 + c * c


def test_unknown_op_error_names_it_and_lists_choices() -> None:
    with pytest.raises(MidasError) as err:
        build_op("conv_7x7", 4, 4, 1, False)
    msg = str(err.value)
    assert "'conv_7x7'" in msg and "operation" in msg
    for name in ("sep_conv_3x3", "nor_conv_3x3", "noise"):
        assert name in msg


def test_registry_rejects_duplicates() -> None:
    with pytest.raises(ValueError, match="twice"):
        OPS.add("none", lambda *a: None)


# --------------------------------------------------------------------------- spaces

def test_registry_holds_the_six_spaces() -> None:
    assert set(SPACES.names()) >= set(ALL_SPACES)


def test_unknown_space_error() -> None:
    with pytest.raises(MidasError) as err:
        get_space("s5")
    assert "'s5'" in str(err.value) and "nb201" in str(err.value) and "darts" in str(err.value)


@pytest.mark.parametrize("name", ["darts", "s1", "s2", "s3", "s4"])
def test_darts_like_cell_structure(name: str) -> None:
    space = get_space(name)
    assert space.family == "darts" and space.num_edges == 14
    assert space.cell_types == ("normal", "reduce")
    assert space.intermediate_nodes == (2, 3, 4, 5)
    # DARTS edge order: node 2 from (0, 1), node 3 from (0, 1, 2), ...
    assert space.edges[:5] == ((0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
    assert space.edges[-1] == (4, 5)
    assert [len(space.incoming(n)) for n in space.intermediate_nodes] == [2, 3, 4, 5]
    assert [space.edges[e] for e in space.incoming(4)] == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert len(space.ops("normal")) == len(space.ops("reduce")) == 14


def test_nb201_cell_structure() -> None:
    space = get_space("nb201")
    assert space.family == "nb201" and space.num_edges == 6
    assert space.edges == ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
    assert space.cell_types == ("normal",)
    assert space.ops("normal") == (("none", SK, "nor_conv_1x1", "nor_conv_3x3", AP),) * 6
    with pytest.raises(ValueError, match="no 'reduce' cell"):
        space.ops("reduce")


def test_darts_ops() -> None:
    ops = ("none", MP, AP, SK, S3, S5, D3, D5)
    space = get_space("darts")
    assert space.ops("normal") == space.ops("reduce") == (ops,) * 14
    assert "noise" not in space.ops("normal")[0]


def test_robustdarts_uniform_spaces() -> None:
    for name, ops in (("s2", (SK, S3)), ("s3", ("none", SK, S3)), ("s4", ("noise", S3))):
        space = get_space(name)
        for ct in ("normal", "reduce"):
            assert space.ops(ct) == (ops,) * 14, (name, ct)


def test_s1_spot_checks_against_midas_md() -> None:
    """Edges picked from the lists in MIDAS.md section 3 (written out by hand here)."""
    s1 = get_space("s1")
    normal, reduce = s1.ops("normal"), s1.ops("reduce")
    assert normal[0] == (SK, D3)
    assert normal[1] == normal[2] == (SK, D5)
    assert normal[5] == normal[10] == (MP, SK)
    assert normal[12] == normal[13] == (D3, D5)
    assert reduce[0] == (MP, AP)
    assert reduce[1] == (MP, D3)
    assert reduce[4] == (SK, D5)
    assert reduce[6] == (MP, S3)
    assert reduce[7] == (SK, D3)
    assert reduce[13] == (SK, D5)
    assert all(len(ops) == 2 for ops in normal + reduce)
    assert normal != reduce


def _midas_md_s1_lists() -> dict[str, list[tuple[str, ...]]]:
    text = (SHARED_DATA.parent / "MIDAS.md").read_text()
    section = text[text.index("- s1:"):text.index("## 4.")]
    normal_text, reduce_text = section.split("Reduction cell")
    lists = {}
    for ct, part in (("normal", normal_text), ("reduce", reduce_text)):
        found = [tuple(s.strip() for s in m.split(",")) for m in re.findall(r"\[([a-z_0-9, ]+)\]", part)]
        lists[ct] = [ops for ops in found if all(op in OPS for op in ops)]  # drops e.g. [2, 3, 4, 5]
    return lists


def test_s1_lists_equal_midas_md_exactly() -> None:
    if not (SHARED_DATA.parent / "MIDAS.md").exists():
        pytest.skip("MIDAS.md (the method reference) not found next to the shared data")
    lists = _midas_md_s1_lists()
    s1 = get_space("s1")
    for ct in ("normal", "reduce"):
        assert len(lists[ct]) == 14
        assert list(s1.ops(ct)) == lists[ct], ct


def test_space_record_validates_op_names_and_list_counts() -> None:
    with pytest.raises(MidasError, match="conv_9x9"):
        SearchSpace("bad", "darts", ((0, 2),), (("conv_9x9",),), (("none",),))
    with pytest.raises(ValueError, match="op lists"):
        SearchSpace("bad", "darts", ((0, 2), (1, 2)), (("none",),), (("none",), ("none",)))
