# ruff: noqa: F811 - the browser fixtures of test_ui.py are imported, then requested by name
"""A day of work in the browser (SPEC §7): a segmenter's queue, a lead's list, the overview's
states, a phone and 200% zoom, the keyboard alone, and axe-core on every page and state.

Actions are counted as a person makes them (a click, a choice in a list, a file chosen, a key):
the segmenter reaches uploading into the next batch in at most 3, the lead assigns 20 pending
batches in at most 6. axe-core comes from the axe-playwright-python package (requirements-dev.txt).
"""
import re

import pytest
from axe_playwright_python.sync_playwright import Axe

from test_ui import (  # noqa: F401 - fixtures and helpers of the browser tests
    LAPTOP,
    PASSWORD,
    app,
    count_planned,
    db_name,
    expect,
    login,
    new_page,
    page,
    rows,
    screenshot,
    seed_team,
    server,
)

pytestmark = pytest.mark.system

PHONE = {"width": 390, "height": 844}
ZOOM_200 = {"width": 640, "height": 400}  # 1280×800 at 200 %: 640×400 CSS pixels
AXE = Axe()


class Actions:
    """Counts what the person does."""

    def __init__(self, page):
        self.page = page
        self.count = 0

    def click(self, locator, **options):
        self.count += 1
        locator.click(**options)

    def choose(self, locator, value):
        self.count += 1
        locator.select_option(value)

    def files(self, locator, files):
        self.count += 1
        locator.set_input_files(files)


def assert_accessible(page, state):
    """axe-core finds no violation in the page as it is now."""
    results = AXE.run(page)
    violations = results.response["violations"]
    assert violations == [], f"{state}:\n" + "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes'][:5]]}" for v in violations)


def first_row_top(page, selector):
    return page.locator(selector).first.evaluate("el => el.getBoundingClientRect().top")


def mask(name, content=b"\x89PNG mask "):
    return {"name": name, "mimeType": "image/png", "buffer": content + name.encode() * 50}


# --------------------------------------------------------------------------- segmenter


def test_segmenter_reaches_the_next_batch_in_three_actions(app, database, page):
    seed_team(app, database)
    # The lead's reason for a rejection shows in the queue when the list carries it.
    page.route(re.compile(r"/api/batches\?.*status=rejected"), lambda route: route.fulfill(
        response=route.fetch(), json=_with_reason(route.fetch().json())))
    login(page, "sam")
    expect(page.locator("#my-table[data-loaded]")).to_be_attached()
    order = rows(page, "#my-body").evaluate_all("rs => rs.map(r => r.dataset.status)")
    assert order == sorted(order, key=["in_progress", "rejected", "assigned"].index)
    expect(page.locator('#my-body tr[data-status="rejected"]').first).to_contain_text(
        "Lead's reason: Masks 3 and 4 miss")
    expect(page.locator("#done-body tr[data-id]")).to_have_count(count_planned("completed", "sam") +
                                                                count_planned("reviewed", "sam"))
    expect(page.locator("#my-summary")).to_contain_text("to work on")
    assert_accessible(page, "my batches, desktop")

    act = Actions(page)
    act.click(page.locator("#next-button"))  # restarts the first rejected batch and points the upload at it
    expect(page.locator("#my-upload-batch")).to_have_value("batch_0009")
    act.files(page.locator("#my-upload-files"), [mask("a.png"), mask("b.png"), mask("c.png")])
    act.click(page.get_by_role("button", name="Upload", exact=True))
    result = page.locator("#my-upload-form [data-upload-result]")
    expect(result).to_contain_text("3 files stored in batch_0009")
    assert act.count <= 3
    expect(page.locator("#my-upload-form .upload-file.done")).to_have_count(3)
    doc = database.batches.find_one({"id": "batch_0009"})
    assert doc["status"] == "in_progress"
    assert doc["mask_count"] == 3
    expect(result.locator(".notice")).to_be_focused()
    assert_accessible(page, "my batches after an upload")


