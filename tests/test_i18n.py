"""Spanish and English: complete catalogs, no untranslated English in Spanish pages, the
language chosen per user / cookie / Accept-Language / DEFAULT_LOCALE, API error messages
in the request's language with the same codes, and locale-aware formatting.

The browser half (marked `system`) walks every page in both languages at desktop and
phone widths with Chromium (the fixtures of tests/test_ui.py).
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
from html.parser import HTMLParser

import pytest
from babel.messages.pofile import read_po

import auth
import ui_strings
from checks import assert_error
from factories import insert_batches, insert_mask_files
from helpers import ROOT, build_app

PASSWORD = "password123"
TRANSLATIONS = os.path.join(ROOT, "translations")
LANGUAGES = ("en", "es")
PYBABEL = os.path.join(os.path.dirname(sys.executable), "pybabel")


def catalog(lang=None):
    path = os.path.join(TRANSLATIONS, "messages.pot") if lang is None \
        else os.path.join(TRANSLATIONS, lang, "LC_MESSAGES", "messages.po")
    with open(path, "rb") as handle:
        return read_po(handle)


def csrf_of(page):
    """The page's CSRF token (every page's header forms carry one)."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page[:500]
    return match.group(1)


def login(client, username, password=PASSWORD):
    token = csrf_of(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


@pytest.fixture(scope="module", autouse=True)
def compiled_catalogs():
    """The .mo files are build products (run_tests.sh and start_optimized.sh make them)."""
    stale = any(not os.path.exists(po[:-3] + ".mo") or os.path.getmtime(po[:-3] + ".mo") < os.path.getmtime(po)
                for po in glob.glob(os.path.join(TRANSLATIONS, "*", "LC_MESSAGES", "messages.po")))
    if stale:
        subprocess.run([PYBABEL, "-q", "compile", "-d", TRANSLATIONS], check=True)
    ui_strings._strings_for.cache_clear()


# --------------------------------------------------------------------------- the catalogs

def message_key(message):
    return (message.context, message.id if isinstance(message.id, str) else tuple(message.id))


def test_the_template_is_up_to_date_with_the_code():
    """A string wrapped in the code but missing from messages.pot: run `scripts/i18n.sh update`."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = os.path.join(tmp, "messages.pot")
        subprocess.run([os.path.join(ROOT, "scripts", "i18n.sh"), "extract", fresh], cwd=ROOT, check=True,
                       capture_output=True, env=dict(os.environ, PYBABEL=PYBABEL))
        with open(fresh, "rb") as handle:
            extracted = {message_key(m) for m in read_po(handle) if m.id}
    committed = {message_key(m) for m in catalog() if m.id}
    assert extracted - committed == set(), "not in translations/messages.pot"
    assert committed - extracted == set(), "no longer in the code"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_message_is_translated(lang):
    """Every msgid of the template has a non-fuzzy translation with the same placeholders."""
    template = {message_key(m) for m in catalog() if m.id}
    po = catalog(lang)
    translated = {}
    for message in po:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(strings):
            continue
        translated[message_key(message)] = message
    assert sorted(template - set(translated), key=str) == [], f"untranslated in {lang}"
    errors = [(message.id, [str(e) for e in errs]) for message, errs in po.check()]
    assert errors == []
    for message in translated.values():
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        want = set(re.findall(r"%\(\w+\)[sr]", ids[-1]))
        for string in strings:
            assert set(re.findall(r"%\(\w+\)[sr]", string)) == want, (message.id, string)


def test_the_english_catalog_is_the_source_text():
    for message in catalog("en"):
        if message.id:
            assert message.string == (tuple(message.id) if isinstance(message.id, tuple) else message.id)


JS_CALL = re.compile(r"""\b(?:S\.)?(tn?)\(\s*("(?:[^"\\]|\\.)*")(?:\s*,\s*("(?:[^"\\]|\\.)*"))?""")
# A literal reading like an English phrase: a capitalised word followed by lower-case words.
ENGLISH_LITERAL = re.compile(r'''"([A-Z][a-z]+(?: [a-z]+)+[.…:]?)"''')


def script_sources():
    for path in sorted(glob.glob(os.path.join(ROOT, "static", "*.js"))):
        with open(path, encoding="utf-8") as handle:
            yield os.path.basename(path), handle.read()


def test_every_script_string_is_in_the_catalog():
    """t("…") / tn("…", "…") in static/*.js name msgids listed in ui_strings.py."""
    listed = set(ui_strings.SCRIPT_MESSAGES)
    used = set()
    for name, source in script_sources():
        for match in JS_CALL.finditer(source):
            for literal in match.group(2, 3 if match.group(1) == "tn" else 2):
                used.add(json.loads(literal))
                assert json.loads(literal) in listed, (name, literal)
    assert len(used) > 100


def test_scripts_have_no_unwrapped_sentences():
    """No English phrase in a script outside t() (the sentences shown to people)."""
    for name, source in script_sources():
        wrapped = {m.start(2) for m in JS_CALL.finditer(source)} | {m.start(3) for m in JS_CALL.finditer(source)}
        bare = [m.group(1) for m in ENGLISH_LITERAL.finditer(source)
                if m.start() not in wrapped and not source[:m.start()].rstrip().endswith("progress:")]
        assert bare == [], name


# --------------------------------------------------------------------------- the pages in Spanish

def english_sentences():
    """English texts of the catalog whose Spanish differs: whole one-word messages ("Batches")
    and the phrases of two words or more between their placeholders."""
    spanish = {message_key(m): m.string for m in catalog("es") if m.id}
    found = set()
    for message in catalog("en"):
        if not message.id or message.context:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        if spanish.get(message_key(message)) in (message.id, tuple(ids)):
            continue
        for text in ids:
            pieces = re.split(r"%\(\w+\)[sr]", text)
            for piece in pieces:
                piece = piece.strip(" .,:;()“”'")
                words = piece.split()
                if len(words) >= 2 or (len(pieces) == 1 and len(words) == 1):
                    if re.search(r"[A-Za-z]{3}", piece) and piece not in SHARED_WORDS:
                        found.add(piece)
    return found


# Texts spelt the same in both languages, or that are data (ids, JSON fields).
SHARED_WORDS = {"bytes", "Bearer"}


class VisibleText(HTMLParser):
    """What a person reads or hears: text nodes and the labelling attributes (not the
    contents of <script>, whose JSON blocks key their strings by the English msgids)."""
    ATTRIBUTES = ("aria-label", "placeholder", "title", "alt")

    def __init__(self):
        super().__init__()
        self.parts, self._script = [], False

    def handle_starttag(self, tag, attrs):
        self._script = tag == "script"
        self.parts.extend(value for name, value in attrs if name in self.ATTRIBUTES and value)

    def handle_endtag(self, tag):
        self._script = False

    def handle_data(self, data):
        if not self._script and data.strip():
            self.parts.append(data.strip())


def visible_text(body):
    parser = VisibleText()
    parser.feed(body)
    return " | ".join(parser.parts)


def untranslated(text, sentences):
    return sorted(s for s in sentences if re.search(r"(?<![\w/-])" + re.escape(s) + r"(?![\w-])", text))


@pytest.fixture
def team(app, database):
    with app.app_context():
        auth.create_user("lead1", "lead", password=PASSWORD, display_name="Lena Lead")
        auth.create_user("sam", "segmenter", password=PASSWORD, display_name="Sam Rivera")
    insert_batches(database, range(1, 6), assignee="sam", status="assigned")
    insert_batches(database, range(6, 9))
    insert_mask_files(database, ["batch_0001_a.png"], metadata={"batch_id": "batch_0001"})
    return database


def signed_in(app, username, language):
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
    assert login(client, username).status_code == 302
    return client


PAGES = {"lead1": ["/", "/batches", "/batches/batch_0001", "/batches/batch_0001?review=1", "/review",
                   "/batches/batch_9999"],
         "sam": ["/", "/my", "/batches", "/batches/batch_0001", "/batches/batch_9999"]}


@pytest.mark.parametrize("username", sorted(PAGES))
def test_spanish_pages_show_no_english_sentence(app, team, username):
    sentences = english_sentences()
    assert {"Log out", "Batches", "Upload a mask", "No batches selected"} <= sentences
    client = signed_in(app, username, "es-ES,es;q=0.9,en;q=0.5")
    for path in PAGES[username]:
        response = client.get(path)
        assert response.status_code in (200, 404), path
        body = response.get_data(as_text=True)
        assert '<html lang="es">' in body
        assert untranslated(visible_text(body), sentences) == [], path
        strings = json.loads(re.search(r'id="segdash-strings"[^>]*>(.*?)</script>', body, re.S).group(1))
        shown = re.sub(r"%\(\w+\)[sr]", "·", " | ".join(list(strings["messages"].values())
                                                      + list(strings["statuses"].values())))
        assert untranslated(shown, sentences) == [], path
        assert strings["statuses"]["in_progress"] == "En curso"


def test_the_login_page_follows_accept_language(client):
    spanish = client.get("/login", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "Iniciar sesión" in spanish and untranslated(visible_text(spanish), english_sentences()) == []
    english = client.get("/login", headers={"Accept-Language": "de, en;q=0.5"}).get_data(as_text=True)
    assert '<html lang="en">' in english and "Log in" in english


def test_english_pages_are_english(app, team):
    client = signed_in(app, "lead1", "en-US,en;q=0.9")
    body = client.get("/batches/batch_0001").get_data(as_text=True)
    assert '<html lang="en">' in body and "Upload a mask" in body and "Subir una máscara" not in body


# --------------------------------------------------------------------------- choosing the language

def test_the_choice_is_remembered_on_the_account_and_beats_the_browser(app, team):
    client = signed_in(app, "sam", "en")
    page = client.get("/my").get_data(as_text=True)
    assert "My batches" in page
    response = client.post("/locale", data={"locale": "es", "next": "/batches?status=assigned",
                                            "csrf_token": csrf_of(page)})
    assert response.status_code == 302 and response.headers["Location"] == "/batches?status=assigned"
    assert team.users.find_one({"username": "sam"})["locale"] == "es"
    assert "Mis lotes" in client.get("/my").get_data(as_text=True)
    # Another browser (English, no cookie) logging into the same account gets Spanish.
    other = signed_in(app, "sam", "en")
    assert "Mis lotes" in other.get("/my").get_data(as_text=True)


def test_before_login_the_choice_is_a_cookie(app, team):
    client = app.test_client()
    page = client.get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
    response = client.post("/locale", data={"locale": "es", "next": "/login", "csrf_token": csrf_of(page)},
                           headers={"Accept-Language": "en"})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert "Iniciar sesión" in client.get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)


def test_the_selector_refuses_bad_input(app, team):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    before = list(team.users.find({}, {"_id": 0}))
    response = client.post("/locale", data={"locale": "fr", "csrf_token": csrf_of(page)},
                           headers={"Accept": "application/json"})
    assert_error(response, 400, "invalid_locale")
    no_token = client.post("/locale", data={"locale": "es"},
                           headers={"Accept": "application/json", "Accept-Language": "es"})
    assert assert_error(no_token, 400, "csrf_failed")["message"] == "Falló la comprobación CSRF: Falta el token CSRF."
    offsite = client.post("/locale", data={"locale": "es", "next": "//evil.example/", "csrf_token": csrf_of(page)})
    assert offsite.headers["Location"] == "/"
    assert list(team.users.find({}, {"_id": 0})) == before


def test_default_locale_applies_without_a_usable_accept_language(mongo_uri, db_name, app):
    spanish_app = build_app(mongo_uri, db_name, DEFAULT_LOCALE="es")
    client = spanish_app.test_client()
    assert '<html lang="es">' in client.get("/login").get_data(as_text=True)
    assert '<html lang="es">' in client.get("/login", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert '<html lang="en">' in client.get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)


# --------------------------------------------------------------------------- API errors, CLI, formatting

@pytest.mark.parametrize("url,status,code,english,spanish", [
    ("/api/batches/batch_9999", 404, "not_found", "No batch batch_9999.", "No existe el lote batch_9999."),
    ("/api/batches?per_page=abc", 400, "invalid_parameter", "'per_page' must be a whole number.",
     "'per_page' debe ser un número entero."),
    ("/api/users", 403, "forbidden", "This needs the lead role.", "Se necesita el rol lead."),
    ("/api/nowhere", 404, "not_found", "The requested URL was not found", "La URL solicitada no existe"),
])
def test_api_error_messages_follow_the_language_and_codes_stay(client, seg, url, status, code, english, spanish):
    for language, text in (("en", english), ("es-MX,es;q=0.8", spanish)):
        body = assert_error(client.get(url, headers={**seg, "Accept-Language": language}), status, code)
        assert body["message"].startswith(text), (language, body)


def test_a_write_refused_in_spanish_changes_nothing(client, app, team, seg):
    before = list(team.batches.find({}, {"_id": 0}).sort("id", 1))
    response = client.patch("/api/batches/batch_0001", json={"status": "reviewed"},
                            headers={**seg, "Accept-Language": "es"})
    body = assert_error(response, 409, "invalid_transition")
    assert body["message"] == "Un lote no puede pasar de asignado a revisado."
    assert list(team.batches.find({}, {"_id": 0}).sort("id", 1)) == before


def test_the_login_throttle_speaks_spanish(mongo_uri, db_name, app):
    limited = build_app(mongo_uri, db_name, LOGIN_RATE_LIMIT="1 per 1 hour")
    client = limited.test_client()
    for _attempt in range(2):
        token = csrf_of(client.get("/login").get_data(as_text=True))
        response = client.post("/login", data={"username": "nobody", "password": "wrong-password", "csrf_token": token},
                               headers={"Accept-Language": "es"})
    assert response.status_code == 429
    assert "Vuelve a intentarlo dentro de 60 minutos." in response.get_data(as_text=True)
    assert "Usuario" in response.get_data(as_text=True)


def test_cli_messages_follow_default_locale(mongo_uri, db_name, app):
    spanish_app = build_app(mongo_uri, db_name, DEFAULT_LOCALE="es")
    result = spanish_app.test_cli_runner().invoke(
        args=["create-user", "lena", "--role", "segmenter", "--password-stdin"], input="short\n")
    assert result.exit_code != 0 and "la contraseña debe ser un texto de 8 a 1024 caracteres" in result.output
    result = app.test_cli_runner().invoke(
        args=["create-user", "lena", "--role", "segmenter", "--password-stdin"], input="short\n")
    assert "the password must be a string of 8 to 1024 characters" in result.output


def test_upload_limit_is_formatted_for_the_locale(mongo_uri, db_name, app, lead):
    import io

    tiny = build_app(mongo_uri, db_name, MAX_CONTENT_LENGTH=1536)
    response = tiny.test_client().post("/api/masks", headers={**lead, "Accept-Language": "es"},
                                       data={"file": (io.BytesIO(b"x" * 5000), "x.png")},
                                       content_type="multipart/form-data")
    assert_error(response, 413, "request_entity_too_large")
    assert response.get_json()["message"] == "El archivo supera el límite de 1,5 KB."
