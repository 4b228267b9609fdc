"""Database round trips per request (SPEC §5, §10), from pymongo command monitoring.

Each endpoint is measured at two data sizes (40 batches / 160 files and 320
batches / 1280 files). The counts must be identical at both sizes, so a loop per
batch or per file cannot pass, and within the budget the spec sets.

Data commands: those on `batches`, `masks.files`, `masks.chunks`, `mask_records`
and `sync_waiting` of the test database, and the cross-collection `bulkWrite` admin command. Bookkeeping: those
on `jobs` and `app_state`, and `hello`. getMore counts as a round trip like any
other command. Any other command in the test database (e.g. a `users` lookup) is
reported separately and must not happen: the token lookup is warmed up first.
"""
import uuid

import pytest
from bson import ObjectId

from factories import insert_batches, insert_mask_files
from helpers import COMMANDS, indexed_app, make_user, wait_for

SIZES = (40, 320)  # batches; 4 files per batch
DATA_COLLECTIONS = {"batches", "masks.files", "masks.chunks", "mask_records", "sync_waiting"}
BOOKKEEPING_COLLECTIONS = {"jobs", "app_state"}

LAYOUTS = ["batch_{n:04d}/img_{k}.png", "Batch-{n}/mask_{k}.png", "b{n:04d}_img{k}.png",
           "export\\batch_{n:04d}\\x{k}.png"]


def classify(commands, db_name):
    counts = {"data": [], "bookkeeping": [], "other": []}
    for command in commands:
        name, collection = command["name"], command["collection"]
        if name == "bulkWrite":
            counts["data"].append(name)
        elif name == "hello":
            counts["bookkeeping"].append(name)
        elif command["db"] != db_name:
            continue
        elif collection in DATA_COLLECTIONS:
            counts["data"].append(f"{name}:{collection}")
        elif collection in BOOKKEEPING_COLLECTIONS:
            counts["bookkeeping"].append(f"{name}:{collection}")
        else:
            counts["other"].append(f"{name}:{collection}")
    return counts


def build_data(database, n):
    """n batches (various statuses) and 4n files: 3n naming existing batches in varied layouts,
    n/2 naming missing batches, n/2 naming none (two of them duplicates)."""
    quarter = n // 4
    insert_batches(database, range(1, quarter + 1))
    insert_batches(database, range(quarter + 1, 2 * quarter + 1), assignee="sam", status="assigned")
    insert_batches(database, range(2 * quarter + 1, 3 * quarter + 1), assignee="sam", status="in_progress")
    insert_batches(database, range(3 * quarter + 1, n + 1), assignee="olga", status="completed")
    names = [LAYOUTS[(number + k) % len(LAYOUTS)].format(n=number, k=k)
             for number in range(1, n + 1) for k in range(3)]
    half = n // 2
    names += [f"incoming/b{number}_img1.png" for number in range(n + 1, n + 1 + half)]
    insert_mask_files(database, names)
    insert_mask_files(database, [f"unsorted/img_{i}.png" for i in range(half - 2)])
    insert_mask_files(database, ["dup_a.png", "dup_b.png"], metadata={"sha256": "e" * 64})
    assert database["masks.files"].count_documents({}) == 4 * n


def measure(scenario, client, headers, method, path, **kwargs):
    """Warm the user lookup, then run one request and record its commands."""
    warm = client.get("/api/jobs/warm-up", headers=headers)
    assert warm.status_code == 404
    COMMANDS.clear()
    response = client.open(path, method=method, headers=headers, **kwargs)
    commands = COMMANDS.snapshot()
    documents = COMMANDS.documents_returned
    assert response.status_code == 200, response.get_data(as_text=True)
    counts = classify(commands, scenario["db_name"])
    counts["documents_returned"] = documents
    return response.get_json(), counts