def _with_reason(body):
    for item in body["items"]:
        item["rejection_reason"] = "Masks 3 and 4 miss the left edge."
    return body


def test_segmenter_drops_many_files_with_a_result_for_each(app, database, page):
    seed_team(app, database)
    login(page, "sam")
    page.locator("#my-upload-batch").select_option("batch_0014")
    page.evaluate("""() => {
        const zone = document.querySelector("[data-drop-zone]");
        const data = new DataTransfer();
        data.items.add(new File(["first mask bytes"], "d1.png", {type: "image/png"}));
        data.items.add(new File([""], "empty.png", {type: "image/png"}));
        data.items.add(new File(["second mask bytes"], "d2.png", {type: "image/png"}));
        zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
    }""")
    expect(page.locator("[data-drop-text]")).to_contain_text("3 files chosen")
    page.get_by_role("button", name="Upload", exact=True).click()
    files = page.locator("#my-upload-form .upload-file")
    expect(files).to_have_count(3)
    expect(files.nth(0)).to_contain_text("Stored")
    expect(files.nth(1)).to_contain_text("Empty file")
    expect(files.nth(2)).to_contain_text("Stored")
    expect(page.locator("#my-upload-form [data-upload-result]")).to_contain_text(
        "2 files stored in batch_0014, 1 failed")
    assert database.batches.find_one({"id": "batch_0014"})["mask_count"] == 2
    # Only batches that take uploads are offered: finished ones are not.
    offered = page.locator("#my-upload-batch option").evaluate_all("os => os.map(o => o.value).filter(Boolean)")
    finished = {d["id"] for d in database.batches.find({"assignee": "sam",
                                                        "status": {"$in": ["completed", "reviewed"]}})}
    assert offered and not set(offered) & finished


# --------------------------------------------------------------------------- lead


def test_lead_assigns_twenty_pending_batches_in_six_actions(app, database, page):
    seed_team(app, database)
    login(page, "lead1")
    page.goto("/batches")
    expect(page.locator("#batches-table[data-loaded]")).to_be_attached()
    assert_accessible(page, "batches, desktop")

    act = Actions(page)
    act.choose(page.get_by_label("Status"), "pending")  # applies at once
    expect(page).to_have_url(re.compile(r"/batches\?status=pending$"))
    expect(page.locator("#batches-summary")).to_have_text("52 batches · status pending")
    expect(page.locator("#batches-body tr[data-id]").first).to_be_focused()
    boxes = page.locator("#batches-body .row-check")
    act.click(boxes.nth(0))
    act.click(boxes.nth(19), modifiers=["Shift"])
    expect(page.locator("#bulk-count")).to_have_text("20 batches selected")
    # The assign control shows each segmenter's open batches.
    expect(page.locator("#bulk-assignee option[value=ken]")).to_have_text("Ken Ito (ken) · 0 open")
    expect(page.locator("#bulk-assignee option[value=sam]")).to_have_text(
        f"Sam Rivera (sam) · {count_planned('assigned', 'sam') + count_planned('rejected', 'sam')} open")
    act.choose(page.locator("#bulk-assignee"), "ken")
    assert_accessible(page, "batches with a selection")
    act.click(page.get_by_role("button", name="Assign selected"))
    expect(page.locator("#batches-message")).to_contain_text("Assigned 20 batches to Ken Ito.")
    expect(page.locator("#batches-message")).to_be_focused()
    assert act.count <= 6
    assert database.batches.count_documents({"assignee": "ken", "status": "assigned"}) == 20
    expect(page.locator("#bulk-assignee option[value=ken]")).to_have_text("Ken Ito (ken) · 20 open")

    # Every batch matching the filters, beyond this page.
    page.get_by_label("Per page").select_option("25")
    expect(rows(page)).to_have_count(25)
    page.get_by_label("Select all batches on this page").check()
    page.get_by_role("button", name="Select all 32 matching").click()
    expect(page.locator("#bulk-count")).to_have_text("All 32 matching batches selected")
    page.locator("#bulk-assignee").select_option("olga")
    page.get_by_role("button", name="Assign all 32").click()
    expect(page.locator("#batches-message")).to_contain_text("Assigned 32 batches to Olga Novak.")
    assert database.batches.count_documents({"status": "pending"}) == 0


