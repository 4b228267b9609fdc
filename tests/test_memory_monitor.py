"""The memory monitor samples requests and warns above the threshold."""
import logging

from helpers import build_app


def test_every_sampled_request_logs_memory_and_warns_above_the_threshold(mongo_uri, db_name, caplog):
    app = build_app(mongo_uri, db_name, MEMORY_SAMPLE_RATE=1.0, MEMORY_WARN_MB=1)
    with caplog.at_level(logging.INFO, logger="segdash.memory"):
        assert app.test_client().get("/healthz").status_code == 200
    records = [r for r in caplog.records if r.name == "segdash.memory"]
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    assert "'path': '/healthz'" in records[0].getMessage() and "rss_mb" in records[0].getMessage()


def test_no_sample_at_rate_zero(mongo_uri, db_name, caplog):
    app = build_app(mongo_uri, db_name, MEMORY_SAMPLE_RATE=0.0)
    with caplog.at_level(logging.INFO, logger="segdash.memory"):
        for _ in range(5):
            app.test_client().get("/healthz")
    assert [r for r in caplog.records if r.name == "segdash.memory"] == []
