"""`flask --app app migrate`: bring a database of an earlier version to the current model.

Idempotent (a second run changes nothing) and safe to interrupt: it writes the new
shape first and removes the old one last, so a rerun finishes the work.

- Links held as id arrays on batches (`mask_files`) and as `metadata.linked_at` on
  GridFS files become mask records (mask_records.py): per batch and name, versions
  in upload order (then id), the last one current.
- Every batch's `mask_count` is recounted from the current records.
- The old fields and the indexes no query uses any more are removed.
"""
from collections import defaultdict

import click
from flask.cli import with_appcontext
from pymongo.errors import OperationFailure

import db
import mask_records
from cache import record_write
from timeutil import utcnow

FILE_FIELDS = {"filename": 1, "length": 1, "uploadDate": 1, "metadata": 1}
SCAN_BATCH_SIZE = 100_000


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


def convert_links(now):
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
    linked = mask_records.link_files(by_batch, now, count=False)  # migrate() recounts every batch next
    return sum(len(ids) for ids in linked.values())


def remove_old_fields():
    """Unset `mask_files` on batches and `metadata.linked_at` on files; returns (batches, files) changed."""
    batches = db.batches().update_many({"mask_files": {"$exists": True}}, {"$unset": {"mask_files": ""}})
    files = db.mask_files().update_many({"metadata.linked_at": {"$exists": True}},
                                        {"$unset": {"metadata.linked_at": ""}})
    return batches.modified_count, files.modified_count


def drop_retired_indexes():
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


def migrate():
    """Run every step; returns what each changed."""
    now = utcnow()
    mask_records.settle_pending_counts()
    report = {"records_created": convert_links(now)}
    all_batches = [doc["id"] for doc in db.batches().find({}, {"_id": 0, "id": 1}, batch_size=SCAN_BATCH_SIZE)]
    report["mask_counts_corrected"] = mask_records.settle_counts(all_batches)
    report["batches_cleaned"], report["files_cleaned"] = remove_old_fields()
    report["indexes_dropped"] = drop_retired_indexes()
    if report["records_created"] or report["mask_counts_corrected"]:
        record_write()
    return report


@click.command("migrate")
@with_appcontext
def migrate_command():
    """Convert an earlier database to the current data model (idempotent)."""
    report = migrate()
    click.echo(f"mask records created: {report['records_created']}")
    click.echo(f"mask counts corrected: {report['mask_counts_corrected']}")
    click.echo(f"batches without mask_files arrays now: {report['batches_cleaned']}")
    click.echo(f"files without linked_at now: {report['files_cleaned']}")
    click.echo(f"indexes dropped: {', '.join(report['indexes_dropped']) or 'none'}")
    changed = any(value for value in report.values())
    click.echo("migrated" if changed else "nothing to migrate: the database is up to date")


def init_app(app):
    app.cli.add_command(migrate_command)
