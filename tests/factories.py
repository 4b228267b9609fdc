"""Building test data directly in the database."""
import hashlib
from datetime import datetime, timedelta, timezone

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


def upload_dates(count):
    """`count` upload dates one millisecond apart, in order, ending now: files uploaded one after
    the other, as GridFS dates them (many files sharing one instant is not what uploads make)."""
    now = datetime.now(timezone.utc)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    return [now - timedelta(milliseconds=count - index) for index in range(count)]


def insert_mask_files(database, filenames, metadata=None, content_prefix=b"mask"):
    """Insert GridFS file documents (with one chunk each) named `filenames`; returns their ids."""
    files, chunks = [], []
    filenames = list(filenames)
    dates = upload_dates(len(filenames))
    for index, name in enumerate(filenames):
        file_id = ObjectId()
        content = content_prefix + str(file_id).encode() + str(index).encode()
        meta = {"sha256": hashlib.sha256(content).hexdigest(), "uploaded_by": "seed"}
        meta.update(metadata or {})
        files.append({"_id": file_id, "filename": name, "length": len(content), "chunkSize": 261120,
                      "uploadDate": dates[index], "metadata": meta})
        chunks.append({"files_id": file_id, "n": 0, "data": content})
    if files:
        database["masks.files"].insert_many(files)
        database["masks.chunks"].insert_many(chunks)
    return [f["_id"] for f in files]


def link_files(database, batch_id, file_ids):
    """Link stored files to a batch directly (as a sync would): version 1, current, of each (distinct) name."""
    import mask_records

    files = {doc["_id"]: doc for doc in database["masks.files"].find({"_id": {"$in": list(file_ids)}})}
    records = [mask_records.new_record(batch_id, files[file_id], 1, True, files[file_id]["uploadDate"])
               for file_id in file_ids]
    if records:
        database.mask_records.insert_many(records)
        database.batches.update_one({"id": batch_id}, {"$inc": {"mask_count": len(records)}})


def records_of(database, batch_id):
    """{name_key: [(version, current, file_id)…]} of a batch, versions in order."""
    found = {}
    for doc in database.mask_records.find({"batch_id": batch_id}).sort([("name_key", 1), ("version", 1)]):
        found.setdefault(doc["name_key"], []).append((doc["version"], doc["current"], doc["file_id"]))
    return found


def linked_file_ids(database, batch_id=None, current_only=False):
    query = {} if batch_id is None else {"batch_id": batch_id}
    if current_only:
        query["current"] = True
    return sorted(doc["file_id"] for doc in database.mask_records.find(query, {"file_id": 1}))


def assert_records_consistent(database):
    """The mask model's invariants: each batch's mask_count is its number of current records, each name
    of a batch has exactly one current version, versions of a name are distinct, a file is linked once,
    every record's file exists and every record's batch exists."""
    counts, names, versions, files = {}, set(), set(), set()
    current_names = {}
    for doc in database.mask_records.find():
        key = (doc["batch_id"], doc["name_key"])
        names.add(key)
        assert (key, doc["version"]) not in versions, f"version {doc['version']} of {key} twice"
        versions.add((key, doc["version"]))
        assert doc["file_id"] not in files, f"file {doc['file_id']} linked twice"
        files.add(doc["file_id"])
        if doc["current"]:
            assert key not in current_names, f"{key} has two current versions"
            current_names[key] = doc["version"]
            counts[doc["batch_id"]] = counts.get(doc["batch_id"], 0) + 1
    assert names == set(current_names), f"names without a current version: {names - set(current_names)}"
    existing = {d["_id"] for d in database["masks.files"].find({"_id": {"$in": list(files)}}, {"_id": 1})}
    assert existing == files, f"records of missing files: {files - existing}"
    batches = {d["id"]: d.get("mask_count") or 0 for d in database.batches.find({}, {"id": 1, "mask_count": 1})}
    for batch_id in counts:
        assert batch_id in batches, f"records of a missing batch {batch_id}"
    for batch_id, mask_count in batches.items():
        current = counts.get(batch_id, 0)
        assert mask_count == current, f"{batch_id}: mask_count {mask_count}, current {current}"
    for doc in database.batches.find({"mask_files": {"$exists": True}}, {"id": 1}):
        raise AssertionError(f"{doc['id']} still has a mask_files array")


def bump_cache_version(app):
    """After writing to the database directly, as another process would: the app's own writes
    bump the cache version through cache.writes, so the workers drop what they cached."""
    from cache import record_write

    with app.app_context():
        record_write()


def store_mask(database, filename, content, file_id=None, **metadata):
    """Store `content` as a GridFS mask file (as an upload does), under `file_id` when given; returns its id."""
    import gridfs

    meta = {"sha256": hashlib.sha256(content).hexdigest(), "uploaded_by": "seed", **metadata}
    bucket = gridfs.GridFSBucket(database, bucket_name="masks")
    if file_id is None:
        return bucket.upload_from_stream(filename, content, metadata=meta)
    bucket.upload_from_stream_with_id(ObjectId(file_id), filename, content, metadata=meta)
    return ObjectId(file_id)


def png_bytes(image, format="PNG", **options):
    """The bytes of a Pillow image saved in `format`."""
    import io

    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()
