"""Bad input across the whole JSON API (SPEC §5, §11).

Every case is sent, as the role that may otherwise make the request, against a
small realistic dataset. Each must answer its specific 4xx with the one JSON
error shape (never a 500) and leave the whole database exactly as it was:
batches, users and tokens, jobs, GridFS files and chunks, the cache version and
the indexes.
"""
import io
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from itsdangerous import URLSafeSerializer

from checks import assert_error, database_snapshot
from factories import insert_batches, insert_mask_files, link_files, png_bytes, store_mask
from helpers import build_app, make_user

LEAD, SEG, ANONYMOUS = "lead", "seg", None
LONG = "x" * 100_000
UNKNOWN_OID = "0123456789abcdef01234567"
# Stored files for the preview cases: an image, a file that is no image, a cut image, a bomb.
IMAGE_OID, TEXT_OID, BROKEN_OID, BOMB_OID = (f"5eed0000000000000000000{n}" for n in range(1, 5))
JSON_ACCEPT = {"Accept": "application/json"}
SMALL_UPLOAD_LIMIT = 1000  # bytes, for the oversized-request cases
# Public, read-only and without parameters: the OpenAPI document and its browsable page.
TAKE_NO_INPUT = {"docs.openapi_json", "docs.openapi_yaml", "docs_ui.show"}
CURSOR_SALT = "segdash.cursor"  # pagination.py's salt: forged cursors need it to get past the signature


# ----------------------------------------------------------------------------- the dataset


def seed(app, database):
    """Users, batches in every status (some assigned), linked and unlinked mask files, a job.

    Returns the Bearer headers of lead1 (lead), sam (segmenter, owns batches 4-6) and
    nobody (anonymous); olga is the other segmenter, gone an inactive one.
    """
    import jobs
    from timeutil import utcnow

    now = utcnow()
    headers = {LEAD: make_user(app, "lead1", "lead"), SEG: make_user(app, "sam", "segmenter"),
               ANONYMOUS: {}}
    make_user(app, "olga", "segmenter")
    make_user(app, "gone", "segmenter")
    database.users.update_one({"username": "gone"}, {"$set": {"active": False}})
    insert_batches(database, [1, 2, 3])
    insert_batches(database, [4], assignee="sam", status="assigned")
    insert_batches(database, [5], assignee="sam", status="in_progress")
    insert_batches(database, [6], assignee="sam", status="completed")
    insert_batches(database, [7], assignee="olga", status="reviewed")
    insert_batches(database, [8], assignee="olga", status="rejected")
    insert_batches(database, [9], assignee="olga", status="assigned")
    database.batches.update_many({"status": {"$in": ["completed", "reviewed"]}},
                                 {"$set": {"metadata.completed_at": now - timedelta(days=1)}})
    linked = insert_mask_files(database, ["batch_0005/m1.png", "batch_0005/m2.png"],
                               metadata={"batch_id": "batch_0005"})
    link_files(database, "batch_0005", linked)
    insert_mask_files(database, ["batch_0002/a.png", "b0042_x.png", "notes.png"],
                      content_prefix=b"unlinked")
    from PIL import Image

    from test_previews import bomb

    image = png_bytes(Image.linear_gradient("L"))
    for file_id, name, content in [(IMAGE_OID, "batch_0003/img.png", image), (TEXT_OID, "readme.png", b"text " * 9),
                                   (BROKEN_OID, "cut.png", image[:200]), (BOMB_OID, "bomb.png", bomb(9000, 9000))]:
        store_mask(database, name, content, file_id=file_id)
    with app.app_context():
        job = jobs.start_here("import", "lead1", total=3, unit="batches")
        jobs.finish(job, {"imported": 3})
    return headers


class Seeded:
    """One seeded database for the module (the cases change nothing), restored when one did."""

    def __init__(self, mongo_uri):
        import db

        self.mongo_uri = mongo_uri
        self.db_name = f"segdash_badinput_{uuid.uuid4().hex[:12]}"
        self.app = build_app(mongo_uri, self.db_name)
        self._small_app = None
        with self.app.app_context():
            self.database = db.database()
        self.reset()

    def reset(self):
        import db

        self.database.client.drop_database(self.db_name)
        with self.app.app_context():
            db.ensure_indexes()
        self.headers = seed(self.app, self.database)
        self.pristine = database_snapshot(self.database)

    def small_app(self):
        """The same database behind an app with a tiny MAX_CONTENT_LENGTH."""
        if self._small_app is None:
            self._small_app = build_app(self.mongo_uri, self.db_name, MAX_CONTENT_LENGTH=SMALL_UPLOAD_LIMIT)
        return self._small_app

    def drop(self):
        self.database.client.drop_database(self.db_name)


@pytest.fixture(scope="module")
def seeded(mongo_uri):
    found = Seeded(mongo_uri)
    yield found
    found.drop()


@dataclass
class World:
    """What a case is sent with: fresh test clients (no cookies from other cases) on the seeded data."""
    seeded: Seeded
    client: Any

    @property
    def database(self):
        return self.seeded.database

    @property
    def headers(self):
        return self.seeded.headers

    def client_for(self, case):
        return self.seeded.small_app().test_client() if case.small_app else self.client

    def cursor(self, role=LEAD):
        """A real `next_cursor` from the list (the page after batch_0002)."""
        body = self.client.get("/api/batches?per_page=2", headers=self.headers[role]).get_json()
        assert body["next_cursor"], body
        return body["next_cursor"]

    def login_csrf(self):
        page = self.client.get("/login")
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
        assert match, page.status_code
        return match.group(1)


