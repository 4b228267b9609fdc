"""With the database stopped, every page and API route of a real Gunicorn answers the app's
own 503 — an HTML page for pages, the JSON error for the API — within about 2 s
(MONGO_SERVER_SELECTION_TIMEOUT_MS), never Gunicorn's bare error; routes that need no
database still answer normally."""
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from pymongo import MongoClient

from factories import insert_batches, insert_mask_files
from gunicorn_server import GunicornServer, prepare_database
from helpers import build_app, make_user
from test_auth import PASSWORD
from test_faults import private_db_server  # noqa: F401 - the fixture

ARGS = {"raw_id": "batch_0001", "job_id": "0123456789abcdef01234567", "filename": "app.css"}
NEED_NO_DATABASE = {"static", "docs.openapi_json", "docs.openapi_yaml", "metrics"}
# The API docs page: its files need no database (a made-up file is 404), its page is rendered
# with the signed-in user's context (503 while the database is away).
DOCS_PAGE = "docs_ui.show"
PAGE_MARKER = "Temporarily unavailable"


def routes(app):
    """(endpoint, method, path) of every route, with placeholder arguments filled in."""
    found = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                args = {name: ARGS.get(name, "0123456789abcdef01234567") for name in rule.arguments}
                found.append((rule.endpoint, method, app.url_for(rule.endpoint, **args)))
    return found


def browser_login(base, username):
    browser = requests.Session()
    page = browser.get(base + "/login", timeout=10)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    answer = browser.post(base + "/login", data={"username": username, "password": PASSWORD, "csrf_token": csrf},
                          allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    home = browser.get(base + "/", timeout=10)
    return browser.cookies.get("session"), re.search(r'<meta name="csrf-token" content="([^"]+)"', home.text).group(1)


@pytest.mark.system
def test_every_route_answers_the_apps_own_503_quickly(private_db_server):  # noqa: F811
    uri = private_db_server["uri"]
    db_name = "segdash_outage_pages"
    bearer = prepare_database(uri, db_name)
    setup = build_app(uri, db_name)
    make_user(setup, "lead1", "lead")  # a password as well
    bearer = make_user(setup, "lead1", "lead")
    client = MongoClient(uri)
    insert_batches(client[db_name], [1])
    mask = str(insert_mask_files(client[db_name], ["batch_0001/a.png"])[0])
    client.close()
    server = GunicornServer(uri, db_name, workers=2, GUNICORN_THREADS="8")
    try:
        cookie, csrf = browser_login(server.base, "lead1")
        private_db_server["stop"]()
        time.sleep(1.5)  # past CACHE_VERSION_CHECK_SECONDS: no worker answers from its caches alone

        def send(endpoint, method, path, as_browser):
            path = path.replace("0123456789abcdef01234567", mask) if endpoint == "masks.download_mask" else path
            headers = {"X-CSRFToken": csrf} if as_browser else dict(bearer)
            if not as_browser and not path.startswith("/api/"):
                headers["Accept"] = "application/json"
            started = time.monotonic()
            response = requests.request(method, server.base + path, headers=headers, allow_redirects=False,
                                        cookies={"session": cookie} if as_browser else None,
                                        data={"csrf_token": csrf} if as_browser and method == "POST" else None,
                                        timeout=30)
            return endpoint, method, path, as_browser, response, time.monotonic() - started

        # Pages are tried as the logged-in browser; API routes also with the Bearer token.
        jobs = [(e, m, p, as_browser) for e, m, p in routes(setup) for as_browser in (True, False)
                if as_browser or p.startswith("/api/") or p == "/healthz"]
        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(lambda job: send(*job), jobs))

        problems = []
        for endpoint, method, path, as_browser, response, elapsed in answers:
            where = f"{method} {path} ({'cookie' if as_browser else 'token'})"
            if elapsed > 3.0:
                problems.append(f"{where}: {elapsed:.1f}s")
            if endpoint == DOCS_PAGE and response.status_code in (404, 503):
                continue
            if endpoint in NEED_NO_DATABASE:
                if response.status_code >= 500:
                    problems.append(f"{where}: {response.status_code} without needing the database")
                continue
            if response.status_code != 503:
                problems.append(f"{where}: {response.status_code}")
                continue
            if response.headers["Content-Type"].startswith("application/json"):
                body = response.json()
                expected = {"status": "degraded", "db": "unreachable"} if path == "/healthz" else None
                if (body != expected) if expected else body.get("error") != "database_unavailable":
                    problems.append(f"{where}: {body}")
                if as_browser and not path.startswith("/api/") and path not in ("/healthz", "/metrics"):
                    problems.append(f"{where}: a page answered JSON")
            elif PAGE_MARKER not in response.text or "Log out" in response.text:
                problems.append(f"{where}: not the app's own page: {response.text[:120]!r}")
            elif not as_browser or path.startswith("/api/"):
                problems.append(f"{where}: the API answered HTML")
        assert problems == [], "\n".join(problems)
        assert len(answers) >= 30
    finally:
        server.close()
