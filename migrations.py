"""`flask --app app migrate`: bring stored data up to what this version of the code reads.

Idempotent (a second run changes nothing), reports what each step changed, and safe to
interrupt: it writes the new shape first and removes the old one last, so a rerun
finishes the work. Run by start_optimized.sh at every start, after ensure-indexes.

Steps, in order (STEPS):
- links held as id arrays on batches (`mask_files`) and as `metadata.linked_at` on
  GridFS files become mask records (mask_records.py): per batch and name, versions
  in upload order (then id), the last one current;
- every batch's `mask_count` is recounted from the current records;
- the old link fields are removed;
- batches without `search_keys` (stored before search used them) get them (search.py);
- the indexes no query uses any more (db.RETIRED_INDEXES) are dropped.
"""
from collections import defaultdict

import click
from flask.cli import with_appcontext
from flask_babel import gettext as _
from pymongo import UpdateOne
from pymongo.errors import OperationFailure

import db
import mask_records
import search
from cache import writes
from timeutil import utcnow

FILE_FIELDS = {"filename": 1, "length": 1, "uploadDate": 1, "metadata": 1}
SCAN_BATCH_SIZE = 100_000
CHUNK = 1000


# ---------------------------------------------------------------- mask links → mask records


def _old_links():
    """{file_id: batch_id} of the files linked under the old model (arrays first, then file metadata)."""
    owner = {}
    for doc in db.batches().find({"mask_files.0": {"$exists": True}}, {"_id": 0, "id": 1, "mask_files": 1},
                                 batch_size=SCAN_BATCH_SIZE):
        for file_id in doc["mask_files"]:
            owner.setdefault(file_id, doc["id"])
    for doc in db.mask_files().find({"metadata.linked_at": {"$ne": None}, "metadata.batch_id": {"$type": "string"}},
                                    {"metadata.batch_id": 1}, batch_size=SCAN_BATCH_SIZE):
        owner.setdefault(doc["_id"], doc["metadata"]["batch_id"])
    return owner


def _files(file_ids):
    wanted = set(file_ids)
    found = {}
    for start in range(0, len(file_ids), 50_000):
        part = sorted(file_ids)[start:start + 50_000]
        for doc in db.mask_files().find(mask_records.in_query("_id", part), FILE_FIELDS, batch_size=SCAN_BATCH_SIZE):
            if doc["_id"] in wanted:
                found[doc["_id"]] = doc
    return found


def convert_links():
    """Records for the old links that have none; returns how many it created."""
    owner = _old_links()
    if not owner:
        return 0
    already = set()
    for doc in db.mask_records().find({}, {"_id": 0, "file_id": 1}, batch_size=SCAN_BATCH_SIZE):
        already.add(doc["file_id"])
    pending = [file_id for file_id in owner if file_id not in already]
    files = _files(pending)
    existing_batches = {doc["id"] for doc in db.batches().find(
        mask_records.in_query("id", set(owner[f] for f in pending)), {"_id": 0, "id": 1}, batch_size=SCAN_BATCH_SIZE)}
    by_batch = defaultdict(list)
    for file_id in pending:
        if file_id in files and owner[file_id] in existing_batches:
            by_batch[owner[file_id]].append(files[file_id])
    if not by_batch:
        return 0
    linked = mask_records.link_files(by_batch, utcnow(), count=False)  # the next step recounts every batch
    return sum(len(ids) for ids in linked.values())


def recount_masks():
    """Settle every batch's mask_count (mask_records.settle_counts); returns how many changed."""
    note_ids, _pending = mask_records.pending_counts()  # every batch is settled below, the pending ones too
    all_batches = sorted(doc["id"] for doc in db.batches().find({}, {"_id": 0, "id": 1}, batch_size=SCAN_BATCH_SIZE))
    slice_ = mask_records.SETTLE_SLICE
    changed = sum(mask_records.settle_counts(all_batches[start:start + slice_])
                  for start in range(0, len(all_batches), slice_))
    mask_records.clear_pending(note_ids)
    return changed


def remove_old_batch_links():
    """Unset `mask_files` on batches; returns how many changed."""
    return db.batches().update_many({"mask_files": {"$exists": True}}, {"$unset": {"mask_files": ""}}).modified_count


def remove_old_file_links():
    """Unset `metadata.linked_at` on files; returns how many changed."""
    return db.mask_files().update_many({"metadata.linked_at": {"$exists": True}},
                                       {"$unset": {"metadata.linked_at": ""}}).modified_count


# ---------------------------------------------------------------- search keys, indexes


def add_search_keys():
    """Give every batch without `search_keys` its keys; returns how many were updated."""
    updated = 0
    pending = []
    cursor = db.batches().find({"search_keys": {"$exists": False}}, {"_id": 1, "id": 1, "name": 1},
                               batch_size=CHUNK)
    for doc in cursor:
        keys = search.keys_for(doc["id"], doc.get("name") or doc["id"])
        pending.append(UpdateOne({"_id": doc["_id"], "search_keys": {"$exists": False}},
                                 {"$set": {"search_keys": keys}}))
        if len(pending) >= CHUNK:
            updated += db.batches().bulk_write(pending, ordered=False).modified_count
            pending = []
    if pending:
        updated += db.batches().bulk_write(pending, ordered=False).modified_count
    return updated


def drop_retired_indexes():
    """Drop the indexes of db.RETIRED_INDEXES that exist; returns their names."""
    dropped = []
    database = db.database()
    for collection, name in db.RETIRED_INDEXES:
        try:
            existing = database[collection].index_information()
        except OperationFailure:
            continue
        if name in existing:
            database[collection].drop_index(name)
            dropped.append(f"{collection}.{name}")
    return dropped


# ---------------------------------------------------------------- the command

# (report key, step), run in this order.
STEPS = [
    ("mask records created", convert_links),
    ("mask counts corrected", recount_masks),
    ("old mask lists removed from batches", remove_old_batch_links),
    ("old link fields removed from files", remove_old_file_links),
    ("batches given search keys", add_search_keys),
    ("obsolete indexes dropped", drop_retired_indexes),
]


def _labels():
    """The report keys as shown (translated; the same text in English)."""
    return {
        "mask records created": _("mask records created"),
        "mask counts corrected": _("mask counts corrected"),
        "old mask lists removed from batches": _("old mask lists removed from batches"),
        "old link fields removed from files": _("old link fields removed from files"),
        "batches given search keys": _("batches given search keys"),
        "obsolete indexes dropped": _("obsolete indexes dropped"),
    }


@writes
def migrate():
    """Run every step; returns {step: what it changed} (a number or a list of names)."""
    return {key: step() for key, step in STEPS}


@click.command("migrate")
@with_appcontext
def migrate_command():
    """Bring stored data up to date with this version (idempotent; says what it changed)."""
    report = migrate()
    labels = _labels()
    for key, changed in report.items():
        shown = ", ".join(changed) if isinstance(changed, list) else changed
        click.echo(_("%(step)s: %(changed)s", step=labels[key], changed=shown or 0))
    if any(report.values()):
        click.echo(_("migrated"))
    else:
        click.echo(_("nothing to migrate: the database is up to date"))