@pytest.fixture
def world(seeded):
    assert database_snapshot(seeded.database) == seeded.pristine
    yield World(seeded=seeded, client=seeded.app.test_client())
    # A case that changed the data (a failure of its test, or a counted failed login)
    # must not leak into the next cases: they start from the seed again.
    if database_snapshot(seeded.database) != seeded.pristine:
        seeded.reset()


# ----------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    status: int
    code: str | None
    role: str | None
    small_app: bool = False
    request: dict = field(default_factory=dict)  # test-client keyword arguments; callables get the World
    also_writes: tuple = ()  # collections this rejection legitimately writes

    def send(self, world):
        kwargs = {key: self._resolve(value, world) for key, value in self.request.items()}
        if isinstance(kwargs.get("query_string"), dict):
            kwargs["query_string"] = {key: self._resolve(value, world)
                                      for key, value in kwargs["query_string"].items()}
        headers = {**world.headers[self.role], **kwargs.pop("headers", {})}
        return world.client_for(self).open(self.path, method=self.method, headers=headers, **kwargs)

    @staticmethod
    def _resolve(value, world):
        return value(world) if callable(value) else value


CASES = []


def case(case_id, method, path, status, code=None, role=LEAD, small_app=False, xfail=None, also_writes=(),
         **request):
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    CASES.append(pytest.param(Case(method, path, status, code, role, small_app, request, also_writes),
                              id=case_id, marks=marks))


def get(case_id, path, query, status, code=None, **options):
    case(case_id, "GET", path, status, code, query_string=query, **options)


def send_json(case_id, method, path, body, status, code=None, **options):
    case(case_id, method, path, status, code, json=body, **options)


def send_raw(case_id, method, path, data, content_type, status, code=None, **options):
    case(case_id, method, path, status, code, data=data, content_type=content_type, **options)


def multipart(fields):
    """Multipart form data built fresh for each send (file objects are read once)."""
    def build(_world):
        return {key: (io.BytesIO(value[0]), value[1]) if isinstance(value, tuple) else value
                for key, value in fields.items()}
    return build


def upload(case_id, fields, status, code=None, **options):
    case(case_id, "POST", "/api/masks", status, code, data=multipart(fields),
         content_type="multipart/form-data", **options)


def forged_cursor(payload, key="test-secret"):
    return lambda _world: URLSafeSerializer(key, salt=CURSOR_SALT).dumps(payload)


def tampered_payload(world):
    payload, _, signature = world.cursor().rpartition(".")
    return payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + signature


def tampered_signature(world):
    payload, _, signature = world.cursor().rpartition(".")
    return payload + "." + signature[:-1] + ("A" if signature[-1] != "A" else "B")


MASK = b"\x89PNG\r\n\x1a\n" + b"bad-input-matrix" * 8

# GET /api/batches: paging bounds and types.
BATCHES = "/api/batches"
for value in ["0", "201", "-1", "abc", "1e3", "1e2", "1.5", "", "0x10", "\u0663", "99999999999999999999", "--5",
              "5-"]:
    code = "out_of_range" if value in ("0", "201", "-1") else "invalid_parameter"
    get(f"list-per_page={value[:12]!r}", BATCHES, {"per_page": value}, 400, code)
for value in ["0", "-0", "1000001", "10" * 20, "two", "1,2"]:
    code = "out_of_range" if value in ("0", "-0", "1000001") else "invalid_parameter"
    get(f"list-page={value[:12]!r}", BATCHES, {"page": value}, 400, code)
get("list-hostile-request-id", BATCHES, {"per_page": "0"}, 400, "out_of_range",
    headers={"X-Request-ID": "<script>" + "x" * 10_000})
get("list-per_page-as-segmenter", BATCHES, {"per_page": "500"}, 400, "out_of_range", role=SEG)
# Cursors.
get("cursor-garbage", BATCHES, {"after": "abc"}, 400, "invalid_cursor")
get("cursor-plain-batch-id", BATCHES, {"after": "batch_0002"}, 400, "invalid_cursor")
get("cursor-too-long", BATCHES, {"after": "W10." + "x" * 600}, 400, "invalid_cursor")
get("cursor-tampered-payload", BATCHES, {"after": tampered_payload}, 400, "invalid_cursor")
get("cursor-tampered-signature", BATCHES, {"after": tampered_signature}, 400, "invalid_cursor")
get("cursor-signature-stripped", BATCHES, {"after": lambda w: w.cursor().rpartition(".")[0]}, 400,
    "invalid_cursor")
get("cursor-other-key", BATCHES, {"after": forged_cursor(["batch_0002", 2], key="not-the-secret")},
    400, "invalid_cursor")
get("cursor-with-page", BATCHES, {"after": lambda w: w.cursor(), "page": "2"}, 400, "invalid_parameter")
get("cursor-twice", BATCHES, {"after": lambda w: [w.cursor(), w.cursor()]}, 400, "invalid_parameter")
get("cursor-signed-operator-id", BATCHES, {"after": forged_cursor([{"$gt": ""}, 2])}, 400,
    "invalid_cursor")
