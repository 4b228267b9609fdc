"""Stored data the pages did not expect, in a real browser (see tests/test_ui.py): users
named like JavaScript object members, a mask without a file name, markup in names."""
import pytest

from factories import insert_batches, insert_mask_files
from test_ui import PASSWORD, browser, expect, login, page, server  # noqa: F401 - fixtures

HOSTILE = {"toString": "Tess String", "constructor": "Con Structor", "hasOwnProperty": "<b>Hal</b>"}


@pytest.mark.system
def test_pages_show_hostile_names_and_nameless_masks_as_text(app, database, page):  # noqa: F811
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
    database.batches.update_one({"id": "batch_0001"}, {"$set": {"mask_files": [nameless], "mask_count": 1}})

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
    expect(page.locator("#d-fields")).to_contain_text("Tess String (toString)")
    assert page.locator("img").count() == 0  # the batch name is text, not markup
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
