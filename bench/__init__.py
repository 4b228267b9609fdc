"""SegDash benchmark (SPEC §10): `.venv/bin/python -m bench` writes BENCHMARKS.md.

Modules:
- `runner`: the scenarios in order, on one database server and one data set per scale;
- `settings`: the full and the quick (smoke test) profiles, with every load bound;
- `datasets`: seed-scale and 10x data built by bulk inserts, link resets;
- `counting`: database round trips and documents per request (pymongo command monitoring);
- `baseline`: the old dashboard's code paths (list everything, per-batch regex loops …);
- `floor`: the database work an endpoint cannot avoid;
- `bare_app`, `baseline_app`: the bare Flask endpoint and the old endpoints, served by Gunicorn;
- `servers`: the database server and Gunicorn processes the benchmark (and the tests) start;
- `load`: the concurrent HTTP client (16 clients, bounded in count and time);
- `profiling`: py-spy and cProfile summaries;
- `wait`: requests people wait on at the largest scale: /api/metrics under writes, uncached
  list pages and searches (beside the old query shapes), search interference;
- `day`: the "day in the life" of 12 segmenters and a lead through Gunicorn with a job runner;
- `report`, `report_wait`: BENCHMARKS.md and the PNG plots (docs/bench/), plus results.json.
- `soak`: the soak run, `python -m bench.soak --minutes 5` (Gunicorn with worker recycling,
  16 clients of mixed reads and writes, worker RSS per generation).
"""
