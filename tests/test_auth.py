"""Identity, sessions, CSRF and secrets at rest (SPEC §5 Authentication, §11).

Who may call which route (401/403/redirect for every route and kind of identity) is the
table of tests/test_access_matrix.py; login throttling is tests/test_rate_limit.py.
CSRF stays on in these tests: auth.require_role calls csrf.protect() itself, which
Flask-WTF does not skip under TESTING (the test app has TESTING=True).
"""
import hashlib
import re
from urllib.parse import urlsplit

import pytest

import auth
from cache import caches
from checks import assert_error, snapshot
from factories import bump_cache_version, insert_batches
from helpers import build_app, make_user

PASSWORD = "password123"  # helpers.make_user's default
DUMMY_ARGS = {"raw_id": "batch_0001", "job_id": "0123456789abcdef01234567",
              "file_id": "0123456789abcdef01234567", "filename": "app.css"}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def hidden_csrf(html):
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


def meta_csrf(html):
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


def login(client, username, password=PASSWORD, next_url=None):
    """Log in through the form: GET /login for the CSRF token, then POST it."""
    page = client.get("/login")
    assert page.status_code == 200
    query = {} if next_url is None else {"next": next_url}
    return client.post("/login", query_string=query,
                       data={"username": username, "password": password,
                             "csrf_token": hidden_csrf(page.get_data(as_text=True))})


def page_csrf(client):
    """The CSRF token of the logged-in session, from the csrf-token meta tag of the home page."""
    home = client.get("/")
    assert home.status_code == 200, home.status_code
    return meta_csrf(home.get_data(as_text=True))


def unsafe_routes(app):
    """(method, url) of every route that writes (not GET/HEAD/OPTIONS), with dummy arguments."""
    found = []
    for rule in app.url_map.iter_rules():
        url = rule.build({arg: DUMMY_ARGS.get(arg, "x1") for arg in rule.arguments},
                         append_unknown=False)[1]
        for method in sorted(rule.methods - set(SAFE_METHODS)):
            found.append((method, url))
    return sorted(found)


# --------------------------------------------------------------------------- credentials


@pytest.mark.parametrize("header", [
    "Bearer ",
    "Bearer",
    "Token abc",
    "Basic bGVhZDE6cGFzc3dvcmQxMjM=",
])
def test_bad_authorization_header_is_401(client, database, lead, header):
    insert_batches(database, [1])
    before = snapshot(database)

    listed = client.get("/api/batches", headers={"Authorization": header})
    written = client.patch("/api/batches/batch_0001", json={"assignee": "sam"},
                           headers={"Authorization": header})

    assert_error(listed, 401, "unauthorized")
    assert_error(written, 401, "unauthorized")
    assert snapshot(database) == before


@pytest.mark.parametrize("scheme", ["Token", "Basic", "Bearerx", ""])
def test_valid_token_under_another_scheme_is_401(client, lead, scheme):
    token = lead["Authorization"].split(" ", 1)[1]

    response = client.get("/api/batches", headers={"Authorization": f"{scheme} {token}".strip()})

    assert_error(response, 401, "unauthorized")


def test_token_of_an_inactive_user_is_401(app, client, database):
    headers = make_user(app, "gone", "lead")
    assert client.get("/api/batches", headers=headers).status_code == 200
    database.users.update_one({"username": "gone"}, {"$set": {"active": False}})
    bump_cache_version(app)  # as any write through the app would

    assert_error(client.get("/api/batches", headers=headers), 401, "unauthorized")


def test_replaced_token_stops_working(app, client, database):
    old = make_user(app, "lead1", "lead")
    new = make_user(app, "lead1", "lead")

    assert_error(client.get("/api/batches", headers=old), 401)
    assert client.get("/api/batches", headers=new).status_code == 200


