"""The browser UI (SPEC §7), driven in a real browser: Playwright with Debian's Chromium.

The app runs under real Gunicorn (2 workers, one server for the module) against a database
emptied after each test, so the pages see what users see: session cookies, CSRF headers,
per-worker caches. The tests save
screenshots of the main pages (see SCREENSHOTS below).

Without /usr/bin/chromium the tests are skipped locally and FAIL under CI (env CI set);
run_tests.sh installs the Debian package when it is missing.
"""
import hashlib
import os
import re
import time
import uuid
from datetime import timedelta

import pymongo
import pytest
from PIL import Image, ImageDraw

from factories import bump_cache_version, insert_batches, insert_mask_files, link_files, png_bytes, store_mask
from gunicorn_server import GunicornServer, drop_database
from helpers import ROOT, indexed_app, wait_for
from runner_process import RunnerProcess

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - reported by the browser fixture (conftest.py)
    expect = None

pytestmark = pytest.mark.system

# Screenshots go to test-artifacts/screenshots; with UPDATE_SCREENSHOTS=1 they refresh the
# README's pictures in docs/screenshots instead.
SCREENSHOTS = os.path.join(ROOT, "docs", "screenshots") if os.environ.get("UPDATE_SCREENSHOTS") == "1" \
    else os.path.join(ROOT, "test-artifacts", "screenshots")
PASSWORD = "correct-horse-42"
LAPTOP = {"width": 1366, "height": 900}
TABLET = {"width": 768, "height": 1024}


@pytest.fixture(scope="module")
def db_name():
    """One database for the module's server; every test starts from it emptied (see `app`)."""
    return f"segdash_ui_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def app(mongo_uri, db_name):
    """The app on the module's database, emptied after each test.

    The documents go (collections and indexes stay), the cache version moves on and the
    server's workers get the time to see it, so none serves what it cached for an earlier test.
    """
    import cache
    import db

    application = indexed_app(mongo_uri, db_name)
    yield application
    # A test with 12,000 files leaves ~36,000 documents to delete: on a loaded 2-core machine
    # SecantusDB may take longer than the client's 60 s socket timeout for one collection.
    with application.app_context(), pymongo.timeout(600):
        database = db.database()
        for name in database.list_collection_names():
            if name != db.app_state().name:
                database[name].delete_many({})
        cache.record_write()
    time.sleep(application.config["CACHE_VERSION_CHECK_SECONDS"] + 0.2)


@pytest.fixture(scope="module")
def server(mongo_uri, db_name):
    """SegDash under Gunicorn (2 workers) on a free port, serving the module's database, with a job runner."""
    started = GunicornServer(mongo_uri, db_name, workers=2, GUNICORN_THREADS="4", LOG_LEVEL="WARNING",
                             SECRET_KEY="ui-test-secret")
    runner = RunnerProcess(mongo_uri, db_name, LOG_LEVEL="WARNING")
    yield started.base
    runner.close()
    started.close()
    drop_database(mongo_uri, db_name)


def new_page(browser, base, viewport=LAPTOP):
    context = browser.new_context(base_url=base, viewport=viewport)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Anything the Content-Security-Policy blocked (an inline script or style) is a failure too.
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.js_errors = errors
    return page


@pytest.fixture
def page(browser, server):
    page = new_page(browser, server)
    yield page
    assert page.js_errors == [], page.js_errors
    page.context.close()


def screenshot(page, name, full_page=True):
    os.makedirs(SCREENSHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=full_page)


# --------------------------------------------------------------------------- data

SEGMENTERS = {"sam": "Sam Rivera", "olga": "Olga Novak", "ken": "Ken Ito"}
# Status and assignee by batch number % 10: 52 of 130 batches are pending.
PLAN = {0: ("pending", None), 1: ("pending", None), 2: ("pending", None), 3: ("pending", None),
        4: ("assigned", "sam"), 5: ("in_progress", "olga"), 6: ("completed", "ken"),
        7: ("reviewed", "olga"), 8: ("assigned", "olga"), 9: ("rejected", "sam")}
BATCHES = 130


def plan(number):
    return PLAN[number % 10]


def seed_team(app, database):
    """A lead, three segmenters and 130 batches in every status (completions over 30 days)."""
    import auth
    from batch_ids import format_batch_id
    from batch_service import new_batch
    from timeutil import utcnow

    with app.app_context():
        auth.create_user("lead1", "lead", password=PASSWORD, display_name="Lena Lead")
        for username, name in SEGMENTERS.items():
            auth.create_user(username, "segmenter", password=PASSWORD, display_name=name)
    now = utcnow()
    docs = []
    for number in range(1, BATCHES + 1):
        status, assignee = plan(number)
        doc = new_batch(format_batch_id(number), name=f"Scan set {number}", image_count=8,
                        now=now - timedelta(days=40))
        doc.update(status=status, assignee=assignee)
        meta = doc["metadata"]
        if assignee:
            meta["assigned_at"] = now - timedelta(days=35)
        if status in ("in_progress", "completed", "reviewed", "rejected"):
            meta["started_at"] = now - timedelta(days=32)
            doc["mask_count"] = 3
        if status in ("completed", "reviewed", "rejected"):
            meta["completed_at"] = now - timedelta(days=number % 23, hours=number % 5)
            doc["mask_count"] = 8
        if status == "reviewed":
            meta["reviewed_at"] = meta["completed_at"] + timedelta(hours=3)
        if status == "rejected":
            meta["rejected_at"] = meta["completed_at"] + timedelta(hours=2)
            meta["completed_at"] = now - timedelta(days=31)
            doc["mask_count"] = 5
        doc["updated_at"] = max(v for v in meta.values() if hasattr(v, "year"))
        docs.append(doc)
    database.batches.insert_many(docs)


