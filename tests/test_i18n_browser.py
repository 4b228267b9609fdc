"""Every page as a lead and as a segmenter, in Spanish and in English, at desktop and phone
widths, in Chromium against SegDash under Gunicorn (the server fixtures of tests/test_ui.py)."""
import time
from datetime import timedelta

import pytest

from factories import insert_mask_files, link_files
from test_i18n import english_sentences, untranslated
from test_ui import app, db_name, server  # noqa: F401 - this module's own server and database

pytestmark = pytest.mark.system

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
BROWSER_LOCALES = {"es": ("es-ES", "Europe/Madrid"), "en": ("en-US", "America/New_York")}
# Path, and the element whose data-loaded marks the page's script as done (None: no script data).
WALK = {"lead1": [("/", "#stats"), ("/batches", "#batches-table"), ("/batches/batch_0004", None),
                  ("/batches/batch_0004?review=1", None), ("/review", None), ("/batches/batch_9999", None)],
        "sam": [("/my", "#my-table"), ("/batches", "#batches-table"), ("/batches/batch_0004", None)]}

# Text nodes and labelling attributes of the page, as the person sees and hears them.
READ_PAGE = """() => {
    const parts = [document.body.innerText];
    document.querySelectorAll("[aria-label], [placeholder], [title]").forEach(el => {
        ["aria-label", "placeholder", "title"].forEach(a => { if (el.getAttribute(a)) parts.push(el.getAttribute(a)); });
    });
    document.querySelectorAll("svg title, option").forEach(el => parts.push(el.textContent));
    return parts.join(" | ");
}"""

# Elements sticking out of the viewport (outside the tables' own scroll boxes), and the page's width.
OVERFLOW = """() => {
    const width = document.documentElement.clientWidth;
    const out = [];
    document.querySelectorAll("body *").forEach(el => {
        if (el.closest(".table-wrap") || el.closest(".visually-hidden") || el.classList.contains("skip-link")) return;
        const box = el.getBoundingClientRect();
        if (box.width && (box.right > width + 1 || box.left < -1))
            out.push(el.tagName + "." + el.className + " " + Math.round(box.left) + ".." + Math.round(box.right));
    });
    return {scroll: document.documentElement.scrollWidth, width: width, out: out.slice(0, 10)};
}"""


@pytest.fixture
def browser_team(app, database):
    from test_ui import seed_team

    seed_team(app, database)
    ids = insert_mask_files(database, ["batch_0004_a.png", "batch_0004_b.png"], metadata={"batch_id": "batch_0004"})
    link_files(database, "batch_0004", ids)
    return database


def browser_page(browser, base, lang, viewport):
    locale, zone = BROWSER_LOCALES[lang]
    context = browser.new_context(base_url=base, viewport=viewport, locale=locale, timezone_id=zone)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
    return page


def browser_login(page, username, lang):
    from test_ui import PASSWORD as UI_PASSWORD

    page.goto("/login")
    labels = {"es": ("Usuario", "Contraseña", "Iniciar sesión"), "en": ("Username", "Password", "Log in")}[lang]
    page.get_by_label(labels[0]).fill(username)
    page.get_by_label(labels[1]).fill(UI_PASSWORD)
    page.get_by_role("button", name=labels[2]).click()
    page.wait_for_url(lambda url: "/login" not in url)


def check_page(page, lang, sentences, where):
    from playwright.sync_api import expect

    assert page.evaluate("document.documentElement.lang") == lang, where
    text = page.evaluate(READ_PAGE)
    if lang == "es":
        assert untranslated(text, sentences) == [], where
    else:
        spanish_only = {"Cerrar sesión", "Subir una máscara", "Mis lotes", "Lotes por estado", "Sin asignar"}
        assert [s for s in spanish_only if s in text] == [], where
    expect(page.locator("main h1").first).to_be_visible()
    layout = page.evaluate(OVERFLOW)
    assert layout["scroll"] <= layout["width"] and layout["out"] == [], (where, layout)


