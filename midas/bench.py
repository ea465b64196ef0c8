"""Search-step benchmark: what one MIDAS or DARTS search step costs, side by side.

Each case (space x batch size x AMP x supernet impl x method x patch grid) builds the
supernet exactly as ``midas search`` does and times ``BilevelSearcher.weight_step``
and ``arch_step`` (forward + backward + optimizer step) on random CIFAR-shaped
batches: warm-up steps are dropped and the median of the timed steps is reported.
Every case runs in a fresh subprocess so its peak memory is its own (peak RSS above
the RSS just before the first step on CPU, ``max_memory_allocated`` on CUDA); the
weight steps run first, so ``peak_weight_mb`` is the weight step's peak and
``peak_mb`` the peak of both steps. Absolute times on a shared machine are noise;
the ratios (MIDAS / DARTS on the same configuration, reference / fast impl) are
what the benchmark is for, and ``rounds`` interleaves the cases to make them fair.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from midas import config, io
from midas.errors import ConfigError, MidasError

NUM_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)
MB = 2**20
#: result keys that identify a case (everything a MIDAS/DARTS ratio pairs on, plus the method)
CASE_KEYS = ("space", "batch_size", "amp", "impl", "extra", "method", "patch_grid")


@dataclass(frozen=True)
class Case:
    """One configuration to measure; ``extra`` holds further ``--set`` overrides."""

    space: str
    method: str
    batch_size: int
    patch_grid: int
    amp: str = "none"
    impl: str = "fast"
    channels: int = 16
    layers: int = 8
    cells_per_stage: int = 5
    device: str = "cpu"
    threads: int = 0
    extra: tuple[str, ...] = ()

    def overrides(self) -> list[str]:
        return [f"search.batch_size={self.batch_size}", f"supernet.channels={self.channels}",
                f"supernet.layers={self.layers}", f"supernet.cells_per_stage={self.cells_per_stage}",
                f"midas.patch_grid={self.patch_grid}", f"amp={self.amp}", f"supernet.impl={self.impl}",
                f"threads={self.threads}", "search.memory_check=false", *self.extra]

    def config(self) -> dict[str, Any]:
        return config.resolve(None, self.overrides(), space=self.space, method=self.method, device=self.device)


def expand_cases(spaces: list[str], methods: list[str], batch_sizes: list[int], patch_grids: list[int],
                 amps: list[str], impls: list[str], **common: Any) -> list[Case]:
    """The grid of cases; methods without patches (darts, midas-global) run once per grid-free setting."""
    cases: list[Case] = []
    for space, bs, amp, impl, method in itertools.product(spaces, batch_sizes, amps, impls, methods):
        grids = patch_grids if method == "midas" else [1]
        for g in grids:
            case = Case(space=space, method=method, batch_size=bs, patch_grid=g, amp=amp, impl=impl, **common)
            if case not in cases:
                cases.append(case)
    return cases


# ------------------------------------------------------------------ measuring

def _rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _peak_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux, bytes on macOS
    scale = 1 if sys.platform == "darwin" else 1024
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def count_flops(model: torch.nn.Module, device: torch.device) -> dict[str, float]:
    """FLOPs of one forward pass on one image, and the attention's part of them.

    ``FlopCounterMode`` counts convolutions and matrix products (FLOPs = 2 x MACs),
    which covers the attention's query/key projections; the attention's pooling and
    query-key dot products are elementwise, so they are added here by a hook.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from midas.supernet.mixing import EdgeAttention

    att = {"conv": 0, "elementwise": 0}

    def hook(mod: EdgeAttention, args: tuple[Any, ...], logits: torch.Tensor) -> None:
        x, ys = args
        b, c = x.shape[:2]
        g, d = mod.grid, mod.query.out_channels
        present = [y for y in ys if y is not None]
        att["conv"] += 2 * b * d * c * g * g * (1 + len(present))  # query and key 1x1 convs
        att["elementwise"] += x.numel() + sum(y.numel() for y in present) + 2 * b * len(present) * d * g * g

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, EdgeAttention)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *IMAGE_SHAPE, device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    total = counter.get_total_flops() + att["elementwise"]
    attention = att["conv"] + att["elementwise"]
    return {"mflops": total / 1e6, "attention_mflops": attention / 1e6,
            "attention_share": attention / total if total else 0.0}