def count_planned(status=None, assignee=None):
    return sum(1 for n in range(1, BATCHES + 1)
               if (status is None or plan(n)[0] == status) and (assignee is None or plan(n)[1] == assignee))


def login(page, username, password=PASSWORD, shot=None):
    if "/login" not in page.url:
        page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    if shot:
        screenshot(page, shot)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def api_from_page(page, method, url, body=None):
    """A request made by page script with the session cookie and the CSRF header (as the UI does)."""
    return page.evaluate(
        """async ([method, url, body]) => {
            const token = document.querySelector('meta[name="csrf-token"]').content;
            const options = {method, headers: {"X-CSRFToken": token, "Accept": "application/json"}};
            if (body !== null) {
                options.headers["Content-Type"] = "application/json";
                options.body = JSON.stringify(body);
            }
            const response = await fetch(url, options);
            return {status: response.status, body: await response.json()};
        }""", [method, url, body])


def rows(page, table="#batches-body"):
    return page.locator(f"{table} tr[data-id]")


# --------------------------------------------------------------------------- leads


def test_lead_filters_paginates_and_bulk_assigns(app, database, page):
    seed_team(app, database)
    pending = count_planned("pending")
    assert pending == 52

    login(page, "lead1", shot="login")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Batches").click()
    expect(page.locator("#batches-table[data-loaded]")).to_be_attached()
    expect(rows(page)).to_have_count(50)
    expect(page.locator("#batches-summary")).to_have_text(f"{BATCHES} batches")

    # Filter by status: the filter goes into the URL and the API call.
    page.get_by_label("Status").select_option("pending")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"/batches\?status=pending$"))
    expect(page.locator("#batches-summary")).to_have_text(f"{pending} batches · status pending")
    expect(rows(page)).to_have_count(50)
    expect(page.locator("#batches-body [data-status]:not([data-status=pending])")).to_have_count(0)

    # Paginate: page 2 keeps the filter.
    page.get_by_role("link", name="Next page").click()
    expect(page).to_have_url(re.compile(r"status=pending&page=2$"))
    expect(rows(page)).to_have_count(pending - 50)
    expect(page.get_by_label("Status")).to_have_value("pending")
    expect(page.locator("#batches-pager")).to_contain_text(f"Showing 51–{pending} of {pending} batches")
    expect(page.locator("#batches-body [data-status]:not([data-status=pending])")).to_have_count(0)
    page.get_by_role("link", name="Previous page").click()
    expect(page).to_have_url(re.compile(r"/batches\?status=pending$"))

    # Bulk select three rows and assign them to a segmenter.
    for batch_id in ("batch_0001", "batch_0002", "batch_0003"):
        page.get_by_label(f"Select {batch_id}").check()
    expect(page.locator("#bulk-count")).to_have_text("3 batches selected")
    expect(page.get_by_role("button", name="Assign selected")).to_be_disabled()
    page.locator("#bulk-assignee").select_option("sam")
    page.get_by_role("button", name="Assign selected").click()
    expect(page.locator("#batches-message")).to_contain_text("Assigned 3 batches to Sam Rivera.")
    expect(page.locator("#batches-summary")).to_have_text(f"{pending - 3} batches · status pending")
    expect(page.locator('#batches-body tr[data-id="batch_0001"]')).to_have_count(0)
    for batch_id in ("batch_0001", "batch_0002", "batch_0003"):
        doc = database.batches.find_one({"id": batch_id})
        assert (doc["assignee"], doc["status"]) == ("sam", "assigned")
    assert database.batches.count_documents({"status": "pending"}) == pending - 3

    # Select all on the page, then assigning a handed-in batch is reported, not hidden.
    page.goto("/batches?assignee=ken")
    expect(page.get_by_label("Segmenter")).to_have_value("ken")
    expect(rows(page)).to_have_count(count_planned(assignee="ken"))
    page.get_by_label("Select all batches on this page").check()
    expect(page.locator("#bulk-count")).to_have_text(f"{count_planned(assignee='ken')} batches selected")
    page.locator("#bulk-assignee").select_option("olga")
    page.get_by_role("button", name="Assign selected").click()
    expect(page.locator("#batches-message")).to_contain_text("Assigned 0 batches to Olga Novak.")
    expect(page.locator("#batches-message")).to_contain_text("work is handed in")

    # Search by id prefix, combined with the segmenter filter, kept in the URL.
    page.goto("/batches")
    page.get_by_label("Segmenter").select_option("sam")
    page.get_by_label("Search").fill("batch_01")
    page.get_by_label("Search").press("Enter")  # keyboard submit
    expect(page).to_have_url(re.compile(r"assignee=sam&q=batch_01$"))
    expected = [f"batch_{n:04d}" for n in range(100, 131) if plan(n)[1] == "sam"]
    expect(rows(page)).to_have_count(len(expected))
    assert rows(page).evaluate_all("rs => rs.map(r => r.dataset.id)") == expected

    page.goto("/batches?per_page=20")
    expect(rows(page)).to_have_count(20)
    for batch_id in ("batch_0010", "batch_0011", "batch_0012"):
        page.get_by_label(f"Select {batch_id}").check()
    page.locator("#bulk-assignee").select_option("ken")
    screenshot(page, "batches")

    # Empty and error states are sentences, not JSON.
    page.get_by_label("Search").fill("nothing-like-this")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("#batches-body")).to_contain_text("No batches match these filters.")
    page.goto("/batches?per_page=999")
    expect(page.locator("#batches-message")).to_contain_text("'per_page' must be between 1 and 200.")
    assert '"error"' not in page.content()