def test_session_survives_a_non_bearer_authorization_header(client, database, lead, seg):
    """A reverse proxy's HTTP Basic login makes browsers send `Authorization: Basic …`."""
    insert_batches(database, [1])
    login(client, "lead1")
    basic = {"Authorization": "Basic cHJveHk6cGFzcw=="}
    before = snapshot(database)

    listed = client.get("/api/batches", headers=basic)
    no_csrf = client.patch("/api/batches/batch_0001", json={"assignee": "sam"}, headers=basic)

    assert listed.status_code == 200, listed.get_data(as_text=True)
    assert_error(no_csrf, 400, "csrf_failed")  # still a cookie-authenticated write
    assert snapshot(database) == before
    with_csrf = client.patch("/api/batches/batch_0001", json={"assignee": "sam"},
                             headers={**basic, "X-CSRFToken": page_csrf(client)})
    assert with_csrf.status_code == 200, with_csrf.get_data(as_text=True)


@pytest.mark.parametrize("header", ["Bearer not-a-token", "Bearer "])
def test_bad_bearer_header_does_not_fall_back_to_the_session(client, database, seg, header):
    login(client, "sam")
    assert client.get("/api/batches").status_code == 200

    response = client.get("/api/batches", headers={"Authorization": header})

    assert_error(response, 401, "unauthorized")


def test_lowercase_bearer_scheme_is_accepted(client, lead):
    token = lead["Authorization"].split(" ", 1)[1]

    response = client.get("/api/batches", headers={"Authorization": f"bearer {token}"})

    assert response.status_code == 200


# --------------------------------------------------------------------------- session login


