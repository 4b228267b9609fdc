"""Linking mask files to batches (sync), creating missing batches, auditing files.

A file is linked when a mask record names it (mask_records.py); sync writes
records, never the files. The unlinked files are found without reading every
file and record:
- files added since the last sync: files uploaded after the sync watermark (when
  the last completed sync began reading, kept in `app_state`), less an overlap
  window (SYNC_OVERLAP_SECONDS) for files that reach the database out of date order
  (an upload is dated by its own host's clock just before its file is written);
  read by index ranges of (uploadDate, _id) and anti-joined with the records of the
  same upload dates (`scan_unlinked_chunk`). Not by `_id`: SecantusDB scans the
  whole collection for an `_id` range;
- files still waiting for their batch (matching no rule, naming a batch that does
  not exist, or one that is reviewed): the small `sync_waiting` collection, which
  holds what classifying and linking them needs.

Sync, auto-create and the large check run as background jobs (jobs.py, jobrunner.py)
that step through those candidates in chunks (`next_chunk`): first the waiting
files uploaded before the scan start, then the files from the scan start in
(uploadDate, _id) order. Per chunk: classify, the chunk's batches (those not known
yet), the record inserts with their count settling (`write_links`), the waiting-list
changes (`update_waiting`). After each chunk a job saves its scan position; a resumed
run continues there. Records are unique per file, so a chunk cut off half-way is
completed by the next run without duplicates. The watermark moves only once a whole
sync finished.
"""
import copy
import time
from collections import Counter, defaultdict, namedtuple
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice

from bson import ObjectId
from flask import current_app
from pymongo import DeleteOne, ReplaceOne
from pymongo.errors import BulkWriteError

import db
import gridfs_orphans
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

Chunk = namedtuple("Chunk", "docs last_key exhausted read window", defaults=(0, None))
UPLOAD_ORDER = [("uploadDate", 1), ("_id", 1)]
# In a scan position: every file of that upload instant was read (above any real _id).
ALL_READ = ObjectId("f" * 24)
MIN_WINDOW_SECONDS = 0.001  # BSON dates have millisecond resolution
WINDOW_GROWTH = 8.0
WINDOW_READS = 4  # range reads per chunk at most, each window wider than the last
OPEN_RANGE_CHUNKS = 4  # up to this many chunks of candidates, a scan reads open ranges


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


def read_in_upload_order(collection, fields, after, limit, window=None, below=None):
    """The next `limit` documents of `collection` after the (uploadDate, _id) key `after`, in
    that order, by index ranges of (uploadDate, _id) (uploaded before `below` when given).

    `after`: a key, (date, None) to start at that date, or None for the first document;
    an `_id` of ALL_READ: every document of that instant was read. `window` (seconds)
    bounds each range read to (after, after + window]: SecantusDB applies a `limit` only
    after reading the whole of an open range, so an open range would cost the rest of the
    collection on every chunk. A window that holds fewer than wanted is followed by a wider
    one, up to WINDOW_READS reads per call. Documents sharing one upload instant are read by an
    `_id` range open above (GridFS dates uploads to the millisecond, so such groups are small; a
    group of thousands would cost a read of its rest per chunk on SecantusDB).

    Returns (docs, last_key, exhausted, next window): pass `last_key` as the next `after` and
    the window as the next one (sized to hold about `limit` documents); `exhausted` when none
    follows.
    """
    found = []
    began = after
    if after is not None and after[1] is not None and after[1] != ALL_READ:
        # The rest of the documents uploaded at the same instant, then the later ones.
        found = list(collection.find({"uploadDate": after[0], "_id": {"$gt": after[1]}}, fields,
                                     batch_size=SCAN_BATCH_SIZE).sort(UPLOAD_ORDER).limit(limit))
    window_end = None
    for _read in range(WINDOW_READS):
        if len(found) >= limit:
            break
        later = {} if after is None else {"$gt" if after[1] is not None else "$gte": after[0]}
        window_end = None
        if window is not None and after is not None:
            window_end = after[0] + timedelta(seconds=window)
            if below is not None and window_end >= below:
                window_end = None
            else:
                later["$lte"] = window_end
        if below is not None and window_end is None:
            later["$lt"] = below
        wanted = limit - len(found)
        got = list(collection.find({"uploadDate": later} if later else {}, fields,
                                   batch_size=SCAN_BATCH_SIZE).sort(UPLOAD_ORDER).limit(wanted))
        found += got
        if window_end is None or len(got) >= wanted:
            break
        # Every document up to the window's end is read; the next window is wider.
        after = (window_end, ALL_READ)
        window *= min(WINDOW_GROWTH, limit / max(1, len(got)))
    if len(found) >= limit:
        if window is not None and began is not None:
            # The time `limit` documents took: the next window's size.
            window = max(MIN_WINDOW_SECONDS, (found[-1]["uploadDate"] - began[0]).total_seconds())
        return found, (found[-1].get("uploadDate"), found[-1]["_id"]), False, window
    if window_end is not None:
        return found, (window_end, ALL_READ), False, window
    return found, ((found[-1].get("uploadDate"), found[-1]["_id"]) if found else after), True, window