get("cursor-signed-page-0", BATCHES, {"after": forged_cursor(["batch_0002", 0])}, 400, "invalid_cursor")
get("cursor-signed-string", BATCHES, {"after": forged_cursor("batch_0002")}, 400, "invalid_cursor")
get("cursor-signed-null-id", BATCHES, {"after": forged_cursor([None, 2])}, 400, "invalid_cursor")
get("cursor-signed-bool-page", BATCHES, {"after": forged_cursor(["batch_0002", True])}, 400,
    "invalid_cursor")
# Filters.
get("list-status-unknown", BATCHES, {"status": "done"}, 400, "invalid_parameter")
get("list-status-uppercase", BATCHES, {"status": "PENDING"}, 400, "invalid_parameter")
get("list-status-emoji", BATCHES, {"status": "\U0001F600"}, 400, "invalid_parameter")
get("list-status-nul", BATCHES, {"status": "pending\x00"}, 400, "invalid_value")
get("list-assignee-100k", BATCHES, {"assignee": LONG}, 400, "too_long")
get("list-assignee-crlf", BATCHES, {"assignee": "sam\r\nX-Injected: 1"}, 400, "invalid_value")
get("list-q-nul", BATCHES, {"q": "batch\x00"}, 400, "invalid_value")
get("list-q-del", BATCHES, {"q": "a\x7f"}, 400, "invalid_value")
get("list-q-100k", BATCHES, {"q": LONG}, 400, "too_long", role=SEG)
# Sort.
get("list-sort-unknown", BATCHES, {"sort": "secret"}, 400, "invalid_parameter")
get("list-sort-operator", BATCHES, {"sort": "--id"}, 400, "invalid_parameter")
get("list-sort-cursor-of-another-sort", BATCHES, {"sort": "name", "after": forged_cursor(["batch_0002", 2, "id"])},
    400, "invalid_cursor")
get("export-sort-unknown", "/api/export/batches.csv", {"sort": "number"}, 400, "invalid_parameter")

# GET /api/batches/<id>
for name, raw in [("unknown", "batch_0999"), ("traversal", "../../etc/passwd"),
                  ("nul", "batch_0001%00"), ("huge-number", "9" * 40), ("100k", LONG),
                  ("operator", '{"$gt":""}'), ("rtl", "\u202ebatch_0001"), ("arabic-digits", "b\u0661")]:
    get(f"detail-{name}", f"{BATCHES}/{raw}", None, 404, "not_found")

# PATCH /api/batches/<id>
PENDING, ASSIGNED, IN_PROGRESS, COMPLETED, REVIEWED = (
    f"{BATCHES}/batch_0001", f"{BATCHES}/batch_0004", f"{BATCHES}/batch_0005",
    f"{BATCHES}/batch_0006", f"{BATCHES}/batch_0007")
send_raw("patch-malformed-json", "PATCH", ASSIGNED, '{"status": "in_progress"', "application/json", 400,
         "invalid_json")
send_raw("patch-deeply-nested-json", "PATCH", ASSIGNED, "[" * 100_000 + "]" * 100_000,
         "application/json", 400, "invalid_json")
send_raw("patch-invalid-utf8", "PATCH", ASSIGNED, b'{"status": "\xff\xfe"}', "application/json", 400,
         "invalid_json")
send_raw("patch-form-body", "PATCH", ASSIGNED, "status=in_progress", "application/x-www-form-urlencoded",
         400, "invalid_json")
send_raw("patch-no-content-type", "PATCH", ASSIGNED, '{"status": "in_progress"}', None, 400,
         "invalid_json")
for name, body in [("list", ["status", "in_progress"]), ("string", "in_progress"), ("number", 7),
                   ("null", None), ("bool", True)]:
    send_raw(f"patch-body-{name}", "PATCH", ASSIGNED,
             json.dumps(body), "application/json", 400,
             "invalid_json")
send_json("patch-empty-object", "PATCH", ASSIGNED, {}, 400, "invalid_value")
send_json("patch-unknown-key", "PATCH", ASSIGNED, {"mask_count": 99}, 400, "unknown_field")
send_json("patch-dollar-key", "PATCH", ASSIGNED, {"$set": {"status": "reviewed"}}, 400, "unknown_field")
send_json("patch-dotted-key", "PATCH", ASSIGNED, {"metadata.source": "x"}, 400, "unknown_field")
send_json("patch-status-unknown", "PATCH", ASSIGNED, {"status": "done"}, 400, "invalid_status")
send_json("patch-status-lookalike", "PATCH", ASSIGNED, {"status": "in_pr\u043egress"}, 400, "invalid_status")
send_json("patch-status-trailing-space", "PATCH", ASSIGNED, {"status": "in_progress "}, 400,
          "invalid_status")