def measure_job(scenario, app, client, headers, path):
    """Start a job, then run it in this process; records the commands of both (request and job)."""
    import db
    import jobrunner

    warm = client.get("/api/jobs/warm-up", headers=headers)
    assert warm.status_code == 404
    COMMANDS.clear()
    response = client.post(path, headers=headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    with app.app_context():
        assert jobrunner.Runner(app).run_once()
    commands = COMMANDS.snapshot()
    documents = COMMANDS.documents_returned
    with app.app_context():
        job = db.jobs().find_one({"_id": ObjectId(response.get_json()["job_id"])})
    assert job["state"] == "done", job
    counts = classify(commands, scenario["db_name"])
    counts["documents_returned"] = documents
    return job["result"], counts


def run_scenario(mongo_uri, n):
    import db

    db_name = f"segdash_rt_{n}_{uuid.uuid4().hex[:8]}"
    # Re-read the shared cache version only on writes (not every second), so counts do not depend on timing.
    # Chunks larger than the data: the counts per chunk are what is measured.
    app = indexed_app(mongo_uri, db_name, CACHE_VERSION_CHECK_SECONDS=3600.0, SYNC_CHUNK_SIZE=100_000)
    with app.app_context():
        database = db.database()
    try:
        lead = make_user(app, "lead1", "lead")
        make_user(app, "sam", "segmenter")
        make_user(app, "olga", "segmenter")
        build_data(database, n)
        client = app.test_client()
        scenario = {"db_name": db_name, "n": n, "results": {}, "counts": {}}

        def step(key, method, path, **kwargs):
            if method == "POST":
                body, counts = measure_job(scenario, app, client, lead, path)
            else:
                body, counts = measure(scenario, client, lead, method, path, **kwargs)
            scenario["results"][key] = body
            scenario["counts"][key] = counts

        step("list", "GET", "/api/batches?per_page=50")
        step("list_cached", "GET", "/api/batches?per_page=50")
        step("list_next_page", "GET", "/api/batches?per_page=50&page=2")
        step("list_filtered", "GET", "/api/batches?status=assigned&per_page=20")
        step("list_filtered_cached", "GET", "/api/batches?status=assigned&per_page=20")
        step("list_filtered_next", "GET", "/api/batches?status=assigned&per_page=20&page=2")
        step("check", "GET", "/api/check-mongo-files")
        step("metrics", "GET", "/api/metrics")
        step("metrics_cached", "GET", "/api/metrics")
        step("sync", "POST", "/api/sync-batch-files")
        step("auto_create", "POST", "/api/auto-create-batches")
        step("sync_after_create", "POST", "/api/sync-batch-files")
        step("sync_idle", "POST", "/api/sync-batch-files")
        step("check_after", "GET", "/api/check-mongo-files?limit=1000")
        step("metrics_after", "GET", "/api/metrics")  # stored figures, stale; the new ones computed aside
        wait_for(lambda: "computing_until" not in database.app_state.find_one({"_id": "team_metrics"}))
        step("metrics_fresh", "GET", "/api/metrics")
        return scenario
    finally:
        with app.app_context():
            db.client().drop_database(db_name)


@pytest.fixture(scope="module")
def scenarios(mongo_uri):
    return {n: run_scenario(mongo_uri, n) for n in SIZES}


def counts_at_both_sizes(scenarios, key, kind="data"):
    found = [len(scenarios[n]["counts"][key][kind]) for n in SIZES]
    detail = {n: scenarios[n]["counts"][key] for n in SIZES}
    assert found[0] == found[1], f"{key}: {kind} round trips grow with the data: {detail}"
    for n in SIZES:
        assert scenarios[n]["counts"][key]["other"] == [], f"{key}: unexpected commands: {detail}"
    return found[0], detail


# ---------------------------------------------------------------- the results measured are right


def test_scenario_results_are_correct(scenarios):
    for n, scenario in scenarios.items():
        results = scenario["results"]
        half = n // 2
        assert results["list"]["total"] == n
        assert len(results["list"]["items"]) == min(50, n)
        assert results["list_cached"] == results["list"]
        assert results["list_filtered"]["total"] == n // 4
        assert len(results["list_next_page"]["items"]) == min(50, max(n - 50, 0))
        assert [item["id"] for item in results["list_next_page"]["items"][:1]] == (["batch_0051"] if n > 50 else [])
        assert len(results["list_filtered_next"]["items"]) == min(20, max(n // 4 - 20, 0))
        assert results["check"]["files_total"] == 4 * n
        assert results["check"]["linked"] == 0
        assert len(results["check"]["missing_batches"]) == min(100, half)
        assert results["metrics"]["totals"]["batches"] == n
        assert results["metrics_cached"] == results["metrics"]
        assert results["sync"]["files_scanned"] == 4 * n
        assert results["sync"]["files_linked"] == 3 * n
        assert results["sync"]["batches_updated"] == n
        assert results["sync"]["unmatched"] == half
        assert results["auto_create"]["created"] == half
        assert results["sync_after_create"]["files_linked"] == half
        assert results["sync_after_create"]["files_scanned"] == n
        assert results["sync_idle"]["files_linked"] == 0
        assert results["check_after"]["linked"] == 3 * n + half
        assert results["check_after"]["unlinked"] == half
        assert len(results["check_after"]["unmatched"]) == half
        assert results["check_after"]["missing_batches"] == []
        assert results["check_after"]["batches_without_masks"] == []
        assert [d["sha256"] for d in results["check_after"]["duplicates"]] == ["e" * 64]
        assert results["metrics_after"]["stale"] is True
        assert results["metrics_fresh"]["totals"]["masks"] == 3 * n + half
        assert results["metrics_fresh"]["totals"]["batches"] == n + half
        assert not results["metrics_fresh"].get("stale")


# ---------------------------------------------------------------- budgets


def test_list_round_trips(scenarios):
    count, detail = counts_at_both_sizes(scenarios, "list")
    assert count <= 2, detail
    filtered, detail = counts_at_both_sizes(scenarios, "list_filtered")
    assert filtered <= 2, detail


def test_list_with_cached_count_round_trips(scenarios):
    """Another page of a list whose count is cached: the page find only."""
    for key in ("list_next_page", "list_filtered_next"):
        count, detail = counts_at_both_sizes(scenarios, key)
        assert count <= 1, detail


def test_cached_list_page_round_trips(scenarios):
    for key in ("list_cached", "list_filtered_cached"):
        count, detail = counts_at_both_sizes(scenarios, key)
        assert count == 0, detail


def test_list_returns_exactly_the_page(scenarios):
    """The database sends the page's documents and no more (no look-ahead document)."""
    for n, scenario in scenarios.items():
        counts, results = scenario["counts"], scenario["results"]
        assert counts["list"]["documents_returned"] == len(results["list"]["items"]) == min(50, n)
        assert counts["list_next_page"]["documents_returned"] == len(results["list_next_page"]["items"])
        assert counts["list_filtered_next"]["documents_returned"] == len(results["list_filtered_next"]["items"])
        assert counts["list_cached"]["documents_returned"] == 0


def test_sync_round_trips(scenarios):
    """A sync job: the count of candidates; per chunk the waiting files, the files after the watermark
    and the records of the same date range, their waiting entries, the named batches (and, for batches
    that have masks, their names); writes: the records, the batches' counts (counted before and after:
    settled), the waiting list; then the settling stage: the pending batches, their counts (before and
    after) and one write per slice. Bookkeeping: the job's insert and claim (a read, then a write
    conditional on the job still waiting), its checkpoints (per chunk, as the settling stage begins,
    per slice, and one that shows the files again at the end), its end,
    the cache version, the watermark's read and write, the notes of batches whose counts are pending
    and their removal."""
    for key in ("sync", "sync_after_create", "sync_idle"):
        data, detail = counts_at_both_sizes(scenarios, key)
        assert data <= 11, detail
        bookkeeping, detail = counts_at_both_sizes(scenarios, key, "bookkeeping")
        assert bookkeeping <= 16, detail
    data, detail = counts_at_both_sizes(scenarios, "sync_idle")
    assert not [c for c in detail[SIZES[0]]["data"] if not c.startswith(("find:", "count", "aggregate:"))], detail


def test_auto_create_round_trips(scenarios):
    """The count of candidates, the waiting files, the files after the watermark and their records,
    existing batches, one insert; bookkeeping as sync (a checkpoint after the waiting files and
    one after the files) plus the second phase's checkpoints."""
    data, detail = counts_at_both_sizes(scenarios, "auto_create")
    assert data <= 6, detail
    bookkeeping, detail = counts_at_both_sizes(scenarios, "auto_create", "bookkeeping")
    assert bookkeeping <= 10, detail


def test_check_round_trips(scenarios):
    for key in ("check", "check_after"):
        data, detail = counts_at_both_sizes(scenarios, key)
        assert data <= 2, detail
        bookkeeping, detail = counts_at_both_sizes(scenarios, key, "bookkeeping")
        # A read-only audit writes no job record; it reads the sync watermark.
        assert detail[SIZES[0]]["bookkeeping"] == ["find:app_state"], detail


def test_metrics_round_trips(scenarios):
    data, detail = counts_at_both_sizes(scenarios, "metrics")
    assert data <= 1, detail
    for key in ("metrics_after", "metrics_fresh"):
        data, detail = counts_at_both_sizes(scenarios, key)
        assert data <= 1, detail
    cached, detail = counts_at_both_sizes(scenarios, "metrics_cached")
    assert cached == 0, detail
