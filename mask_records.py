"""Mask records: one document per version of a batch's mask (collection `mask_records`).

Within a batch a mask is identified by its name key: the file name without
directories, NFC-normalized and case-folded. Each file linked under that name adds
a version (1, 2, …); exactly one version per batch and name is `current`, which a
partial unique index enforces, so concurrent writers cannot leave two. A file is
linked when a record names it (unique `file_id`); the GridFS file itself is never
written to link it.

`batches.mask_count` counts the current records. A writer that changed a batch's
records then settles its count (`settle_counts`): it counts the current records,
writes that number, and counts again until the count it wrote still holds. Every
write of a stale number is thus followed by its writer's fresh count, so whatever
the interleaving of writers the last value written is the true one; and any later
write to a batch repairs a count a killed process left behind. A bulk link
(`link_files`) also notes the batches it touches in `app_state` until their counts
are settled, so that the next one (`settle_pending_counts`, run by sync and
migrate) settles the counts of a run that was killed half-way. A sync links all its
chunks that way without settling and then settles every noted batch once, slice by
slice of sorted ids: a batch whose files arrive in many chunks is written once.
"""
import posixpath
import unicodedata
from collections import defaultdict

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

import batch_progress
import db
from cache import writes

INSERT_CHUNK = 5000
IN_LIST_MAX = 500
MAX_ATTEMPTS = 20
_UNREAD = object()


def name_key(filename):
    """The name a mask has within its batch: no directories, NFC, case-folded."""
    base = posixpath.basename((filename or "").replace("\\", "/"))
    return unicodedata.normalize("NFC", base).casefold()


def new_record(batch_id, file_doc, version, current, now):
    """The record linking GridFS file `file_doc` to `batch_id` as `version` of its name."""
    metadata = file_doc.get("metadata") or {}
    return {"batch_id": batch_id, "name_key": name_key(file_doc.get("filename")),
            "name": file_doc.get("filename"), "file_id": file_doc["_id"], "version": version,
            "current": current, "sha256": metadata.get("sha256"), "uploaded_by": metadata.get("uploaded_by"),
            "length": file_doc.get("length"), "uploaded_at": file_doc.get("uploadDate"), "created_at": now}


def in_query(field, values):
    """Query matching (at least) the documents whose `field` is in `values`, by one index range.

    Long `$in` lists cost more than one range scan on SecantusDB (each candidate is
    checked against the whole list); the caller keeps only the values it asked for.
    """
    ordered = sorted(values)
    if len(ordered) <= IN_LIST_MAX:
        return {field: {"$in": ordered}}
    return {field: {"$gte": ordered[0], "$lte": ordered[-1]}}


def latest(batch_id, key):
    """The highest version of `key` in `batch_id`, or None."""
    return db.mask_records().find_one({"batch_id": batch_id, "name_key": key}, sort=[("version", -1)])


def _duplicate_index(exc_details):
    """Which unique index refused a write: 'file', 'current' or 'version'."""
    pattern = (exc_details or {}).get("keyPattern") or {}
    if "file_id" in pattern:
        return "file"
    if "version" in pattern:
        return "version"
    return "current"