send_json("patch-status-number", "PATCH", ASSIGNED, {"status": 2}, 400, "invalid_type")
send_json("patch-status-bool", "PATCH", ASSIGNED, {"status": True}, 400, "invalid_type")
send_json("patch-status-list", "PATCH", ASSIGNED, {"status": ["in_progress"]}, 400, "invalid_type")
send_json("patch-status-operator", "PATCH", ASSIGNED, {"status": {"$gt": ""}}, 400, "invalid_type")
send_raw("patch-status-nan", "PATCH", ASSIGNED, '{"status": NaN}', "application/json", 400, "invalid_type")
send_raw("patch-duplicate-key-operator-last", "PATCH", ASSIGNED,
         '{"status": "in_progress", "status": {"$ne": null}}', "application/json", 400, "invalid_json")
send_json("patch-status-nul", "PATCH", ASSIGNED, {"status": "in_progress\x00"}, 400, "invalid_value")
send_json("patch-status-100k", "PATCH", ASSIGNED, {"status": LONG}, 400, "too_long")
send_json("patch-assignee-operator", "PATCH", PENDING, {"assignee": {"$ne": None}}, 400, "invalid_type")
send_json("patch-assignee-number", "PATCH", PENDING, {"assignee": 12}, 400, "invalid_type")
send_json("patch-assignee-list", "PATCH", PENDING, {"assignee": ["sam"]}, 400, "invalid_type")
send_json("patch-assignee-empty", "PATCH", PENDING, {"assignee": ""}, 400, "invalid_value")
send_json("patch-assignee-100k", "PATCH", PENDING, {"assignee": LONG}, 400, "too_long")
send_json("patch-assignee-unknown", "PATCH", PENDING, {"assignee": "ghost"}, 400, "invalid_assignee")
send_json("patch-assignee-inactive", "PATCH", PENDING, {"assignee": "gone"}, 400, "invalid_assignee")
send_json("patch-assignee-a-lead", "PATCH", PENDING, {"assignee": "lead1"}, 400, "invalid_assignee")
send_json("patch-assignee-rtl", "PATCH", PENDING, {"assignee": "\u202esam"}, 400, "invalid_assignee")
send_json("patch-assignee-emoji", "PATCH", PENDING, {"assignee": "sam\U0001F600"}, 400, "invalid_assignee")
send_json("patch-assignee-lone-surrogate", "PATCH", PENDING, {"assignee": "\ud800"}, 400,
          "invalid_assignee")
send_json("patch-assignee-regex", "PATCH", PENDING, {"assignee": "s.*"}, 400, "invalid_assignee")
send_json("patch-transition-pending-to-completed", "PATCH", PENDING, {"status": "completed"}, 409,
          "invalid_transition")
send_json("patch-transition-reviewed-to-rejected", "PATCH", REVIEWED, {"status": "rejected", "reason": "x"}, 409,
          "invalid_transition")
send_json("patch-reassign-completed", "PATCH", COMPLETED, {"assignee": "olga"}, 409, "invalid_transition")
send_json("patch-valid-assignee-invalid-status", "PATCH", PENDING, {"assignee": "sam", "status": "reviewed"},
          409, "invalid_transition")
send_json("patch-valid-status-operator-assignee", "PATCH", ASSIGNED,
          {"status": "in_progress", "assignee": {"$ne": None}}, 400, "invalid_type")
send_json("patch-unknown-batch", "PATCH", f"{BATCHES}/batch_0999", {"status": "in_progress"}, 404,
          "not_found")
send_json("patch-traversal-id", "PATCH", f"{BATCHES}/batch_0001/../batch_0004", {"status": "in_progress"},
          404, "not_found")
send_json("patch-segmenter-skips-a-step", "PATCH", ASSIGNED, {"status": "completed"}, 409,
          "invalid_transition", role=SEG)
send_json("patch-segmenter-status-operator", "PATCH", IN_PROGRESS, {"status": {"$in": ["completed"]}}, 400,
          "invalid_type", role=SEG)
send_json("patch-segmenter-unknown-key", "PATCH", IN_PROGRESS, {"status": "completed", "owner": "sam"}, 400,
          "unknown_field", role=SEG)
# Reasons (1 to 1,000 characters of text) and the incomplete-masks confirmation.
send_json("patch-reject-without-reason", "PATCH", COMPLETED, {"status": "rejected"}, 400, "reason_required")
send_json("patch-reopen-without-reason", "PATCH", REVIEWED, {"status": "in_progress"}, 400, "reason_required")
send_json("patch-reopen-review-without-reason", "PATCH", REVIEWED, {"status": "completed"}, 400,
          "reason_required")
for name, reason, code in [("empty", "", "invalid_value"), ("blank", " \n\t ", "invalid_value"),
                           ("1001", "r" * 1001, "too_long"), ("100k", LONG, "too_long"),
                           ("nul", "why\x00", "invalid_value"),
                           ("escape", "\x1b[31m", "invalid_value"), ("number", 7, "invalid_type"),
                           ("null", None, "invalid_type"), ("list", ["why"], "invalid_type"),
                           ("operator", {"$ne": None}, "invalid_type")]:
    send_json(f"patch-reject-reason-{name}", "PATCH", COMPLETED, {"status": "rejected", "reason": reason}, 400, code)
send_json("patch-reason-alone", "PATCH", COMPLETED, {"reason": "why"}, 400, "invalid_value")
for name, value in [("string", "true"), ("number", 1), ("null", None), ("operator", {"$ne": False})]:
    send_json(f"patch-confirm-incomplete-{name}", "PATCH", IN_PROGRESS,
              {"status": "completed", "confirm_incomplete": value}, 400, "invalid_type", role=SEG)
