"""The MongoDB connection, collections, GridFS bucket and indexes.

pymongo is not fork-safe. Gunicorn preloads the app in its master and forks
workers, so no client may exist before the fork: `client()` creates one lazily,
per process (keyed by PID), on first use. All threads of a process share it.
"""
import contextvars
import os
import threading
from contextlib import contextmanager

import click
import gridfs
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import gettext as _
from pymongo import ASCENDING, DESCENDING, MongoClient, monitoring
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

import batch_progress
import metrics

MASK_BUCKET = "masks"

_clients = {}
_clients_lock = threading.Lock()

# Collections whose contents the per-worker caches (cache.py) hold copies of. A new session
# record needs no bump (its random id was never looked up), so login is not a cached write.
CACHED_COLLECTIONS = frozenset({"batches", "users", "sessions", "mask_records", f"{MASK_BUCKET}.files",
                                f"{MASK_BUCKET}.chunks", "batch_history"})
WRITE_COMMANDS = frozenset({"insert", "update", "delete", "findAndModify", "bulkWrite"})
_write_scope = contextvars.ContextVar("segdash_write_scope", default=None)


def writes_cached_data(command_name, command):
    """True when the database command writes to one of CACHED_COLLECTIONS."""
    if command_name not in WRITE_COMMANDS:
        return False
    if command_name == "bulkWrite":  # client-level, across collections: {nsInfo: [{ns: "db.coll"}]}
        return any(str(info.get("ns", "")).partition(".")[2] in CACHED_COLLECTIONS
                   for info in command.get("nsInfo", []))
    return command.get(command_name) in CACHED_COLLECTIONS


def reply_changed_data(reply):
    """True unless a write command's reply says it changed no document (n: 0, no upsert)."""
    if not isinstance(reply, dict):
        return True
    if "lastErrorObject" in reply:  # findAndModify
        return bool(reply["lastErrorObject"].get("n"))
    counts = [value for key, value in reply.items() if key in ("n", "nInserted", "nMatched", "nModified",
                                                               "nUpserted", "nDeleted", "upserted")]
    return not counts or any(counts)


class WriteScope:
    """Records whether a command inside the scope changed cached data (see `track_writes`)."""

    def __init__(self):
        self.wrote = False
        self.pending = set()  # request ids of write commands sent and not answered yet


class _WriteWatch(monitoring.CommandListener):
    """Marks the current write scope when a command changed cached data, or may have (it failed).

    pymongo publishes command events in the thread (and context) that sends the command.
    """

    def started(self, event):
        scope = _write_scope.get()
        if scope is not None and writes_cached_data(event.command_name, event.command):
            scope.pending.add(event.request_id)

    def succeeded(self, event):
        scope = _write_scope.get()
        if scope is not None and event.request_id in scope.pending:
            scope.pending.discard(event.request_id)
            if reply_changed_data(event.reply):
                scope.wrote = True

    def failed(self, event):
        scope = _write_scope.get()
        if scope is not None and event.request_id in scope.pending:
            scope.pending.discard(event.request_id)
            scope.wrote = True


_write_watch = _WriteWatch()


def assume_written():
    """Inside a write scope: treat it as having changed cached data (a retry that finds its work
    done may follow an attempt that stopped before the bump)."""
    scope = _write_scope.get()
    if scope is not None:
        scope.wrote = True


def wrote_in_this_scope():
    """True inside a write scope once a command in it changed cached data."""
    scope = _write_scope.get()
    return scope is not None and scope.wrote


@contextmanager
def track_writes():
    """The current write scope, opened here unless one is open already.

    Yields (scope, outermost): only the outermost scope acts on what was written in it.
    """
    scope = _write_scope.get()
    if scope is not None:
        yield scope, False
        return
    scope = WriteScope()
    token = _write_scope.set(scope)
    try:
        yield scope, True
    finally:
        _write_scope.reset(token)


def client(uri=None):
    """The process-wide MongoClient for `uri` (default: the app's MONGO_URI)."""
    cfg = current_app.config
    uri = uri or cfg["MONGO_URI"]
    key = (os.getpid(), uri)
    found = _clients.get(key)
    if found is not None:
        return found
    with _clients_lock:
        found = _clients.get(key)
        if found is None:
            found = MongoClient(
                uri,
                serverSelectionTimeoutMS=cfg["MONGO_SERVER_SELECTION_TIMEOUT_MS"],
                connectTimeoutMS=cfg["MONGO_SERVER_SELECTION_TIMEOUT_MS"],
                socketTimeoutMS=cfg["MONGO_SOCKET_TIMEOUT_MS"],
                maxPoolSize=cfg["MONGO_MAX_POOL_SIZE"],
                appname="segdash",
                tz_aware=True,
                # Counts every command (round trip) by name for /metrics.
                # Notices writes to cached data for the write path (cache.writes).
                event_listeners=[metrics.db_command_listener, _write_watch],
            )
            _clients[key] = found
    return found


