"""A "day in the life" through Gunicorn: 12 segmenters and a lead at work, with a job runner.

Each client is a thread with its own keep-alive session, pausing between steps; every
request is recorded (endpoint, status, time). A 5xx, a request without an answer or a 4xx
the client did not expect is an error; a 409 on a status change is counted apart.
"""
import io
import random
import threading
import time

import requests

from bench import load, servers
from bench.wait import SEARCH_TERMS, Client, log, stats

QUEUE = ("in_progress", "rejected", "assigned")    # the queue page's lists (static/my_batches.js)
FINISHED = ("completed", "reviewed")
FINISHED_SHOWN = 20
OPEN = ("assigned", "in_progress", "rejected")


def small_png(seed):
    """A few hundred bytes of a real PNG (a small grey mask), different per seed."""
    from PIL import Image

    image = Image.new("L", (16, 16), color=seed % 256)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


class Day:
    """Shared state of the day's clients: masks with content, the end time, expected refusals."""

    def __init__(self, seconds, think):
        self.end = time.monotonic() + seconds
        self.think = think
        self.uploaded = {}  # batch id -> file ids uploaded today (content present)
        self.lock = threading.Lock()
        self.sync = {}

    def running(self):
        return time.monotonic() < self.end

    def pause(self, rng):
        time.sleep(rng.uniform(*self.think))


def segmenter_day(client, username, day, seed):
    rng = random.Random(seed)
    uploads = 0
    while day.running():
        client.call("GET /my", "GET", "/my", headers={"Accept": "text/html"})
        queue = []
        for status in QUEUE:
            response = client.call("GET /api/batches (queue)", "GET",
                                   f"/api/batches?assignee={username}&status={status}&per_page=200")
            if response is not None and response.status_code == 200:
                queue.extend(response.json()["items"])
        for status in FINISHED:
            client.call("GET /api/batches (finished)", "GET", f"/api/batches?assignee={username}&status={status}"
                        f"&per_page={FINISHED_SHOWN}&sort=-updated_at")
        client.call("GET /api/me/summary", "GET", "/api/me/summary")
        day.pause(rng)
        if not queue or not day.running():
            continue
        batch_id = rng.choice(queue)["id"]
        response = client.call("GET /api/batches/<id>", "GET", f"/api/batches/{batch_id}")
        if response is None or response.status_code != 200:
            continue
        status = response.json()["status"]
        day.pause(rng)
        if status in OPEN:
            uploads += 1
            name = f"day_{username}_{uploads:04d}.png"
            response = client.call("POST /api/masks", "POST", "/api/masks", data={"batch_id": batch_id},
                                   files={"file": (name, small_png(seed + uploads), "image/png")})
            if response is not None and response.status_code in (200, 201):
                with day.lock:
                    day.uploaded.setdefault(batch_id, set()).add(response.json()["id"])
            day.pause(rng)
        target = {"assigned": "in_progress", "rejected": "in_progress", "in_progress": "completed"}.get(status)
        if target:
            body = {"status": target}
            if target == "completed":
                body["confirm_incomplete"] = True
            client.call(f"PATCH /api/batches/<id> ({status} → {target})", "PATCH", f"/api/batches/{batch_id}",
                        json=body)
            day.pause(rng)


def lead_day(client, day, seed, sync_timeout):
    import batch_service

    rng = random.Random(seed)
    turn = 0
    job_id = None
    while day.running() or (job_id and not day.sync.get("finished") and
                            time.monotonic() < day.end + sync_timeout):
        if not day.running():  # the day is over: only follow the sync to its end
            _poll_sync(client, day, job_id)
            time.sleep(1.0)
            continue
        turn += 1
        client.call("GET / (overview)", "GET", "/", headers={"Accept": "text/html"})
        client.call("GET /api/metrics", "GET", "/api/metrics")
        client.call("GET /api/users?role=segmenter", "GET", "/api/users?role=segmenter")
        client.call("GET /api/jobs?kind=sync", "GET", "/api/jobs?kind=sync&limit=10")
        if job_id and not day.sync.get("finished"):
            _poll_sync(client, day, job_id)
        day.pause(rng)
        client.call("GET /api/batches (list)", "GET", f"/api/batches?per_page=50&page={rng.randint(1, 5)}")
        client.call("GET /api/batches (sort)", "GET",
                    f"/api/batches?per_page=50&sort={rng.choice(batch_service.SORTS)}")
        client.call("GET /api/batches (search)", "GET",
                    f"/api/batches?per_page=50&q={requests.utils.quote(rng.choice(SEARCH_TERMS))}")
        day.pause(rng)
        if turn == 1 and job_id is None:  # files arrive unlinked, then one sync links them
            for i in range(3):
                name = f"batch_{rng.randint(1, 9999):04d}/day_lead_{i}.png"
                client.call("POST /api/masks (unlinked)", "POST", "/api/masks",
                            files={"file": (name, small_png(seed * 7 + i), "image/png")})
            response = client.call("POST /api/sync-batch-files", "POST", "/api/sync-batch-files")
            if response is not None and response.status_code == 202:
                job_id = response.json()["job_id"]
                day.sync.update(job_id=job_id, started=time.monotonic())
            else:
                day.sync["start_error"] = None if response is None else response.status_code
        response = client.call("GET /api/review/next", "GET", "/api/review/next")
        if response is None or response.status_code != 200:
            continue
        batch_id = response.json()["batch_id"]
        response = client.call("GET /api/batches/<id> (review)", "GET", f"/api/batches/{batch_id}")
        if response is None or response.status_code != 200:
            continue
        with day.lock:
            ours = set(day.uploaded.get(batch_id, ()))
        for mask in response.json().get("masks", []):
            if mask["id"] in ours:  # seeded masks at 10x have no content stored
                client.call("GET /api/masks/<id>", "GET", f"/api/masks/{mask['id']}")
                break
        day.pause(rng)
        if turn % 4 == 0:
            body = {"status": "rejected", "reason": "Edges are off on the left side."}
            label = "PATCH /api/batches/<id> (completed → rejected)"
        else:
            body = {"status": "reviewed"}
            label = "PATCH /api/batches/<id> (completed → reviewed)"
        client.call(label, "PATCH", f"/api/batches/{batch_id}", json=body)
        day.pause(rng)