def scan_unlinked_chunk(after=None, limit=SCAN_CHUNK, window=None):
    """The unlinked files among the next `limit` files in upload order after `after`
    (`read_in_upload_order`), anti-joined with the records of the same upload dates.
    Returns Chunk(docs, last_key, exhausted, read, window)."""
    found, last_key, exhausted, window = read_in_upload_order(db.mask_files(), SCAN_FIELDS, after, limit, window)
    if not found:
        return Chunk([], last_key, exhausted, 0, window)
    first, last = found[0].get("uploadDate"), found[-1].get("uploadDate")
    linked = mask_records.linked_file_ids(first, last)
    return Chunk([doc for doc in found if doc["_id"] not in linked], last_key, exhausted, len(found), window)


def first_upload_date():
    """The earliest upload date of a file, or None when there is none (one index end)."""
    first = list(db.mask_files().find({}, {"_id": 0, "uploadDate": 1}).sort(UPLOAD_ORDER).limit(1))
    return first[0].get("uploadDate") if first else None


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


def batch_statuses(batch_ids, keep_all=False):
    """{id: {status, mask_count}} of the named batches that exist (with `keep_all`, also of the
    others the read returned: those between the named ids when they are many)."""
    if not batch_ids:
        return {}
    wanted = set(batch_ids)
    cursor = db.batches().find(id_range_query(wanted), {"_id": 0, "id": 1, "status": 1, "mask_count": 1},
                               batch_size=SCAN_BATCH_SIZE)
    return {doc["id"]: doc for doc in cursor if keep_all or doc["id"] in wanted}


def existing_batch_ids(batch_ids):
    return set(batch_statuses(batch_ids))


def closed_batch_ids(batches):
    """The batches that take no more files: of some ids (one query), or of a `batch_statuses` answer."""
    statuses = batches if isinstance(batches, dict) else batch_statuses(batches)
    return {batch_id for batch_id, doc in statuses.items() if doc.get("status") in CLOSED_STATUSES}


# ---------------------------------------------------------------- writing


@writes
def write_links(links, now, names=None):
    """Link files to batches: {batch_id: [scanned file documents]} → {batch_id: [file ids linked]}.

    Inserts one mask record per file (in chunks) and notes the touched batches as
    pending; the sync settles their mask_count once at its end (`settle_links`). A file
    another writer linked first is refused by the unique file index and left out of the answer.
    """
    return mask_records.link_files(links, now, count=False, names=names)


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


# ---------------------------------------------------------------- jobs, in chunks
#
# Each job below is run by a job runner (jobrunner.py) and gets its context `ctx`:
# `ctx.params` (what the request asked), `ctx.resume` (the point saved by the last
# checkpoint, {} on a first run), `ctx.chunk_size`, `ctx.step()` (bounds one chunk's
# database work by JOB_TIMEOUT_SECONDS) and `ctx.checkpoint(...)`, which saves progress
# and the resume point, and stops the job there when it was cancelled.