def clients_in_this_process():
    """Clients created by this process (used to prove none exist in the Gunicorn master)."""
    pid = os.getpid()
    return [c for (owner, _), c in _clients.items() if owner == pid]


def database():
    return client()[current_app.config["MONGO_DB"]]


def batches():
    return database()["batches"]


def users():
    return database()["users"]


def jobs():
    return database()["jobs"]


def batch_history():
    return database()["batch_history"]


def mask_previews():
    return database()["mask_previews"]


def sessions():
    return database()["sessions"]


def app_state():
    return database()["app_state"]


def mask_files():
    return database()[f"{MASK_BUCKET}.files"]


def mask_chunks():
    return database()[f"{MASK_BUCKET}.chunks"]


def mask_records():
    return database()["mask_records"]


def sync_waiting():
    return database()["sync_waiting"]


def mask_bucket():
    return gridfs.GridFSBucket(database(), bucket_name=MASK_BUCKET)


def ping():
    """True when the database answers within the server selection timeout."""
    try:
        client().admin.command("ping")
        return True
    except (ConnectionFailure, PyMongoError):
        return False


# Each index, the collection it lives on, and the query it serves. Every index on a
# collection costs each write to it, so a hot collection keeps only those a query uses.
INDEXES = [
    ("batches", [("id", ASCENDING)], {"unique": True, "name": "batch_by_id"},
     "batch lookup by id; id prefix search; which named batches exist (sync, check)"),
    ("batches", [("number", ASCENDING)], {"name": "batches_by_number"},
     "batch list and CSV export without filters, in id (number) order; cursor paging"),
    ("batches", [("status", ASCENDING), ("number", ASCENDING)], {"name": "batches_by_status"},
     "batch list filtered by status, in id order; list sorted by status (sort=status, -status); "
     "open batches per segmenter (workload)"),
    ("batches", [("assignee", ASCENDING), ("status", ASCENDING), ("number", ASCENDING)],
     {"name": "batches_by_assignee"},
     "batch list filtered by assignee (and status), in id order: 'my batches'; a user's own figures"),
    ("batches", [("name", ASCENDING), ("number", ASCENDING)], {"name": "batches_by_name_order"},
     "batch list sorted by name (sort=name, -name)"),
    ("batches", [("assignee", ASCENDING), ("number", ASCENDING)], {"name": "batches_by_assignee_order"},
     "batch list sorted by assignee (sort=assignee, -assignee)"),
    ("batches", [("updated_at", ASCENDING), ("number", ASCENDING)], {"name": "batches_by_updated_at"},
     "batch list sorted by last change (sort=updated_at, -updated_at)"),
    ("batches", [("progress", ASCENDING), ("number", ASCENDING)], {"name": "batches_by_progress"},
     "batch list sorted by progress (sort=progress, -progress)"),
    ("batches", [("search_keys", ASCENDING)], {"name": "batches_by_search_key"},
     "batch list search: prefix of the id, the name or a word of the name (search.py)"),
    ("batches", [("mask_count", ASCENDING), ("number", ASCENDING)], {"name": "batches_by_mask_count"},
     "check: batches without masks, in id order"),
    ("batches", [("metadata.completed_at", DESCENDING)], {"name": "batches_by_completed_at"},
     "metrics: completions per day over the last 30 days"),
    ("batches", [("status", ASCENDING), ("metadata.completed_at", ASCENDING), ("number", ASCENDING)],
     {"name": "batches_to_review"}, "review queue: the oldest completed batch (hinted)"),
    ("batch_history", [("batch_id", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)],
     {"name": "history_by_batch"}, "a batch's history, newest first (insertion order within a millisecond)"),
    ("mask_previews", [("at", ASCENDING)], {"expireAfterSeconds": 30 * 86400, "name": "previews_expire"},
     "preview cache: an entry is dropped 30 days after it was made (made again when asked for)"),
    ("masks.files", [("metadata.sha256", ASCENDING)], {"name": "masks_by_sha256"},
     "check: files stored twice (duplicate contents)"),
    ("masks.files", [("uploadDate", ASCENDING), ("_id", ASCENDING)], {"name": "masks_by_upload"},
     "sync, auto-create, check: files uploaded since the sync watermark (an index range; SecantusDB "
     "scans the whole collection for an `_id` range)"),
    ("sync_waiting", [("uploadDate", ASCENDING), ("_id", ASCENDING)], {"name": "waiting_by_upload"},
     "sync: the waiting entries of a chunk's files (the chunk's upload-date range; an `_id` range or a "
     "long `$in` costs the whole collection on SecantusDB)"),
    ("mask_records", [("batch_id", ASCENDING), ("name_key", ASCENDING), ("version", ASCENDING)],
     {"unique": True, "name": "records_by_version"},
     "a batch's masks and their versions (detail); next version of a name (upload, sync)"),
    ("mask_records", [("batch_id", ASCENDING), ("name_key", ASCENDING)],
     {"unique": True, "partialFilterExpression": {"current": True}, "name": "records_current"},
     "one current version per name and batch; current masks of a batch (dedup, recount)"),
    ("mask_records", [("uploaded_at", ASCENDING), ("file_id", ASCENDING)], {"unique": True, "name": "records_by_file"},
     "a file is linked once (its upload date never changes); which files of an upload-date range are "
     "linked (sync's anti-join over the same range as the files)"),
    ("masks.files", [("filename", ASCENDING), ("uploadDate", ASCENDING)],
     {"name": "filename_1_uploadDate_1"}, "GridFS: file lookup by name (driver's own index)"),
    ("masks.chunks", [("files_id", ASCENDING), ("n", ASCENDING)],
     {"unique": True, "name": "files_id_1_n_1"}, "GridFS: chunks of a file in order"),
    ("users", [("username", ASCENDING)], {"unique": True, "name": "user_by_username"},
     "login; session user lookup; assignee validation"),
    ("users", [("token_hash", ASCENDING)], {"unique": True, "sparse": True, "name": "user_by_token"},
     "Bearer token authentication"),
    ("sessions", [("username", ASCENDING)], {"name": "sessions_by_username"},
     "ending every session of an account (password, role or active change; revoke-sessions)"),
    ("sessions", [("expires_at", ASCENDING)], {"expireAfterSeconds": 0, "name": "sessions_expiry"},
     "removes sessions past their absolute lifetime"),
    ("jobs", [("lock", ASCENDING)], {"unique": True, "sparse": True, "name": "job_lease"},
     "one queued or running job per exclusive kind across workers and hosts"),
    ("jobs", [("kind", ASCENDING), ("created_at", DESCENDING)], {"name": "jobs_by_kind"},
     "recent jobs of a kind (jobs list, last sync)"),
    ("jobs", [("state", ASCENDING), ("created_at", ASCENDING)], {"name": "jobs_by_state"},
     "job runners: the oldest queued job, running jobs whose lease ran out; jobs list by state"),
    ("jobs", [("created_at", DESCENDING)], {"name": "jobs_by_created_at"},
     "recent jobs of every kind (jobs page)"),
]


