"""Linking mask files to batches (sync), creating missing batches, auditing files.

A file is linked when a mask record names it (mask_records.py); sync writes
records, never the files. The unlinked files are found without reading every
file and record:
- files added since the last sync: files uploaded after the sync watermark (when
  the last completed sync began reading, kept in `app_state`), less an overlap
  window (SYNC_OVERLAP_SECONDS) for files that reach the database out of date order
  (an upload is dated by its own host's clock just before its file is written);
  read by index ranges of (uploadDate, _id) and anti-joined with the records of the
  same upload dates (`scan_unlinked_range`, `scan_unlinked_chunk`). Not by `_id`:
  SecantusDB scans the whole collection for an `_id` range;
- files still waiting for their batch (matching no rule, naming a batch that does
  not exist, or one that is reviewed): the small `sync_waiting` collection, which
  holds what classifying and linking them needs.

Data functions for a chunked orchestration: `scan_start`, `scan_unlinked_chunk`
(or `scan_unlinked_range`), `waiting_files`, `classify`, `batch_statuses`
(`existing_batch_ids`, `closed_batch_ids`), `write_links`, `update_waiting`,
`advance_watermark`, and mask_records.settle_pending_counts.
`sync`, `auto_create` and `check` run them in one pass.
"""
from collections import defaultdict, namedtuple
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from pymongo import DeleteOne, ReplaceOne
from pymongo.errors import BulkWriteError

import db
import gridfs_orphans
import jobs
import mask_records
from batch_service import new_batch
from cache import writes
from timeutil import utcnow

WATERMARK_ID = "sync_watermark"
# What classifying a file and writing its record need.
SCAN_FIELDS = {"filename": 1, "length": 1, "uploadDate": 1, "metadata.batch_id": 1, "metadata.sha256": 1,
               "metadata.uploaded_by": 1}
# Ask for everything in as few replies as the server allows (it caps each at 16 MiB).
SCAN_BATCH_SIZE = 1_000_000
SCAN_CHUNK = 20_000
WAITING_CHUNK = 5000
IN_LIST_MAX = mask_records.IN_LIST_MAX
# Batches in these statuses take no more files from sync.
CLOSED_STATUSES = ("reviewed",)

Chunk = namedtuple("Chunk", "docs last_key exhausted")
UPLOAD_ORDER = [("uploadDate", 1), ("_id", 1)]


def id_range_query(values, field="id"):
    """Query matching (at least) the documents whose `field` is in `values` (mask_records.in_query)."""
    return mask_records.in_query(field, values)


def matcher():
    return current_app.extensions["segdash_matcher"]


# ---------------------------------------------------------------- finding unlinked files


def watermark():
    """When the last completed sync began reading, or None: files uploaded before were processed."""
    state = db.app_state().find_one({"_id": WATERMARK_ID}, {"uploaded_at": 1})
    found = (state or {}).get("uploaded_at")
    return found if isinstance(found, datetime) else None


def scan_start():
    """The upload date from which files may be unlinked (watermark less the overlap), or None: all."""
    mark = watermark()
    if mark is None:
        return None
    return mark - timedelta(seconds=current_app.config["SYNC_OVERLAP_SECONDS"])


@writes
def advance_watermark(began):
    """Record that every file uploaded before `began` (when this run began reading) was processed.

    Call it once the run's writes are done; it never moves back. The next run reads from
    there less the overlap, so while nothing is uploaded an idle sync reads no file.
    """
    db.app_state().update_one({"_id": WATERMARK_ID}, {"$max": {"uploaded_at": began}}, upsert=True)


def _date_range(start, end):
    bounds = {}
    if start is not None:
        bounds["$gte"] = start
    if end is not None:
        bounds["$lte"] = end
    return bounds