EXAMPLES = 20


def _waiting_before(start):
    """The waiting files uploaded before `start` (the scan from `start` reads the others)."""
    return {"uploadDate": {"$lt": start}}


def unlinked_count(start=None):
    """How many files a pass from `start` (scan_start()) reads: an upper bound of the unlinked ones.

    One aggregation counting both index ranges (or the collection's own count when there is
    no watermark).
    """
    if start is None:
        return db.mask_files().estimated_document_count()
    rows = db.sync_waiting().aggregate([
        {"$match": _waiting_before(start)},
        {"$group": {"_id": None, "n": {"$sum": 1}}},
        {"$unionWith": {"coll": db.mask_files().name, "pipeline": [
            {"$match": {"uploadDate": {"$gte": start}}}, {"$group": {"_id": None, "n": {"$sum": 1}}}]}},
    ])
    return sum(row["n"] for row in rows)


def first_position(start):
    """Where a pass over the candidates begins: the waiting files, or the files when there is no watermark."""
    if start is None:
        return {"phase": "files", "after": None}
    return {"phase": "waiting"}


def _waiting_of(docs):
    """The waiting entries of some scanned files, by file id: one index range of their upload dates."""
    dates = [doc.get("uploadDate") for doc in docs if doc.get("uploadDate") is not None]
    if not dates:
        return {}
    ids = {doc["_id"] for doc in docs}
    query = {"uploadDate": {"$gte": min(dates), "$lte": max(dates)}}
    return {doc["_id"]: doc for doc in db.sync_waiting().find(query, batch_size=SCAN_BATCH_SIZE) if doc["_id"] in ids}


def first_waiting_date(start):
    """The earliest upload date of a waiting file uploaded before `start`, or None."""
    first = list(db.sync_waiting().find({"uploadDate": {"$lt": start}}, {"_id": 0, "uploadDate": 1})
                 .sort(UPLOAD_ORDER).limit(1))
    return first[0]["uploadDate"] if first else None


def _next_waiting(start, position, limit, total):
    """The next waiting files uploaded before `start` in (uploadDate, _id) order, and the next
    position: (docs, position), or ([], None) when there are none left."""
    after, window = position.get("after"), position.get("window")
    if "after" not in position:  # the phase begins (or a position of an earlier version)
        first = first_waiting_date(start)
        if first is None:
            return [], None
        after = [first, None]
        window = None
        if total is not None and total > OPEN_RANGE_CHUNKS * limit:
            window = max(MIN_WINDOW_SECONDS, (start - first).total_seconds() * limit / total)
    docs, last_key, exhausted, window = read_in_upload_order(
        db.sync_waiting(), None, tuple(after), limit, window, below=start)
    if exhausted:
        # The last of the waiting files: the files come next.
        return docs, {"phase": "files", "after": [start, None]}
    return docs, {"phase": "waiting", "after": list(last_key), "window": window}


def next_chunk(start, position, limit, waiting=True, total=None):
    """The next chunk of candidates: (docs, their waiting entries by id, files read, next position).

    `position` (from `first_position` or the previous call) is stored as is in a job's
    resume point; it says `done` once every candidate was read. Without `waiting`, the
    waiting entries of files read from the scan are not looked up (an empty dict).
    `total` (how many candidates the scan expects, `unlinked_count`) sizes its windows.
    """
    if position.get("phase") == "waiting":
        docs, after = _next_waiting(start, position, limit, total)
        if after is not None:
            return docs, {doc["_id"]: doc for doc in docs}, len(docs), after
        position = {"phase": "files", "after": [start, None]}
    after = position.get("after")
    if "until" in position:
        until, window = position["until"], position.get("window")
    else:
        # Many candidates: windows of about `limit` files up to the time the scan began, then
        # one open range for the few files dated later. Few: open ranges (they read no more).
        until, window = utcnow(), None
        if total is not None and total > OPEN_RANGE_CHUNKS * limit:
            if not after or after[0] is None:
                first = first_upload_date()
                if first is None:
                    return [], {}, 0, {"phase": "done"}
                after = [first, None]
            window = max(MIN_WINDOW_SECONDS, (until - after[0]).total_seconds() * limit / total)
    after = tuple(after) if after else None
    windowed = window is not None and after is not None and after[0] < until
    chunk = scan_unlinked_chunk(after, limit, window if windowed else None)
    next_position = ({"phase": "done"} if chunk.exhausted else
                     {"phase": "files", "after": list(chunk.last_key), "until": until,
                      "window": chunk.window if windowed else None})
    return chunk.docs, _waiting_of(chunk.docs) if waiting else {}, chunk.read, next_position