# Indexes of earlier versions that no query uses any more; `flask migrate` drops them.
RETIRED_INDEXES = [
    ("batches", "batches_by_name"),
    ("masks.files", "masks_by_linked_at"),
    ("masks.files", "masks_by_batch"),
]


INDEX_CONFLICTS = (85, 86)  # IndexOptionsConflict, IndexKeySpecsConflict


def ensure_indexes():
    """Create every index; idempotent. An index whose definition changed is rebuilt."""
    db = database()
    for collection, keys, options, _query in INDEXES:
        try:
            db[collection].create_index(keys, **options)
        except OperationFailure as exc:
            if exc.code not in INDEX_CONFLICTS:
                raise
            db[collection].drop_index(options["name"])
            db[collection].create_index(keys, **options)
    # Batches stored before the list could sort by progress get the field (batches_by_progress).
    db["batches"].update_many({"progress": None}, [batch_progress.STAGE])


@click.command("ensure-indexes")
@with_appcontext
def ensure_indexes_command():
    """Create the database indexes (idempotent)."""
    ensure_indexes()
    click.echo(_("%(num)s indexes ensured on %(db)s", num=len(INDEXES), db=current_app.config["MONGO_DB"]))


def init_app(app):
    app.cli.add_command(ensure_indexes_command)