def test_lead_runs_sync_auto_create_and_check(app, database, page):
    from timeutil import utcnow

    seed_team(app, database)
    insert_mask_files(database, ["batch_0004/img_001.png", "b4_img_002.png", "Batch-14/img_3.png",
                                 "notes/readme.png", "scan_0099.png", "batch_9001/img_1.png"])
    same = {"sha256": hashlib.sha256(b"twin").hexdigest()}
    insert_mask_files(database, ["twins/one.png", "twins/two.png"], metadata=same)
    unlinked = 8

    login(page, "lead1")
    expect(page.locator("#stats[data-loaded]")).to_be_attached()
    expect(page.locator('[data-stat="linked_files"]')).to_have_text("0")
    expect(page.locator('[data-stat="unlinked_files"]')).to_have_text(str(unlinked))
    expect(page.locator('[data-stat="batches"]')).to_have_text(str(BATCHES))
    done = count_planned("completed") + count_planned("reviewed")
    expect(page.locator('[data-stat="percent"]')).to_have_text(f"{round(100 * done / BATCHES, 1):g}%")
    expect(page.locator("#chart-status .bar-row")).to_have_count(6)
    expect(page.locator("#chart-assignee")).to_contain_text("Sam Rivera")
    expect(page.locator("#chart-days rect.day-bar")).to_have_count(30)

    page.get_by_role("button", name="Sync files").click()
    result = page.locator('[data-op-result="sync"]')
    expect(result).to_be_visible()
    expect(page.locator("#op-progress")).to_be_hidden()
    expect(result.locator('[data-result="files_linked"]')).to_have_text("3")
    expect(result.locator('[data-result="batches_updated"]')).to_have_text("2")
    expect(result.locator('[data-result="unmatched"]')).to_have_text("4")
    expect(result).to_contain_text("notes/readme.png")
    expect(result).to_contain_text("scan_0099.png")
    expect(result).to_contain_text("batch_9001")
    # The figures refresh after the sync.
    expect(page.locator('[data-stat="linked_files"]')).to_have_text("3")
    expect(page.locator('[data-stat="unlinked_files"]')).to_have_text(str(unlinked - 3))
    assert database.mask_records.count_documents({"batch_id": "batch_0004"}) == 2
    expect(page.locator("#last-sync")).to_contain_text("by lead1")
    expect(page.locator("#last-sync")).to_contain_text("linked 3 files to 2 batches")

    # Auto-create the missing batch, then sync links its file.
    page.get_by_role("button", name="Auto-create batches").click()
    result = page.locator('[data-op-result="auto_create"]')
    expect(result.locator('[data-result="created"]')).to_have_text("1")
    expect(page.locator('[data-stat="batches"]')).to_have_text(str(BATCHES + 1))
    assert database.batches.find_one({"id": "batch_9001"})["status"] == "pending"
    page.get_by_role("button", name="Sync files").click()
    expect(page.locator('[data-op-result="sync"] [data-result="files_linked"]')).to_have_text("1")
    expect(page.locator('[data-stat="linked_files"]')).to_have_text("4")

    # Check reports what did not match, and the identical files.
    page.get_by_role("button", name="Check files").click()
    result = page.locator('[data-op-result="check"]')
    expect(result.locator('[data-result="files_total"]')).to_have_text(str(unlinked))
    expect(result.locator('[data-result="unlinked"]')).to_have_text("4")
    expect(result).to_contain_text("Unlinked files that match no batch (4)")
    expect(result).to_contain_text("twins/one.png, twins/two.png")
    expect(result).to_contain_text("Batches without masks")
    screenshot(page, "overview")

    # A second sync while one runs answers 409: the page waits for that job, then shows its result.
    running = database.jobs.insert_one({
        "kind": "sync", "state": "running", "lock": "sync", "progress": {"done": 1, "total": 4, "unit": "files"},
        "result": None, "error": None, "started_by": "someone", "started_at": utcnow(),
        "finished_at": None, "lease_until": utcnow() + timedelta(minutes=5)}).inserted_id
    page.get_by_role("button", name="Sync files").click()
    expect(page.locator("#op-progress-text")).to_contain_text("1 of 4 files")
    database.jobs.update_one({"_id": running}, {"$set": {
        "state": "done", "progress": {"done": 4, "total": 4}, "finished_at": utcnow(),
        "result": {"job_id": str(running), "files_scanned": 4, "files_linked": 0, "batches_updated": 0,
                   "unmatched": 4, "unmatched_examples": ["notes/readme.png"], "missing_batches": 0,
                   "missing_batch_examples": [], "duration_ms": 7}}, "$unset": {"lock": ""}})
    expect(page.locator('[data-op-result="sync"] [data-result="files_scanned"]')).to_have_text("4")