def _take(cursor, chunk_size):
    return list(islice(cursor, chunk_size))


class KnownBatches:
    """The status and mask count of the batches named so far: each id is asked for once per run."""

    def __init__(self):
        self.statuses, self.absent = {}, set()
        self.had_masks = set()  # batches that had masks when first read
        self.names, self.names_read = {}, set()

    def of(self, batch_ids):
        unknown = [b for b in batch_ids if b not in self.statuses and b not in self.absent]
        if unknown:
            # Every batch the read returns is kept, not only those asked for: a range read for a
            # large chunk returns most batches, which later chunks then need not read again.
            found = batch_statuses(unknown, keep_all=True)
            found = {b: doc for b, doc in found.items() if b not in self.statuses}
            self.statuses.update(found)
            self.had_masks |= {b for b, doc in found.items() if doc.get("mask_count")}
            self.absent |= set(unknown) - set(found)
        return {b: self.statuses[b] for b in batch_ids if b in self.statuses}

    def existing(self, batch_ids):
        return set(self.of(batch_ids))

    def names_of(self, batch_ids):
        """{(batch_id, name_key): highest version} known this run: the names of batches that had
        masks are read once (mask_records.link_files keeps the rest up to date)."""
        unread = [b for b in batch_ids if b not in self.names_read and b in self.had_masks]
        if unread:
            self.names.update(mask_records.names_in_use(unread))
        self.names_read.update(batch_ids)
        return self.names



def _add_examples(examples, new):
    for item in new:
        if len(examples) >= EXAMPLES:
            return
        if item not in examples:
            examples.append(item)


def _duration_ms(ctx):
    return int((utcnow() - ctx.started_at).total_seconds() * 1000)


def _sync_counts(saved):
    counts = {"files_scanned": 0, "files_linked": 0, "batches_updated": 0, "unmatched": 0,
              "unmatched_examples": [], "missing_batches": 0, "missing_batch_examples": [],
              "closed": 0, "closed_examples": [], "closed_batch_examples": []}
    counts.update(copy.deepcopy(saved or {}))
    return counts