@writes
def add_version(batch_id, file_doc, now, latest_record=_UNREAD, dedupe=False, current=True, count=True):
    """Link one stored file to `batch_id` as the newest version of its name.

    Returns (record, outcome): outcome `current` (this file is now the current
    version; `not_current` when asked with current=False), `identical` (with
    `dedupe`: the current version has the same bytes, returned instead; the caller
    discards its copy) or `already_linked` (another writer linked this file first;
    its record is returned).

    Order: the previous current version is switched off, then the new record
    inserted as current. A concurrent writer's record makes the insert fail on a
    unique index; the loop then re-reads and tries the next version, so the last
    writer's version ends up current and exactly one is. With `count=False` the caller
    settles the batch's count (a bulk link that noted it as pending).
    """
    records = db.mask_records()
    key = name_key(file_doc.get("filename"))
    sha256 = (file_doc.get("metadata") or {}).get("sha256")
    changed = False
    try:
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                mine = records.find_one({"uploaded_at": file_doc.get("uploadDate"), "file_id": file_doc["_id"]})
                if mine is not None:
                    return mine, "already_linked"
            if latest_record is _UNREAD:
                latest_record = latest(batch_id, key)
            if dedupe and latest_record and latest_record.get("current") and latest_record.get("sha256") == sha256:
                return latest_record, "identical"
            version = (latest_record["version"] if latest_record else 0) + 1
            # A name with no record yet has no current version to switch off; if another writer
            # adds one meanwhile, the insert below is refused and the next attempt switches it off.
            new_name = latest_record is None
            latest_record = _UNREAD
            if current and not new_name:
                switched = records.update_many(
                    {"batch_id": batch_id, "name_key": key, "current": True, "version": {"$lt": version},
                     "file_id": {"$ne": file_doc["_id"]}},
                    {"$set": {"current": False}})
                changed = changed or switched.modified_count > 0
            record = new_record(batch_id, file_doc, version, current, now)
            try:
                records.insert_one(record)
            except DuplicateKeyError:
                continue
            changed = True
            return record, ("current" if current else "not_current")
        raise RuntimeError(f"no version of {key!r} in {batch_id} after {MAX_ATTEMPTS} attempts")
    finally:
        if changed and count:
            settle_counts([batch_id], now)


def current_counts(batch_ids):
    """{batch_id: number of current records} (batches without any are left out).

    Reads every version in the range of the ids (an index range of batch_id) and counts
    the current ones: with `current` in the query SecantusDB's planner scans the whole
    collection, and an `$in` of the ids costs several times the range.
    """
    wanted = set(batch_ids)
    if not wanted:
        return {}
    ordered = sorted(wanted)
    match = {"batch_id": ordered[0]} if len(ordered) == 1 else {"batch_id": {"$gte": ordered[0], "$lte": ordered[-1]}}
    rows = db.mask_records().aggregate([
        {"$match": match},
        {"$group": {"_id": "$batch_id", "n": {"$sum": {"$cond": [{"$eq": ["$current", True]}, 1, 0]}}}}],
        batchSize=1_000_000)
    return {row["_id"]: row["n"] for row in rows if row["_id"] in wanted and row["n"]}


def _write_counts(counts, now=None):
    """Write {batch_id: count} as the batches' mask_count; returns how many documents changed.

    With `now`, every named batch is written and marked updated; without, only those whose
    count differs. One statement: a batch by its id, several by one `update_many` over
    their id range taking each one's number from a `let` map (`$getField` with the batch's
    id as the field name, MongoDB 7.1 and later). On SecantusDB each statement costs
    several times what modifying one document costs, and each document modified costs
    every index of the collection, so one statement per batch was the slow part of a sync.
    """
    if len(counts) == 1:
        ((batch_id, count),) = counts.items()
        match = {"id": batch_id} if now is not None else {"id": batch_id, "mask_count": {"$ne": count}}
        fields = {"mask_count": count} if now is None else {"mask_count": count, "updated_at": {"$literal": now}}
        return db.batches().update_one(match, [{"$set": fields}, batch_progress.STAGE]).modified_count
    ids = sorted(counts)
    value = {"$getField": {"field": "$id", "input": "$$counts"}}
    named = {"$ne": [{"$ifNull": [value, None]}, None]}  # (SecantusDB types a missing field "object")
    match = {"id": {"$gte": ids[0], "$lte": ids[-1]},
             "$expr": named if now is not None else {"$and": [named, {"$ne": [value, "$mask_count"]}]}}
    fields = {"mask_count": value} if now is None else {"mask_count": value, "updated_at": {"$literal": now}}
    return db.batches().update_many(match, [{"$set": fields}, batch_progress.STAGE],
                                    let={"counts": counts}).modified_count