def test_lead_follows_a_long_sync_across_pages(app, database, page):
    """A sync over 12,000 files runs for several seconds: the bar moves, the lead leaves the
    page and comes back to the same job, and sees it finish; the Jobs page lists it."""
    seed_team(app, database)
    names = [f"batch_{n:04d}/img_{k:03d}.png" for n in range(1, BATCHES + 1) for k in range(77)]
    names += [f"unsorted/img_{i:05d}.png" for i in range(12_000 - len(names))]
    insert_mask_files(database, names)
    # Reviewed batches take no more files (reported as closed).
    linked = database.batches.count_documents({"status": {"$ne": "reviewed"}, "number": {"$lte": BATCHES}}) * 77

    login(page, "lead1")
    expect(page.locator("#stats[data-loaded]")).to_be_attached()
    page.get_by_role("button", name="Sync files").click()
    box = page.locator("#op-progress")
    expect(box).to_be_visible()
    expect(page.get_by_role("button", name="Cancel")).to_be_enabled()
    # Claimed within the runner's poll interval on a quiet machine; under the whole suite on
    # 2 cores the claim has been seen to wait over 30 s.
    expect(box).to_have_attribute("data-state", "running", timeout=150_000)
    job_id = box.get_attribute("data-job-id")
    first = wait_until(page, lambda: (done := int(box.get_attribute("data-done") or 0)) > 0 and done)
    moved = wait_until(page, lambda: (done := int(box.get_attribute("data-done") or 0)) > first and done)
    assert 0 < first < moved < 12_000, (first, moved)
    expect(page.locator("#op-progress-text")).to_contain_text("of 12,000 files")
    expect(page.locator("#op-progress-text")).to_contain_text("left")
    bar = page.locator("#op-progress-bar")
    assert bar.get_attribute("max") == "12000" and 0 < int(float(bar.get_attribute("value"))) < 12_000
    screenshot(page, "sync-progress", full_page=False)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Batches").click()
    expect(page.locator("#batches-body tr[data-id]").first).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Overview").click()
    # Back on the overview while the job still runs: the page follows the same job again.
    expect(box).to_be_visible()
    expect(box).to_have_attribute("data-job-id", job_id)
    assert database.jobs.find_one({"kind": "sync"})["state"] == "running", "the sync ended too soon"
    result = page.locator('[data-op-result="sync"]')
    expect(result).to_be_visible(timeout=180_000)
    expect(result.locator('[data-result="files_linked"]')).to_have_text(f"{linked:,}")
    expect(box).to_be_hidden()
    expect(page.locator("#last-sync")).to_contain_text(f"linked {linked:,} files")

    page.get_by_role("link", name="Jobs", exact=True).click()
    row = page.locator(f'#jobs-body tr[data-job-id="{job_id}"]')
    expect(row).to_have_attribute("data-state", "done")
    expect(row).to_contain_text(f"Linked {linked:,} files")
    screenshot(page, "jobs")


def wait_until(page, predicate, timeout=60):
    """Poll a page condition that returns a value; the value once truthy."""
    return wait_for(predicate, timeout=timeout, interval=0.1,
                    sleep=lambda seconds: page.wait_for_timeout(seconds * 1000))