def test_login_form_logs_in_and_sets_a_safe_session_cookie(client, database, real_hashing,
                                                             seg):
    insert_batches(database, [1])
    assert_error(client.get("/api/batches"), 401)

    response = login(client, "sam")

    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/"
    cookies = [value for key, value in response.headers.items() if key.lower() == "set-cookie"]
    session_cookie = [c for c in cookies if c.startswith("session=")]
    assert session_cookie, cookies
    attributes = [part.strip().lower() for part in session_cookie[0].split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "secure" not in attributes  # SESSION_COOKIE_SECURE=auto: plain HTTP gets no Secure flag
    listed = client.get("/api/batches")
    assert listed.status_code == 200
    assert [item["id"] for item in listed.get_json()["items"]] == ["batch_0001"]


def test_session_cookie_is_secure_when_configured(monkeypatch, mongo_uri, db_name):
    import db

    monkeypatch.setenv("SESSION_COOKIE_SECURE", "1")
    app = build_app(mongo_uri, db_name)  # reads the environment like the served app
    make_user(app, "sam", "segmenter")
    try:
        response = login(app.test_client(), "sam")
    finally:
        with app.app_context():
            db.client().drop_database(db_name)

    assert response.status_code == 302
    cookie = [v for k, v in response.headers.items() if k.lower() == "set-cookie" and v.startswith("session=")]
    attributes = [part.strip().lower() for part in cookie[0].split(";")]
    assert {"secure", "httponly", "samesite=lax"} <= set(attributes), attributes


def test_home_page_shows_the_logged_in_user(client, seg):
    login(client, "sam")

    home = client.get("/")

    assert home.status_code == 200
    assert "sam" in home.get_data(as_text=True)


@pytest.mark.parametrize("username,password", [
    ("sam", "wrong-password"),
    ("sam", ""),
    ("ghost", PASSWORD),
    ("SAM", PASSWORD),
    ("sam", PASSWORD.upper()),
])
def test_wrong_credentials_are_401_page_and_no_session(client, seg, username, password):
    response = login(client, username, password)

    assert response.status_code == 401
    assert response.mimetype == "text/html"
    assert "Wrong username or password" in response.get_data(as_text=True)
    assert_error(client.get("/api/batches"), 401)


def test_failed_login_page_escapes_what_was_typed(client, seg):
    response = login(client, "<script>alert(1)</script>", "x")

    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html


def test_inactive_user_cannot_log_in(app, client, database):
    make_user(app, "gone", "segmenter")
    database.users.update_one({"username": "gone"}, {"$set": {"active": False}})

    response = login(client, "gone")

    assert response.status_code == 401
    assert_error(client.get("/api/batches"), 401)


def test_login_without_csrf_token_is_refused(client, seg):
    client.get("/login")

    response = client.post("/login", data={"username": "sam", "password": PASSWORD})

    assert response.status_code == 400
    assert_error(client.get("/api/batches"), 401)


def test_login_with_operator_shaped_form_values_fails(client, seg):
    page = client.get("/login")
    token = hidden_csrf(page.get_data(as_text=True))

    response = client.post("/login", data={"username[$ne]": "x", "username": "sam",
                                           "password[$ne]": "x", "csrf_token": token})

    assert response.status_code == 401
    assert_error(client.get("/api/batches"), 401)


@pytest.mark.parametrize("target", [
    "//evil.example",
    "//evil.example/path",
    "///evil.example",
    "////evil.example/x",
    "https://evil.example/",
    "http:evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "/\t/evil.example",
    "evil.example",
    "javascript:alert(1)",
    "/\r\nSet-Cookie: x=1",
    "/batches\nLocation: https://evil.example",
    "/\x00",
])
def test_login_never_redirects_off_site(client, seg, target):
    response = login(client, "sam", next_url=target)

    assert response.status_code == 302
    location = response.headers["Location"]
    # Browsers treat "\" like "/" and drop tabs and newlines: normalise as they do.
    normalised = re.sub(r"[\t\r\n]", "", location).replace("\\", "/")
    parts = urlsplit(normalised)
    assert parts.netloc in ("", "localhost"), location
    assert parts.scheme in ("", "http"), location
    assert parts.path.startswith("/") and not parts.path.startswith("//"), location
    if "\\" not in target:
        assert parts.path == "/", location
    # A backslash may survive only percent-encoded (Werkzeug quotes it in Location), which
    # browsers keep as a same-site path.
    assert "\\" not in location, location
    assert client.get("/api/batches").status_code == 200


def test_login_follows_a_same_site_next(client, seg):
    response = login(client, "sam", next_url="/?status=assigned")

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert (location.path, location.query) == ("/", "status=assigned")


def test_logout_clears_the_session(client, seg):
    login(client, "sam")
    assert client.get("/api/batches").status_code == 200
    token = page_csrf(client)

    response = client.post("/logout", data={"csrf_token": token})

    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"
    assert_error(client.get("/api/batches"), 401)
    assert client.get("/").status_code == 302


def test_session_of_a_deleted_account_does_not_pass_to_a_new_account_of_the_same_name(
        app, client, database, seg):
    login(client, "sam")
    assert client.get("/api/batches").status_code == 200
    database.users.delete_one({"username": "sam"})
    make_user(app, "sam", "lead")  # a new account, another person, the old name
    with app.app_context():
        caches().users.clear()

    assert_error(client.get("/api/batches"), 401)
    assert client.get("/").status_code == 302


def test_logout_without_a_session_just_goes_to_the_login_page(client):
    response = client.post("/logout")

    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"


def test_logout_needs_the_csrf_token(client, seg):
    login(client, "sam")

    response = client.post("/logout")

    assert response.status_code == 400
    assert client.get("/api/batches").status_code == 200


# --------------------------------------------------------------------------- CSRF


def test_cookie_write_without_csrf_header_is_400_and_changes_nothing(client, database, lead, seg):
    insert_batches(database, [1])
    assert login(client, "lead1").status_code == 302
    before = snapshot(database)

    response = client.patch("/api/batches/batch_0001", json={"assignee": "sam"})

    assert_error(response, 400, "csrf_failed")
    assert snapshot(database) == before


@pytest.mark.parametrize("csrf", [None, "garbage"])
def test_every_cookie_authenticated_write_needs_csrf(app, client, database, lead, seg, csrf):
    """Every route that writes, found from the URL map, refuses a lead's session without a
    valid CSRF token and changes nothing. (The same writes with the token, and with a Bearer
    token and no CSRF token, succeed in tests/test_access_matrix.py.)"""
    insert_batches(database, [1, 2])
    login(client, "lead1")
    routes = unsafe_routes(app)
    assert ("PATCH", "/api/batches/batch_0001") in routes and ("POST", "/api/masks") in routes
    assert ("POST", "/logout") in routes and len(routes) >= 7
    before = (snapshot(database), database["masks.files"].count_documents({}),
              database.jobs.count_documents({}))
    headers = {} if csrf is None else {"X-CSRFToken": csrf}

    for method, url in routes:
        response = client.open(url, method=method, json={}, headers=headers)
        assert_error(response, 400, "csrf_failed")

    assert (snapshot(database), database["masks.files"].count_documents({}),
            database.jobs.count_documents({})) == before
    assert client.get("/api/batches").status_code == 200  # still logged in: logout was refused too


@pytest.mark.parametrize("token", ["garbage", "", "IjEyMyI.aGVsbG8.d29ybGQ"])
def test_cookie_write_with_a_bad_csrf_header_is_400(client, database, lead, seg, token):
    insert_batches(database, [1])
    login(client, "lead1")
    before = snapshot(database)

    response = client.patch("/api/batches/batch_0001", json={"assignee": "sam"},
                            headers={"X-CSRFToken": token})

    assert_error(response, 400, "csrf_failed")
    assert snapshot(database) == before


def test_csrf_token_of_another_session_is_refused(app, client, database, lead, seg):
    insert_batches(database, [1])
    other = app.test_client()
    login(other, "sam")
    foreign_token = page_csrf(other)
    login(client, "lead1")
    before = snapshot(database)

    response = client.patch("/api/batches/batch_0001", json={"assignee": "sam"},
                            headers={"X-CSRFToken": foreign_token})

    assert_error(response, 400, "csrf_failed")
    assert snapshot(database) == before


def test_cookie_write_with_the_page_csrf_token_succeeds(client, database, lead, seg):
    insert_batches(database, [1])
    login(client, "lead1")
    token = page_csrf(client)

    response = client.patch("/api/batches/batch_0001", json={"assignee": "sam"},
                            headers={"X-CSRFToken": token})

    assert response.status_code == 200, response.get_data(as_text=True)
    doc = database.batches.find_one({"id": "batch_0001"})
    assert (doc["assignee"], doc["status"]) == ("sam", "assigned")


def test_cookie_bulk_assign_needs_csrf(client, database, lead, seg):
    insert_batches(database, [1, 2])
    login(client, "lead1")
    before = snapshot(database)
    body = {"ids": ["batch_0001", "batch_0002"], "assignee": "sam"}

    refused = client.post("/api/batches/assign", json=body)
    assert_error(refused, 400, "csrf_failed")
    assert snapshot(database) == before

    accepted = client.post("/api/batches/assign", json=body,
                           headers={"X-CSRFToken": page_csrf(client)})
    assert accepted.status_code == 200, accepted.get_data(as_text=True)
    assert database.batches.count_documents({"assignee": "sam"}) == 2


def test_cookie_reads_need_no_csrf(client, database, seg):
    insert_batches(database, [1])
    login(client, "sam")

    assert client.get("/api/batches").status_code == 200
    assert client.get("/api/batches/batch_0001").status_code == 200


def test_segmenter_session_gets_csrf_checked_before_role(client, database, seg):
    insert_batches(database, [1])
    login(client, "sam")
    token = page_csrf(client)
    before = snapshot(database)

    without = client.post("/api/batches/assign", json={"ids": ["batch_0001"], "assignee": "sam"})
    with_token = client.post("/api/batches/assign", json={"ids": ["batch_0001"], "assignee": "sam"},
                             headers={"X-CSRFToken": token})

    assert_error(without, 400, "csrf_failed")
    assert_error(with_token, 403, "forbidden")
    assert snapshot(database) == before


def test_bearer_writes_need_no_csrf(client, database, lead, seg):
    insert_batches(database, [1])

    response = client.patch("/api/batches/batch_0001", json={"assignee": "sam"}, headers=lead)

    assert response.status_code == 200, response.get_data(as_text=True)
    assert database.batches.find_one({"id": "batch_0001"})["assignee"] == "sam"


def test_bearer_wins_over_a_session_cookie_and_needs_no_csrf(client, database, lead, seg):
    insert_batches(database, [1])
    login(client, "sam")  # a segmenter's session; the Bearer token is the lead's

    response = client.patch("/api/batches/batch_0001", json={"assignee": "sam"}, headers=lead)

    assert response.status_code == 200, response.get_data(as_text=True)
    assert database.batches.find_one({"id": "batch_0001"})["assignee"] == "sam"


# --------------------------------------------------------------------------- secrets at rest


def test_passwords_are_stored_only_as_hashes(app, database, real_hashing):
    make_user(app, "pat", "segmenter", password="S3cret-Passw0rd!")

    doc = database.users.find_one({"username": "pat"}, {"_id": 0})

    assert "password" not in doc
    # Werkzeug's scrypt: "scrypt:N:r:p$salt$hex digest", at least its default cost.
    method, salt, digest = doc["password_hash"].split("$")
    name, n, r, p = method.split(":")
    assert name == "scrypt" and int(n) >= 2 ** 15 and int(r) >= 8 and int(p) >= 1
    assert len(salt) >= 16 and len(bytes.fromhex(digest)) == 64
    assert "S3cret-Passw0rd!" not in repr(doc)
    with app.app_context():
        assert auth.check_password("pat", "S3cret-Passw0rd!")["username"] == "pat"
        assert auth.check_password("pat", "wrong") is None


def test_same_password_gives_different_hashes(app, database):
    make_user(app, "u1", "segmenter", password="same-password")
    make_user(app, "u2", "segmenter", password="same-password")

    hashes = [d["password_hash"] for d in database.users.find({"username": {"$in": ["u1", "u2"]}})]

    assert len(set(hashes)) == 2


def test_api_token_is_stored_only_as_its_sha256(app, database):
    headers = make_user(app, "tok", "lead")
    token = headers["Authorization"].split(" ", 1)[1]

    doc = database.users.find_one({"username": "tok"}, {"_id": 0})

    assert len(token) >= 32
    assert doc["token_hash"] != token
    assert doc["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(doc)
    assert "token" not in doc


def test_users_are_never_listed_with_secrets(client, database, lead, seg):
    insert_batches(database, [1])
    login(client, "sam")

    html = client.get("/").get_data(as_text=True)
    stored = database.users.find_one({"username": "sam"})

    assert stored["password_hash"] not in html
    assert stored["token_hash"] not in html


def test_no_password_or_token_is_stored_in_clear_anywhere(app, client, database, real_hashing):
    """After a login, a failed login and a token request, no collection holds either secret."""
    password = "Pl4in-Text-Passw0rd!"
    with app.app_context():
        auth.create_user("pat", "lead", password=password)
        token = auth.create_token("pat")
    assert login(client, "pat", password).status_code == 302
    assert login(app.test_client(), "pat", password + "?").status_code == 401
    assert client.get("/api/batches", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    dump = {name: repr(list(database[name].find())) for name in database.list_collection_names()}

    assert {"users", "rate_limit_windows"} <= set(dump)  # the scan sees the login records too
    for name, text in dump.items():
        assert password not in text, name
        assert token not in text, name
        assert "'password':" not in text, name