send_json("patch-segmenter-reject-own-work", "PATCH", COMPLETED, {"status": "rejected", "reason": "mine"}, 403,
          "forbidden", role=SEG)
send_json("patch-oversized-body", "PATCH", ASSIGNED, {"status": "in_progress", "pad": "x" * 5000}, 413,
          "request_entity_too_large", small_app=True)

# POST /api/batches/assign
ASSIGN = f"{BATCHES}/assign"
for name, body, code in [
    ("ids-operator", {"ids": [{"$gt": ""}], "assignee": "sam"}, "invalid_batch_id"),
    ("ids-operator-object", {"ids": {"$gt": ""}, "assignee": "sam"}, "invalid_type"),
    ("ids-string", {"ids": "batch_0001", "assignee": "sam"}, "invalid_type"),
    ("ids-empty", {"ids": [], "assignee": "sam"}, "invalid_type"),
    ("ids-null", {"ids": None, "assignee": "sam"}, "invalid_type"),
    ("ids-number", {"ids": [1], "assignee": "sam"}, "invalid_batch_id"),
    ("ids-bool", {"ids": [True], "assignee": "sam"}, "invalid_batch_id"),
    ("ids-nested-list", {"ids": [["batch_0001"]], "assignee": "sam"}, "invalid_batch_id"),
    ("ids-nul", {"ids": ["batch_0001\x00"], "assignee": "sam"}, "invalid_batch_id"),
    ("ids-arabic-digits", {"ids": ["batch_\u0660\u0660\u0660\u0661"], "assignee": "sam"}, "invalid_batch_id"),
    ("ids-100k", {"ids": [LONG], "assignee": "sam"}, "invalid_batch_id"),
    ("ids-one-bad-among-good", {"ids": ["batch_0001", "batch_0002", "../x"], "assignee": "sam"},
     "invalid_batch_id"),
    ("ids-deeply-nested", {"ids": [json.loads("[" * 900 + "]" * 900)], "assignee": "sam"},
     "invalid_batch_id"),
    ("ids-too-many", {"ids": [f"batch_{n:04d}" for n in range(5001)], "assignee": "sam"}, "too_many"),
    ("assignee-missing", {"ids": ["batch_0001"]}, "invalid_value"),
    ("assignee-operator", {"ids": ["batch_0001"], "assignee": {"$ne": None}}, "invalid_type"),
    ("assignee-bool", {"ids": ["batch_0001"], "assignee": False}, "invalid_type"),
    ("assignee-unknown", {"ids": ["batch_0001"], "assignee": "ghost"}, "invalid_assignee"),
    ("assignee-inactive", {"ids": ["batch_0001"], "assignee": "gone"}, "invalid_assignee"),
    ("unknown-key", {"ids": ["batch_0001"], "assignee": "sam", "status": "completed"}, "unknown_field"),
    ("dollar-key", {"ids": ["batch_0001"], "assignee": "sam", "$where": "1"}, "unknown_field"),
    ("dotted-key", {"ids": ["batch_0001"], "assignee": "sam", "metadata.source": "x"}, "unknown_field"),
    ("reason-empty", {"ids": ["batch_0001"], "assignee": "sam", "reason": ""}, "invalid_value"),
    ("reason-1001", {"ids": ["batch_0001"], "assignee": "sam", "reason": "r" * 1001}, "too_long"),
    ("reason-operator", {"ids": ["batch_0001"], "assignee": "sam", "reason": {"$ne": None}}, "invalid_type"),
    ("filter-and-ids", {"ids": ["batch_0001"], "filter": {}, "assignee": "sam"}, "invalid_value"),
    ("filter-not-object", {"filter": "pending", "assignee": "sam"}, "invalid_type"),
    ("filter-operator", {"filter": {"status": {"$ne": None}}, "assignee": "sam"}, "invalid_type"),
    ("filter-unknown-key", {"filter": {"number": 1}, "assignee": "sam"}, "unknown_field"),
    ("filter-status-unknown", {"filter": {"status": "done"}, "assignee": "sam"}, "invalid_status"),
    ("filter-assignee-unknown", {"filter": {"status": "pending"}, "assignee": "ghost"}, "invalid_assignee"),
]:
    send_json(f"assign-{name}", "POST", ASSIGN, body, 400, code)
send_raw("assign-malformed-json", "POST", ASSIGN, '{"ids": ["batch_0001"], "assignee": ', "application/json",
         400, "invalid_json")
send_raw("assign-list-body", "POST", ASSIGN, '["batch_0001"]', "application/json", 400, "invalid_json")
send_raw("assign-form-body", "POST", ASSIGN, "ids=batch_0001&assignee=sam", "application/x-www-form-urlencoded",
         400, "invalid_json")

# POST /api/sync-batch-files: no body, or an empty JSON object.
SYNC = "/api/sync-batch-files"
send_json("sync-unknown-key", "POST", SYNC, {"force": True}, 400, "unknown_field")
send_json("sync-dollar-key", "POST", SYNC, {"$where": "sleep(1000)"}, 400, "unknown_field")
send_json("sync-list-body", "POST", SYNC, ["batch_0002"], 400, "invalid_json")
send_raw("sync-null-body", "POST", SYNC, "null", "application/json", 400, "invalid_json")
send_raw("sync-malformed-json", "POST", SYNC, "{", "application/json", 400, "invalid_json")
send_raw("sync-form-body", "POST", SYNC, "force=1", "application/x-www-form-urlencoded", 400, "invalid_json")
send_raw("sync-oversized-body", "POST", SYNC, "{" + " " * 5000 + "}", "application/json", 413,
         "request_entity_too_large", small_app=True)