def test_lead_batch_detail_assigns_and_reviews(app, database, page):
    seed_team(app, database)
    login(page, "lead1")

    page.goto("/batches/b6")  # any spelling of the id leads to the canonical page
    expect(page).to_have_url(re.compile(r"/batches/batch_0006$"))
    expect(page.locator("#d-status-badge")).to_have_text("Completed")
    expect(page.locator("#d-timeline li")).to_have_count(4)  # created, assigned, started, completed
    expect(page.locator("#d-assign")).to_be_hidden()  # handed-in work cannot be reassigned
    page.get_by_role("button", name="Mark reviewed").click()
    expect(page.locator("#d-status-badge")).to_have_text("Reviewed")
    expect(page.locator("#d-timeline")).to_contain_text("Reviewed")
    # A reviewed batch can only be reopened, with a reason (asked for in a dialog).
    expect(page.locator("#d-actions button")).to_have_text(["Reopen for its segmenter…", "Reopen for review…"])
    assert database.batches.find_one({"id": "batch_0006"})["status"] == "reviewed"

    page.goto("/batches/batch_0010")
    expect(page.locator("#d-status-badge")).to_have_text("Pending")
    page.get_by_label("Assign to").select_option("olga")
    page.get_by_role("button", name="Save assignment").click()
    expect(page.locator("#detail-message")).to_contain_text("Assigned to Olga Novak.")
    expect(page.locator("#d-status-badge")).to_have_text("Assigned")
    expect(page.locator("#d-fields")).to_contain_text("Olga Novak (olga)")

    page.goto("/batches/batch_4242")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator("main")).to_contain_text("No batch batch_4242.")


# --------------------------------------------------------------------------- segmenters


def test_segmenter_starts_completes_and_uploads(app, database, page):
    seed_team(app, database)
    login(page, "sam")

    # Segmenters land on their queue: the batches to work on, the finished ones apart.
    expect(page.get_by_role("heading", name="My batches")).to_be_visible()
    to_do = sum(count_planned(status, "sam") for status in ("assigned", "in_progress", "rejected"))
    expect(page.locator("#my-table[data-loaded]")).to_be_attached()
    expect(rows(page, "#my-body")).to_have_count(to_do)
    assigned_to_start = count_planned("assigned", "sam")
    expect(page.locator('#my-stats [data-stat="assigned"] .stat-value')).to_have_text(str(assigned_to_start))

    page.get_by_role("button", name="Start batch_0004", exact=True).click()
    expect(page.locator('#my-body tr[data-id="batch_0004"] [data-status]')).to_have_text("In progress")
    page.get_by_role("button", name="Complete batch_0004", exact=True).click()
    # None of its 8 images has a mask yet: the page asks first (an in-page dialog).
    confirm = page.get_by_role("dialog", name="Complete with missing masks?")
    expect(confirm).to_contain_text("Only 0 of 8 images of batch_0004 have a mask.")
    expect(confirm.get_by_role("button", name="Keep working")).to_be_focused()
    confirm.get_by_role("button", name="Complete anyway").click()
    expect(page.locator("#my-message")).to_contain_text("batch_0004 is now completed.")
    expect(page.locator('#done-body tr[data-id="batch_0004"] [data-status]')).to_have_text("Completed")
    doc = database.batches.find_one({"id": "batch_0004"})
    assert doc["status"] == "completed"
    assert doc["metadata"]["started_at"] and doc["metadata"]["completed_at"]
    # A rejected batch can be restarted.
    page.get_by_role("button", name="Restart batch_0009", exact=True).click()
    expect(page.locator('#my-body tr[data-id="batch_0009"] [data-status]')).to_have_text("In progress")
    expect(page.locator('#my-stats [data-stat="completed"] .stat-value')).to_have_text("1")

    # Upload from the queue into one of my batches.
    page.get_by_role("button", name="Upload masks to batch_0014").click()
    expect(page.get_by_label("Batch", exact=True)).to_have_value("batch_0014")
    page.locator("#my-upload-files").set_input_files(
        {"name": "img_0001.png", "mimeType": "image/png", "buffer": b"\x89PNG first mask " * 4000})
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#my-upload-form [data-upload-result]")).to_contain_text("1 file stored in batch_0014")
    expect(page.locator('#my-body tr[data-id="batch_0014"]')).to_contain_text("1 of 8 masks")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "my_batches", full_page=False)

    # On the batch page: start it, upload, then the same bytes and name again are deduplicated,
    # and a corrected mask of that name becomes its second version (still 2 masks).
    page.get_by_role("link", name="batch_0014").click()
    expect(page).to_have_url(re.compile(r"/batches/batch_0014$"))
    expect(page.locator("#masks-body tr[data-mask-id]")).to_have_count(1)
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#d-status-badge")).to_have_text("In progress")
    expect(page.locator("#d-timeline")).to_contain_text("Started")
    content = b"\x89PNG second mask " * 60000  # ~1 MB: several upload progress events
    page.get_by_label("Mask file").set_input_files(
        {"name": "img_0002.png", "mimeType": "image/png", "buffer": content})
    page.get_by_role("button", name="Upload", exact=True).click()
    result = page.locator("#d-upload-form [data-upload-result]")
    expect(result).to_contain_text("Stored:")
    expect(result).to_contain_text("img_0002.png")
    expect(page.locator("#masks-body tr[data-mask-id]")).to_have_count(2)
    expect(page.locator("#d-fields")).to_contain_text("25%")
    page.get_by_label("Mask file").set_input_files(
        {"name": "IMG_0002.png", "mimeType": "image/png", "buffer": content})
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(result).to_contain_text("Deduplicated:")
    expect(page.locator("#masks-body tr[data-mask-id]")).to_have_count(2)
    assert database["masks.files"].count_documents({"metadata.sha256": hashlib.sha256(content).hexdigest()}) == 1
    page.get_by_label("Mask file").set_input_files(
        {"name": "img_0001.png", "mimeType": "image/png", "buffer": b"\x89PNG corrected first mask " * 4000})
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#masks-body")).to_contain_text("(version 2 of 2)")
    expect(page.locator("#masks-body tr[data-mask-id]")).to_have_count(2)
    expect(page.locator("#d-fields")).to_contain_text("25%")

    # The download link serves the stored bytes.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download img_0002.png").click()
    with open(download_info.value.path(), "rb") as handle:
        assert handle.read() == content
    page.get_by_role("button", name="Complete", exact=True).click()
    confirm = page.get_by_role("dialog", name="Complete with missing masks?")
    confirm.get_by_role("button", name="Complete anyway").click()
    expect(page.locator("#d-status-badge")).to_have_text("Completed")
    # Handed-in work takes no more uploads from its segmenter: the form goes, the reason shows.
    expect(page.get_by_label("Mask file")).to_be_hidden()
    expect(page.locator("#d-upload-note")).to_have_text("Batch batch_0014 is completed; ask a lead to reopen it.")
    screenshot(page, "batch_detail")