def scan_unlinked_range(start, end=None):
    """The unlinked files uploaded from `start` to `end` (inclusive; None: unbounded), in upload order.

    Two index range reads over the same dates: the files by (uploadDate, _id), the
    records by (uploaded_at, file_id). Returns (docs, the last upload date read or None).
    """
    bounds = _date_range(start, end)
    files = list(db.mask_files().find({"uploadDate": bounds} if bounds else {}, SCAN_FIELDS,
                                      batch_size=SCAN_BATCH_SIZE).sort(UPLOAD_ORDER))
    if not files:
        return [], None
    linked = mask_records.linked_file_ids(start, end)
    return [doc for doc in files if doc["_id"] not in linked], files[-1].get("uploadDate")


def scan_unlinked_chunk(after=None, limit=SCAN_CHUNK):
    """The unlinked files among the next `limit` files in upload order after `after`.

    `after`: the (uploadDate, _id) key of the last file of the previous chunk, or
    None to start with the first file (pass `scan_start()`'s date as (date, None) to
    start there). Reads the files by index ranges of (uploadDate, _id) and the records
    of the same dates. Returns Chunk(docs, last_key, exhausted): pass `last_key` as the
    next `after`; `exhausted` when no file follows.
    """
    found = []
    if after is not None and after[1] is not None:
        # The rest of the files uploaded at the same instant, then the later ones.
        found = list(db.mask_files().find({"uploadDate": after[0], "_id": {"$gt": after[1]}}, SCAN_FIELDS,
                                          batch_size=SCAN_BATCH_SIZE).sort(UPLOAD_ORDER).limit(limit))
    if len(found) < limit:
        later = {} if after is None else {"uploadDate": {"$gt" if after[1] is not None else "$gte": after[0]}}
        found += list(db.mask_files().find(later, SCAN_FIELDS, batch_size=SCAN_BATCH_SIZE)
                      .sort(UPLOAD_ORDER).limit(limit - len(found)))
    if not found:
        return Chunk([], after, True)
    first, last = found[0].get("uploadDate"), found[-1].get("uploadDate")
    linked = mask_records.linked_file_ids(first, last)
    return Chunk([doc for doc in found if doc["_id"] not in linked], (last, found[-1]["_id"]), len(found) < limit)


def waiting_files():
    """Files a sync left unlinked (no rule, missing batch, closed batch), as scanned documents."""
    return list(db.sync_waiting().find({}, batch_size=SCAN_BATCH_SIZE))


@dataclass
class Scan:
    """What a pass over the unlinked files found."""
    files_by_batch: dict = field(default_factory=lambda: defaultdict(list))
    unmatched: list = field(default_factory=list)
    unmatched_total: int = 0
    scanned: int = 0
    unmatched_docs: list = field(default_factory=list)
    waiting: dict = field(default_factory=dict)
    began: datetime = None


def classify(docs, unmatched_limit):
    """Group file documents by the batch their name or metadata points to."""
    scan = Scan()
    batch_id_for = matcher().batch_id_for
    for doc in docs:
        scan.scanned += 1
        batch_id = batch_id_for(doc.get("filename"), (doc.get("metadata") or {}).get("batch_id"))
        if batch_id:
            scan.files_by_batch[batch_id].append(doc)
        else:
            scan.unmatched_total += 1
            scan.unmatched_docs.append(doc)
            if len(scan.unmatched) < unmatched_limit:
                scan.unmatched.append(doc.get("filename"))
    return scan


def scan_unlinked(unmatched_limit=100):
    """Every unlinked file: those waiting, and those uploaded since the watermark (less the overlap)."""
    began = utcnow()
    waiting = {doc["_id"]: doc for doc in waiting_files()}
    found = dict(waiting)
    docs, _last = scan_unlinked_range(scan_start())
    for doc in docs:
        found.setdefault(doc["_id"], doc)
    scan = classify(found.values(), unmatched_limit)
    scan.waiting, scan.began = waiting, began
    return scan


