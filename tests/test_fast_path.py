"""The fast supernet computes what the DARTS reference design computes: outputs, gradients, BN stats."""

from __future__ import annotations

import pytest
import torch

from midas.spaces import get_space
from midas.supernet import WeightingConfig, build_supernet
from midas.supernet.mixing import weighted_sum, weighted_sum_fused

CLASSES = 5
@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: tiny ops are faster so, and spinning threads stall on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


CASES = [(space, method) for space in ("darts", "nb201", "s1", "s2", "s3", "s4") for method in ("darts", "midas")]


def _pair(space: str, method: str, **fast: object) -> tuple[torch.nn.Module, torch.nn.Module]:
    topology = "pairs" if method == "midas" and space != "nb201" else "darts"
    torch.manual_seed(0)
    ref = build_supernet(get_space(space), CLASSES, WeightingConfig(method, topology, 2, 4, 1.0, impl="reference"),
                         4, 3, 1)
    fast_model = build_supernet(get_space(space), CLASSES,
                                WeightingConfig(method, topology, 2, 4, 1.0, impl="fast", **fast), 4, 3, 1)
    result = fast_model.load_state_dict(ref.state_dict())  # same parameter names: checkpoints interchange
    assert not result.missing_keys and not result.unexpected_keys
    return ref, fast_model


def _run(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int) -> tuple[torch.Tensor, list]:
    torch.manual_seed(seed)  # the S4 noise op draws the same noise on both paths
    record: list = []
    out = model(x, record)
    torch.nn.functional.cross_entropy(out, y).backward()
    return out, record


@pytest.mark.parametrize("space,method", CASES)
def test_fast_matches_reference_outputs_and_gradients(space: str, method: str) -> None:
    ref, fast = _pair(space, method)
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2])
    out_r, rec_r = _run(ref.train(), x, y, 5)
    out_f, rec_f = _run(fast.train(), x, y, 5)
    torch.testing.assert_close(out_f, out_r, rtol=1e-4, atol=1e-5)
    # the per-sample weights consumed by BilevelSearcher.evaluate agree too
    assert len(rec_f) == len(rec_r)
    for a, b in zip(rec_f, rec_r):
        for wa, wb in zip(a["edges"], b["edges"]):
            torch.testing.assert_close(wa, wb, rtol=1e-4, atol=1e-5)
    grads_r = dict(ref.named_parameters())
    n_checked = 0
    for name, p in fast.named_parameters():
        q = grads_r[name]
        assert (p.grad is None) == (q.grad is None), name
        if p.grad is not None:
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-3, atol=1e-5, msg=name)
            n_checked += 1
    assert n_checked == len(list(fast.parameters()))
    # shared pool + BN keeps every edge's running statistics
    buffers_r = dict(ref.named_buffers())
    for name, b in fast.named_buffers():
        torch.testing.assert_close(b.float(), buffers_r[name].float(), rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("space,method", [("darts", "midas"), ("nb201", "darts")])
def test_fast_matches_reference_in_eval_mode(space: str, method: str) -> None:
    ref, fast = _pair(space, method, channels_last=False)
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        _ = ref.train()(x), fast.train()(x)  # give the running stats a non-default value
        torch.testing.assert_close(fast.eval()(x), ref.eval()(x), rtol=1e-4, atol=1e-5)


def _count_relus(model: torch.nn.Module) -> int:
    calls = {"n": 0}
    orig = torch.nn.functional.relu

    def counting(*a: object, **k: object) -> torch.Tensor:
        calls["n"] += 1
        return orig(*a, **k)

    torch.nn.functional.relu = counting
    try:
        with torch.no_grad():
            model(torch.randn(2, 3, 8, 8))
    finally:
        torch.nn.functional.relu = orig
    return calls["n"]


def test_fast_path_does_less_work_than_reference() -> None:
    """`none` is never built on the fast path, and each source node's ReLU is computed once."""
    ref, fast = _pair("darts", "darts")
    n_ops = lambda m: sum(len(e.ops) for c in m.cells for e in c.edges)  # noqa: E731
    assert n_ops(fast) == n_ops(ref) - 14 * len(ref.cells)
    saved = 0
    for cell in fast.cells:
        relu_ops = sum(hasattr(op, "from_relu") for e in cell.edges for op in e.ops.values())
        sources = {src for src, _ in cell.space.edges}
        saved += relu_ops - len(sources)
    assert saved > 0
    assert _count_relus(fast) == _count_relus(ref) - saved


def test_channels_last_is_applied_and_optional() -> None:
    _, nhwc = _pair("darts", "darts")
    _, nchw = _pair("darts", "darts", channels_last=False)
    conv = nhwc.stem[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert nchw.stem[0].weight.is_contiguous()


@pytest.mark.parametrize("grid,size", [(1, 8), (2, 8), (4, 8), (3, 8)])
def test_fused_weighted_sum_equals_reference(grid: int, size: int) -> None:
    g = torch.Generator().manual_seed(grid)
    ys = [torch.randn(2, 3, size, size, generator=g), None, torch.randn(2, 3, size, size, generator=g)]
    ys[2] = ys[2].contiguous(memory_format=torch.channels_last)
    w = torch.rand(2, 3, grid, grid, generator=g)
    torch.testing.assert_close(weighted_sum_fused(ys, w), weighted_sum(ys, w))


def test_unknown_impl_is_rejected() -> None:
    with pytest.raises(ValueError, match="impl"):
        build_supernet(get_space("darts"), CLASSES, WeightingConfig("darts", "darts", impl="turbo"), 4, 3, 1)


@pytest.mark.parametrize("size", [8, 7])
def test_factorized_reduce_equals_strided_convs(size: int) -> None:
    """The subsample-then-1x1 form equals DARTS's stride-2 1x1 convs on even and shifted pixels."""
    from midas.ops import FactorizedReduce

    torch.manual_seed(0)
    op = FactorizedReduce(4, 6, affine=False).train()
    x = torch.randn(3, 4, size, size)
    r = torch.relu(x)
    shifted = torch.nn.functional.pad(r, (0, 1, 0, 1))[:, :, 1:, 1:]
    expected = torch.cat([torch.nn.functional.conv2d(r, op.conv_1.weight, stride=2),
                          torch.nn.functional.conv2d(shifted, op.conv_2.weight, stride=2)], dim=1)
    expected = torch.nn.functional.batch_norm(expected, None, None, training=True)
    torch.testing.assert_close(op(x), expected, rtol=1e-4, atol=1e-5)