def test_segmenter_cannot_reach_lead_actions(app, database, browser, server):
    seed_team(app, database)
    page = new_page(browser, server)

    # Anonymous visitors are sent to the login page and back afterwards.
    page.goto("/batches?status=assigned")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    login(page, "sam")
    expect(page).to_have_url(re.compile(r"/batches\?status=assigned$"))

    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link")).to_have_text(["My batches", "Batches"])
    expect(page.get_by_label("Select all batches on this page")).to_have_count(0)
    expect(page.get_by_role("button", name="Assign selected")).to_have_count(0)
    expect(rows(page)).to_have_count(count_planned("assigned"))

    # "/" is the overview only for leads.
    page.goto("/")
    expect(page.get_by_role("heading", name="My batches")).to_be_visible()
    for name in ("Sync files", "Auto-create batches", "Check files"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)

    # Someone else's batch: no actions, no upload.
    page.goto("/batches/batch_0005")
    expect(page.locator("#d-status-badge")).to_have_text("In progress")
    expect(page.locator("#d-actions button")).to_have_count(0)
    expect(page.locator("#d-actions")).to_contain_text("You can only change batches assigned to you.")
    expect(page.get_by_label("Mask file")).to_have_count(0)
    expect(page.locator("#d-upload-note")).to_have_text("You can only upload masks to batches assigned to you.")
    expect(page.locator("#d-assign")).to_have_count(0)

    # The server refuses lead actions even with a valid session and CSRF token.
    for method, url, body in [("POST", "/api/sync-batch-files", None), ("POST", "/api/auto-create-batches", None),
                              ("GET", "/api/check-mongo-files", None), ("GET", "/api/users?role=segmenter", None),
                              ("GET", "/api/jobs?kind=sync", None),
                              ("POST", "/api/batches/assign", {"ids": ["batch_0001"], "assignee": "sam"}),
                              ("PATCH", "/api/batches/batch_0005", {"status": "completed"})]:
        answer = api_from_page(page, method, url, body)
        assert answer["status"] == 403, (method, url, answer)
        assert answer["body"]["error"] == "forbidden"
    assert database.batches.find_one({"id": "batch_0001"})["assignee"] is None
    assert database.jobs.count_documents({}) == 0

    # A lead has no queue: /my sends leads to their overview.
    lead_page = new_page(browser, server)
    login(lead_page, "lead1")
    lead_page.goto("/my")
    expect(lead_page.get_by_role("heading", name="Overview")).to_be_visible()
    assert page.js_errors == [] and lead_page.js_errors == []
    page.context.close()
    lead_page.context.close()


def test_pages_fit_a_tablet(app, database, browser, server):
    seed_team(app, database)
    insert_mask_files(database, ["batch_0005/a.png"])
    for username in ("lead1", "olga"):
        page = new_page(browser, server, viewport=TABLET)
        login(page, username)
        paths = ["/", "/batches", "/batches/batch_0005"]
        for path in paths:
            page.goto(path)
            page.wait_for_load_state("networkidle")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= TABLET["width"], (username, path, width)
            if username == "lead1" and path == "/batches":
                screenshot(page, "batches_tablet", full_page=False)
        # Keyboard: tab from the search box to the next controls shows a visible focus ring.
        page.goto("/batches")
        page.get_by_label("Search").focus()
        page.keyboard.press("Tab")
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline not in ("", "none"), outline
        assert page.js_errors == []
        page.context.close()