def test_lead_sorts_searches_exports_and_comes_back_to_the_same_list(app, database, page):
    seed_team(app, database)
    login(page, "lead1")
    page.goto("/batches?status=assigned")
    expect(page.locator("#batches-table[data-loaded]")).to_be_attached()
    page.get_by_role("button", name="Segmenter").click()
    expect(page).to_have_url(re.compile(r"status=assigned&sort=assignee$"))
    expect(page.locator("th[data-sort-key=assignee]")).to_have_attribute("aria-sort", "ascending")
    expect(page.get_by_role("button", name="Segmenter")).to_be_focused()
    assignees = rows(page).evaluate_all("rs => rs.map(r => r.children[4].textContent)")
    assert assignees == sorted(assignees)
    page.get_by_role("button", name="Segmenter").click()
    expect(page.locator("th[data-sort-key=assignee]")).to_have_attribute("aria-sort", "descending")
    expect(page.get_by_role("link", name="Export CSV")).to_have_attribute(
        "href", "/api/export/batches.csv?status=assigned&sort=-assignee")

    # Search applies after a pause in typing, and stays in the URL.
    page.get_by_label("Search").fill("batch_012")
    expect(page).to_have_url(re.compile(r"q=batch_012"))
    expect(rows(page)).to_have_count(2)
    expect(page.locator("#batches-body")).to_contain_text("batch_0128")

    # The batch page's way back keeps the filters and sort.
    page.get_by_role("link", name="batch_0128").click()
    crumb = page.locator(".crumbs a")
    expect(crumb).to_have_attribute("href", "/batches?status=assigned&q=batch_012&sort=-assignee")
    crumb.click()
    expect(page.get_by_label("Search")).to_have_value("batch_012")
    expect(rows(page)).to_have_count(2)


# --------------------------------------------------------------------------- overview


def test_overview_states_links_refresh_and_axis(app, database, browser, server):
    seed_team(app, database)
    page = new_page(browser, server)
    login(page, "lead1")
    failing = {"on": True}
    calls = []

    def metrics(route):
        calls.append(1)
        if failing["on"]:
            route.fulfill(status=503, json={"error": "db_unavailable", "message": "The database is not reachable.",
                                             "request_id": "x"})
            return
        body = route.fetch().json()
        body["completed_per_day"][0]["n"] = 41  # a day whose half is not a whole number
        route.fulfill(json=body)

    page.route("**/api/metrics", metrics)
    page.clock.install()
    page.goto("/")
    # Unknown figures never look like data: no bar, a dash, the file operations wait; Retry is offered.
    expect(page.locator("#stats")).to_have_attribute("data-state", "error")
    expect(page.locator('[data-stat="percent"]')).to_have_text("—")
    assert page.locator('[data-stat-bar="percent"]').evaluate("el => el.getBoundingClientRect().width") == 0
    expect(page.get_by_role("button", name="Sync files")).to_be_disabled()
    expect(page.locator("#chart-status")).to_contain_text("Not available")
    assert_accessible(page, "overview, figures failed")
    # After a failure the next try waits longer (60 s, not 30 s).
    tried = len(calls)
    page.clock.fast_forward("00:31")
    page.wait_for_timeout(300)
    assert len(calls) == tried
    page.clock.fast_forward("00:30")
    expect(page.locator("#overview-error")).to_contain_text("Could not load the figures")
    page.wait_for_timeout(300)
    assert len(calls) == tried + 1
    failing["on"] = False
    page.get_by_role("button", name="Retry").click()
    expect(page.locator("#stats")).to_have_attribute("data-state", "loaded")
    expect(page.get_by_role("button", name="Sync files")).to_be_enabled()
    assert_accessible(page, "overview, loaded")

    # Bars and legend entries open the filtered list.
    expect(page.locator('#chart-status a.bar-row[data-status="rejected"]')).to_have_attribute(
        "href", "/batches?status=rejected")
    expect(page.locator('#chart-assignee-legend a[data-status="completed"]')).to_have_attribute(
        "href", "/batches?status=completed")
    expect(page.locator("#chart-assignee a.bar-label", has_text="Sam Rivera")).to_have_attribute(
        "href", "/batches?assignee=sam")
    # The y-axis counts whole batches.
    ticks = page.locator("#chart-days text.y-axis").evaluate_all("ts => ts.map(t => t.textContent)")
    assert ticks == ["0", "11", "22", "33", "44"], ticks
    # The figures refresh on their own (every 30 s), and not while the tab is hidden.
    before = len(calls)
    page.clock.fast_forward("00:31")
    expect(page.locator("#stats")).to_have_attribute("data-state", "loaded")
    page.wait_for_timeout(300)
    assert len(calls) == before + 1
    page.evaluate("""() => { Object.defineProperty(document, "hidden", {value: true, configurable: true});
                            document.dispatchEvent(new Event("visibilitychange")); }""")
    page.clock.fast_forward("02:00")
    page.wait_for_timeout(300)
    assert len(calls) == before + 1
    assert page.js_errors == []
    page.context.close()


