"""Smoke test of the benchmark (SPEC §10): `python -m bench --quick` writes a complete report.

It runs the real benchmark on tiny datasets with short, bounded loads (its own
database server and Gunicorn processes on 127.0.0.1). Timings are never
asserted — they belong to the full benchmark run — only that the report has
every section, that the results hold every figure, and that SegDash's database
round trips per request are within the budgets of SPEC §10 at both scales.
"""
import json
import os
import subprocess
import sys

import pytest

from helpers import ROOT

pytestmark = pytest.mark.system



@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("bench")
    report_path = out_dir / "BENCHMARKS.md"
    plots_dir = out_dir / "plots"
    env = dict(os.environ)
    env.pop("BENCH_MONGO_URI", None)
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(report_path), "--plots-dir", str(plots_dir)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(plots_dir / "results.json") as handle:
        results = json.load(handle)
    return report_path.read_text(), results, plots_dir


def test_report_has_every_section(quick_run):
    from bench.report import SECTIONS

    text, _results, _plots = quick_run
    for heading in SECTIONS:
        assert heading in text, heading
    assert "Quick smoke run" in text
    for word in ("CPU", "RAM", "Database", "SecantusDB" if "SecantusDB" in text else "mongod"):
        assert word in text


def test_results_hold_every_figure(quick_run):
    _text, results, plots = quick_run
    assert set(results["scales"]) == {"seed", "10x"}
    for scale in results["scales"].values():
        for key in ("list", "list_cached", "list_next_page", "sync", "sync_idle", "auto_create", "check", "metrics",
                    "metrics_cached"):
            assert key in scale["segdash"], key
        for key in ("list", "sync", "auto_create", "check", "metrics"):
            assert key in scale["baseline"], key
        assert scale["floor"]["sync"]["result"]["files_linked"] == scale["segdash"]["sync"]["result"]["files_linked"]
        assert scale["baseline_sync_estimate"]["seconds"] is not None
    load = results["load"]
    for key in ("bare", "segdash_list", "floor_list", "baseline_list"):
        assert load[key]["requests"] > 0, key
    assert load["segdash_list"]["errors"] == 0
    assert results["workers"]["rows"]
    memory = results["memory"]["after"]
    assert [row["role"] for row in memory].count("master") == 1
    assert sum(row["role"] == "worker" for row in memory) >= 1
    assert results["export"]["segdash"]["status"] == 200
    assert results["export"]["segdash"]["rows"] == results["export_dataset"]["rows"]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    for name in ("round_trips", "sync_time", "load", "workers", "memory", "export_rss"):
        assert (plots / f"{name}.png").stat().st_size > 0, name


def test_waited_on_requests_measured(quick_run):
    """The sections on requests people wait on ran at the largest scale, without errors."""
    text, results, _plots = quick_run
    wait = results["wait"]
    for section in ("lists", "shapes", "metrics", "interference", "day"):
        assert "error" not in wait[section], (section, wait[section])
    import batch_service

    cases = {row["case"] for row in wait["lists"]["rows"]}
    assert {f"sort={sort}" for sort in batch_service.SORTS} <= cases
    assert any(case.startswith("q=") for case in cases) and any(case.startswith("status=") for case in cases)
    for row in wait["lists"]["rows"]:
        assert row["statuses"] == {"200": row["n"]}, row
        assert row["docs_returned_max"] <= wait["lists"]["per_page"], row
    assert {"open_range", "bounded_range"} <= set(wait["shapes"])
    metrics = wait["metrics"]
    assert metrics["load"]["requests"] > 0 and metrics["load"]["errors"] == 0
    assert metrics["writes"]["n"] > 0 and set(metrics["writes"]["statuses"]) == {"200"}
    assert wait["interference"]["idle"]["requests"] > 0 and wait["interference"]["loaded"]["requests"] > 0
    day = wait["day"]
    assert day["errors"] == 0, day["error_samples"]
    assert day["sync"]["state"] == "done", day["sync"]
    for endpoint in ("GET /my", "GET /api/me/summary", "POST /api/masks", "GET /api/metrics",
                     "GET /api/review/next", "POST /api/sync-batch-files", "GET /api/jobs/<id>"):
        assert day["endpoints"][endpoint]["n"] > 0, endpoint
    assert any(row["role"] == "worker" for row in day["memory_end"])
    summary = text.split("## Machine", 1)[0]
    for target in ("/api/metrics under", "Uncached list pages", "beside 12 searchers", "Day in the life"):
        assert target in summary, target


BUDGETS = {  # data round trips per request (SPEC §10), the same at both scales
    # Jobs (sync, auto-create): the count of candidates, then the work of each chunk; the quick datasets fit one chunk.
    "list_next_page": 1, "list_cached": 0, "list_filtered_cached": 0, "sync": 11, "sync_idle": 11, "auto_create": 6,
    "check": 2,
    "metrics": 1, "metrics_cached": 0,
}
JOB_BOOKKEEPING = {"sync": 16, "auto_create": 11}  # insert, claim, checkpoints (and the settling stage's), end,
# cache version, watermark, notes of pending counts and their removal (as tests/test_round_trips.py)


def test_segdash_round_trips_within_budget(quick_run):
    _text, results, _plots = quick_run
    scales = results["scales"]
    for key, budget in BUDGETS.items():
        counts = {name: scale["segdash"][key]["n_data"] for name, scale in scales.items()}
        assert max(counts.values()) <= budget, (key, counts)
        assert len(set(counts.values())) == 1, (key, counts)
        for scale in scales.values():
            assert scale["segdash"][key]["n_other"] == 0, (key, scale["segdash"][key]["other"])
    for scale in scales.values():
        assert scale["segdash"]["check"]["n_bookkeeping"] <= 1  # the sync watermark's read
        for key, budget in JOB_BOOKKEEPING.items():
            assert scale["segdash"][key]["n_bookkeeping"] <= budget, (key, scale["segdash"][key]["bookkeeping"])
