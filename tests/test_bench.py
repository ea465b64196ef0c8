"""The benchmark harness on a tiny configuration: fields, pairing of ratios, output files (no timing asserts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from midas import cli
from midas.bench import Case, expand_cases, markdown_table, measure, ratios, run_bench, update_markdown
from midas.errors import ConfigError

TINY = dict(channels=4, layers=3, cells_per_stage=1, device="cpu", threads=1)


def test_expand_cases_runs_grid_free_methods_once() -> None:
    cases = expand_cases(["darts"], ["midas", "darts"], [8], [2, 4], ["none"], ["fast"], **TINY)
    assert [(c.method, c.patch_grid) for c in cases] == [("midas", 2), ("midas", 4), ("darts", 1)]


def test_measure_returns_expected_fields() -> None:
    res = measure(Case("darts", "midas", 2, 2, **TINY), warmup=0, repeats=2)
    assert len(res["weight_s_all"]) == 2 and len(res["arch_s_all"]) == 2
    assert all(t > 0 for t in res["weight_s_all"] + res["arch_s_all"])
    assert res["weight_params"] > res["arch_params"] > 0
    assert res["peak_mb"] >= res["peak_weight_mb"]
    assert res["mflops"] > res["attention_mflops"] > 0
    assert 0 < res["attention_share"] < 1
    assert res["threads"] == 1 and res["device_name"]


def test_darts_has_no_attention_and_few_arch_params() -> None:
    res = measure(Case("nb201", "darts", 2, 1, **TINY), warmup=0, repeats=1)
    assert res["attention_mflops"] == 0 and res["attention_share"] == 0
    assert res["arch_params"] == 6 * 5  # one alpha per edge and op


def test_run_bench_isolated_pairs_ratios_and_writes_markdown(tmp_path: Path) -> None:
    cases = expand_cases(["nb201"], ["midas", "darts"], [2], [2], ["none"], ["fast"], **TINY)
    report = run_bench(cases, warmup=0, repeats=1, rounds=1, isolate=True)
    assert len(report.results) == 2
    for r in report.results:
        assert r["step_s"] == pytest.approx(r["weight_s"] + r["arch_s"])
        assert r["images_per_s"] == pytest.approx(2 / r["step_s"])
        assert r["peak_mb"] > 0  # a fresh process: its own peak RSS above the pre-step RSS
    assert [q["kind"] for q in report.ratios] == ["midas/darts"]
    q = report.ratios[0]
    r_m = next(r for r in report.results if r["method"] == "midas" and r["impl"] == "fast")
    r_d = next(r for r in report.results if r["method"] == "darts" and r["impl"] == "fast")
    assert q["step"] == pytest.approx(r_m["step_s"] / r_d["step_s"])

    md = tmp_path / "BENCH.md"
    md.write_text("# title\n\n<!-- bench:cpu -->\nold\n<!-- /bench:cpu -->\n\ntail\n")
    update_markdown(md, "cpu", markdown_table(report))
    text = md.read_text()
    assert "old" not in text and text.startswith("# title") and text.rstrip().endswith("tail")
    assert text.count("\n| nb201 midas G2 b2 fast |") == 1 and "| midas/darts |" in text
    update_markdown(md, "gpu", "gpu table")  # absent markers: appended
    assert md.read_text().rstrip().endswith("<!-- /bench:gpu -->")


def test_ratios_pair_reference_with_fast_on_the_same_case() -> None:
    base = {"space": "darts", "batch_size": 8, "amp": "none", "extra": "", "patch_grid": 1,
            "weight_s": 1.0, "arch_s": 1.0, "step_s": 2.0, "peak_mb": 100.0}
    results = [{**base, "method": "darts", "impl": "reference", "weight_s": 3.0, "step_s": 4.0, "peak_mb": 150.0},
               {**base, "method": "darts", "impl": "fast"},
               {**base, "method": "midas", "impl": "fast", "patch_grid": 2, "step_s": 2.2},
               {**base, "method": "darts", "impl": "fast", "batch_size": 16}]
    got = {(q["kind"], q["a"], q["b"]): q for q in ratios(results)}
    assert set(got) == {("reference/fast", "darts darts b8 reference", "darts darts b8 fast"),
                        ("midas/darts", "darts midas G2 b8 fast", "darts darts b8 fast")}
    q = got[("reference/fast", "darts darts b8 reference", "darts darts b8 fast")]
    assert (q["weight"], q["step"], q["memory"]) == (3.0, 2.0, 1.5)
    assert got[("midas/darts", "darts midas G2 b8 fast", "darts darts b8 fast")]["step"] == pytest.approx(1.1)


def test_cli_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "b.json"
    rc = cli.main(["bench", "--space", "nb201", "--methods", "darts", "--batch-size", "2", "--channels", "4",
                   "--cells-per-stage", "1", "--threads", "1", "--warmup", "0", "--repeats", "1",
                   "--no-isolate", "--json", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["results"][0]["method"] == "darts" and data["results"][0]["space"] == "nb201"
    assert "| nb201 darts b2 fast |" in capsys.readouterr().out


def test_bad_input_is_a_user_error() -> None:
    assert cli.main(["bench", "--methods", "gdas", "--no-isolate"]) == 2
    assert cli.main(["bench", "--space", "nope", "--no-isolate"]) == 2
    with pytest.raises(ConfigError):
        run_bench([], repeats=1)
