"""Who may call what: every route × every kind of identity, as one table (SPEC §5, §11).

Columns (identities):
  anon       no credentials at all
  bad_token  `Authorization: Bearer` with a token that was never issued
  expired    a real session cookie (made by POST /login) re-signed with a timestamp older
             than PERMANENT_SESSION_LIFETIME, with the app's own session serializer
  revoked    a lead whose account was deactivated after logging in and getting a token
  deleted    a lead whose user document was deleted after logging in and getting a token
  owner      segmenter `sam`, assignee of batch_0001
  other      segmenter `olga`, who owns no batch
  lead       lead `lead1`
revoked, deleted, owner, other and lead are each tried twice: with their Bearer token (no
CSRF token: scripts need none) and with their session cookie (plus the page's CSRF token
on writes, as the browser sends it). Both must give the same answer.

Cells: an HTTP status; "302 /login" is a redirect to the login page (pages without an
identity, and logout), "302 /" one to the home page. Every cell runs against the same data,
reset before each call; a refused call (401/403) must change nothing.
CSRF itself, cookie flags and secrets at rest are covered by tests/test_auth.py; login
throttling by tests/test_rate_limit.py.
"""
import io
import time
import uuid
from urllib.parse import urlsplit

import pytest

import db
from checks import assert_error, snapshot
from factories import bump_cache_version, insert_batches, insert_mask_files, png_bytes, store_mask
from helpers import indexed_app, make_user
from test_auth import PASSWORD, hidden_csrf, login, meta_csrf

LOGIN = "302 /login"
HOME = "302 /"
IDENTITIES = ("anon", "bad_token", "expired", "revoked", "deleted", "owner", "other", "lead")
TRANSPORTS = {"anon": ("none",), "bad_token": ("token",), "expired": ("session",)}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

# method, url: anon, bad_token, expired, revoked, deleted, owner, other, lead
MATRIX = [
    # JSON API: every identity-less call is 401, lead-only calls are 403 for segmenters.
    ("GET", "/api/batches",                  401, 401, 401, 401, 401, 200, 200, 200),
    ("GET", "/api/batches/batch_0001",       401, 401, 401, 401, 401, 200, 200, 200),
    ("PATCH", "/api/batches/batch_0001",     401, 401, 401, 401, 401, 200, 403, 200),
    ("POST", "/api/batches/assign",          401, 401, 401, 401, 401, 403, 403, 200),
    ("GET", "/api/export/batches.csv",       401, 401, 401, 401, 401, 200, 200, 200),
    ("POST", "/api/sync-batch-files",        401, 401, 401, 401, 401, 403, 403, 202),
    ("POST", "/api/auto-create-batches",     401, 401, 401, 401, 401, 403, 403, 202),
    ("GET", "/api/check-mongo-files",        401, 401, 401, 401, 401, 403, 403, 200),
    ("POST", "/api/check-mongo-files",       401, 401, 401, 401, 401, 403, 403, 202),
    ("GET", "/api/jobs",                     401, 401, 401, 401, 401, 403, 403, 200),
    ("GET", "/api/jobs/{job}",               401, 401, 401, 401, 401, 403, 403, 200),
    # The job is done: a lead may ask, and is told it is too late.
    ("POST", "/api/jobs/{job}/cancel",       401, 401, 401, 401, 401, 403, 403, 409),
    ("POST", "/api/masks",                   401, 401, 401, 401, 401, 201, 403, 201),
    ("GET", "/api/masks/{mask}",             401, 401, 401, 401, 401, 200, 200, 200),
    ("GET", "/api/masks/{image}/preview",    401, 401, 401, 401, 401, 200, 200, 200),
    ("GET", "/api/review/next",              401, 401, 401, 401, 401, 403, 403, 200),
    ("GET", "/api/metrics",                  401, 401, 401, 401, 401, 200, 200, 200),
    ("GET", "/api/users",                    401, 401, 401, 401, 401, 403, 403, 200),
    ("GET", "/api/users/workload",           401, 401, 401, 401, 401, 403, 403, 200),
    ("GET", "/api/me/summary",               401, 401, 401, 401, 401, 200, 200, 200),
    # Public: the API description and its browsable page, probes, static files, the login page.
    ("GET", "/api/openapi.json",             200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/api/openapi.yaml",             200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/api/docs/",                    200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/healthz",                      200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/metrics",                      200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/static/app.css",               200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/login",                        200, 200, 200, 200, 200, 200, 200, 200),
    # The language selector: anyone, with the page's CSRF token when sent with a cookie.
    ("POST", "/locale",                      400, HOME, 400, HOME, HOME, HOME, HOME, HOME),
    # A wrong password, posted from the login page: refused whoever is asking.
    ("POST", "/login",                       401, 401, 401, 401, 401, 401, 401, 401),
    ("POST", "/logout",                      LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN),
    # Pages: no identity → the login page; leads have no queue of their own.
    ("GET", "/",                             LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, 200, 200, 200),
    ("GET", "/batches",                      LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, 200, 200, 200),
    ("GET", "/batches/batch_0001",           LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, 200, 200, 200),
    ("GET", "/my",                           LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, 200, 200, HOME),
    ("GET", "/review",                       LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, HOME, HOME, "302 /batches/batch_0003"),
    ("GET", "/jobs",                         LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, HOME, HOME, 200),
]