# --------------------------------------------------------------------------- phone, zoom, dark


@pytest.mark.parametrize("viewport", [PHONE, ZOOM_200], ids=["phone", "zoom200"])
def test_first_batch_is_on_the_first_screen(app, database, browser, server, viewport):
    seed_team(app, database)
    for username, path, table in (("sam", "/", "#my-body"), ("lead1", "/batches", "#batches-body")):
        context = browser.new_context(base_url=server, viewport=viewport, device_scale_factor=2)
        page = context.new_page()
        login(page, username)
        page.goto(path)
        expect(page.locator(table + " tr[data-id]").first).to_be_visible()
        top = first_row_top(page, table + " tr[data-id]")
        assert top < viewport["height"] - 30, (username, viewport, top)
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], (username, viewport)
        # No column is cut: every cell of the first row lies inside the screen's width.
        right = page.locator(table + " tr[data-id]").first.evaluate(
            "r => Math.max(...Array.from(r.children).map(c => c.getBoundingClientRect().right))")
        assert right <= viewport["width"], (username, right)
        if viewport is PHONE:
            assert_accessible(page, f"{path} on a phone")
            screenshot(page, f"{'my_batches' if username == 'sam' else 'batches'}_phone", full_page=False)
        context.close()


def test_dark_mode_follows_the_system(app, database, browser, server):
    seed_team(app, database)
    context = browser.new_context(base_url=server, viewport=LAPTOP, color_scheme="dark")
    page = context.new_page()
    login(page, "lead1")
    expect(page.locator("#stats")).to_have_attribute("data-state", "loaded")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(18, 22, 31)", background
    assert_accessible(page, "overview, dark")
    screenshot(page, "overview_dark", full_page=False)
    page.goto("/batches")
    expect(page.locator("#batches-table[data-loaded]")).to_be_attached()
    assert_accessible(page, "batches, dark")
    page.goto("/batches/batch_0005")
    expect(page.locator("#d-status-badge")).to_have_text("In progress")
    assert_accessible(page, "batch detail, dark")
    context.close()
    context = browser.new_context(base_url=server, viewport=PHONE, color_scheme="dark")
    page = context.new_page()
    login(page, "sam")
    expect(page.locator("#my-table[data-loaded]")).to_be_attached()
    assert_accessible(page, "my batches, dark, phone")
    context.close()


# --------------------------------------------------------------------------- keyboard only