def measure(case: Case, warmup: int, repeats: int) -> dict[str, Any]:
    """Time ``repeats`` weight steps, then ``repeats`` architecture steps, in this process."""
    from midas.runtime import configure
    from midas.search import BilevelSearcher, make_supernet
    from midas.spaces import get_space

    cfg = case.config()
    device = configure(cfg)
    torch.manual_seed(cfg["seed"])
    model = make_supernet(cfg, get_space(cfg["space"]), NUM_CLASSES, IMAGE_SHAPE[0])
    searcher = BilevelSearcher(model, cfg, device)
    gen = torch.Generator().manual_seed(cfg["seed"])
    bs = case.batch_size
    xt, xv = (torch.randn(bs, *IMAGE_SHAPE, generator=gen).to(device) for _ in range(2))
    yt, yv = (torch.randint(0, NUM_CLASSES, (bs,), generator=gen).to(device) for _ in range(2))
    cuda = device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    def peak() -> int:
        return int(torch.cuda.max_memory_allocated(device)) if cuda else _peak_rss_bytes() - base

    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    base = _rss_bytes()
    model.train()

    def timed(step: Any) -> list[float]:
        times = []
        for i in range(warmup + repeats):
            sync()
            t0 = time.perf_counter()
            step(i)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
        return times

    weight_times = timed(lambda i: searcher.weight_step(xt, yt, f"bench weight step {i}"))
    peak_weight = peak()
    arch_times = timed(lambda i: searcher.arch_step(xv, yv, xt, yt, f"bench arch step {i}"))
    peak_all = peak()
    flops = count_flops(model, device)
    return {
        **{k: v for k, v in asdict(case).items() if k != "extra"}, "extra": " ".join(case.extra),
        "device_name": device_name(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "weight_s_all": weight_times, "arch_s_all": arch_times,
        "weight_params": sum(p.numel() for p in searcher.weight_params),
        "arch_params": sum(p.numel() for p in searcher.arch_params),
        "peak_weight_mb": peak_weight / MB, "peak_mb": peak_all / MB, **flops,
    }


def measure_isolated(case: Case, warmup: int, repeats: int, timeout_s: float | None = None) -> dict[str, Any]:
    """:func:`measure` in a fresh Python process, so that its peak memory is its own."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "case.json"
        out = Path(tmp) / "result.json"
        spec.write_text(json.dumps({"case": asdict(case), "warmup": warmup, "repeats": repeats}))
        proc = subprocess.run([sys.executable, "-m", "midas.bench", str(spec), str(out)],
                              capture_output=True, text=True, timeout=timeout_s, env=os.environ.copy())
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
            raise MidasError(f"benchmark case {case_label(asdict(case))} failed (exit {proc.returncode}):\n{tail}")
        return json.loads(out.read_text())


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge the rounds of one case: medians over all timed steps, the highest peak."""
    res = dict(runs[0])
    res["weight_s_all"] = [t for r in runs for t in r["weight_s_all"]]
    res["arch_s_all"] = [t for r in runs for t in r["arch_s_all"]]
    res["weight_s"] = statistics.median(res["weight_s_all"])
    res["arch_s"] = statistics.median(res["arch_s_all"])
    res["step_s"] = res["weight_s"] + res["arch_s"]
    res["images_per_s"] = res["batch_size"] / res["step_s"]
    res["peak_mb"] = max(r["peak_mb"] for r in runs)
    res["peak_weight_mb"] = max(r["peak_weight_mb"] for r in runs)
    res["rounds"] = len(runs)
    return res


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """MIDAS / DARTS on the same configuration, and reference / fast impl (a speed-up)."""
    out: list[dict[str, Any]] = []
    key = ("space", "batch_size", "amp", "extra")
    for r in results:
        if r["method"] == "darts":
            continue
        for d in results:
            if d["method"] == "darts" and d["impl"] == r["impl"] and all(d[k] == r[k] for k in key):
                out.append({"kind": "midas/darts", "a": case_label(r), "b": case_label(d),
                            "step": r["step_s"] / d["step_s"], "weight": r["weight_s"] / d["weight_s"],
                            "arch": r["arch_s"] / d["arch_s"],
                            "memory": r["peak_mb"] / d["peak_mb"] if d["peak_mb"] > 0 else float("nan")})
    for r in results:
        if r["impl"] != "reference":
            continue
        for f in results:
            if f["impl"] == "fast" and all(f[k] == r[k] for k in (*key, "method", "patch_grid")):
                out.append({"kind": "reference/fast", "a": case_label(r), "b": case_label(f),
                            "step": r["step_s"] / f["step_s"], "weight": r["weight_s"] / f["weight_s"],
                            "arch": r["arch_s"] / f["arch_s"],
                            "memory": r["peak_mb"] / f["peak_mb"] if f["peak_mb"] > 0 else float("nan")})
    return out


def case_label(r: dict[str, Any]) -> str:
    method = f"midas G{r['patch_grid']}" if r["method"] == "midas" else r["method"]
    extra = r["extra"] if isinstance(r["extra"], str) else " ".join(r["extra"])
    parts = [r["space"], method, f"b{r['batch_size']}", r["impl"]]
    if r["amp"] != "none":
        parts.append(r["amp"])
    if extra:
        parts.append(extra)
    return " ".join(parts)


@dataclass
class Report:
    results: list[dict[str, Any]]
    ratios: list[dict[str, Any]] = field(default_factory=list)
    command: str = ""

    def to_json(self) -> dict[str, Any]:
        first = self.results[0] if self.results else {}
        return {"device_name": first.get("device_name"), "torch": first.get("torch"),
                "threads": first.get("threads"), "command": self.command,
                "results": self.results, "ratios": self.ratios}


def run_bench(cases: list[Case], warmup: int = 1, repeats: int = 3, rounds: int = 1,
              isolate: bool = True, command: str = "", echo: Any = None) -> Report:
    """Measure every case ``rounds`` times, the cases interleaved within each round."""
    if not cases:
        raise ConfigError("nothing to benchmark: the case list is empty")
    if repeats < 1 or warmup < 0 or rounds < 1:
        raise ConfigError("benchmark needs repeats >= 1, warmup >= 0 and rounds >= 1")
    runs: dict[Case, list[dict[str, Any]]] = {c: [] for c in cases}
    for rnd in range(rounds):
        for case in cases:
            res = measure_isolated(case, warmup, repeats) if isolate else measure(case, warmup, repeats)
            runs[case].append(res)
            if echo is not None:
                echo(f"round {rnd + 1}/{rounds} {case_label(res)}: weight {statistics.median(res['weight_s_all']):.3f}s "
                     f"arch {statistics.median(res['arch_s_all']):.3f}s peak {res['peak_mb']:.0f} MB")
    results = [summarize(runs[c]) for c in cases]
    return Report(results, ratios(results), command)


# ------------------------------------------------------------------ output

def markdown_table(report: Report) -> str:
    """Results and ratios as Markdown tables (what BENCHMARKS.md holds)."""
    head = ("| case | weight step s | arch step s | search step s | images/s | peak MB (weight step) | "
            "weight params | arch params | MFLOPs/image | attention FLOPs |")
    lines = [head, "|" + "---|" * 10]
    for r in report.results:
        lines.append(
            f"| {case_label(r)} | {r['weight_s']:.3f} | {r['arch_s']:.3f} | {r['step_s']:.3f} | "
            f"{r['images_per_s']:.1f} | {r['peak_mb']:.0f} ({r['peak_weight_mb']:.0f}) | {r['weight_params']:,} | "
            f"{r['arch_params']:,} | {r['mflops']:.1f} | {100 * r['attention_share']:.2f}% |"
        )
    if report.ratios:
        lines += ["", "| ratio | a | b | step | weight step | arch step | peak memory |", "|" + "---|" * 7]
        for q in report.ratios:
            lines.append(f"| {q['kind']} | {q['a']} | {q['b']} | {q['step']:.3f} | {q['weight']:.3f} | "
                         f"{q['arch']:.3f} | {q['memory']:.3f} |")
    return "\n".join(lines)


def update_markdown(path: str | Path, section: str, body: str) -> None:
    """Replace the text between ``<!-- bench:SECTION -->`` markers (appended if absent)."""
    path = Path(path)
    start, end = f"<!-- bench:{section} -->", f"<!-- /bench:{section} -->"
    text = path.read_text() if path.exists() else ""
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    io.write_text(path, text)


def _child(spec_path: str, out_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    case = Case(**{**spec["case"], "extra": tuple(spec["case"]["extra"])})
    Path(out_path).write_text(json.dumps(measure(case, spec["warmup"], spec["repeats"])))


if __name__ == "__main__":  # the isolated worker of measure_isolated
    _child(sys.argv[1], sys.argv[2])