@writes
def settle_counts(batch_ids, now=None):
    """Make each batch's mask_count its number of current records, safe against concurrent writers.

    Count, write, count again: a batch is settled when the second count equals the
    number written (a writer racing it then settles it after its own write).
    `now` also marks the batches as updated. Returns how many batch documents it changed.
    Pass ids that lie close together (a slice of sorted ids): both the counts and the write
    read the range between the lowest and the highest.
    """
    pending = set(batch_ids)
    first = True
    changed = 0
    for _attempt in range(MAX_ATTEMPTS):
        if not pending:
            return changed
        counts = current_counts(pending)
        counts = {batch_id: counts.get(batch_id, 0) for batch_id in pending}
        changed += _write_counts(counts, now if first else None)
        first = False
        again = current_counts(pending)
        pending = {b for b in pending if again.get(b, 0) != counts[b]}
    raise RuntimeError(f"mask counts of {len(pending)} batches kept changing")


PENDING_PREFIX = "pending_counts:"


def _note_pending(batch_ids):
    key = f"{PENDING_PREFIX}{ObjectId()}"
    db.app_state().insert_one({"_id": key, "batch_ids": sorted(batch_ids)})
    return key


def pending_counts():
    """The counts bulk links left to settle: (note ids, sorted ids of their batches)."""
    notes = list(db.app_state().find({"_id": {"$gte": PENDING_PREFIX, "$lt": PENDING_PREFIX + "\uffff"}}))
    return [note["_id"] for note in notes], sorted({b for note in notes for b in note.get("batch_ids", [])})


@writes
def clear_pending(note_ids):
    """Forget pending notes whose batches were settled since they were read."""
    for start in range(0, len(note_ids), IN_LIST_MAX):  # by id: a range could take a newer writer's note
        db.app_state().delete_many({"_id": {"$in": note_ids[start:start + IN_LIST_MAX]}})


SETTLE_SLICE = 2000


@writes
def settle_pending_counts():
    """Settle the counts bulk links left pending (a killed run's, or `count=False` calls');
    returns how many batches it settled."""
    note_ids, batch_ids = pending_counts()
    for start in range(0, len(batch_ids), SETTLE_SLICE):
        settle_counts(batch_ids[start:start + SETTLE_SLICE])
    clear_pending(note_ids)
    return len(batch_ids)


def names_in_use(batch_ids):
    """{(batch_id, name_key): highest version} of the names the batches already have."""
    if not batch_ids:
        return {}
    wanted = set(batch_ids)
    found = {}
    cursor = db.mask_records().find(in_query("batch_id", wanted),
                                     {"_id": 0, "batch_id": 1, "name_key": 1, "version": 1}, batch_size=100_000)
    for doc in cursor:
        if doc["batch_id"] in wanted:
            group = (doc["batch_id"], doc["name_key"])
            found[group] = max(found.get(group, 0), doc["version"])
    return found


class Links(dict):
    """{batch_id: [file ids linked]}, and `already_linked`: files another writer had linked."""

    def __init__(self):
        super().__init__()
        self.already_linked = set()


def _upload_order(doc):
    return (doc.get("uploadDate") is None, doc.get("uploadDate"), doc["_id"])


