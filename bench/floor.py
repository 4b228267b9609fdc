"""The floor: the database work an endpoint cannot avoid, with nothing around it.

- sync: one find of the files (same projection and batch size as SegDash), the
  filename rule applied in Python, then the same mask records SegDash writes,
  inserted in chunks, and one bulk write of the batches' counts. Which batches
  exist is known beforehand (not timed), so no job record, lease, existence
  query, waiting list, watermark or cache bookkeeping is counted.
- list: one find of one page (per_page documents, the list's projection and sort).
"""
from pymongo import UpdateOne

import db
import file_sync
import mask_records
from batch_service import LIST_FIELDS
from timeutil import utcnow


def existing_batch_ids():
    """The batches a sync links into: every one but the closed (reviewed) ones."""
    return {doc["id"] for doc in db.batches().find({"status": {"$nin": list(file_sync.CLOSED_STATUSES)}},
                                                   {"_id": 0, "id": 1}, batch_size=file_sync.SCAN_BATCH_SIZE)}


def sync(existing, batch_id_for):
    """Link every unlinked file whose batch is in `existing`; needs an app context.

    One find of all files (no anti-join: the floor starts from no records), then the
    records inserted in chunks and each batch's count set in one bulk write.
    """
    cursor = db.mask_files().find({}, file_sync.SCAN_FIELDS, batch_size=file_sync.SCAN_BATCH_SIZE)
    now = utcnow()
    records, versions, counts = [], {}, {}
    for doc in cursor:
        batch_id = batch_id_for(doc.get("filename"), (doc.get("metadata") or {}).get("batch_id"))
        if batch_id not in existing:
            continue
        key = (batch_id, mask_records.name_key(doc.get("filename")))
        versions[key] = versions.get(key, 0) + 1
        records.append(mask_records.new_record(batch_id, doc, versions[key], False, now))
    if not records:
        return {"files_linked": 0, "batches_updated": 0}
    latest = {}
    for record in records:
        latest[(record["batch_id"], record["name_key"])] = record
    for record in latest.values():
        record["current"] = True
        counts[record["batch_id"]] = counts.get(record["batch_id"], 0) + 1
    for start in range(0, len(records), mask_records.INSERT_CHUNK):
        db.mask_records().insert_many(records[start:start + mask_records.INSERT_CHUNK], ordered=False)
    db.batches().bulk_write([UpdateOne({"id": b}, {"$set": {"mask_count": n, "updated_at": now}})
                             for b, n in counts.items()], ordered=False)
    return {"files_linked": len(records), "batches_updated": len(counts)}


def list_page(per_page=50):
    return list(db.batches().find({}, LIST_FIELDS).sort("id", 1).limit(per_page))