# POST /api/auto-create-batches
AUTO = "/api/auto-create-batches"
for name, limit in [("0", 0), ("negative", -1), ("string", "10"), ("fraction", 10.5), ("bool", True),
                    ("null", None), ("operator", {"$gt": 0}), ("above-max", 10_001), ("list", [5])]:
    send_json(f"auto-create-limit-{name}", "POST", AUTO, {"limit": limit}, 400, "out_of_range")
send_raw("auto-create-limit-400-digits", "POST", AUTO, '{"limit": %s}' % ("9" * 400), "application/json",
         400, "out_of_range")
send_raw("auto-create-limit-5000-digits", "POST", AUTO, '{"limit": %s}' % ("9" * 5000), "application/json",
         400, "invalid_json")
send_json("auto-create-unknown-key", "POST", AUTO, {"limit": 5, "status": "assigned"}, 400, "unknown_field")
send_json("auto-create-dotted-key", "POST", AUTO, {"metadata.source": "x"}, 400, "unknown_field")
send_json("auto-create-number-body", "POST", AUTO, 5, 400, "invalid_json")
send_raw("auto-create-form-body", "POST", AUTO, "limit=5", "application/x-www-form-urlencoded", 400,
         "invalid_json")
case("auto-create-query-limit-abc", "POST", AUTO, 400, "invalid_parameter", query_string={"limit": "abc"})
case("auto-create-query-limit-0", "POST", AUTO, 400, "out_of_range", query_string={"limit": "0"})
for path in (SYNC, AUTO):
    for value, code in [("31", "out_of_range"), ("-1", "out_of_range"), ("1.5", "invalid_parameter"),
                        ("x", "invalid_parameter")]:
        case(f"{path.rsplit('/', 1)[1]}-wait={value}", "POST", path, 400, code, query_string={"wait": value})

# A key given twice in one JSON object is refused like a repeated query parameter (the
# decoder would otherwise keep the last silently), at any depth, on every JSON endpoint.
for name, method, path, raw in [
        ("patch", "PATCH", ASSIGNED, '{"status": "in_progress", "status": "completed"}'),
        ("patch-assignee", "PATCH", PENDING, '{"assignee": "sam", "assignee": "olga"}'),
        ("assign", "POST", ASSIGN, '{"ids": ["batch_0001"], "assignee": "sam", "assignee": "olga"}'),
        ("assign-ids", "POST", ASSIGN, '{"ids": ["batch_0002"], "ids": ["batch_0001"], "assignee": "sam"}'),
        ("sync", "POST", SYNC, '{"a": 1, "a": 2}'),
        ("auto-create", "POST", AUTO, '{"limit": 5, "limit": 6}'),
        ("nested", "POST", ASSIGN, '{"ids": [{"x": 1, "x": 2}], "assignee": "sam"}'),
        ("escaped-twin", "PATCH", ASSIGNED, '{"status": "in_progress", "st\\u0061tus": "completed"}')]:
    send_raw(f"duplicate-key-{name}", method, path, raw, "application/json", 400, "invalid_json")

# GET /api/check-mongo-files
CHECK = "/api/check-mongo-files"
for value, code in [("0", "out_of_range"), ("10001", "out_of_range"), ("-5", "out_of_range"),
                    ("abc", "invalid_parameter"), ("1e3", "invalid_parameter"), (LONG, "invalid_parameter")]:
    get(f"check-limit={value[:8]!r}", CHECK, {"limit": value}, 400, code)
# POST /api/check-mongo-files: the same limit, a wait, no body fields.
case("check-job-limit-0", "POST", CHECK, 400, "out_of_range", query_string={"limit": "0"})
case("check-job-wait-99", "POST", CHECK, 400, "out_of_range", query_string={"wait": "99"})
send_json("check-job-unknown-key", "POST", CHECK, {"limit": 5}, 400, "unknown_field")

# GET /api/me/summary and /api/users/workload take no input; a write method is refused.
send_json("summary-post", "POST", "/api/me/summary", {}, 405, "method_not_allowed")
send_json("workload-post", "POST", "/api/users/workload", {}, 405, "method_not_allowed")

# GET /api/metrics takes no input; a write method is refused.
send_json("metrics-post", "POST", "/api/metrics", {"totals": {}}, 405, "method_not_allowed")
case("metrics-delete", "DELETE", "/api/metrics", 405, "method_not_allowed", role=SEG)

