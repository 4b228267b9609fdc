"""The review workflow in a real browser (SPEC §7): a lead walks the review queue, approving and
rejecting with a reason that the segmenter then sees; the gallery of mask previews and its
large view. Runs the same way as tests/test_ui.py (its fixtures: Gunicorn, Chromium)."""
import re
from datetime import timedelta

import pytest
from PIL import Image, ImageDraw

import test_ui
from factories import bump_cache_version, png_bytes, store_mask
from test_ui import expect, login, new_page, rows, screenshot, seed_team

# The browser tests' fixtures (one Gunicorn server for the module, Chromium), as in tests/test_ui.py.
app, browser, db_name, page, server = test_ui.app, test_ui.browser, test_ui.db_name, test_ui.page, test_ui.server

pytestmark = pytest.mark.system

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
    database.batches.update_one({"id": batch_id}, {"$set": {"mask_files": ids, "mask_count": count}})
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
    expect(row.locator("[data-rejection-reason]")).to_have_text("Why: " + REASON)
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
        "Array.from(document.querySelectorAll('#d-gallery img')).every(i => i.complete && i.naturalWidth > 0)")
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
    page.wait_for_function("document.getElementById('viewer-image').naturalWidth > 0")
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