def batch_statuses(batch_ids):
    """{id: {status, mask_count}} of the named batches that exist."""
    if not batch_ids:
        return {}
    wanted = set(batch_ids)
    cursor = db.batches().find(id_range_query(wanted), {"_id": 0, "id": 1, "status": 1, "mask_count": 1},
                               batch_size=SCAN_BATCH_SIZE)
    return {doc["id"]: doc for doc in cursor if doc["id"] in wanted}


def existing_batch_ids(batch_ids):
    return set(batch_statuses(batch_ids))


def closed_batch_ids(batches):
    """The batches that take no more files: of some ids (one query), or of a `batch_statuses` answer."""
    statuses = batches if isinstance(batches, dict) else batch_statuses(batches)
    return {batch_id for batch_id, doc in statuses.items() if doc.get("status") in CLOSED_STATUSES}


# ---------------------------------------------------------------- writing


@writes
def write_links(links, now, batches_with_masks=None):
    """Link files to batches: {batch_id: [scanned file documents]} → {batch_id: [file ids linked]}.

    Inserts one mask record per file (in chunks) and settles each touched batch's
    mask_count (mask_records.link_files). A file another writer
    linked first is refused by the unique file index and left out of the answer.
    """
    return mask_records.link_files(links, now, batches_with_masks)


def _waiting_doc(doc, reason, batch_id, now):
    kept = {key: doc.get(key) for key in ("filename", "length", "uploadDate")}
    return {"_id": doc["_id"], **kept, "metadata": doc.get("metadata") or {}, "reason": reason,
            "batch_id": batch_id, "since": now}


@writes
def update_waiting(scan, statuses, linked_ids, now):
    """Keep the waiting list to the files still unlinked, each with why; writes only what changed."""
    closed = closed_batch_ids(statuses)
    wanted = {}
    for doc in scan.unmatched_docs:
        wanted[doc["_id"]] = ("unmatched", None, doc)
    for batch_id, docs in scan.files_by_batch.items():
        reason = "closed" if batch_id in closed else ("open" if batch_id in statuses else "missing_batch")
        for doc in docs:
            if doc["_id"] not in linked_ids:
                wanted[doc["_id"]] = (reason, batch_id, doc)
    gone = [file_id for file_id in scan.waiting if file_id not in wanted]
    fresh, changed = [], []
    for file_id, (reason, batch_id, doc) in wanted.items():
        old = scan.waiting.get(file_id)
        if old is None:
            fresh.append(_waiting_doc(doc, reason, batch_id, now))
        elif (old.get("reason"), old.get("batch_id")) != (reason, batch_id):
            changed.append(ReplaceOne({"_id": file_id}, _waiting_doc(doc, reason, batch_id, now)))
    waiting = db.sync_waiting()
    for start in range(0, len(fresh), WAITING_CHUNK):
        try:
            waiting.insert_many(fresh[start:start + WAITING_CHUNK], ordered=False)
        except BulkWriteError as exc:
            if any(error.get("code") != 11000 for error in exc.details.get("writeErrors", [])):
                raise  # a file already waiting (a concurrent run) is fine; anything else is not
    for start in range(0, len(changed), WAITING_CHUNK):
        waiting.bulk_write(changed[start:start + WAITING_CHUNK], ordered=False)
    # One DeleteOne per file rather than a long $in list (which SecantusDB checks per candidate).
    for start in range(0, len(gone), WAITING_CHUNK):
        waiting.bulk_write([DeleteOne({"_id": file_id}) for file_id in gone[start:start + WAITING_CHUNK]],
                           ordered=False)


# ---------------------------------------------------------------- operations