@writes
def link_files(files_by_batch, now, count=True, names=None):
    """Link many stored files: {batch_id: [file docs]} → {batch_id: [file ids linked]}.

    Records are inserted in bulk (`insert_many` in chunks, unordered): the later file
    of a name (by upload date, then id) is current, earlier ones older versions; a name
    the batch already has continues its versions, its current one switched off first
    (one bulk write). A file refused by the file index was linked by another writer
    already and is left out. Records refused by the version or current index (a
    concurrent upload of the name) go through `add_version` one by one. The counts of
    the batches written, and of those whose files were found linked already (by a
    writer that may have died before settling them), are settled; with `count=False`
    they are left noted as pending for the caller to settle once for many calls
    (`pending_counts`, `settle_pending_counts`).
    `names` ({(batch_id, name_key): highest version}), when given, is used instead of
    reading the batches' existing names and kept up to date with the versions this call wrote: a
    caller linking many chunks reads each batch's names once (a name it does not know
    yet is refused by the unique indexes and retried one by one).
    """
    groups = defaultdict(list)
    for batch_id, docs in files_by_batch.items():
        for doc in docs:
            groups[(batch_id, name_key(doc.get("filename")))].append(doc)
    in_use = names if names is not None else names_in_use(set(files_by_batch))
    fresh, switch_off = [], []
    for group, docs in groups.items():
        docs.sort(key=_upload_order)
        had = in_use.get(group, 0)
        if had:  # the name's current version becomes an older one (switched off before the inserts)
            switch_off.append(UpdateOne({"batch_id": group[0], "name_key": group[1], "current": True,
                                         "version": {"$lte": had}}, {"$set": {"current": False}}))
        last = len(docs) - 1
        fresh.extend(new_record(group[0], doc, had + index + 1, index == last, now) for index, doc in enumerate(docs))
    linked = Links()
    refused_batches = set()  # batches of files another writer linked: a killed one may not have counted them
    retry = []
    noted = {record["batch_id"] for record in fresh}
    note = _note_pending(noted) if noted else None
    for start in range(0, len(switch_off), INSERT_CHUNK):
        db.mask_records().bulk_write(switch_off[start:start + INSERT_CHUNK], ordered=False)
    for start in range(0, len(fresh), INSERT_CHUNK):
        chunk = fresh[start:start + INSERT_CHUNK]
        refused = {}
        try:
            db.mask_records().insert_many(chunk, ordered=False)
        except BulkWriteError as exc:
            for error in exc.details.get("writeErrors", []):
                if error.get("code") != 11000:
                    raise
                refused[error["index"]] = _duplicate_index(error)
        for index, record in enumerate(chunk):
            why = refused.get(index)
            if why is None:
                linked.setdefault(record["batch_id"], []).append(record["file_id"])
                if names is not None:
                    group = (record["batch_id"], record["name_key"])
                    names[group] = max(names.get(group, 0), record["version"])
            elif why == "file":
                linked.already_linked.add(record["file_id"])
                refused_batches.add(record["batch_id"])
            else:
                retry.append((record["batch_id"], record))
    if count and linked:
        settle_counts(set(linked), now)
    if count and refused_batches - set(linked):
        settle_counts(refused_batches - set(linked))
    if note and count:
        db.app_state().delete_one({"_id": note})
    by_id = {doc["_id"]: doc for docs in groups.values() for doc in docs}
    for batch_id, record in retry:
        written, outcome = add_version(batch_id, by_id[record["file_id"]], now, current=record["current"],
                                       count=count)
        _note(linked, batch_id, record["file_id"], outcome)
        if names is not None:
            names.pop((batch_id, record["name_key"]), None)
            if written is not None and outcome != "already_linked":
                names[(batch_id, record["name_key"])] = written["version"]
    return linked


def _note(linked, batch_id, file_id, outcome):
    if outcome == "already_linked":
        linked.already_linked.add(file_id)
    else:
        linked.setdefault(batch_id, []).append(file_id)


def is_linked(file_id):
    """Whether a record names this file: the one test of "is this file linked"."""
    return db.mask_records().find_one({"file_id": file_id}, {"_id": 1}) is not None


def linked_file_ids(start, end=None):
    """Ids of the linked files uploaded from `start` (inclusive, None: the first) to `end`
    (inclusive, None: the last): one range of the records' upload-date index."""
    bounds = {}
    if start is not None:
        bounds["$gte"] = start
    if end is not None:
        bounds["$lte"] = end
    query = {"uploaded_at": bounds} if bounds else {}
    return {doc["file_id"] for doc in db.mask_records().find(query, {"_id": 0, "file_id": 1}, batch_size=100_000)}


def of_batch(batch_id):
    """Every record of a batch, by name then version."""
    return list(db.mask_records().find({"batch_id": batch_id}).sort([("name_key", 1), ("version", 1)]))