def _poll_sync(client, day, job_id):
    response = client.call("GET /api/jobs/<id>", "GET", f"/api/jobs/{job_id}")
    if response is None or response.status_code != 200:
        return
    job = response.json()
    day.sync["polls"] = day.sync.get("polls", 0) + 1
    if job["state"] in ("done", "failed", "cancelled"):
        day.sync.update(finished=True, state=job["state"], seen_after_s=time.monotonic() - day.sync["started"],
                        result=job.get("result"), error=job.get("error"), started_at=job.get("started_at"),
                        finished_at=job.get("finished_at"), created_at=job.get("created_at"))


def is_error(label, status):
    """5xx, no answer, or a 4xx the client did not expect; a 409 on a status change is counted apart."""
    if status is None or status >= 500:
        return True
    if status in (200, 201, 202):
        return False
    if status == 404 and label == "GET /api/review/next":
        return False  # nothing waiting for review
    return not (status == 409 and label.startswith("PATCH"))


def day_in_the_life(app, uri, db_name, lead_token, segmenter_tokens, prof, logs):
    """12 segmenters and 1 lead through Gunicorn, with a job runner for the sync."""
    out = {"workers": prof.wait_workers, "segmenters": len(segmenter_tokens), "seconds": prof.day_seconds,
           "think_s": list(prof.day_think)}
    env = {"SYNC_OVERLAP_SECONDS": "0"}
    log(f"wait: day in the life ({len(segmenter_tokens)} segmenters + 1 lead, {prof.day_seconds:.0f} s, "
        f"{prof.wait_workers} workers, a job runner)")
    with servers.Gunicorn("app:app", uri, db_name, prof.wait_workers, log_dir=logs, extra_env=env) as server, \
            servers.JobRunner(uri, db_name, log_dir=logs, extra_env=env):
        headers = {"Authorization": f"Bearer {lead_token}"}
        load.run(server.base, ["/api/metrics", "/api/batches?per_page=50"], headers, clients=prof.wait_workers * 2,
                 processes=1, max_requests=prof.wait_workers * 6, max_seconds=30.0, timeout=60.0)
        out["memory_start"] = server.memory()
        day = Day(prof.day_seconds, prof.day_think)
        clients = []
        threads = []
        lead = Client(server.base, lead_token)
        clients.append(("lead", lead))
        threads.append(threading.Thread(target=lead_day, args=(lead, day, 1, prof.day_sync_timeout)))
        for index, (username, token) in enumerate(sorted(segmenter_tokens.items())):
            client = Client(server.base, token)
            clients.append((username, client))
            threads.append(threading.Thread(target=segmenter_day, args=(client, username, day, 100 + index)))
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        out["wall_s"] = time.perf_counter() - began
        out["memory_end"] = server.memory()
        start_pids = {r["pid"] for r in out["memory_start"] if r["role"] == "worker"}
        out["workers_replaced"] = sum(1 for r in out["memory_end"]
                                      if r["role"] == "worker" and r["pid"] not in start_pids)
        for _name, client in clients:
            client.close()
    by_endpoint = {}
    errors, refused, error_samples = 0, 0, []
    for name, client in clients:
        for label, status, elapsed in client.records:
            row = by_endpoint.setdefault(label, {"latencies": [], "statuses": {}, "role": set()})
            row["latencies"].append(elapsed)
            row["statuses"][str(status)] = row["statuses"].get(str(status), 0) + 1
            row["role"].add("lead" if name == "lead" else "segmenter")
            if is_error(label, status):
                errors += 1
                if len(error_samples) < 10:
                    error_samples.append({"client": name, "endpoint": label, "status": status})
            elif status == 409:
                refused += 1
    out["endpoints"] = {label: {**stats(row["latencies"]), "statuses": row["statuses"],
                                "roles": sorted(row["role"])} for label, row in sorted(by_endpoint.items())}
    out["requests"] = sum(len(c.records) for _n, c in clients)
    out["errors"] = errors
    out["refused_409"] = refused
    out["error_samples"] = error_samples
    out["sync"] = {k: v for k, v in day.sync.items() if k != "started"}
    out["uploads"] = sum(len(v) for v in day.uploaded.values())
    return out