@writes
def sync(started_by):
    """Link every unlinked mask file whose batch exists and is open. Returns the result summary."""
    job = jobs.start("sync", started_by)
    began = utcnow()
    with jobs.running(job):
        scan = scan_unlinked()
        jobs.set_progress(job, 0, scan.scanned)
        statuses = batch_statuses(scan.files_by_batch.keys())
        closed = closed_batch_ids(statuses)
        links = {b: docs for b, docs in scan.files_by_batch.items() if b in statuses and b not in closed}
        now = utcnow()
        made = write_links(links, now, {b for b, doc in statuses.items() if doc.get("mask_count")}) if links else {}
        # Files refused as linked by another writer wait no more either.
        linked_ids = {file_id for ids in made.values() for file_id in ids} | getattr(made, "already_linked", set())
        update_waiting(scan, statuses, linked_ids, now)
        # Counts a sync killed half-way left unsettled. After this run's writes: the killed
        # run's last write may still be reaching the database while this one begins.
        mask_records.settle_pending_counts()
        advance_watermark(scan.began)
        missing = sorted(set(scan.files_by_batch) - set(statuses))
        closed_files = [doc.get("filename") for b in sorted(closed) for doc in scan.files_by_batch[b]]
        result = {
            "job_id": str(job["_id"]),
            "files_scanned": scan.scanned,
            "files_linked": len({f for ids in made.values() for f in ids}),
            "batches_updated": len(made),
            "unmatched": scan.unmatched_total,
            "unmatched_examples": scan.unmatched[:20],
            "missing_batches": len(missing),
            "missing_batch_examples": missing[:20],
            "closed": len(closed_files),
            "closed_examples": closed_files[:20],
            "closed_batch_examples": sorted(closed)[:20],
        }
        result["duration_ms"] = int((utcnow() - began).total_seconds() * 1000)
    jobs.finish(job, result)
    return result


@writes
def auto_create(started_by, limit):
    """Create a pending batch for each batch id named by unlinked files and missing."""
    job = jobs.start("auto_create", started_by)
    with jobs.running(job):
        scan = scan_unlinked()
        existing = existing_batch_ids(scan.files_by_batch.keys())
        missing = sorted(set(scan.files_by_batch) - existing)
        jobs.set_progress(job, 0, min(len(missing), limit))
        to_create = missing[:limit]
        created = 0
        if to_create:
            now = utcnow()
            docs = [new_batch(b, image_count=len(scan.files_by_batch[b]), source="auto-create", now=now)
                    for b in to_create]
            try:
                created = len(db.batches().insert_many(docs, ordered=False).inserted_ids)
            except BulkWriteError as exc:
                # Another request created some of them meanwhile: the unique id index refused those.
                created = exc.details.get("nInserted", 0)
        result = {"job_id": str(job["_id"]), "created": created,
                  "skipped_existing": len(existing) + (len(to_create) - created),
                  "limited": len(missing) > limit, "missing_remaining": max(0, len(missing) - limit)}
    jobs.finish(job, result, done=len(to_create))
    return result


def _check_files_pipeline(start, limit):
    """Files uploaded since the watermark and the records of those dates (anti-joined by the caller:
    two index ranges, cheaper than a $lookup per file), the waiting files, then summaries: duplicate
    hashes, totals, and the number of files whose chunks are orphaned (gridfs_orphans.py)."""
    after = {"uploadDate": {"$gte": start}} if start is not None else {}
    linked_after = {"uploaded_at": {"$gte": start}} if start is not None else {}
    return [
        {"$match": after},
        {"$project": SCAN_FIELDS},
        {"$unionWith": {"coll": db.mask_records().name, "pipeline": [
            {"$match": linked_after}, {"$project": {"_id": 0, "_linked_file": "$file_id"}}]}},
        {"$unionWith": {"coll": db.sync_waiting().name, "pipeline": [
            {"$project": {"filename": 1, "metadata.batch_id": 1}}, {"$set": {"_waiting": True}}]}},
        {"$unionWith": {"coll": db.mask_files().name, "pipeline": [
            {"$match": {"metadata.sha256": {"$type": "string"}}},
            {"$group": {"_id": "$metadata.sha256", "n": {"$sum": 1},
                        "files": {"$push": {"id": {"$toString": "$_id"}, "filename": "$filename"}}}},
            {"$match": {"n": {"$gt": 1}}},
            {"$sort": {"_id": 1}},
            {"$limit": limit},
            {"$project": {"_duplicate": {"sha256": "$_id", "count": "$n", "files": "$files"}}},
        ]}},
        {"$unionWith": {"coll": db.mask_files().name, "pipeline": [
            {"$collStats": {"count": {}}}, {"$project": {"_files_total": "$count"}}]}},
        {"$unionWith": {"coll": db.mask_records().name, "pipeline": [
            {"$collStats": {"count": {}}}, {"$project": {"_linked_total": "$count"}}]}},
        {"$unionWith": {"coll": db.mask_chunks().name, "pipeline": [
            *gridfs_orphans.pipeline(),
            {"$group": {"_id": None, "files": {"$sum": 1}}},
            {"$project": {"_id": 0, "_orphan_chunk_files": "$files"}},
        ]}},
    ]