# POST /api/masks
upload("mask-missing-file-field", {"batch_id": "batch_0002"}, 400, "missing_file")
upload("mask-file-as-text-field", {"file": "not a file"}, 400, "missing_file")
upload("mask-empty-file", {"file": (b"", "empty.png")}, 400, "empty_file")
upload("mask-empty-file-hostile-name", {"file": (b"", "../../etc/passwd")}, 400, "empty_file")
upload("mask-empty-file-to-batch", {"file": (b"", "m.png"), "batch_id": "batch_0002"}, 400, "empty_file")
for name, filename in [("only-dots", "...."), ("dot-dot-path", "../../.."), ("nul", "\x00"),
                       ("crlf", "\r\n"), ("slashes", "///"), ("rtl-only", "\u202e\u202e"),
                       ("long-dots", "." * 100_000)]:
    upload(f"mask-name-{name}", {"file": (MASK, "mask.png"), "filename": filename}, 400, "invalid_filename")
upload("mask-no-filename", {"file": (MASK, "")}, 400, "invalid_filename")
upload("mask-part-name-dots", {"file": (MASK, "../..")}, 400, "invalid_filename")
upload("mask-part-name-nul-only", {"file": (MASK, "\x00\x00")}, 400, "invalid_filename")
for name, batch_id in [("garbage", "../../etc/passwd"), ("nul", "batch_0002\x00"),
                       ("operator-string", '{"$ne": null}'), ("100k", LONG),
                       ("header-injection", "batch_0002\r\nX-Injected: 1")]:
    upload(f"mask-batch_id-{name}", {"file": (MASK, "mask.png"), "batch_id": batch_id}, 400,
           "invalid_batch_id")
upload("mask-unknown-batch", {"file": (MASK, "mask.png"), "batch_id": "batch_0999"}, 404, "not_found")
upload("mask-segmenter-without-batch", {"file": (MASK, "mask.png")}, 400, "missing_batch_id", role=SEG)
upload("mask-segmenter-to-completed-batch", {"file": (MASK, "mask.png"), "batch_id": "batch_0006"}, 409,
       "batch_closed", role=SEG)
upload("mask-segmenter-empty-file", {"file": (b"", "mask.png"), "batch_id": "batch_0004"}, 400,
       "empty_file", role=SEG)
upload("mask-oversized", {"file": (MASK * 50, "big.png"), "batch_id": "batch_0002"}, 413,
       "request_entity_too_large", small_app=True)
send_json("mask-json-body", "POST", "/api/masks", {"file": "aGVsbG8=", "filename": "m.png"}, 400,
          "missing_file")
send_raw("mask-multipart-without-boundary", "POST", "/api/masks", b"--x\r\n\r\nabc",
         "multipart/form-data", 400, "missing_file")
send_raw("mask-multipart-garbage", "POST", "/api/masks", b"\x00\xff garbage",
         "multipart/form-data; boundary=zzz", 400, "missing_file")

# GET /api/masks/<id>
for name, raw in [("not-hex", "not-an-object-id"), ("24-non-hex", "z" * 24), ("12-chars", "abcdefghijkl"),
                  ("unknown", UNKNOWN_OID), ("nul", "%00"), ("100k", LONG), ("operator", '{"$gt":""}')]:
    get(f"mask-download-{name}", f"/api/masks/{raw}", None, 404, "not_found")
get("mask-download-unknown-as-segmenter", f"/api/masks/{UNKNOWN_OID}", None, 404, "not_found", role=SEG)

# GET /api/masks/<id>/preview
PREVIEW = f"/api/masks/{IMAGE_OID}/preview"
for value, code in [("15", "out_of_range"), ("1025", "out_of_range"), ("0", "out_of_range"), ("-256", "out_of_range"),
                    ("abc", "invalid_parameter"), ("", "invalid_parameter"), ("1.5", "invalid_parameter"),
                    ("1e3", "invalid_parameter"), (LONG, "invalid_parameter"), (["64", "128"], "invalid_parameter")]:
    get(f"preview-size={str(value)[:8]!r}", PREVIEW, {"size": value}, 400, code, role=SEG)
for name, raw in [("not-hex", "nope"), ("unknown", UNKNOWN_OID), ("100k", LONG), ("operator", '{"$gt":""}')]:
    get(f"preview-{name}", f"/api/masks/{raw}/preview", None, 404, "not_found")
get("preview-not-an-image", f"/api/masks/{TEXT_OID}/preview", None, 415, "not_an_image")
get("preview-broken-image", f"/api/masks/{BROKEN_OID}/preview", None, 422, "broken_image", role=SEG)
get("preview-bomb", f"/api/masks/{BOMB_OID}/preview", {"size": "1024"}, 422, "image_too_large")

# GET /api/review/next
for name, value, status, code in [("garbage", "nope", 404, "not_found"),
                                  ("operator", '{"$gt":""}', 404, "not_found"),
                                  ("nul", "b1\x00", 400, "invalid_value"),
                                  ("100k", LONG, 400, "too_long"),
                                  ("twice", ["b1", "b2"], 400, "invalid_parameter"),
                                  ("unknown", "batch_0999", 404, "not_found")]:
    get(f"review-next-after-{name}", "/api/review/next", {"after": value}, status, code)
# A write method is refused.
send_json("review-next-post", "POST", "/api/review/next", {"batch_id": "batch_0006"}, 405, "method_not_allowed")

# GET /api/export/batches.csv: the list's filters, answered as a JSON error.
EXPORT = "/api/export/batches.csv"
get("export-status-unknown", EXPORT, {"status": "done"}, 400, "invalid_parameter")
get("export-q-nul", EXPORT, {"q": "\x00"}, 400, "invalid_value", role=SEG)
get("export-assignee-100k", EXPORT, {"assignee": LONG}, 400, "too_long")

