"""The two run profiles: the full benchmark and the quick smoke run used by the tests.

Every load loop is bounded both in request count and in seconds; every slow
baseline loop is bounded in seconds and extrapolated when cut short.
"""
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Scale:
    key: str            # "seed" or "10x"
    label: str
    batches: int
    masks: int
    chunks: bool        # insert masks.chunks too (read by no measured endpoint except downloads)
    unlinked: bool      # build with every file unlinked (skips a costly reset before the sync runs)
    baseline_sync_seconds: float  # time budget of the baseline sync loop before extrapolating


@dataclass(frozen=True)
class Profile:
    name: str
    scales: tuple
    clients: int = 16
    client_processes: int = 2
    workers: int = 8                      # the workstation's default worker count (SPEC §1)
    load_requests: int = 4000             # per load test: at most this many requests …
    load_seconds: float = 8.0             # … or this many seconds, whichever comes first
    floor_list_requests: int = 400
    sweep_workers: tuple = (1, 8)
    sweep_classes: tuple = ("gthread", "gevent")
    sweep_requests: int = 3000
    sweep_seconds: float = 5.0
    memory_requests: int = 10_000         # mixed requests before the memory reading
    memory_seconds: float = 200.0
    export_rows: int = 100_000
    export_seconds: float = 300.0
    profile_seconds: float = 8.0          # py-spy sampling window
    hang_check_seconds: float = 8.0       # gevent as shipped: per-request timeout of the bounded check
    baseline_update_samples: int = 40     # per-file updates timed when the loop did too few
    cprofile_requests: int = 20
    cpu_requests: int = 500               # in-process CPU per request (test client)
    # Requests people wait on, at the largest scale (bench/wait.py)
    wait_workers: int = 8                 # Gunicorn workers of the wait sections (the bar's 8)
    wait_write_interval: float = 0.1      # one write every 100 ms beside the /api/metrics clients
    wait_metrics_seconds: float = 20.0
    wait_baseline_samples: int = 3        # old metrics pipeline and the figures' computation, in-process
    wait_list_samples: int = 10           # uncached requests per list case …
    wait_list_pages: tuple = (1, 2, 10)   # … cycling over these pages
    wait_shape_samples: int = 10          # pymongo runs per old / new query shape
    wait_searchers: int = 12
    wait_interference_seconds: float = 15.0
    day_seconds: float = 120.0
    resume_lease_seconds: int = 60        # the kill-and-resume section's JOB_LEASE_SECONDS (shipped: 60)
    day_think: tuple = (0.2, 0.8)         # seconds a client pauses between steps (uniform)
    day_sync_timeout: float = 300.0       # after the day: how long the lead follows the sync
    extra: dict = field(default_factory=dict)


FULL = Profile(
    name="full",
    scales=(
        Scale("seed", "seed scale", 2348, 10_000, chunks=True, unlinked=False, baseline_sync_seconds=20.0),
        Scale("10x", "10x scale", 23_480, 100_000, chunks=False, unlinked=True, baseline_sync_seconds=40.0),
    ),
)

QUICK = Profile(
    name="quick",
    scales=(
        Scale("seed", "seed scale (quick: tiny)", 48, 240, chunks=True, unlinked=False, baseline_sync_seconds=1.0),
        Scale("10x", "10x scale (quick: tiny)", 96, 480, chunks=False, unlinked=True, baseline_sync_seconds=1.0),
    ),
    workers=2,
    load_requests=120,
    load_seconds=1.0,
    floor_list_requests=40,
    sweep_workers=(1,),
    sweep_classes=("gthread", "gevent"),
    sweep_requests=60,
    sweep_seconds=1.0,
    hang_check_seconds=3.0,
    memory_requests=200,
    memory_seconds=20.0,
    export_rows=2000,
    export_seconds=60.0,
    profile_seconds=1.0,
    baseline_update_samples=5,
    cprofile_requests=3,
    cpu_requests=40,
    wait_workers=2,
    wait_metrics_seconds=2.0,
    wait_baseline_samples=1,
    wait_list_samples=2,
    wait_list_pages=(1, 2),
    wait_shape_samples=2,
    wait_interference_seconds=2.0,
    day_seconds=6.0,
    resume_lease_seconds=3,
    day_think=(0.05, 0.2),
    day_sync_timeout=60.0,
)
