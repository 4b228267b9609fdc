"""Linking mask files to batches (sync), creating missing batches, auditing files.

Sync, auto-create and the large check run as background jobs (jobs.py, jobrunner.py)
that step through the unlinked files in chunks of SYNC_CHUNK_SIZE, in `_id` order. Per
chunk the data work is a constant number of round trips, whatever the number of batches:
1. the next reply of one streamed find of the unlinked files (name and metadata.batch_id);
2. one find of which of the chunk's named batches exist (those not known yet);
3. one write: sync adds the files to their batches and marks the files linked in a single
   cross-collection `bulkWrite` (MongoDB 8+; two bulk writes on older servers).
The writes are idempotent ($setUnion, conditional updates, a unique id), so a run cut off
half-way is completed by the next one without duplicates.
"""
import copy
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import islice

from flask import current_app
from pymongo import UpdateMany, UpdateOne
from pymongo.errors import BulkWriteError

import db
import gridfs_orphans
from batch_service import new_batch
from cache import writes
from links import LINKED_AS_ONE, LINKED_AT, UNLINKED, add_masks_update, is_linked, link_file_update, remove_masks_update
from timeutil import utcnow

SCAN_FIELDS = {"filename": 1, "metadata.batch_id": 1}
# Ask for everything in as few replies as the server allows (it caps each at 16 MiB).
SCAN_BATCH_SIZE = 1_000_000
IN_LIST_MAX = 500


def matcher():
    return current_app.extensions["segdash_matcher"]


@dataclass
class Scan:
    """What a pass over the unlinked files found."""
    files_by_batch: dict = field(default_factory=lambda: defaultdict(list))
    unmatched: list = field(default_factory=list)
    unmatched_total: int = 0
    scanned: int = 0


def classify(docs, unmatched_limit):
    """Group file ids by the batch their name or metadata points to."""
    scan = Scan()
    batch_id_for = matcher().batch_id_for
    for doc in docs:
        scan.scanned += 1
        batch_id = batch_id_for(doc.get("filename"), (doc.get("metadata") or {}).get("batch_id"))
        if batch_id:
            scan.files_by_batch[batch_id].append(doc["_id"])
        else:
            scan.unmatched_total += 1
            if len(scan.unmatched) < unmatched_limit:
                scan.unmatched.append(doc.get("filename"))
    return scan


def id_range_query(values, field="id"):
    """Query matching (at least) the documents whose `field` is in `values`, served by its unique index.

    A short list is asked for exactly ($in); a long one as the range it spans,
    which costs one index range scan instead of one lookup per value (and avoids
    servers whose $in grows worse than linearly with the list: SecantusDB checks
    each candidate against the whole list). The caller keeps only the values it
    asked for.
    """
    ordered = sorted(values)
    if len(ordered) <= IN_LIST_MAX:
        return {field: {"$in": ordered}}
    return {field: {"$gte": ordered[0], "$lte": ordered[-1]}}


def existing_batch_ids(batch_ids):
    if not batch_ids:
        return set()
    wanted = set(batch_ids)
    cursor = db.batches().find(id_range_query(wanted), {"_id": 0, "id": 1}, batch_size=SCAN_BATCH_SIZE)
    return {doc["id"] for doc in cursor if doc["id"] in wanted}


def _link_operations(links, now, batches_ns=None, files_ns=None):
    """Write operations: add file ids to each batch, then mark those files linked.

    With namespaces given, the operations are for a client-level (cross-collection) bulk write.
    """
    on_batches = {"namespace": batches_ns} if batches_ns else {}
    on_files = {"namespace": files_ns} if files_ns else {}
    batch_ops, file_ops = [], []
    for batch_id, file_ids in links.items():
        batch_ops.append(UpdateOne({"id": batch_id}, add_masks_update(file_ids, now), **on_batches))
        file_ops.append(UpdateMany({"_id": {"$in": file_ids}, **UNLINKED}, link_file_update(batch_id, now),
                                   **on_files))
    return batch_ops, file_ops


