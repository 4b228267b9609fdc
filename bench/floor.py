"""The floor: the database work an endpoint cannot avoid, with nothing around it.

- sync: one find of the unlinked files (same filter, projection and batch size
  as SegDash), the filename rule applied in Python, then one bulk write of the
  same links SegDash writes (`file_sync._link_operations`: the same operations
  the app sends). Which batches exist is known beforehand (not timed), so no
  job record, lease, existence query or cache bookkeeping is counted.
- list: one find of one page (per_page documents, the list's projection and sort).
"""
import db
import file_sync
from batch_service import LIST_FIELDS
from timeutil import utcnow


def existing_batch_ids():
    return {doc["id"] for doc in db.batches().find({}, {"_id": 0, "id": 1}, batch_size=file_sync.SCAN_BATCH_SIZE)}


def sync(existing, batch_id_for):
    """Link every unlinked file whose batch is in `existing`; needs an app context."""
    cursor = db.mask_files().find(file_sync.UNLINKED, file_sync.SCAN_FIELDS, batch_size=file_sync.SCAN_BATCH_SIZE)
    links = {}
    for doc in cursor:
        batch_id = batch_id_for(doc.get("filename"), (doc.get("metadata") or {}).get("batch_id"))
        if batch_id in existing:
            links.setdefault(batch_id, []).append(doc["_id"])
    now = utcnow()
    if not links:
        return {"files_linked": 0, "batches_updated": 0}
    if db.supports_client_bulk_write():
        batch_ops, file_ops = file_sync._link_operations(
            links, now, db.namespace(db.batches()), db.namespace(db.mask_files()))
        db.client().bulk_write(batch_ops + file_ops, ordered=True)
    else:
        batch_ops, file_ops = file_sync._link_operations(links, now)
        db.batches().bulk_write(batch_ops, ordered=False)
        db.mask_files().bulk_write(file_ops, ordered=False)
    return {"files_linked": sum(len(ids) for ids in links.values()), "batches_updated": len(links)}


def list_page(per_page=50):
    return list(db.batches().find({}, LIST_FIELDS).sort("id", 1).limit(per_page))