def test_upload_errors_are_readable(app, database, page):
    seed_team(app, database)
    login(page, "sam")
    page.goto("/batches/batch_0014")
    page.get_by_label("Mask file").set_input_files({"name": "empty.png", "mimeType": "image/png", "buffer": b""})
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("[data-upload-result] .notice.error")).to_contain_text("is empty")
    page.get_by_label("Mask file").set_input_files([])
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("[data-upload-result] .notice.error")).to_contain_text("Choose a mask file")
    # A batch reassigned meanwhile: the server's refusal is shown as a sentence.
    database.batches.update_one({"id": "batch_0014"}, {"$set": {"assignee": "olga"}})
    bump_cache_version(app)
    page.get_by_label("Mask file").set_input_files({"name": "m.png", "mimeType": "image/png", "buffer": b"mask"})
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("[data-upload-result] .notice.error")).to_contain_text(
        "You can only upload masks to batches assigned to you.")
    assert database["masks.files"].count_documents({}) == 0


# --------------------------------------------------------------------------- review and masks

REASON = "Masks 2 and 3 miss the left lung; redo them please."


def label_mask(seed, size=(320, 240)):
    """A label mask like a segmenter's: class ids 0-3 in mode L (near-black as it is)."""
    image = Image.new("L", size, 0)
    draw = ImageDraw.Draw(image)
    draw.ellipse((20 + seed * 9, 30, 180 + seed * 9, 200), fill=1)
    draw.rectangle((150, 60 + seed * 7, 300, 160), fill=2)
    draw.polygon([(40, 220), (120, 120 + seed * 5), (200, 230)], fill=3)
    return image


def give_masks(database, batch_id, count):
    ids = [store_mask(database, f"{batch_id}/img_{n:04d}.png", png_bytes(label_mask(n)), batch_id=batch_id)
           for n in range(1, count + 1)]
    database.mask_records.delete_many({"batch_id": batch_id})  # exactly these masks
    link_files(database, batch_id, ids)
    database.batches.update_one({"id": batch_id}, {"$set": {"mask_count": count}})
    return ids


def completed_queue(database):
    """The three completed batches of the seed (ken's), completed on different days: 6 oldest."""
    from timeutil import utcnow

    now = utcnow()
    order = ["batch_0006", "batch_0016", "batch_0026"]
    database.batches.update_many({"status": "completed", "id": {"$nin": order}}, {"$set": {"status": "reviewed"}})
    for days, batch_id in zip((30, 20, 10), order):
        database.batches.update_one({"id": batch_id}, {"$set": {"metadata.completed_at": now - timedelta(days=days)}})
    return order


def test_lead_reviews_three_batches_and_the_segmenter_sees_the_reason(app, database, page, browser, server):
    seed_team(app, database)
    order = completed_queue(database)
    give_masks(database, order[0], 3)
    bump_cache_version(app)

    login(page, "lead1")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Review next").click()
    expect(page).to_have_url(re.compile(rf"/batches/{order[0]}\?review=1$"))
    expect(page.get_by_role("heading", name="Review")).to_be_visible()
    expect(page.locator("#d-gallery .thumb")).to_have_count(3)
    expect(page.locator("#review-actions").get_by_role("link", name="Skip")).to_have_attribute(
        "href", f"/review?after={order[0]}")

    # Approve the oldest: the next one opens.
    page.locator("#review-actions").get_by_role("button", name="Approve").click()
    expect(page).to_have_url(re.compile(rf"/batches/{order[1]}\?review=1$"))

    # Reject the second with a reason, typed into an in-page dialog.
    page.locator("#review-actions").get_by_role("button", name="Reject…").click()
    dialog = page.get_by_role("dialog", name="Reject: say why")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Reason")).to_be_focused()
    dialog.get_by_role("button", name="Reject").click()  # empty: refused in the page
    expect(dialog).to_contain_text("Write a reason")
    dialog.get_by_label("Reason").fill(REASON)
    dialog.get_by_role("button", name="Reject").click()
    expect(page).to_have_url(re.compile(rf"/batches/{order[2]}\?review=1$"))

    page.locator("#review-actions").get_by_role("button", name="Approve").click()
    expect(page.get_by_role("heading", name="Nothing left to review")).to_be_visible()
    statuses = {doc["id"]: doc["status"] for doc in database.batches.find({"id": {"$in": order}})}
    assert statuses == {order[0]: "reviewed", order[1]: "rejected", order[2]: "reviewed"}

    # The history on the rejected batch's page: who, what, why.
    page.goto(f"/batches/{order[1]}")
    history = page.locator("#d-history")
    expect(history.locator("li").first).to_contain_text("Lena Lead rejected the batch")
    expect(history.locator("li").first).to_contain_text(REASON)

    # The segmenter sees why, on the queue and on the batch page.
    seg_page = new_page(browser, server)
    login(seg_page, "ken")
    row = seg_page.locator(f'#my-body tr[data-id="{order[1]}"]')
    expect(row.locator("[data-rejection-reason]")).to_have_text("Lead's reason: " + REASON)
    expect(rows(seg_page, "#my-body").locator("[data-rejection-reason]")).to_have_count(1)
    row.get_by_role("link", name=order[1]).click()
    expect(seg_page.locator("[data-rejection-reason]")).to_have_text(REASON)
    expect(seg_page.locator("#d-rejection")).to_contain_text("Rejected by lead1")
    # Restarting keeps the reason in sight while the work is redone.
    seg_page.get_by_role("button", name="Restart").click()
    expect(seg_page.locator("#d-status-badge")).to_have_text("In progress")
    expect(seg_page.locator("[data-rejection-reason]")).to_have_text(REASON)
    assert seg_page.js_errors == []
    seg_page.context.close()