def request_body(method, url):
    """The body each write is sent with: valid, so only the identity decides the answer."""
    if url == "/api/batches/batch_0001":
        return {"json": {"status": "in_progress"}}
    if url == "/api/batches/assign":
        return {"json": {"ids": ["batch_0002"], "assignee": "sam"}}
    if url == "/locale":
        return {"data": {"locale": "es"}}
    if url == "/api/masks":
        return {"data": {"file": (io.BytesIO(b"mask-" + uuid.uuid4().bytes), "batch_0001_m.png"),
                         "batch_id": "batch_0001"},
                "content_type": "multipart/form-data"}
    return {}


def cells():
    for method, url, *expected in MATRIX:
        for identity, want in zip(IDENTITIES, expected):
            for transport in TRANSPORTS.get(identity, ("token", "session")):
                yield pytest.param(method, url, identity, transport, want,
                                   id=f"{method} {url} {identity}-{transport}")


class World:
    """One app and database for the module: the users, their credentials, and the data."""

    def __init__(self, app):
        self.app = app
        self.tokens = {}
        self.sessions = {}  # identity -> (session cookie value, CSRF token of that session)
        self.ids = {"mask": None, "image": None, "job": None}
        self.session_records = []  # the server's records of the sessions above

    def reset_data(self):
        """The same batches, masks, live sessions and no login failures before every cell
        (a logout cell ends its session on the server)."""
        from PIL import Image

        with self.app.app_context():
            database = db.database()
            for name in ("batches", "masks.files", "masks.chunks", "rate_limit_windows", "sessions",
                         "batch_history", "mask_previews"):
                database[name].delete_many({})
            database.jobs.delete_many({"state": {"$in": ["queued", "running"]}})  # started by a cell
            if self.session_records:
                database.sessions.insert_many(self.session_records)
            insert_batches(database, [1], assignee="sam", status="assigned")
            insert_batches(database, [2])
            insert_batches(database, [3], assignee="sam", status="completed")  # waiting for review
            self.ids["mask"] = str(insert_mask_files(database, ["batch_0001_seed.png"])[0])
            self.ids["image"] = str(store_mask(database, "batch_0001_img.png", png_bytes(Image.new("L", (8, 8)))))
        bump_cache_version(self.app)
        return database

    def state(self, database):
        return (snapshot(database), database["masks.files"].count_documents({}),
                database.jobs.count_documents({}))


def session_of(app, username):
    """Log in through the form; returns (cookie value, CSRF token of the logged-in page)."""
    client = app.test_client()
    assert login(client, username).status_code == 302
    home = client.get("/")
    assert home.status_code == 200
    return client.get_cookie("session").value, meta_csrf(home.get_data(as_text=True))


def resign(app, cookie, age_seconds):
    """The same session payload signed as if `age_seconds` ago (the app's own serializer)."""
    serializer = app.session_interface.get_signing_serializer(app)
    payload = serializer.loads(cookie)
    signer = serializer.make_signer(serializer.salt)
    signer.get_timestamp = lambda: int(time.time() - age_seconds)
    return signer.sign(serializer.dump_payload(payload)).decode()


