"""Mask files in GridFS: streamed, hashed, deduplicated uploads and streamed downloads."""
import hashlib
import re
import unicodedata

from bson import ObjectId
from bson.errors import InvalidId
from flask_babel import gettext as _
from gridfs.errors import NoFile

import db
import file_sync
from cache import writes
from errors import DB_UNAVAILABLE, ApiError, bad_request, not_found
from links import is_linked
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


def public_file(doc, deduplicated=False):
    metadata = doc.get("metadata") or {}
    return {"id": str(doc["_id"]), "filename": doc.get("filename"), "length": doc.get("length"),
            "sha256": metadata.get("sha256"), "batch_id": metadata.get("batch_id"),
            "uploadDate": iso(doc.get("uploadDate")), "deduplicated": deduplicated}


def link_to_batch(file_id, batch_id, now):
    """Add a stored, still unlinked file to `batch_id` and mark it linked (the same write as sync's).

    The batch is written before the file, so a crash in between leaves the file
    unlinked for the next sync to finish; a file another writer linked first
    stays where it is. True when this call linked it.
    """
    return bool(file_sync.write_links({batch_id: [file_id]}, now))


@writes
def store(stream, filename, uploaded_by, batch_id=None):
    """Stream `stream` into GridFS in 8 KiB chunks while hashing it.

    If a file with the same SHA-256 already exists the new copy is discarded
    (its chunks deleted) and the existing file is returned, marked deduplicated. So
    uploading the same content again is harmless, and is the way to learn the outcome
    of an upload whose answer was lost or was a 503.
    """
    bucket = db.mask_bucket()
    metadata = {"uploaded_by": uploaded_by}
    grid_in = bucket.open_upload_stream(filename, metadata=metadata)
    hasher = hashlib.sha256()
    size = 0
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
        existing = db.mask_files().find_one({"metadata.sha256": digest})
        if existing is not None:
            # Also how a retry of an upload whose answer was lost ends: the stored file,
            # linked now if the first attempt stopped before linking it.
            grid_in.abort()
            if batch_id and not is_linked(existing):
                link_to_batch(existing["_id"], batch_id, utcnow())
                existing = db.mask_files().find_one({"_id": existing["_id"]})
            if batch_id:
                db.assume_written()  # the first attempt may have stopped before telling the caches
            return public_file(existing, deduplicated=True)
        metadata["sha256"] = digest
        if batch_id:
            # Stored unlinked but naming its batch: if the worker dies before the link
            # below, the next sync links it.
            metadata["batch_id"] = batch_id
        grid_in.set("metadata", metadata)
        grid_in.close()
    except BaseException:
        if not grid_in.closed:
            grid_in.abort()
        raise
    linked = {}
    try:
        if batch_id:
            now = utcnow()
            if link_to_batch(grid_in._id, batch_id, now):
                linked["linked_at"] = now
    except DB_UNAVAILABLE:
        raise ApiError(503, "database_unavailable",
                       _("The file was stored, but the database stopped answering before the upload was "
                         "confirmed. Upload it again: the same content is recognised, nothing is stored "
                         "twice, and the file is linked to its batch.")) from None
    doc = {"_id": grid_in._id, "filename": filename, "length": grid_in.length,
           "uploadDate": grid_in.upload_date, "metadata": {**metadata, **linked}}
    return public_file(doc)


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