def test_gallery_and_large_view(app, database, page):
    seed_team(app, database)
    give_masks(database, "batch_0006", 6)
    bump_cache_version(app)

    login(page, "lead1")
    page.goto("/batches/batch_0006")
    thumbs = page.locator("#d-gallery .thumb")
    expect(thumbs).to_have_count(6)
    expect(page.locator("#d-gallery img[loading=lazy]")).to_have_count(6)
    expect(thumbs.first).to_contain_text("img_0001.png")
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('#d-gallery img')).every(i => i.complete && i.naturalWidth > 0)")
    page.locator("#d-gallery").scroll_into_view_if_needed()
    screenshot(page, "gallery", full_page=False)

    thumbs.nth(1).click()
    viewer = page.get_by_role("dialog", name="batch_0006/img_0002.png")
    expect(viewer).to_be_visible()
    expect(page.locator("#viewer-position")).to_have_text("2 of 6")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#viewer-title")).to_have_text("batch_0006/img_0003.png")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#viewer-position")).to_have_text("1 of 6")
    expect(page.locator("#viewer-prev")).to_be_disabled()
    page.wait_for_function("() => document.getElementById('viewer-image').naturalWidth > 0")
    page.keyboard.press("+")
    expect(page.locator("#viewer-zoom")).to_have_text("150%")
    page.keyboard.press("+")
    expect(page.locator("#viewer-zoom")).to_have_text("200%")
    assert page.evaluate("document.getElementById('viewer-image').getBoundingClientRect().width") > \
        page.evaluate("document.getElementById('viewer-stage').clientWidth")
    page.keyboard.press("0")
    expect(page.locator("#viewer-zoom")).to_have_text("100%")
    screenshot(page, "large_view", full_page=False)
    page.keyboard.press("Escape")
    expect(page.locator("#viewer")).to_be_hidden()
    expect(thumbs.first).to_be_focused()  # back on the thumbnail of the mask last shown


# --------------------------------------------------------------------------- stored data

HOSTILE = {"toString": "Tess String", "constructor": "Con Structor", "hasOwnProperty": "<b>Hal</b>"}


def test_pages_show_hostile_names_and_nameless_masks_as_text(app, database, page):
    """Users named like JavaScript object members, markup in names and a mask without a file
    name show as text, with no script error."""
    import auth

    with app.app_context():
        auth.create_user("lead1", "lead", password=PASSWORD, display_name="Lena Lead")
        for username, name in HOSTILE.items():
            auth.create_user(username, "segmenter", password=PASSWORD, display_name=name)
    insert_batches(database, [1], assignee="toString", status="assigned", name="<img src=x onerror=alert(1)>")
    insert_batches(database, [2], assignee="constructor", status="in_progress")
    insert_batches(database, [3], assignee="hasOwnProperty", status="assigned")
    (nameless,) = insert_mask_files(database, ["placeholder"], metadata={"batch_id": "batch_0001"})
    database["masks.files"].update_one({"_id": nameless}, {"$unset": {"filename": ""}})
    link_files(database, "batch_0001", [nameless])

    login(page, "lead1")
    page.goto("/batches")
    table = page.locator("#batches-table")
    expect(table).to_have_attribute("data-loaded", "true")
    text = table.inner_text()
    assert "Tess String" in text and "Con Structor" in text and "<b>Hal</b>" in text
    assert "function" not in text and "[native code]" not in text

    page.goto("/batches/batch_0001")
    expect(page.locator("#masks-body tr[data-mask-id]")).to_have_count(1)
    assert "(no name)" in page.locator("#masks-body").inner_text()
    expect(page.locator("#d-gallery .thumb-name")).to_have_text("(no name)")
    expect(page.locator("#d-fields")).to_contain_text("Tess String (toString)")
    assert page.locator('img[src="x"]').count() == 0  # the batch name is text, not markup
    expect(page.locator("#d-name")).to_have_text("<img src=x onerror=alert(1)>")

    page.goto("/")
    expect(page.locator("#stats")).to_have_attribute("data-loaded", "true")
    overview = page.locator("main").inner_text()
    assert "function" not in overview and "[native code]" not in overview

    page.context.clear_cookies()
    login(page, "toString")
    page.goto("/my")
    expect(page.locator("#my-table")).to_have_attribute("data-loaded", "true")
    assert "function" not in page.locator("main").inner_text()