@pytest.fixture(scope="module")
def world(mongo_uri):
    db_name = f"segdash_matrix_{uuid.uuid4().hex[:8]}"
    app = indexed_app(mongo_uri, db_name)
    world = World(app)
    users = {"owner": ("sam", "segmenter"), "other": ("olga", "segmenter"),
             "lead": ("lead1", "lead"), "revoked": ("rita", "lead"), "deleted": ("dave", "lead")}
    for identity, (username, role) in users.items():
        world.tokens[identity] = make_user(app, username, role)["Authorization"]
    world.tokens["bad_token"] = "Bearer not-a-token-that-was-ever-issued"
    world.reset_data()
    for identity, (username, _role) in users.items():
        world.sessions[identity] = session_of(app, username)
    fresh_cookie, csrf = world.sessions["owner"]
    age = app.permanent_session_lifetime.total_seconds() + 60
    world.sessions["expired"] = (resign(app, fresh_cookie, age), csrf)
    world.fresh_owner_cookie = resign(app, fresh_cookie, 0)
    with app.app_context():
        world.session_records = list(db.sessions().find({}))

    client = app.test_client()
    job = client.post("/api/sync-batch-files", headers={"Authorization": world.tokens["lead"]})
    assert job.status_code == 202, job.get_data(as_text=True)
    world.ids["job"] = job.get_json()["job_id"]
    with app.app_context():
        import jobrunner
        assert jobrunner.Runner(app).drain() == 1

    # Before revoking: both identities work (so their column below is not a setup mistake).
    for identity in ("revoked", "deleted"):
        assert client.get("/api/batches", headers={"Authorization": world.tokens[identity]}).status_code == 200
        assert call(world, identity, "session", "GET", "/api/batches").status_code == 200
    with app.app_context():
        db.users().update_one({"username": "rita"}, {"$set": {"active": False}})
        db.users().delete_one({"username": "dave"})
    bump_cache_version(app)  # as the app's own user writes do
    yield world
    with app.app_context():
        db.client().drop_database(db_name)


def call(world, identity, transport, method, url):
    client = world.app.test_client()
    headers = {}
    if transport == "token":
        headers["Authorization"] = world.tokens[identity]
    elif transport == "session":
        cookie, csrf = world.sessions[identity]
        client.set_cookie("session", cookie)
        if method not in SAFE_METHODS:
            headers["X-CSRFToken"] = csrf
    if (method, url) == ("POST", "/login"):
        token = hidden_csrf(client.get("/login", headers=headers).get_data(as_text=True))
        return client.post("/login", headers=headers,
                           data={"username": "sam", "password": "wrong-" + PASSWORD, "csrf_token": token})
    return client.open(url.format(**world.ids), method=method, headers=headers,
                       **request_body(method, url))


@pytest.mark.parametrize("method,url,identity,transport,expected", list(cells()))
def test_access(world, method, url, identity, transport, expected):
    database = world.reset_data()
    before = world.state(database)

    response = call(world, identity, transport, method, url)

    if isinstance(expected, str):
        status, path = expected.split(" ")
        assert response.status_code == int(status), response.get_data(as_text=True)[:300]
        location = urlsplit(response.headers["Location"])
        assert location.path == path, response.headers["Location"]
        if path == "/login" and method == "GET":
            assert "next=" in location.query
    else:
        assert response.status_code == expected, response.get_data(as_text=True)[:300]
    if response.status_code == 401 and url.startswith("/api/"):
        assert_error(response, 401, "unauthorized")
    if response.status_code == 403:
        assert_error(response, 403, "forbidden")
    if response.status_code in (401, 403) or isinstance(expected, str):
        assert world.state(database) == before


def test_the_matrix_covers_every_route(world):
    """A new route (or method) without a row here fails: give it a policy first."""
    adapter = world.app.url_map.bind("localhost")
    covered = set()
    for method, url, *expected in MATRIX:
        assert len(expected) == len(IDENTITIES), url
        endpoint, _args = adapter.match(url.format(**world.ids), method=method)
        covered.add((endpoint, method))
    routes = {(rule.endpoint, method) for rule in world.app.url_map.iter_rules()
              for method in rule.methods - {"HEAD", "OPTIONS"}}

    assert routes - covered == set()
    assert len(MATRIX) == len(routes)


def test_expired_session_is_anonymous_while_the_same_cookie_signed_now_works(world):
    """The expired cookie differs from a working one only in its signing time."""
    fresh, expired = world.app.test_client(), world.app.test_client()
    fresh.set_cookie("session", world.fresh_owner_cookie)
    expired.set_cookie("session", world.sessions["expired"][0])

    assert fresh.get("/api/batches").status_code == 200
    assert_error(expired.get("/api/batches"), 401, "unauthorized")
    page = expired.get("/my")
    assert page.status_code == 302 and urlsplit(page.headers["Location"]).path == "/login"
