"""Batch ids: the canonical form, and the filename → batch rule (SPEC §4).

A mask file belongs to batch N when its `metadata.batch_id` names it, or when its
path contains the token `batch` or `b` (any case), optionally followed by one
separator (`_`, `-`, `.`, space), then the digits of N. A token counts only at
the start of the path or of a path segment, or right after a separator; the
first token in the path wins. Extra patterns (regular expressions with one
capturing group for the digits) can be configured; the earliest match in the
path, over the built-in rule and the extra patterns, wins.
"""
import re

import re2

MIN_DIGITS = 4
MAX_DIGITS = 12
MAX_REFERENCE = 64  # longest text accepted as a batch reference

# Path segments are split by "/" and "\"; a token may also follow one of the
# listed separators inside a segment.
_TOKEN = re.compile(
    r"(?:^|(?<=[/\\_\-. ]))(?:batch|b)[_\-. ]?([0-9]+)",
    re.IGNORECASE,
)
# A whole id given by a person or a file's metadata: "batch_0007", "Batch-7", "b7", "7".
_WHOLE_ID = re.compile(r"^\s*(?:(?:batch|b)[_\-. ]?)?([0-9]+)\s*$", re.IGNORECASE)


def format_batch_id(number):
    return f"batch_{number:0{MIN_DIGITS}d}"


def canonical_batch_id(value):
    """The canonical id for a batch reference such as `Batch-7` or `b0007`, or None."""
    if not isinstance(value, str) or len(value) > MAX_REFERENCE:
        return None
    match = _WHOLE_ID.match(value)
    return _number_id(match.group(1)) if match else None


def _number_id(digits):
    """Canonical id from a run of digits; None when it is not a plain ASCII number or too long."""
    if not (digits and digits.isascii() and digits.isdigit()):
        return None
    significant = digits.lstrip("0")
    if len(significant) > MAX_DIGITS:
        return None
    return format_batch_id(int(significant or "0"))


def batch_number(batch_id):
    """The number of a canonical id (`batch_0042` → 42): batches are listed in this order."""
    return int(batch_id.rsplit("_", 1)[1])


def _re2_options():
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    return options


def compile_extra_patterns(spec):
    """Parse EXTRA_BATCH_PATTERNS: regular expressions separated by `;;`.

    Each must have exactly one capturing group that matches the batch number's digits.
    They run on RE2 (google-re2), whose matching time grows linearly with the file name,
    so no configured pattern can backtrack catastrophically (`(a+)+b` on a long name);
    RE2 has no backreferences or lookaround, and refuses such patterns here.
    Raises ValueError on a pattern that does not compile or has the wrong groups.
    """
    patterns = []
    for source in (part.strip() for part in (spec or "").split(";;")):
        if not source:
            continue
        try:
            pattern = re2.compile(source, _re2_options())
        except re2.error as exc:
            reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) \
                else str(exc)
            raise ValueError(f"extra batch pattern {source!r} does not compile with RE2 (no backreferences "
                             f"or lookaround): {reason}") from None
        if pattern.groups != 1:
            raise ValueError(f"extra batch pattern {source!r} needs exactly one capturing group")
        patterns.append(pattern)
    return patterns


class BatchMatcher:
    """Applies the rule with a fixed set of extra patterns."""

    def __init__(self, extra_patterns=()):
        self.patterns = [_TOKEN, *extra_patterns]

    def batch_id_for(self, filename, metadata_batch_id=None):
        """The canonical batch id a file belongs to, or None when nothing names one."""
        from_metadata = canonical_batch_id(metadata_batch_id)
        if from_metadata or not isinstance(filename, str):
            return from_metadata
        best_start, best_id = None, None
        for pattern in self.patterns:
            for match in pattern.finditer(filename):
                batch_id = _number_id(match.group(1))
                if batch_id:
                    if best_start is None or match.start() < best_start:
                        best_start, best_id = match.start(), batch_id
                    break
        return best_id