@writes
def write_links(links, now):
    """Apply the links in one round trip where the server allows it; returns the links made.

    A file only gets linked while it is still unlinked. When another writer (an
    upload, in another worker) linked one of them meanwhile, that file is taken
    out of the batch it was just added to again: it stays in one batch only.
    """
    expected = sum(len(ids) for ids in links.values())
    if db.supports_client_bulk_write():
        batch_ops, file_ops = _link_operations(
            links, now, db.namespace(db.batches()), db.namespace(db.mask_files()))
        result = db.client().bulk_write(batch_ops + file_ops, ordered=True)
        # At most one match per batch operation, so this never overstates the files matched.
        files_matched = result.matched_count - len(batch_ops)
    else:
        batch_ops, file_ops = _link_operations(links, now)
        db.batches().bulk_write(batch_ops, ordered=False)
        files_matched = db.mask_files().bulk_write(file_ops, ordered=False).matched_count
    if files_matched >= expected:
        return links
    return _withdraw_lost_links(links, now)


def _withdraw_lost_links(links, now):
    """Some files were linked by another writer first: keep each in the batch its metadata names.

    Only runs after such a race (two more round trips); returns the links that held.
    """
    all_ids = {file_id for ids in links.values() for file_id in ids}
    cursor = db.mask_files().find(id_range_query(all_ids, "_id"),
                                  {"metadata.batch_id": 1, LINKED_AT: 1}, batch_size=SCAN_BATCH_SIZE)
    owners = {doc["_id"]: doc for doc in cursor if doc["_id"] in all_ids}
    held, withdraw = {}, []
    for batch_id, ids in links.items():
        lost = [file_id for file_id in ids
                if not (file_id in owners and is_linked(owners[file_id])
                        and owners[file_id]["metadata"].get("batch_id") == batch_id)]
        if lost:
            withdraw.append(UpdateOne({"id": batch_id}, remove_masks_update(lost, now)))
        lost = set(lost)
        kept = [file_id for file_id in ids if file_id not in lost]
        if kept:
            held[batch_id] = kept
    if withdraw:
        db.batches().bulk_write(withdraw, ordered=False)
    return held


# ------------------------------------------------------------------ jobs, in chunks
#
# Each job below is run by a job runner (jobrunner.py) and gets its context `ctx`:
# `ctx.params` (what the request asked), `ctx.resume` (the point saved by the last
# checkpoint, {} on a first run), `ctx.chunk_size`, `ctx.step()` (bounds one chunk's
# database work by JOB_TIMEOUT_SECONDS) and `ctx.checkpoint(...)`, which saves progress
# and the resume point, and stops the job there when it was cancelled.

EXAMPLES = 20


def unlinked_count():
    return db.mask_files().count_documents(UNLINKED)


def unlinked_after(after, chunk_size):
    """The unlinked files after `after` in `_id` order, one chunk per reply of one streamed cursor."""
    query = dict(UNLINKED)
    if after is not None:
        query["_id"] = {"$gt": after}
    return db.mask_files().find(query, SCAN_FIELDS, sort=[("_id", 1)], batch_size=chunk_size)


def next_chunk(cursor, chunk_size):
    return list(islice(cursor, chunk_size))


class KnownBatches:
    """Which batch ids exist, learnt chunk by chunk: each id is asked for once per run."""

    def __init__(self):
        self.present, self.absent = set(), set()

    def existing(self, batch_ids):
        unknown = [b for b in batch_ids if b not in self.present and b not in self.absent]
        if unknown:
            found = existing_batch_ids(unknown)
            self.present |= found
            self.absent |= set(unknown) - found
        return {b for b in batch_ids if b in self.present}


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
              "unmatched_examples": [], "missing_batches": 0, "missing_batch_examples": []}
    counts.update(copy.deepcopy(saved or {}))
    return counts