class WritePace:
    """How many files one chunk may carry so that its write lasts about `target` seconds, learnt
    from the writes so far: progress then moves at least every couple of seconds on a slow server,
    while a fast one writes large chunks."""

    def __init__(self, most, target=1.0, fewest=50):
        self.target, self.fewest, self.most = target, fewest, most
        self.limit = max(1, min(most, max(fewest, most // 4)))

    def learn(self, items, seconds):
        if items and seconds > 0:
            self.limit = int(min(self.most, max(self.fewest, self.target * items / seconds)))


def sync_chunk(scan, known):
    """Link one classified chunk: write its records, then keep the waiting list. Returns
    (links made, statuses of its batches, closed batch ids)."""
    statuses = known.of(scan.files_by_batch)
    closed = closed_batch_ids(statuses)
    links = {b: docs for b, docs in scan.files_by_batch.items() if b in statuses and b not in closed}
    now = utcnow()
    made = {}
    if links:
        made = write_links(links, now, names=known.names_of(links))
    # Files refused as linked by another writer wait no more either.
    linked_ids = {file_id for ids in made.values() for file_id in ids} | getattr(made, "already_linked", set())
    update_waiting(scan, statuses, linked_ids, now)
    return made, statuses, closed


def sync_job(ctx):
    """Link every unlinked mask file whose batch exists and is open, chunk by chunk.

    After each chunk the job saves its counts and its scan position (the (uploadDate, _id)
    of the last waiting file read, then of the last file read); a resumed run continues
    there. Distinct batch counts are exact within one run; a resumed run may count a
    batch that spans the resume point twice.
    """
    saved = ctx.resume or {}
    counts = _sync_counts(saved.get("counts"))
    if "position" not in saved:
        with ctx.step():
            began, start = utcnow(), scan_start()
            total = unlinked_count(start)
        saved = {"began": began, "start": start, "total": total, "read": 0, "position": first_position(start)}
        ctx.checkpoint(0, total, "files", {**saved, "counts": counts}, counts)
    began, start, total, read, position = (saved["began"], saved["start"], saved["total"], saved["read"],
                                           saved["position"])
    base_batches, base_missing = counts["batches_updated"], counts["missing_batches"]
    updated, missing = set(), set()
    known = KnownBatches()
    pace = WritePace(ctx.chunk_size)
    resume = {**saved, "counts": counts}
    while position.get("phase") != "done":
        step_began = time.monotonic()
        with ctx.step():
            docs, waiting, chunk_read, position = next_chunk(start, position, pace.limit, total=total)
            scan = classify(docs, EXAMPLES)
            scan.waiting = waiting
            made, statuses, closed = sync_chunk(scan, known)
        linked = sum(len(ids) for ids in made.values())
        pace.learn(chunk_read, time.monotonic() - step_began)
        chunk_missing = sorted(set(scan.files_by_batch) - set(statuses))
        closed_files = [doc.get("filename") for b in sorted(closed) for doc in scan.files_by_batch[b]]
        read += chunk_read
        updated.update(made)
        missing.update(chunk_missing)
        counts["files_scanned"] += scan.scanned
        counts["files_linked"] += linked
        counts["batches_updated"] = base_batches + len(updated)
        counts["unmatched"] += scan.unmatched_total
        counts["missing_batches"] = base_missing + len(missing)
        counts["closed"] += len(closed_files)
        _add_examples(counts["unmatched_examples"], scan.unmatched)
        _add_examples(counts["missing_batch_examples"], chunk_missing)
        _add_examples(counts["closed_examples"], closed_files)
        _add_examples(counts["closed_batch_examples"], sorted(closed))
        resume = {"began": began, "start": start, "total": total, "read": read, "position": position,
                  "counts": counts}
        ctx.checkpoint(read, max(total, read), "files", resume, counts)
    settle_links(ctx, resume, counts)
    with ctx.step():
        advance_watermark(began)
    return {"job_id": str(ctx.job_id), **counts, "duration_ms": _duration_ms(ctx)}


def settle_links(ctx, resume, counts):
    """The sync's second stage: settle the mask_count of every batch its chunks noted
    as pending (and of any a killed run left), once each, in slices of sorted ids, with
    progress in batches; then the progress in files again. After this run's writes: a
    killed run's last write may still be reaching the database while this one begins.
    """
    files_run, files_progress = dict(ctx.job.get("run") or {}), dict(ctx.job.get("progress") or {})
    note_ids, batch_ids = mask_records.pending_counts()
    after = (resume.get("settled") or {}).get("after") or ""
    done = sum(1 for batch_id in batch_ids if batch_id <= after)
    todo = [batch_id for batch_id in batch_ids if batch_id > after]
    pace = WritePace(mask_records.SETTLE_SLICE, fewest=100)
    now = utcnow()
    ctx.checkpoint(done, len(batch_ids), "batches", resume, counts)
    while todo:
        step_began = time.monotonic()
        piece, todo = todo[:pace.limit], todo[pace.limit:]
        with ctx.step():
            mask_records.settle_counts(piece, now)
        pace.learn(len(piece), time.monotonic() - step_began)
        done += len(piece)
        ctx.checkpoint(done, len(batch_ids), "batches", {**resume, "settled": {"after": piece[-1]}}, counts)
    with ctx.step():
        mask_records.clear_pending(note_ids)
    # A finished sync shows its files, at their rate over the whole run.
    ctx.job["run"] = files_run
    ctx.checkpoint(files_progress.get("done") or 0, files_progress.get("total"), "files", resume, counts)


CREATE_CHUNK = 1000


def auto_create_job(ctx):
    """Create a pending batch for each batch id named by unlinked files and missing (at most `limit`).

    First a pass over the candidates in chunks (progress in files), then the inserts in
    chunks (progress in batches). A resumed run starts over: the unique batch id makes that safe.
    """
    limit = ctx.params.get("limit") or current_app.config["AUTO_CREATE_LIMIT"]
    with ctx.step():
        start = scan_start()
        total = unlinked_count(start)
    ctx.checkpoint(0, total, "files")
    named = Counter()
    read = 0
    position = first_position(start)
    while position.get("phase") != "done":
        with ctx.step():
            docs, _waiting, chunk_read, position = next_chunk(start, position, ctx.chunk_size, waiting=False,
                                                              total=total)
        for batch_id, files in classify(docs, 0).files_by_batch.items():
            named[batch_id] += len(files)
        read += chunk_read
        ctx.checkpoint(read, max(total, read), "files")
    with ctx.step():
        existing = existing_batch_ids(named)
    missing = sorted(set(named) - existing)
    to_create = missing[:limit]
    created = 0
    ctx.checkpoint(0, len(to_create), "batches")
    for first in range(0, len(to_create), CREATE_CHUNK):
        now = utcnow()
        docs = [new_batch(b, image_count=named[b], source="auto-create", now=now)
                for b in to_create[first:first + CREATE_CHUNK]]
        with ctx.step():
            created += create_batches(docs)
        ctx.checkpoint(first + len(docs), len(to_create), "batches", partial={"created": created})
    return {"job_id": str(ctx.job_id), "created": created,
            "skipped_existing": len(existing) + (len(to_create) - created),
            "limited": len(missing) > limit, "missing_remaining": max(0, len(missing) - limit)}


@writes
def create_batches(docs):
    """Insert one chunk of new batches; how many were inserted (the write bumps the caches' version)."""
    try:
        return len(db.batches().insert_many(docs, ordered=False).inserted_ids)
    except BulkWriteError as exc:
        # Another writer created some of them meanwhile: the unique id index refused those.
        return exc.details.get("nInserted", 0)


def check_job(ctx):
    """The audit of `check`, then a pass over the stored chunks for chunks whose file is gone
    (files younger than gridfs_orphans' grace period are spared: their upload may be running)."""
    limit = ctx.params.get("limit") or 100
    ctx.checkpoint(0, None, "files")  # the audit is one step of unknown length
    with ctx.step():
        report = check(limit)
    total = report["files_total"]
    ctx.checkpoint(0, total, "files")
    orphans, orphan_examples, checked = 0, [], 0
    cursor = db.mask_chunks().find({"n": 0}, {"_id": 0, "files_id": 1}, batch_size=ctx.chunk_size)
    try:
        while True:
            with ctx.step():
                docs = _take(cursor, ctx.chunk_size)
                if not docs:
                    break
                ids = {doc["files_id"] for doc in docs}
                present = {doc["_id"] for doc in db.mask_files().find(id_range_query(ids, "_id"), {"_id": 1},
                                                                      batch_size=SCAN_BATCH_SIZE)}
            gone = sorted(file_id for file_id in ids - present if gridfs_orphans.old_enough(file_id))
            orphans += len(gone)
            _add_examples(orphan_examples, [str(file_id) for file_id in gone])
            checked += len(docs)
            ctx.checkpoint(checked, max(total, checked), "files")
    finally:
        cursor.close()
    return {"job_id": str(ctx.job_id), **report, "orphan_chunk_files": orphans,
            "orphan_chunk_examples": orphan_examples[:limit]}


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
