"""Mask files in GridFS: streamed, hashed uploads linked as versions of a batch's mask; streamed downloads."""
import hashlib
import re
import unicodedata

from bson import ObjectId
from bson.errors import InvalidId
from flask_babel import gettext as _
from gridfs.errors import NoFile

import db
import mask_records
from cache import writes
from errors import DB_UNAVAILABLE, ApiError, bad_request, not_found
from timeutil import iso, utcnow

CHUNK_BYTES = 8 * 1024
MAX_FILENAME = 255
MAX_PART = 100
MAX_EXTENSION = 10
_UNSAFE = re.compile(r"[^\w .()+=,@-]", re.UNICODE)


def sanitize_filename(raw):
    """A safe relative path: no control characters, no `..`, no absolute part, bounded length.

    Directory parts are kept (they can name the batch); each part keeps letters,
    digits and a few punctuation marks, anything else becomes `_`.
    """
    if not isinstance(raw, str):
        return None
    text = unicodedata.normalize("NFC", raw).replace("\\", "/")
    parts = []
    for part in text.split("/"):
        part = _UNSAFE.sub("_", "".join(ch for ch in part if ch.isprintable())).strip(" .")
        if part and part not in (".", ".."):
            parts.append(_shorten(part, MAX_PART))
    # Too long: drop leading directories (the file's own name matters most).
    while len(parts) > 1 and len("/".join(parts)) > MAX_FILENAME:
        parts.pop(0)
    name = "/".join(parts)
    return name or None


def _shorten(part, limit):
    """`part` cut to `limit` characters, keeping a short extension (`.png`) when it has one."""
    if len(part) <= limit:
        return part
    stem, dot, ext = part.rpartition(".")
    if dot and stem and 0 < len(ext) <= MAX_EXTENSION:
        return stem[:limit - len(ext) - 1].rstrip(" .") + "." + ext
    return part[:limit]


def public_file(doc):
    """An upload stored without a batch (no record yet): sync links it later by its name."""
    metadata = doc.get("metadata") or {}
    return {"id": str(doc["_id"]), "filename": doc.get("filename"), "length": doc.get("length"),
            "sha256": metadata.get("sha256"), "batch_id": None, "version": None,
            "uploadDate": iso(doc.get("uploadDate")), "deduplicated": False}


def public_record(record, deduplicated=False):
    """An upload linked to its batch: the version its record holds."""
    return {"id": str(record["file_id"]), "filename": record.get("name"), "length": record.get("length"),
            "sha256": record.get("sha256"), "batch_id": record["batch_id"], "version": record["version"],
            "uploadDate": iso(record.get("uploaded_at")), "deduplicated": deduplicated}


@writes
def store(stream, filename, uploaded_by, batch_id=None):
    """Stream `stream` into GridFS in 8 KiB chunks while hashing it; link it to `batch_id`.

    With a batch, the file becomes the current version of its name there
    (mask_records.add_version). When that current version already has the same
    bytes, the new copy is discarded and the existing version answered, marked
    deduplicated. So uploading the same content again is harmless, and is the way
    to learn the outcome of an upload whose answer was lost or was a 503: a copy
    the first attempt stored without linking it is linked now (`_link_stored_copy`).
    Content is only ever compared within one batch and name: no upload answers
    with, reveals or moves another batch's file.
    """
    bucket = db.mask_bucket()
    metadata = {"uploaded_by": uploaded_by}
    if batch_id:
        # Names its batch: if the worker dies before the record is written, sync links it.
        metadata["batch_id"] = batch_id
    grid_in = bucket.open_upload_stream(filename, metadata=metadata)
    hasher = hashlib.sha256()
    size = 0
    latest = None
    try:
        while True:
            chunk = stream.read(CHUNK_BYTES)
            if not chunk:
                break
            size += len(chunk)
            hasher.update(chunk)
            grid_in.write(chunk)
        if size == 0:
            raise bad_request(_("The file is empty."), "empty_file")
        digest = hasher.hexdigest()
        if batch_id:
            latest = mask_records.latest(batch_id, mask_records.name_key(filename))
            if latest and latest.get("current") and latest.get("sha256") == digest:
                grid_in.abort()
                db.assume_written()  # the first attempt may have stopped before telling the caches
                return public_record(latest, deduplicated=True)
            stored = _link_stored_copy(batch_id, filename, digest)
            if stored is not None:
                grid_in.abort()
                return public_record(stored, deduplicated=True)
        metadata["sha256"] = digest
        grid_in.set("metadata", metadata)
        grid_in.close()
    except BaseException:
        if not grid_in.closed:
            grid_in.abort()
        raise
    doc = {"_id": grid_in._id, "filename": filename, "length": grid_in.length,
           "uploadDate": grid_in.upload_date, "metadata": metadata}
    if not batch_id:
        return public_file(doc)
    try:
        record, outcome = mask_records.add_version(batch_id, doc, utcnow(), latest_record=latest, dedupe=True)
        if outcome == "identical":
            # A concurrent upload of the same bytes and name won: keep one copy.
            bucket.delete(doc["_id"])
            return public_record(record, deduplicated=True)
    except DB_UNAVAILABLE:
        raise ApiError(503, "database_unavailable",
                       _("The file was stored, but the database stopped answering before the upload was "
                         "confirmed. Upload it again: the same content is recognised, nothing is stored "
                         "twice, and the file is linked to its batch.")) from None
    return public_record(record)


def _link_stored_copy(batch_id, filename, digest):
    """The record of a copy of these bytes a previous attempt stored for this batch and name
    but did not link (it stopped in between), linked now; None when there is no such copy."""
    for doc in db.mask_files().find({"metadata.sha256": digest, "metadata.batch_id": batch_id,
                                     "filename": filename}).sort([("uploadDate", 1), ("_id", 1)]):
        if not mask_records.is_linked(doc["_id"]):
            record, _outcome = mask_records.add_version(batch_id, doc, utcnow(), dedupe=True)
            db.assume_written()
            return record
    return None


def open_download(file_id):
    """The mask with this id as a GridOut (streamed), or a 404 error: the one lookup of a mask by id."""
    try:
        oid = ObjectId(file_id)
    except (InvalidId, TypeError):
        raise not_found(_("No mask %(id)s.", id=str(file_id)[:40])) from None
    try:
        return db.mask_bucket().open_download_stream(oid)
    except NoFile:
        raise not_found(_("No mask %(id)s.", id=file_id)) from None
