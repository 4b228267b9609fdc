"""Security headers on every response, pages free of inline script and style, and the
`Secure` session cookie over HTTPS (directly, or behind a trusted proxy)."""
from html.parser import HTMLParser

import pytest

import security
from factories import insert_batches
from helpers import build_app, make_user
from test_auth import login

EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def assert_hardened(response):
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (name, response.status_code, dict(response.headers))
    policy = response.headers["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split("; ")}
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


class InlineFinder(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, event handler and style attributes."""

    def __init__(self):
        super().__init__()
        self.problems = []
        self._in_script = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"<{tag} {name}=...>")
        if tag == "script":
            if not attrs.get("src") and attrs.get("type") != "application/json":
                self._in_script = tag
            elif attrs.get("src") and not attrs["src"].startswith("/static/"):
                self.problems.append(f"script from {attrs['src']}")
        if tag == "style":
            self.problems.append("<style> block")

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.problems.append(f"inline script {data.strip()[:40]!r}")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None


def inline_problems(html):
    finder = InlineFinder()
    finder.feed(html)
    return finder.problems


@pytest.fixture
def logged_in(client, database, lead):
    insert_batches(database, [1])
    assert login(client, "lead1").status_code == 302
    return client


@pytest.mark.parametrize("path,status", [
    ("/", 200), ("/batches", 200), ("/batches/batch_0001", 200), ("/my", 302),
    ("/batches/batch_9999", 404), ("/nowhere", 404),
    ("/api/batches", 200), ("/api/batches/batch_9999", 404), ("/api/nowhere", 404),
    ("/static/app.js", 200), ("/static/app.css", 200), ("/api/openapi.yaml", 200),
    ("/healthz", 200), ("/metrics", 200),
])
def test_every_response_carries_the_security_headers(logged_in, path, status):
    response = logged_in.get(path)
    assert response.status_code == status
    assert_hardened(response)


def test_anonymous_responses_and_refusals_carry_them_too(client, seg):
    for response in (client.get("/login"), client.get("/"), client.get("/api/batches"),
                     client.post("/login", data={"username": "sam", "password": "x"}),
                     client.post("/api/batches", headers=seg, data="{", content_type="application/json")):
        assert_hardened(response)


@pytest.mark.parametrize("path", ["/", "/batches", "/batches/batch_0001", "/batches/batch_9999"])
def test_pages_have_no_inline_script_or_style(logged_in, path):
    html = logged_in.get(path).get_data(as_text=True)
    assert "<script" in html
    assert inline_problems(html) == []
    assert inline_problems(logged_in.get("/nowhere").get_data(as_text=True)) == []


def test_login_and_segmenter_pages_have_no_inline_script_or_style(client, seg):
    assert inline_problems(client.get("/login").get_data(as_text=True)) == []
    login(client, "sam")
    html = client.get("/").get_data(as_text=True)
    assert 'id="my-page"' in html
    assert inline_problems(html) == []


def test_the_finder_sees_what_the_policy_blocks():
    assert inline_problems('<script>alert(1)</script><a onclick="x()">a</a><p style="color:red">') == [
        "inline script 'alert(1)'", "<a onclick=...>", "<p style=...>"]
    assert inline_problems('<script type="application/json">{"a": 1}</script>'
                           '<script src="/static/app.js"></script>') == []


def session_cookie(response):
    found = [v for k, v in response.headers.items() if k.lower() == "set-cookie" and v.startswith("session=")]
    assert found, dict(response.headers)
    return {part.strip().lower() for part in found[0].split(";")}


def login_over(app, base_url, headers=None):
    """Log in as sam, with the Referer a browser sends (Flask-WTF checks it over HTTPS)."""
    client = app.test_client()
    headers = {"Referer": base_url + "/login", **(headers or {})}
    page = client.get("/login", base_url=base_url, headers=headers)
    from test_auth import hidden_csrf
    return client.post("/login", base_url=base_url, headers=headers,
                       data={"username": "sam", "password": "password123",
                             "csrf_token": hidden_csrf(page.get_data(as_text=True))})


@pytest.fixture
def make_app(mongo_uri, db_name):
    import db

    built = []

    def make(**overrides):
        app = build_app(mongo_uri, db_name, **overrides)
        built.append(app)
        return app
    yield make
    with built[0].app_context():
        db.client().drop_database(db_name)


def test_cookie_is_secure_over_https_by_default(app):
    make_user(app, "sam", "segmenter")
    response = login_over(app, "https://localhost")
    assert response.status_code == 302
    assert {"secure", "httponly", "samesite=lax"} <= session_cookie(response)
    assert response.headers["Strict-Transport-Security"] == security.HSTS
    plain = login_over(app, "http://localhost")
    assert "secure" not in session_cookie(plain)
    assert "Strict-Transport-Security" not in plain.headers


def test_forwarded_proto_is_believed_only_from_trusted_proxies(make_app):
    untrusted = make_app()
    make_user(untrusted, "sam", "segmenter")
    forged = login_over(untrusted, "http://localhost", headers={"X-Forwarded-Proto": "https"})
    assert "secure" not in session_cookie(forged)

    behind_proxy = make_app(TRUSTED_PROXY_HOPS=1)
    proxied = login_over(behind_proxy, "http://localhost",
                         headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9",
                                  "Referer": "https://localhost/login"})
    assert "secure" in session_cookie(proxied)


def test_secure_cookie_setting_always_or_never(make_app):
    always = make_app(SESSION_COOKIE_SECURE=True, SESSION_COOKIE_SECURE_AUTO=False)
    make_user(always, "sam", "segmenter")
    assert "secure" in session_cookie(login_over(always, "http://localhost"))
    never = make_app(SESSION_COOKIE_SECURE=False, SESSION_COOKIE_SECURE_AUTO=False)
    assert "secure" not in session_cookie(login_over(never, "https://localhost"))


def test_trusted_proxy_hops_come_from_the_environment(monkeypatch):
    from config import load_settings

    monkeypatch.setenv("TRUSTED_PROXY_HOPS", "2")
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "0")
    settings = load_settings()
    assert settings["TRUSTED_PROXY_HOPS"] == 2
    assert settings["SESSION_COOKIE_SECURE"] is False and settings["SESSION_COOKIE_SECURE_AUTO"] is False
    monkeypatch.delenv("SESSION_COOKIE_SECURE")
    assert load_settings()["SESSION_COOKIE_SECURE_AUTO"] is True


@pytest.mark.system
@pytest.mark.parametrize("hops,secure", [("0", False), ("1", True)])
def test_under_gunicorn_only_trusted_proxies_make_a_request_https(mongo_uri, db_name, hops, secure):
    """Gunicorn believes no forwarded header itself; the app does, from TRUSTED_PROXY_HOPS proxies."""
    import re

    import requests

    from gunicorn_server import GunicornServer, drop_database, prepare_database

    prepare_database(mongo_uri, db_name)
    make_user(build_app(mongo_uri, db_name), "sam", "segmenter")
    server = GunicornServer(mongo_uri, db_name, workers=1, TRUSTED_PROXY_HOPS=hops)
    try:
        proxy_headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9",
                         "Referer": f"https://127.0.0.1:{server.port}/login"}
        page = requests.get(server.base + "/login", headers=proxy_headers, timeout=10)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        # Sent by hand: a cookie jar keeps a Secure cookie from a plain-HTTP connection.
        first_cookie = page.headers["Set-Cookie"].split(";")[0]
        answer = requests.post(server.base + "/login", headers={**proxy_headers, "Cookie": first_cookie},
                               data={"username": "sam", "password": "password123", "csrf_token": csrf},
                               allow_redirects=False, timeout=10)
        assert answer.status_code == 302, answer.text
        cookie = [v for k, v in answer.raw.headers.items() if k.lower() == "set-cookie" and v.startswith("session=")]
        assert ("secure" in cookie[0].lower().split("; ")) is secure, cookie
        assert ("Strict-Transport-Security" in answer.headers) is secure
    finally:
        server.close()
        drop_database(mongo_uri, db_name)


def test_behind_a_trusted_proxy_failed_logins_count_for_the_client_address(make_app, database):
    from test_auth import hidden_csrf

    app = make_app(TRUSTED_PROXY_HOPS=1)
    make_user(app, "sam", "segmenter")
    client = app.test_client()
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    page = client.get("/login", headers=forwarded)
    client.post("/login", headers=forwarded, data={"username": "sam", "password": "wrong-password",
                                                   "csrf_token": hidden_csrf(page.get_data(as_text=True))})
    keys = {doc["_id"] for doc in database.rate_limit_windows.find({}, {"_id": 1})}
    assert any("ip:203.0.113.9/" in key for key in keys), keys
    assert not any("127.0.0.1" in key for key in keys), keys