@pytest.mark.parametrize("lang", ["es", "en"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_page_in_both_languages_and_widths(app, browser_team, browser, server, lang, viewport):
    from playwright.sync_api import expect

    from test_ui import screenshot

    sentences = english_sentences()
    size = "desktop" if viewport is DESKTOP else "phone"
    for username, walk in WALK.items():
        page = browser_page(browser, server, lang, viewport)
        page.goto("/login")
        check_page(page, lang, sentences, f"/login {lang} {size}")
        if username == "lead1" and size == "desktop" and lang == "es":
            screenshot(page, "login_es")  # the English pictures are tests/test_ui.py's
        browser_login(page, username, lang)
        for path, loaded in walk:
            page.goto(path)
            if loaded:
                expect(page.locator(loaded)).to_have_attribute("data-loaded", "true")
            else:
                page.wait_for_load_state("networkidle")
            where = f"{username} {path} {lang} {size}"
            check_page(page, lang, sentences, where)
            name = {"/": "overview", "/my": "my_batches", "/batches": "batches", "/batches/batch_0004": "batch_detail"}
            if path in name and lang == "es" and size == "desktop" and (username == "lead1" or path == "/my"):
                screenshot(page, f"{name[path]}_es")
            if path in ("/my", "/batches/batch_0004") and lang == "es" and size == "phone" and username == "sam":
                screenshot(page, f"{name[path]}_es_phone", full_page=False)
        if username == "lead1":
            # A file operation's summary, written by the script, in the page's language.
            page.goto("/")
            page.locator("#btn-check").click()
            expect(page.locator("[data-op-result=check]")).to_be_visible()
            check_page(page, lang, sentences, f"check result {lang} {size}")
            percent = page.locator('[data-stat="percent"]').inner_text()
            assert ("\u00a0%" in percent) == (lang == "es"), percent
        assert page.js_errors == [], page.js_errors
        page.context.close()


def test_the_header_selector_switches_and_remembers(app, browser_team, browser, server):
    from playwright.sync_api import expect

    page = browser_page(browser, server, "en", DESKTOP)
    page.goto("/login")
    page.get_by_role("button", name="Español").click()
    expect(page.get_by_role("heading", name="Iniciar sesión")).to_be_visible()
    browser_login(page, "sam", "es")
    expect(page.get_by_role("heading", name="Mis lotes")).to_be_visible()
    expect(page.locator('#my-body tr[data-status="assigned"]').first).to_contain_text("Asignado")
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="My batches")).to_be_visible()
    assert browser_team.users.find_one({"username": "sam"})["locale"] == "en"
    page.get_by_role("button", name="Español").click()
    expect(page.get_by_role("heading", name="Mis lotes")).to_be_visible()
    page.context.close()
    # Other workers see the account's change within CACHE_VERSION_CHECK_SECONDS (cache.py).
    time.sleep(app.config["CACHE_VERSION_CHECK_SECONDS"] + 0.2)
    # The account remembers: a fresh English browser gets Spanish once logged in.
    other = browser_page(browser, server, "en", PHONE)
    browser_login(other, "sam", "en")
    expect(other.get_by_role("heading", name="Mis lotes")).to_be_visible()
    assert other.js_errors == []
    other.context.close()


def test_a_failed_jobs_error_reads_in_spanish_on_the_jobs_page(app, browser_team, browser, server):
    """The job stores why it failed as a code; the Spanish Jobs page says it in Spanish."""
    from playwright.sync_api import expect

    import jobrunner
    import jobs

    with app.app_context():  # an import whose process died: the next runner records it failed
        job = jobs.start_here("import", "lead1", total=10, unit="batches")
    browser_team.jobs.update_one({"_id": job["_id"]}, {"$set": {"lease_until": job["created_at"] - timedelta(hours=1)}})
    jobrunner.Runner(app).drain()
    assert browser_team.jobs.find_one({"_id": job["_id"]})["error_code"] == "runner_stopped"

    page = browser_page(browser, server, "es", DESKTOP)
    browser_login(page, "lead1", "es")
    page.goto("/jobs")
    row = page.locator(f'#jobs-body tr[data-job-id="{job["_id"]}"]')
    expect(row).to_have_attribute("data-state", "failed")
    expect(row).to_contain_text("Error: el proceso que lo ejecutaba se detuvo")
    check_page(page, "es", english_sentences(), "/jobs es desktop")
    assert page.js_errors == [], page.js_errors
    page.context.close()
