"""Batch search served by an index: normalized prefix keys.

Each batch stores `search_keys`: its id, its whole name and each word of its name,
normalized (NFKC, case-folded). A search for `q` is a range over that multikey index
(keys from `q` up to `q` followed by the highest code point), so its cost follows the
number of matches, not the size of the collection. `$elemMatch` makes both bounds apply
to the same key (a plain range on an array may match with two different keys).
Batches stored before the keys existed get them from `flask --app app migrate`.
"""
import re
import unicodedata

MAX_KEYS = 64
_WORDS = re.compile(r"[\W_]+", re.UNICODE)
_TOP = "\U0010ffff"


def normalize(text):
    return unicodedata.normalize("NFKC", text).casefold().strip()


def keys_for(batch_id, name):
    """The search keys of a batch: id, whole name, words of the name (deduplicated, bounded)."""
    keys = [normalize(batch_id)]
    if isinstance(name, str) and name.strip():
        whole = normalize(name)
        keys.append(whole)
        keys.extend(word for word in _WORDS.split(whole) if word)
    return list(dict.fromkeys(key for key in keys if key))[:MAX_KEYS]


def prefix_query(q):
    """The filter for batches with a key starting with `q` (None when `q` normalizes to nothing)."""
    prefix = normalize(q)
    if not prefix:
        return None
    return {"search_keys": {"$elemMatch": {"$gte": prefix, "$lt": prefix + _TOP}}}
