"""Batch search served by an index: normalized prefix keys.

Each batch stores `search_keys`: every prefix (up to PREFIX_LENGTH characters) of its id,
of its whole name and of each word of its name, and those strings whole, normalized
(NFKC, case-folded). A search for `q` is then an equality on that multikey index — a
point lookup on any server's planner, so its cost follows the number of matches, not
the size of the collection — and never a regular expression over the collection. (A
range over an array field would match with two different keys, one above the lower
bound and another below the upper one; equality has no such trap.) A `q` longer than
PREFIX_LENGTH looks up its first PREFIX_LENGTH characters and keeps the batches with a
whole key starting with all of it.

Batches stored before the keys existed get them from `flask --app app migrate`.
"""
import re
import unicodedata

PREFIX_LENGTH = 64
_WORDS = re.compile(r"[\W_]+", re.UNICODE)


def normalize(text):
    return unicodedata.normalize("NFKC", text).casefold().strip()


def keys_for(batch_id, name):
    """The search keys of a batch: prefixes of its id, whole name and words, and those whole."""
    whole_keys = [normalize(batch_id)]
    if isinstance(name, str) and name.strip():
        whole = normalize(name)
        whole_keys.append(whole)
        whole_keys.extend(word for word in _WORDS.split(whole) if word)
    keys = {}
    for text in whole_keys:
        for end in range(1, min(len(text), PREFIX_LENGTH) + 1):
            keys[text[:end]] = None
        keys[text] = None
    return list(keys)


def query(q, also_ids=()):
    """The filter for batches with a key starting with `q`, or whose id is in `also_ids`;
    None when `q` normalizes to nothing and no id is given."""
    prefix = normalize(q)
    if len(prefix) > PREFIX_LENGTH:
        return {"search_keys": prefix[:PREFIX_LENGTH],
                "$and": [{"search_keys": {"$regex": "^" + re.escape(prefix)}}]}
    wanted = ([prefix] if prefix else []) + [i for i in also_ids if i and i != prefix]
    if not wanted:
        return None
    return {"search_keys": wanted[0] if len(wanted) == 1 else {"$in": wanted}}
