"""Demo data: segmenters, batches in every status, and mask files in varied layouts.

Deterministic for a given seed. Most masks are linked to their batches already
(a mask record each; a few names have a corrected second version); the rest leave
work for the dashboard: files waiting for a sync, files naming
batches that do not exist yet (auto-create), files that match no rule, and a
few duplicate contents (check).
"""
import hashlib
import random
import secrets
from datetime import timedelta

from bson import ObjectId

import batch_progress
import db
import mask_records
from auth import create_user
from batch_ids import format_batch_id
from batch_service import new_batch
from cache import writes
from timeutil import utcnow

SEGMENTERS = ["alice", "bruno", "chen", "dana", "emeka", "farah", "goran", "hana", "ivan",
              "julia", "kofi", "lena"]
STATUS_WEIGHTS = [("pending", 28), ("assigned", 17), ("in_progress", 15), ("completed", 14),
                  ("reviewed", 22), ("rejected", 4)]
# Filename layouts of SPEC §4; {n} is the batch number, {i} the image number.
LAYOUTS = [
    "batch_{n:04d}/img_{i:04d}.png",
    "Batch-{n}/mask_{i}.png",
    "b{n:04d}_img{i:04d}.png",
    "BATCH.{n:04d}/img{i}.png",
    "masks/2026-11/b_{n}/img_{i:04d}.png",
    "project/batch {n}/{i:03d}.png",
    "seg/b{n}-img{i:04d}.png",
    "export\\batch_{n:04d}\\img_{i:04d}.png",
    "team/B.{n:05d}/frame_{i:05d}_mask.png",
]
UNMATCHED_LAYOUTS = ["misc/img_{i:04d}.png", "sub{n}.png", "mybatch{n}_mask.png", "scan_{i:05d}.png"]
PNG_HEADER = b"\x89PNG\r\n\x1a\n"
CHUNK_SIZE = 255 * 1024
INSERT_CHUNK = 5000
REUPLOADS = 25


def _status_for(rng):
    statuses, weights = zip(*STATUS_WEIGHTS)
    return rng.choices(statuses, weights)[0]


def _batch(number, rng, now):
    batch_id = format_batch_id(number)
    created = now - timedelta(days=rng.uniform(20, 45))
    doc = new_batch(batch_id, name=f"Scene {number:04d}", image_count=rng.randint(3, 6),
                    source="seed", now=created)
    status = _status_for(rng)
    doc["status"] = status
    meta = doc["metadata"]
    if status != "pending":
        doc["assignee"] = rng.choice(SEGMENTERS)
        meta["assigned_at"] = created + timedelta(days=rng.uniform(0.5, 5))
    if status in ("in_progress", "completed", "reviewed", "rejected"):
        meta["started_at"] = meta["assigned_at"] + timedelta(hours=rng.uniform(1, 48))
    if status in ("completed", "reviewed", "rejected"):
        meta["completed_at"] = now - timedelta(days=rng.uniform(0, 29), hours=rng.uniform(0, 23))
    if status == "reviewed":
        meta["reviewed_at"] = min(now, meta["completed_at"] + timedelta(hours=rng.uniform(2, 30)))
    if status == "rejected":
        meta["rejected_at"] = min(now, meta["completed_at"] + timedelta(hours=rng.uniform(2, 30)))
    doc["updated_at"] = max(v for v in meta.values() if hasattr(v, "year"))
    return doc


def _mask(filename, content, uploaded_by, upload_date, batch_id=None):
    file_id = ObjectId()
    metadata = {"sha256": hashlib.sha256(content).hexdigest(), "uploaded_by": uploaded_by}
    if batch_id:
        metadata["batch_id"] = batch_id
    files_doc = {"_id": file_id, "filename": filename, "length": len(content), "chunkSize": CHUNK_SIZE,
                 "uploadDate": upload_date, "metadata": metadata}
    chunk_doc = {"files_id": file_id, "n": 0, "data": content}
    return files_doc, chunk_doc


def _records(linked_files):
    """Mask records for the linked files: versions of a name in upload order, the last current."""
    by_name = {}
    for batch_id, doc in linked_files:
        by_name.setdefault((batch_id, mask_records.name_key(doc["filename"])), []).append(doc)
    records = []
    for (batch_id, _key), docs in by_name.items():
        docs.sort(key=lambda d: (d["uploadDate"], d["_id"]))
        for index, doc in enumerate(docs):
            records.append(mask_records.new_record(batch_id, doc, index + 1, index == len(docs) - 1,
                                                   doc["uploadDate"]))
    return records


