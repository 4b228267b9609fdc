"""The filename → batch rule (SPEC §4) and canonical ids."""
import pytest

from batch_ids import BatchMatcher, canonical_batch_id, compile_extra_patterns

MATCHES = [
    ("batch_0007/img_0003.png", "batch_0007"),
    ("Batch-7/mask_3.png", "batch_0007"),
    ("b0007.png", "batch_0007"),
    ("BATCH.0007/img3.png", "batch_0007"),
    ("b7", "batch_0007"),
    ("B7_img_0042.png", "batch_0007"),
    ("batch 12/001.png", "batch_0012"),
    ("project/batch 12/001.png", "batch_0012"),
    ("masks/2026-11/b_12/img_0004.png", "batch_0012"),
    ("seg/b12-img0004.png", "batch_0012"),
    ("export\\batch_0012\\img_0004.png", "batch_0012"),
    ("team/B.00012/frame_00004_mask.png", "batch_0012"),
    ("img_0004_batch_3.png", "batch_0003"),
    ("img-0004-b3.png", "batch_0003"),
    ("img.0004.b.3.png", "batch_0003"),
    ("scan 4 b 3.png", "batch_0003"),
    ("batch_12345/x.png", "batch_12345"),
    ("batch_000000042.png", "batch_0042"),
    ("BaTcH_42.PNG", "batch_0042"),
    ("2024/batch12/b5.png", "batch_0012"),
    ("b7b8.png", "batch_0007"),
    ("x/b9/batch_3.png", "batch_0009"),
    ("batch_7/batch_8/img.png", "batch_0007"),
    ("batch_0/img.png", "batch_0000"),
    ("/abs/path/b_0099/img.png", "batch_0099"),
    ("batch7.tif", "batch_0007"),
]

NO_MATCH = [
    "sub7.png",
    "mybatch7.png",
    "img3b7.png",
    "batches/img1.png",
    "batch__7.png",
    "batch-_7.png",
    "b--7.png",
    "misc/img_0003.png",
    "scan_00042.png",
    "abc.png",
    "",
    "batch.png",
    "b.png",
    "bb7.png",
    "xbatch_7/img.png",
    "batch٣.png",
    "batch_1234567890123.png",
    "lab7/img_b/x.png",
]


@pytest.mark.parametrize("filename,expected", MATCHES)
def test_layouts_that_name_a_batch(filename, expected):
    assert BatchMatcher().batch_id_for(filename) == expected


@pytest.mark.parametrize("filename", NO_MATCH)
def test_names_that_name_no_batch(filename):
    assert BatchMatcher().batch_id_for(filename) is None


def test_metadata_batch_id_wins_over_the_name():
    assert BatchMatcher().batch_id_for("batch_0001/x.png", "batch_0009") == "batch_0009"
    assert BatchMatcher().batch_id_for("x.png", "Batch-9") == "batch_0009"


def test_unusable_metadata_falls_back_to_the_name():
    assert BatchMatcher().batch_id_for("b3/x.png", "not a batch") == "batch_0003"
    assert BatchMatcher().batch_id_for(None, None) is None


@pytest.mark.parametrize("raw,expected", [
    ("batch_0007", "batch_0007"), ("Batch-7", "batch_0007"), ("b0007", "batch_0007"),
    ("BATCH.0007", "batch_0007"), ("7", "batch_0007"), ("batch_12345", "batch_12345"),
    ("batch 7", "batch_0007"),
])
def test_canonical_ids(raw, expected):
    assert canonical_batch_id(raw) == expected


@pytest.mark.parametrize("raw", ["", "batch", "batch_7x", "x7", "batch__7", None, 7, {"$ne": 1},
                                 "batch_-7", "7.5"])
def test_not_batch_ids(raw):
    assert canonical_batch_id(raw) is None


def test_extra_patterns_are_applied_and_the_earliest_token_wins():
    matcher = BatchMatcher(compile_extra_patterns(r"lot(\d+);;set-(\d+)"))
    assert matcher.batch_id_for("lot42/img.png") == "batch_0042"
    assert matcher.batch_id_for("data/set-5/img.png") == "batch_0005"
    assert matcher.batch_id_for("lot42/b7/img.png") == "batch_0042"
    assert matcher.batch_id_for("b7/lot42/img.png") == "batch_0007"
    assert matcher.batch_id_for("nothing.png") is None


@pytest.mark.parametrize("spec", [r"lot\d+", r"(lot)(\d+)", r"lot(\d+"])
def test_bad_extra_patterns_are_refused(spec):
    with pytest.raises(ValueError):
        compile_extra_patterns(spec)


def test_extra_patterns_match_in_linear_time():
    """A pattern that backtracks catastrophically under Python's re: RE2 answers at once."""
    import time

    matcher = BatchMatcher(compile_extra_patterns(r"(?:a+)+(\d+)x"))  # re: 2^n steps on "aaa…7"
    name = "a" * 5000 + "7"
    started = time.monotonic()
    assert matcher.batch_id_for(name) is None
    assert matcher.batch_id_for("aaa0042x") == "batch_0042"
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("spec", [r"(lot)\1(\d+)", r"(?<=lot)(\d+)", r"lot(?=x)(\d+)"])
def test_patterns_re2_cannot_run_are_refused_with_a_clear_message(spec):
    with pytest.raises(ValueError, match="does not compile with RE2"):
        compile_extra_patterns(spec)


def test_the_app_refuses_a_bad_pattern_at_start(mongo_uri, db_name):
    from helpers import build_app

    with pytest.raises(ValueError, match="extra batch pattern"):
        build_app(mongo_uri, db_name, EXTRA_BATCH_PATTERNS=r"(?<=lot)(\d+)")
