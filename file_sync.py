"""Linking mask files to batches (sync), creating missing batches, auditing files.

Each operation does its data work in a constant number of round trips, whatever
the number of files and batches:
1. one streamed find of the unlinked files (name and metadata.batch_id only);
2. one find of which of the named batches exist;
3. one write: sync adds the files to their batches and marks the files linked in
   a single cross-collection `bulkWrite` (MongoDB 8+; two bulk writes on older
   servers); auto-create inserts the missing batches with one `insert_many`.
The writes are idempotent ($setUnion, conditional updates, a unique id), so a
run cut off half-way is completed by the next one without duplicates.
"""
from collections import defaultdict
from dataclasses import dataclass, field

from flask import current_app
from pymongo import UpdateMany, UpdateOne
from pymongo.errors import BulkWriteError

import db
import gridfs_orphans
import jobs
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


def scan_unlinked(unmatched_limit=100):
    cursor = db.mask_files().find(UNLINKED, SCAN_FIELDS, batch_size=SCAN_BATCH_SIZE)
    return classify(cursor, unmatched_limit)


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


@writes
def sync(started_by):
    """Link every unlinked mask file whose batch exists. Returns the result summary."""
    job = jobs.start("sync", started_by)
    began = utcnow()
    with jobs.running(job):
        scan = scan_unlinked()
        jobs.set_progress(job, 0, scan.scanned)
        existing = existing_batch_ids(scan.files_by_batch.keys())
        links = {b: ids for b, ids in scan.files_by_batch.items() if b in existing}
        if links:
            links = write_links(links, utcnow())
        missing = sorted(set(scan.files_by_batch) - existing)
        result = {
            "job_id": str(job["_id"]),
            "files_scanned": scan.scanned,
            "files_linked": sum(len(ids) for ids in links.values()),
            "batches_updated": len(links),
            "unmatched": scan.unmatched_total,
            "unmatched_examples": scan.unmatched[:20],
            "missing_batches": len(missing),
            "missing_batch_examples": missing[:20],
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