def _check_batches_pipeline(candidate_ids, limit):
    """Which named batches exist (and their status), then batches without masks (capped)."""
    return [
        {"$match": id_range_query(candidate_ids, "id") if candidate_ids else {"id": {"$in": []}}},
        {"$project": {"_id": 0, "id": 1, "status": 1}},
        {"$unionWith": {"coll": db.batches().name, "pipeline": [
            {"$match": {"mask_count": {"$in": [0, None]}}},
            {"$sort": {"number": 1}},
            {"$limit": limit},
            {"$project": {"_id": 0, "id": 1, "_without_masks": {"$literal": True}}},
        ]}},
    ]


def check(limit):
    """Audit the mask files: two aggregations and the watermark read."""
    summary = {"duplicates": []}
    files, linked_ids, waiting = [], set(), []
    for doc in db.mask_files().aggregate(_check_files_pipeline(scan_start(), limit), batchSize=SCAN_BATCH_SIZE):
        if "_linked_file" in doc:
            linked_ids.add(doc["_linked_file"])
        elif "_duplicate" in doc:
            summary["duplicates"].append(doc["_duplicate"])
        elif "_files_total" in doc:
            summary["files_total"] = doc["_files_total"]
        elif "_linked_total" in doc:
            summary["linked"] = doc["_linked_total"]
        elif "_orphan_chunk_files" in doc:
            summary["orphan_chunk_files"] = doc["_orphan_chunk_files"]
        elif doc.get("_waiting"):
            waiting.append(doc)
        else:
            files.append(doc)

    def unlinked_files():
        seen = set()
        for doc in waiting + [d for d in files if d["_id"] not in linked_ids]:
            if doc["_id"] not in seen:
                seen.add(doc["_id"])
                yield doc

    scan = classify(unlinked_files(), limit)
    candidates = sorted(scan.files_by_batch)
    existing, closed, without_masks = set(), set(), []
    for doc in db.batches().aggregate(_check_batches_pipeline(candidates, limit), batchSize=SCAN_BATCH_SIZE):
        if doc.get("_without_masks"):
            without_masks.append(doc["id"])
        elif doc["id"] in scan.files_by_batch:
            existing.add(doc["id"])
            if doc.get("status") in CLOSED_STATUSES:
                closed.add(doc["id"])
    missing = [b for b in candidates if b not in existing]
    closed_files = [doc.get("filename") for b in sorted(closed) for doc in scan.files_by_batch[b]]
    files_total = summary.get("files_total", 0)
    linked = summary.get("linked", 0)
    return {
        "files_total": files_total,
        "linked": linked,
        "unlinked": max(0, files_total - linked),
        "unmatched": scan.unmatched,
        "unmatched_total": scan.unmatched_total,
        "missing_batches": missing[:limit],
        "missing_batches_total": len(missing),
        "closed": len(closed_files),
        "closed_examples": closed_files[:limit],
        "closed_batches": sorted(closed)[:limit],
        "batches_without_masks": without_masks,
        "duplicates": summary["duplicates"],
        "orphan_chunk_files": summary.get("orphan_chunk_files", 0),
    }