# GET /api/jobs and /api/jobs/<id>
get("jobs-kind-unknown", "/api/jobs", {"kind": "delete_all"}, 400, "invalid_parameter")
get("jobs-kind-nul", "/api/jobs", {"kind": "sync\x00"}, 400, "invalid_value")
for value, code in [("0", "out_of_range"), ("101", "out_of_range"), ("abc", "invalid_parameter")]:
    get(f"jobs-limit={value}", "/api/jobs", {"limit": value}, 400, code)
get("jobs-state-unknown", "/api/jobs", {"state": "paused"}, 400, "invalid_parameter")
get("jobs-state-operator", "/api/jobs", {"state": '{"$ne":null}'}, 400, "invalid_parameter")
for name, raw in [("not-hex", "nope"), ("unknown", UNKNOWN_OID), ("nul", "%00"), ("100k", LONG),
                  ("operator", '{"$ne":null}')]:
    get(f"job-{name}", f"/api/jobs/{raw}", None, 404, "not_found")
    case(f"job-cancel-{name}", "POST", f"/api/jobs/{raw}/cancel", 404, "not_found")

# GET /api/users
for name, value, code in [("unknown", "root", "invalid_parameter"), ("operator", '{"$ne":null}', "invalid_parameter"),
                          ("nul", "lead\x00", "invalid_value"), ("100k", LONG, "too_long")]:
    get(f"users-role-{name}", "/api/users", {"role": value}, 400, code)


# POST /login (a client asking for JSON gets the JSON error). A failed login (401) is
# counted for the login rate limit, its one legitimate write: the collections of the
# limiter's MongoDB storage (rate_limit.py), made with their indexes on first use.
FAILED_LOGIN_COUNT = ("rate_limit_windows", "rate_limit_counters")
def login_form(username, password="password123", csrf=True):
    def build(world):
        form = {"username": username, "password": password}
        if csrf:
            form["csrf_token"] = world.login_csrf()
        return form
    return build


for name, username, password in [("wrong-password", "lead1", "nope"), ("100k-username", LONG, "x"),
                                 ("nul-username", "lead1\x00", "password123"),
                                 ("crlf-username", "lead1\r\n", "password123"),
                                 ("rtl-username", "\u202elead1", "password123"),
                                 ("inactive-user", "gone", "password123"),
                                 ("100k-password", "lead1", LONG)]:
    case(f"login-{name}", "POST", "/login", 401, "invalid_credentials", role=ANONYMOUS,
         also_writes=FAILED_LOGIN_COUNT, data=login_form(username, password), headers=JSON_ACCEPT)
case("login-operator-keys", "POST", "/login", 401, "invalid_credentials", role=ANONYMOUS,
     also_writes=FAILED_LOGIN_COUNT,
     data=lambda w: {"username[$ne]": "x", "password[$ne]": "x", "csrf_token": w.login_csrf()},
     headers=JSON_ACCEPT)
case("login-without-csrf", "POST", "/login", 400, "csrf_failed", role=ANONYMOUS,
     data=login_form("lead1", csrf=False), headers=JSON_ACCEPT)
case("login-json-body", "POST", "/login", 401, "invalid_credentials", role=ANONYMOUS,
     also_writes=FAILED_LOGIN_COUNT,
     json={"username": {"$ne": None}, "password": {"$ne": None}},
     headers=lambda w: {"X-CSRFToken": w.login_csrf()})


# ----------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("bad", CASES)
def test_bad_input_is_refused_with_a_json_error_and_changes_nothing(world, bad):
    before = database_snapshot(world.database, exclude=bad.also_writes)

    response = bad.send(world)

    assert_error(response, bad.status, bad.code)
    assert database_snapshot(world.database, exclude=bad.also_writes) == before


def test_the_matrix_covers_every_json_endpoint(seeded):
    """Each /api endpoint (and the login form) has cases; none is left out as the API grows."""
    url_map = seeded.app.url_map
    adapter = url_map.bind("localhost")
    wanted = {rule.endpoint for rule in url_map.iter_rules()
              if rule.rule.startswith("/api/") and rule.endpoint not in TAKE_NO_INPUT}
    wanted.add("pages.login")
    # A wrong-method case covers the endpoint whose path it names (GET /api/metrics takes no input).
    covered = {adapter.match(bad.path, method="GET" if bad.status == 405 else bad.method)[0]
               for bad in (param.values[0] for param in CASES)}
    assert wanted <= covered, sorted(wanted - covered)
    assert len(CASES) >= 70


def test_the_snapshot_sees_a_change_in_any_collection(world):
    """The comparison above can fail: a write anywhere (even a GridFS chunk or the cache version) shows."""
    before = database_snapshot(world.database)
    for collection, change in [("masks.chunks", {"$set": {"n": 0, "data": b"changed"}}),
                               ("app_state", {"$inc": {"v": 1}}),
                               ("users", {"$set": {"token_hash": "x"}}),
                               ("jobs", {"$set": {"state": "failed"}})]:
        world.database[collection].update_one({}, change)
        assert database_snapshot(world.database) != before, collection
        before = database_snapshot(world.database)
    world.database.create_collection("extra")
    assert database_snapshot(world.database) != before