class WritePace:
    """How many links one write may carry so that it lasts about `target` seconds, learnt from
    the writes so far: progress then moves at least every couple of seconds on a slow server,
    while a fast one writes large chunks."""

    def __init__(self, most, target=1.0, fewest=50):
        self.target, self.fewest, self.most = target, fewest, most
        self.limit = max(fewest, most // 4)

    def learn(self, links, seconds):
        if links and seconds > 0:
            self.limit = int(min(self.most, max(self.fewest, self.target * links / seconds)))


def _cut_at(docs, links, limit):
    """How many of `docs` (in order) to take so that at most `limit` of them are in `links`."""
    linked = {file_id for ids in links.values() for file_id in ids}
    if len(linked) <= limit:
        return len(docs)
    taken = 0
    for index, doc in enumerate(docs):
        if doc["_id"] in linked:
            taken += 1
            if taken > limit:
                return index
    return len(docs)


def sync_job(ctx):
    """Link every unlinked mask file whose batch exists, chunk by chunk in `_id` order.

    A chunk holds at most SYNC_CHUNK_SIZE files and as many links as one write can carry in
    about a second (WritePace). After each chunk the job saves its counts and the chunk's last
    `_id`; a resumed run continues after it. A chunk cut off half-way is scanned again and
    completed: its links are conditional on the file still being unlinked, so nothing is
    linked twice. Distinct batch counts are exact within one run; a resumed run may count a
    batch that spans the resume point twice.
    """
    saved = ctx.resume or {}
    counts = _sync_counts(saved.get("counts"))
    total = saved.get("total")
    if total is None:
        with ctx.step():
            total = unlinked_count()
        ctx.checkpoint(0, total, "files", {"total": total, "after": None, "counts": counts}, counts)
    base_batches, base_missing = counts["batches_updated"], counts["missing_batches"]
    updated, missing = set(), set()
    known = KnownBatches()
    pace = WritePace(ctx.chunk_size)
    pending = []  # files read but left for the next chunk
    cursor = unlinked_after(saved.get("after"), ctx.chunk_size)
    try:
        while True:
            with ctx.step():
                docs = pending + next_chunk(cursor, ctx.chunk_size - len(pending))
                if not docs:
                    break
                scan = classify(docs, EXAMPLES)
                existing = known.existing(scan.files_by_batch)
                links = {b: ids for b, ids in scan.files_by_batch.items() if b in existing}
                cut = _cut_at(docs, links, pace.limit)
                docs, pending = docs[:cut], docs[cut:]
                if pending:
                    scan = classify(docs, EXAMPLES)
                    links = {b: ids for b, ids in scan.files_by_batch.items() if b in existing}
                if links:
                    began = time.monotonic()
                    links = write_links(links, utcnow())
                    pace.learn(sum(len(ids) for ids in links.values()), time.monotonic() - began)
            chunk_missing = sorted(set(scan.files_by_batch) - existing)
            updated.update(links)
            missing.update(chunk_missing)
            counts["files_scanned"] += scan.scanned
            counts["files_linked"] += sum(len(ids) for ids in links.values())
            counts["batches_updated"] = base_batches + len(updated)
            counts["unmatched"] += scan.unmatched_total
            counts["missing_batches"] = base_missing + len(missing)
            _add_examples(counts["unmatched_examples"], scan.unmatched)
            _add_examples(counts["missing_batch_examples"], chunk_missing)
            ctx.checkpoint(counts["files_scanned"], max(total, counts["files_scanned"]), "files",
                           {"total": total, "after": docs[-1]["_id"], "counts": counts}, counts)
    finally:
        cursor.close()
    return {"job_id": str(ctx.job_id), **counts, "duration_ms": _duration_ms(ctx)}


CREATE_CHUNK = 1000


def auto_create_job(ctx):
    """Create a pending batch for each batch id named by unlinked files and missing (at most `limit`).

    First a pass over the unlinked files in chunks (progress in files), then the inserts in
    chunks (progress in batches). A resumed run starts over: the unique batch id makes that safe.
    """
    limit = ctx.params.get("limit") or current_app.config["AUTO_CREATE_LIMIT"]
    with ctx.step():
        total = unlinked_count()
    ctx.checkpoint(0, total, "files")
    named = Counter()
    scanned = 0
    cursor = unlinked_after(None, ctx.chunk_size)
    try:
        while True:
            with ctx.step():
                docs = next_chunk(cursor, ctx.chunk_size)
            if not docs:
                break
            for batch_id, ids in classify(docs, 0).files_by_batch.items():
                named[batch_id] += len(ids)
            scanned += len(docs)
            ctx.checkpoint(scanned, max(total, scanned), "files")
    finally:
        cursor.close()
    with ctx.step():
        existing = existing_batch_ids(named)
    missing = sorted(set(named) - existing)
    to_create = missing[:limit]
    created = 0
    ctx.checkpoint(0, len(to_create), "batches")
    for start in range(0, len(to_create), CREATE_CHUNK):
        now = utcnow()
        docs = [new_batch(b, image_count=named[b], source="auto-create", now=now)
                for b in to_create[start:start + CREATE_CHUNK]]
        with ctx.step():
            created += create_batches(docs)
        partial = {"created": created}
        ctx.checkpoint(start + len(docs), len(to_create), "batches", partial=partial)
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
                docs = next_chunk(cursor, ctx.chunk_size)
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


def _check_files_pipeline(limit):
    """Unlinked files, then one summary document (totals and duplicate hashes), then the
    number of files whose chunks are orphaned (gridfs_orphans.py), when there are any."""
    return [
        {"$match": UNLINKED},
        {"$project": SCAN_FIELDS},
        {"$unionWith": {"coll": db.mask_files().name, "pipeline": [
            {"$facet": {
                "totals": [{"$group": {"_id": None, "files_total": {"$sum": 1}, "linked": {"$sum": LINKED_AS_ONE}}}],
                "duplicates": [
                    {"$match": {"metadata.sha256": {"$type": "string"}}},
                    {"$group": {"_id": "$metadata.sha256", "n": {"$sum": 1},
                                "files": {"$push": {"id": {"$toString": "$_id"}, "filename": "$filename"}}}},
                    {"$match": {"n": {"$gt": 1}}},
                    {"$sort": {"_id": 1}},
                    {"$limit": limit},
                ],
            }},
            {"$set": {"_summary": True}},
        ]}},
        {"$unionWith": {"coll": db.mask_chunks().name, "pipeline": [
            *gridfs_orphans.pipeline(),
            {"$group": {"_id": None, "files": {"$sum": 1}}},
            {"$set": {"_orphans": True}},
        ]}},
    ]


def _check_batches_pipeline(candidate_ids, limit):
    """Which named batches exist, then batches without masks (capped)."""
    return [
        {"$match": id_range_query(candidate_ids) if candidate_ids else {"id": {"$in": []}}},
        {"$project": {"_id": 0, "id": 1}},
        {"$unionWith": {"coll": db.batches().name, "pipeline": [
            {"$match": {"mask_count": {"$in": [0, None]}}},
            {"$sort": {"number": 1}},
            {"$limit": limit},
            {"$project": {"_id": 0, "id": 1, "_without_masks": {"$literal": True}}},
        ]}},
    ]


def check(limit):
    """Audit the mask files in two round trips (two aggregations)."""
    summary = {}

    def files_and_summary():
        for doc in db.mask_files().aggregate(_check_files_pipeline(limit), batchSize=SCAN_BATCH_SIZE):
            if doc.get("_summary"):
                summary.update(doc)
            elif doc.get("_orphans"):
                summary["orphan_chunk_files"] = doc["files"]
            else:
                yield doc

    scan = classify(files_and_summary(), limit)
    candidates = sorted(scan.files_by_batch)
    existing, without_masks = set(), []
    for doc in db.batches().aggregate(_check_batches_pipeline(candidates, limit), batchSize=SCAN_BATCH_SIZE):
        if doc.get("_without_masks"):
            without_masks.append(doc["id"])
        elif doc["id"] in scan.files_by_batch:
            existing.add(doc["id"])
    totals = (summary.get("totals") or [{}])[0]
    missing = [b for b in candidates if b not in existing]
    files_total = totals.get("files_total", 0)
    linked = totals.get("linked", 0)
    return {
        "files_total": files_total,
        "linked": linked,
        "unlinked": files_total - linked,
        "unmatched": scan.unmatched,
        "unmatched_total": scan.unmatched_total,
        "missing_batches": missing[:limit],
        "missing_batches_total": len(missing),
        "batches_without_masks": without_masks,
        "duplicates": [{"sha256": d["_id"], "count": d["n"], "files": d["files"]}
                       for d in summary.get("duplicates", [])],
        "orphan_chunk_files": summary.get("orphan_chunk_files", 0),
    }