def test_segmenter_works_with_the_keyboard_only(app, database, page):
    seed_team(app, database)
    login(page, "sam")
    expect(page.locator("#my-table[data-loaded]")).to_be_attached()
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Next batch")
    assert_accessible(page, "shortcuts overlay")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # n: the next batch starts and the file picker has the focus.
    page.keyboard.press("n")
    expect(page.locator("#my-upload-files")).to_be_focused()
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files([mask("k1.png")])
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Upload", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#my-upload-form [data-upload-result]")).to_contain_text("1 file stored in batch_0009")

    # The queue is one Tab stop; arrows move between rows, → reaches the row's buttons.
    page.keyboard.press("j")
    first = rows(page, "#my-body").first
    expect(first).to_be_focused()
    assert page.locator("#my-body [tabindex='0']").count() == 1
    page.keyboard.press("ArrowDown")
    second = rows(page, "#my-body").nth(1)
    expect(second).to_be_focused()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(second.get_by_role("button").first).to_be_focused()
    status_before = second.get_attribute("data-status")
    page.keyboard.press("Enter")
    # After a status change the focus is on the batch's new status.
    expect(page.locator("#my-body .badge:focus")).to_have_count(1)
    assert page.locator("#my-body .badge:focus").text_content() != status_before
    assert page.js_errors == []


def test_lead_works_with_the_keyboard_only(app, database, page):
    seed_team(app, database)
    login(page, "lead1")
    page.goto("/batches?status=pending")
    expect(page.locator("#batches-table[data-loaded]")).to_be_attached()
    page.keyboard.press("/")
    expect(page.get_by_label("Search")).to_be_focused()
    page.keyboard.type("batch_000")
    expect(page).to_have_url(re.compile(r"q=batch_000"))
    expect(rows(page)).to_have_count(count_planned_prefix("batch_000"))
    page.keyboard.press("Escape")  # leaves the search box for the results
    expect(rows(page).first).to_be_focused()
    page.keyboard.press(" ")
    page.keyboard.press("j")
    page.keyboard.press(" ")
    expect(page.locator("#bulk-count")).to_have_text("2 batches selected")
    for _ in range(12):  # back to the assign control
        if page.evaluate("document.activeElement.id") == "bulk-assignee":
            break
        page.keyboard.press("Shift+Tab")
    expect(page.locator("#bulk-assignee")).to_be_focused()
    page.locator("#bulk-assignee").press("ArrowDown")
    page.locator("#bulk-assignee").press("ArrowDown")
    expect(page.locator("#bulk-assignee")).to_have_value("ken")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Assign selected")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#batches-message")).to_be_focused()
    expect(page.locator("#batches-message")).to_contain_text("Assigned 2 batches to Ken Ito.")
    # Enter on a row opens its batch.
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/batches/batch_000\d$"))


def count_planned_prefix(prefix):
    return sum(1 for n in range(1, 10) if f"batch_{n:04d}".startswith(prefix) and count_planned_status(n) == "pending")


def count_planned_status(number):
    from test_ui import plan
    return plan(number)[0]


# --------------------------------------------------------------------------- every page, desktop and phone


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["desktop", "phone"])
def test_axe_finds_nothing_on_any_page(app, database, browser, server, viewport):
    seed_team(app, database)
    context = browser.new_context(base_url=server, viewport=viewport)
    page = context.new_page()
    page.goto("/login")
    assert_accessible(page, "login")
    page.get_by_label("Username").fill("lead1")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    assert_accessible(page, "login, failed")
    login(page, "lead1", PASSWORD)
    expect(page.locator("#stats")).to_have_attribute("data-state", "loaded")
    assert_accessible(page, "overview")
    page.goto("/batches?status=nothing")
    expect(page.locator("#batches-message")).to_contain_text("status")
    assert_accessible(page, "batches, error")
    page.goto("/batches?q=zzz")
    expect(page.locator("#batches-body")).to_contain_text("No batches match")
    assert_accessible(page, "batches, empty")
    page.goto("/batches/batch_0005")
    expect(page.locator("#d-status-badge")).to_have_text("In progress")
    assert_accessible(page, "batch detail")
    page.goto("/batches/batch_9999")
    assert_accessible(page, "not found")
    context.close()
