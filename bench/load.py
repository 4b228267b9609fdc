"""A bounded concurrent HTTP client: N client threads spread over a few processes.

`run()` starts `processes` copies of this module (`python -m bench.load SPEC`),
each with `clients / processes` threads holding one keep-alive connection
(http.client) each. Every thread stops after its share of `max_requests` or at
the common deadline, whichever comes first. Only 127.0.0.1 is ever a target.
"""
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from urllib.parse import urlparse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def percentile(sorted_values, fraction):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, int(round(fraction * (len(sorted_values) - 1)))))
    return sorted_values[index]


def run(base_url, paths, headers=None, clients=16, processes=2, max_requests=1000, max_seconds=10.0,
        method="GET", timeout=120.0):
    """Load `paths` (cycled) on `base_url`; returns requests, errors, rps and latency percentiles.

    An entry of `paths` is a path (sent with `method` and `headers`), or a request
    `{"method", "path", "body" (text), "headers"}` for a mix of reads and writes.
    """
    host = urlparse(base_url)
    if host.hostname not in ("127.0.0.1", "localhost"):
        raise ValueError("the benchmark only sends load to the loopback interface")
    processes = max(1, min(processes, clients))
    start_at = time.time() + 1.0 + 0.3 * processes
    children = []
    for index in range(processes):
        threads = clients // processes + (1 if index < clients % processes else 0)
        quota = max_requests * threads // clients
        spec = {"host": host.hostname, "port": host.port, "paths": paths, "headers": headers or {},
                "threads": threads, "max_requests": quota, "deadline": start_at + max_seconds,
                "start_at": start_at, "method": method, "timeout": timeout, "offset": index * 7919}
        children.append(subprocess.Popen([sys.executable, "-m", "bench.load", json.dumps(spec)],
                                         cwd=ROOT, stdout=subprocess.PIPE, text=True))
    latencies, errors, statuses, first, last, reconnects, bytes_read = [], 0, {}, None, None, 0, 0
    for child in children:
        out, _ = child.communicate(timeout=max_seconds + timeout + 60)
        part = json.loads(out)
        latencies.extend(part["latencies"])
        errors += part["errors"]
        reconnects += part["reconnects"]
        bytes_read += part["bytes"]
        for status, n in part["statuses"].items():
            statuses[status] = statuses.get(status, 0) + n
        if part["first"] is not None:
            first = part["first"] if first is None else min(first, part["first"])
            last = part["last"] if last is None else max(last, part["last"])
    latencies.sort()
    seconds = (last - first) if first is not None else 0.0
    ok = statuses.get("200", 0)
    return {
        "clients": clients, "processes": processes, "requests": len(latencies), "ok": ok,
        "errors": errors, "statuses": statuses, "reconnects": reconnects, "seconds": seconds,
        "rps": ok / seconds if seconds > 0 else 0.0,
        "p50_ms": percentile(latencies, 0.50), "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99), "max_ms": latencies[-1] if latencies else None,
        "bytes_per_response": bytes_read / len(latencies) if latencies else 0,
        "bounds": {"max_requests": max_requests, "max_seconds": max_seconds},
    }


def _request(entry, spec):
    """(method, path, body bytes or None, headers) of one `paths` entry."""
    if isinstance(entry, str):
        return spec["method"], entry, None, spec["headers"]
    body = entry.get("body")
    return (entry.get("method", spec["method"]), entry["path"], None if body is None else body.encode("utf-8"),
            {**spec["headers"], **entry.get("headers", {})})


def _client_thread(spec, index, out, lock):
    paths = spec["paths"]
    position = spec["offset"] + index * 31
    conn = None
    latencies, statuses, errors, reconnects, nbytes = [], {}, 0, 0, 0
    first = last = None
    quota = spec["max_requests"] // spec["threads"] + (1 if index < spec["max_requests"] % spec["threads"] else 0)
    done = 0
    while done < quota and time.time() < spec["deadline"]:
        method, path, payload, headers = _request(paths[position % len(paths)], spec)
        position += 1
        began = time.perf_counter()
        wall = time.time()
        status = None
        for attempt in range(2):
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(spec["host"], spec["port"], timeout=spec["timeout"])
                conn.request(method, path, body=payload, headers=headers)
                response = conn.getresponse()
                body = response.read()
                status = response.status
                nbytes += len(body)
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
                break
            except (http.client.HTTPException, OSError):
                if conn is not None:
                    conn.close()
                conn = None
                reconnects += 1
                if attempt == 1:
                    errors += 1
        elapsed = (time.perf_counter() - began) * 1000.0
        done += 1
        if status is None:
            continue
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if status != 200:
            errors += 1
        latencies.append(round(elapsed, 3))
        first = wall if first is None else first
        last = time.time()
    if conn is not None:
        conn.close()
    with lock:
        out["latencies"].extend(latencies)
        out["errors"] += errors
        out["reconnects"] += reconnects
        out["bytes"] += nbytes
        for status, n in statuses.items():
            out["statuses"][status] = out["statuses"].get(status, 0) + n
        if first is not None:
            out["first"] = first if out["first"] is None else min(out["first"], first)
            out["last"] = last if out["last"] is None else max(out["last"], last)


def child_main(spec):
    out = {"latencies": [], "errors": 0, "reconnects": 0, "bytes": 0, "statuses": {}, "first": None, "last": None}
    lock = threading.Lock()
    delay = spec["start_at"] - time.time()
    if delay > 0:
        time.sleep(delay)
    threads = [threading.Thread(target=_client_thread, args=(spec, i, out, lock)) for i in range(spec["threads"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    child_main(json.loads(sys.argv[1]))
