"""The benchmark's data: seed.py's generator, inserted in bulk before the indexes are built.

- seed scale and 10x: `seed.seed_demo(batches, masks)` (the SPEC §4 filename
  layouts, 3% of files matching no rule, 3% naming batches that do not exist,
  a few duplicate contents). Its inserts go to collections without indexes;
  `db.ensure_indexes()` builds them afterwards, which is several times faster
  on SecantusDB than maintaining them insert by insert.
- `unlinked=True` stores every file unlinked (no mask records) and every batch
  without masks (the state right after an import), so the sync runs need no
  reset first.
- `chunks=False` leaves out masks.chunks (file contents), which none of the
  operations measured at that scale reads.
- export: 100,000 batches for the CSV export, with only the unique id index
  the export's sort uses.
"""
import time
from contextlib import contextmanager
from unittest import mock

import auth
import batch_progress
import db
import seed
from batch_ids import format_batch_id
from batch_service import new_batch

BENCH_LEAD = "lead"


@contextmanager
def _seed_inserts(chunks, unlinked):
    original = seed._insert_in_chunks

    def insert(collection, docs):
        name = collection.name
        if name == "masks.chunks" and not chunks:
            return
        if unlinked and name == "mask_records":
            return
        if unlinked and name == "masks.files":
            for doc in docs:
                doc["metadata"].pop("batch_id", None)
        if unlinked and name == "batches":
            for doc in docs:
                doc["mask_count"] = 0
        original(collection, docs)

    with mock.patch.object(seed, "_insert_in_chunks", insert):
        yield


def build(scale):
    """Fill the app's (empty) database at `scale`; returns timings and counts. Needs an app context."""
    database = db.database()
    db.client().drop_database(database.name)
    began = time.perf_counter()
    with _seed_inserts(scale.chunks, scale.unlinked):
        seed.seed_demo(scale.batches, scale.masks)
    inserted = time.perf_counter()
    db.ensure_indexes()
    indexed = time.perf_counter()
    token = auth.create_token(BENCH_LEAD)
    files = database["masks.files"]
    return {
        "token": token,
        "insert_seconds": inserted - began,
        "index_seconds": indexed - inserted,
        "batches": database.batches.estimated_document_count(),
        "files": files.estimated_document_count(),
        "chunks": database["masks.chunks"].estimated_document_count(),
        "unlinked_files": files.estimated_document_count() - database.mask_records.estimated_document_count(),
        "users": database.users.estimated_document_count(),
    }


# A batch without masks, its stored progress following (batch_progress.py).
WITHOUT_MASKS = [{"$set": {"mask_count": 0}}, {"$unset": "mask_files"}, batch_progress.STAGE]


def reset_links():
    """No file linked, every batch without masks (and none of the baseline's old-shape link fields):
    a few statements, timed. The sync's own state (watermark, waiting files) is kept: the floor
    sync that follows links every file a sync would, so an idle sync after it is measured as in
    steady state."""
    database = db.database()
    began = time.perf_counter()
    database.mask_records.delete_many({})
    database["masks.files"].update_many({"metadata.linked_at": {"$exists": True}},
                                        {"$unset": {"metadata.linked_at": "", "metadata.batch_id": ""}})
    database.batches.update_many({"$or": [{"mask_count": {"$ne": 0}}, {"mask_files": {"$exists": True}}]},
                                 WITHOUT_MASKS)
    return time.perf_counter() - began


def undo_links(file_ids, batch_ids):
    """Undo the baseline's old-shape writes on a few files and batches (after a partial baseline run)."""
    database = db.database()
    for start in range(0, len(file_ids), 200):
        database["masks.files"].update_many(
            {"_id": {"$in": file_ids[start:start + 200]}},
            {"$unset": {"metadata.linked_at": "", "metadata.batch_id": ""}})
    for start in range(0, len(batch_ids), 200):
        database.batches.update_many({"id": {"$in": batch_ids[start:start + 200]}}, WITHOUT_MASKS)


def build_export(rows):
    """`rows` batches for the CSV export, with the unique id index; returns timings. Needs an app context."""
    database = db.database()
    db.client().drop_database(database.name)
    began = time.perf_counter()
    docs = []
    statuses = ("pending", "assigned", "in_progress", "completed", "reviewed")
    for number in range(1, rows + 1):
        doc = new_batch(format_batch_id(number), name=f"Scene {number:06d}", image_count=3 + number % 4,
                        source="bench")
        doc["status"] = statuses[number % len(statuses)]
        doc["assignee"] = None if doc["status"] == "pending" else seed.SEGMENTERS[number % len(seed.SEGMENTERS)]
        doc["mask_count"] = number % 5
        docs.append(doc)
        if len(docs) == 5000:
            database.batches.insert_many(docs, ordered=False)
            docs = []
    if docs:
        database.batches.insert_many(docs, ordered=False)
    inserted = time.perf_counter()
    for collection, keys, options, _query in db.INDEXES:
        if options.get("name") in ("batch_by_id", "user_by_username", "user_by_token"):
            database[collection].create_index(keys, **options)
    auth.create_user(BENCH_LEAD, "lead")
    token = auth.create_token(BENCH_LEAD)
    return {"rows": database.batches.estimated_document_count(), "token": token,
            "insert_seconds": inserted - began, "index_seconds": time.perf_counter() - inserted}
