"""Building test data directly in the database."""
import hashlib

from bson import ObjectId

from batch_ids import format_batch_id
from batch_service import new_batch


def insert_batches(database, numbers, **fields):
    docs = []
    name = fields.pop("name", None)  # through new_batch, which derives the search keys from it
    for number in numbers:
        doc = new_batch(format_batch_id(number), name=name, image_count=4)
        doc.update(fields)
        docs.append(doc)
    if docs:
        database.batches.insert_many(docs)
    return [d["id"] for d in docs]


def insert_mask_files(database, filenames, metadata=None, content_prefix=b"mask"):
    """Insert GridFS file documents (with one chunk each) named `filenames`; returns their ids."""
    files, chunks = [], []
    for index, name in enumerate(filenames):
        file_id = ObjectId()
        content = content_prefix + str(file_id).encode() + str(index).encode()
        meta = {"sha256": hashlib.sha256(content).hexdigest(), "uploaded_by": "seed"}
        meta.update(metadata or {})
        files.append({"_id": file_id, "filename": name, "length": len(content), "chunkSize": 261120,
                      "uploadDate": file_id.generation_time, "metadata": meta})
        chunks.append({"files_id": file_id, "n": 0, "data": content})
    if files:
        database["masks.files"].insert_many(files)
        database["masks.chunks"].insert_many(chunks)
    return [f["_id"] for f in files]


def bump_cache_version(app):
    """After writing to the database directly, as another process would: the app's own writes
    bump the cache version through cache.writes, so the workers drop what they cached."""
    from cache import record_write

    with app.app_context():
        record_write()