def _insert_in_chunks(collection, docs):
    for start in range(0, len(docs), INSERT_CHUNK):
        collection.insert_many(docs[start:start + INSERT_CHUNK], ordered=False)


def is_empty():
    return db.batches().estimated_document_count() == 0 and db.mask_files().estimated_document_count() == 0


@writes
def seed_demo(batch_count=2348, mask_count=10000, seed=7):
    """Fill an empty database; returns the demo logins {username: password}."""
    rng = random.Random(seed)
    now = utcnow()
    logins = {"lead": secrets.token_urlsafe(9)}
    create_user("lead", "lead", password=logins["lead"], display_name="Lead")
    segmenter_password = secrets.token_urlsafe(9)
    for name in SEGMENTERS:
        create_user(name, "segmenter", password=segmenter_password, display_name=name.capitalize())
        logins[name] = segmenter_password

    batches = [_batch(n, rng, now) for n in range(1, batch_count + 1)]
    missing_numbers = list(range(batch_count + 1, batch_count + 1 + max(3, batch_count // 50)))
    files, chunks = [], []
    linked_files = []  # (batch id, file document)

    def add_file(number, image, linked, by_batch=None, unmatched=False):
        if unmatched:
            name = rng.choice(UNMATCHED_LAYOUTS).format(n=number, i=image)
        else:
            name = rng.choice(LAYOUTS).format(n=number, i=image)
        content = PNG_HEADER + rng.randbytes(rng.randint(48, 400))
        batch = by_batch or {}
        uploaded_by = batch.get("assignee") or rng.choice(SEGMENTERS)
        upload_date = now - timedelta(days=rng.uniform(0, 30))
        files_doc, chunk_doc = _mask(name, content, uploaded_by, upload_date,
                                     batch_id=batch.get("id") if linked else None)
        files.append(files_doc)
        chunks.append(chunk_doc)
        if linked:
            linked_files.append((batch["id"], files_doc))
            batch["mask_count"] += 1
        return files_doc

    duplicate_count = min(12, mask_count // 100)
    reupload_count = min(REUPLOADS, mask_count // 100)
    unmatched_share, missing_share, waiting_share = 0.03, 0.03, 0.12
    worked = [b for b in batches if b["status"] in ("in_progress", "completed", "reviewed", "rejected")]
    while len(files) < mask_count - duplicate_count - reupload_count:
        roll = rng.random()
        if roll < unmatched_share:
            add_file(rng.randint(1, batch_count), rng.randint(1, 9999), linked=False, unmatched=True)
        elif roll < unmatched_share + missing_share:
            add_file(rng.choice(missing_numbers), rng.randint(1, 6), linked=False)
        elif roll < unmatched_share + missing_share + waiting_share or not worked:
            add_file(rng.randint(1, batch_count), rng.randint(1, 6), linked=False)
        else:
            batch = rng.choice(worked)
            number = int(batch["id"].split("_")[1])
            full = batch["mask_count"] >= batch["image_count"]
            add_file(number, batch["mask_count"] + 1, linked=not full, by_batch=None if full else batch)
    # Re-uploads of existing content under another name: the check reports them as duplicates.
    for original, original_chunk in rng.sample(list(zip(files, chunks)), duplicate_count):
        copy, _ = _mask("reupload/" + original["filename"].replace("\\", "/").split("/")[-1],
                        original_chunk["data"], original["metadata"]["uploaded_by"], now)
        files.append(copy)
        chunks.append({"files_id": copy["_id"], "n": 0, "data": original_chunk["data"]})
    # Corrected masks: a second version of a few names (same name, newer upload), not counted twice.
    for batch_id, original in rng.sample(linked_files, min(reupload_count, len(linked_files))):
        content = PNG_HEADER + rng.randbytes(rng.randint(48, 400))
        later = min(now, original["uploadDate"] + timedelta(hours=rng.uniform(1, 48)))
        copy, chunk_doc = _mask(original["filename"], content, original["metadata"]["uploaded_by"], later,
                                batch_id=batch_id)
        files.append(copy)
        chunks.append(chunk_doc)
        linked_files.append((batch_id, copy))
    for batch in batches:
        batch["progress"] = batch_progress.percent(batch)
    _insert_in_chunks(db.batches(), batches)
    _insert_in_chunks(db.mask_records(), _records(linked_files))
    _insert_in_chunks(db.mask_files(), files)
    _insert_in_chunks(db.mask_chunks(), chunks)
    return logins
