#!/usr/bin/env python3
"""Memory health check of a running SegDash Gunicorn: per-process RSS, PSS and USS.

    python check_memory.py                     # finds the master running `gunicorn … app:app`
    python check_memory.py --pid 12345         # that master (and its workers)
    python check_memory.py --threshold-mb 2000 --json

Prints each process (master and workers) with its RSS, PSS and USS and the totals, the
effective worker settings (gunicorn_config.py evaluated with the master's environment,
then GUNICORN_CMD_ARGS and the master's command-line options, as Gunicorn does), and
recommendations. RSS counts pages shared with the master once per process, so its total
overstates; PSS divides shared pages among the processes sharing them, so the total PSS is
the memory the server really uses, and the figure held against the threshold.

Exit status: 0 when the total PSS is within the threshold, 1 above it, 2 when no Gunicorn
master was found (or several: choose one with --pid). The threshold defaults to
MEMORY_WARN_MB from this environment, else from the master's, else 1500.
"""
import argparse
import json
import os
import runpy
import shlex
import statistics
import sys

import psutil

MB = 1024 * 1024
DEFAULT_THRESHOLD_MB = 1500
NEAR_FRACTION = 0.8       # "near the threshold" from 80 % of it
GROWN_FACTOR = 1.5        # a worker whose USS is 1.5 x the median has grown
APP_TOKEN = "app:app"


def is_gunicorn(cmdline):
    """`gunicorn …`, `python …/gunicorn …`, `python -m gunicorn …` or a `gunicorn: master` title."""
    if not cmdline:
        return False
    first = os.path.basename(cmdline[0])
    if first == "gunicorn" or cmdline[0].startswith("gunicorn:"):
        return True
    return first.startswith("python") and len(cmdline) > 1 and (
        os.path.basename(cmdline[1]) == "gunicorn" or cmdline[1:3] == ["-m", "gunicorn"])


def find_masters():
    """Gunicorn masters running app:app: matching processes whose parent does not match."""
    matching = {}
    for proc in psutil.process_iter(["pid", "ppid", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if is_gunicorn(cmdline) and any(APP_TOKEN in part for part in cmdline):
            matching[proc.info["pid"]] = proc
    return sorted(pid for pid, proc in matching.items() if proc.info["ppid"] not in matching)


def gunicorn_args(cmdline):
    """The arguments given to Gunicorn itself (after `gunicorn` or `-m gunicorn`)."""
    for index, part in enumerate(cmdline):
        if os.path.basename(part) == "gunicorn":
            return cmdline[index + 1:]
    return []


def memory_of(proc, role):
    info = proc.memory_full_info()
    return {"role": role, "pid": proc.pid, "rss_bytes": info.rss, "pss_bytes": info.pss,
            "uss_bytes": info.uss, "rss_mb": round(info.rss / MB, 1), "pss_mb": round(info.pss / MB, 1),
            "uss_mb": round(info.uss / MB, 1)}


def processes(master):
    """Memory of the master and each of its workers (a worker that exits meanwhile is left out)."""
    found = [memory_of(master, "master")]
    for child in master.children():
        try:
            found.append(memory_of(child, "worker"))
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def master_environment(master):
    try:
        return master.environ(), True
    except (psutil.AccessDenied, psutil.ZombieProcess):
        return dict(os.environ), False


def effective_settings(master, environ):
    """workers, threads, class, timeout and max_requests as the master got them."""
    from gunicorn.config import Config

    cfg = Config()
    parser = cfg.parser()
    try:
        cwd = master.cwd()
    except psutil.AccessDenied:
        cwd = os.getcwd()
    sources = []
    try:
        cli = parser.parse_args(gunicorn_args(master.cmdline()))
        env_cli = parser.parse_args(shlex.split(environ.get("GUNICORN_CMD_ARGS", "")))
    except SystemExit:  # an unexpected command line: fall back to the default config file
        cli = env_cli = parser.parse_args([])
    config_file = cli.config or env_cli.config or "gunicorn.conf.py"
    config_path = os.path.join(cwd, config_file)
    if os.path.isfile(config_path):
        for key, value in _config_values(config_path, cwd, environ).items():
            if key in cfg.settings:
                try:
                    cfg.set(key.lower(), value)
                except Exception:  # as Gunicorn does, a value it cannot take is ignored
                    continue
        sources.append(config_file)
    for args, name in ((env_cli, "GUNICORN_CMD_ARGS"), (cli, "command line")):
        given = {k: v for k, v in vars(args).items() if v is not None and k != "args"}
        for key, value in given.items():
            cfg.set(key.lower(), value)
        if set(given) - {"config"}:
            sources.append(name)
    return {"workers": cfg.workers, "threads": cfg.threads, "worker_class": cfg.worker_class_str,
            "timeout": cfg.timeout, "max_requests": cfg.max_requests,
            "max_requests_jitter": cfg.max_requests_jitter}, sources


def _config_values(path, cwd, environ):
    """Evaluate a Gunicorn config file with `environ` as os.environ (no side effects: it is not
    run as Gunicorn's `__config__`)."""
    saved_env, saved_path = dict(os.environ), list(sys.path)
    os.environ.clear()
    os.environ.update(environ)
    sys.path.insert(0, cwd)
    try:
        return runpy.run_path(path, run_name="check_memory_config")
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        sys.path[:] = saved_path


def recommendations(procs, settings, threshold_mb):
    total_pss = sum(p["pss_bytes"] for p in procs) / MB
    master = next(p for p in procs if p["role"] == "master")
    workers = [p for p in procs if p["role"] == "worker"]
    advice = []
    per_worker = statistics.mean(w["pss_bytes"] for w in workers) / MB if workers else 0
    fits = int((threshold_mb - master["pss_bytes"] / MB) // per_worker) if per_worker else None
    if total_pss > threshold_mb:
        if fits and fits >= 1:
            advice.append(f"Total PSS {total_pss:.0f} MB is above the {threshold_mb} MB threshold: run fewer "
                          f"workers (GUNICORN_WORKERS={fits} fits, at ~{per_worker:.0f} MB each), or raise "
                          "MEMORY_WARN_MB if the machine has room.")
        else:
            advice.append(f"Total PSS {total_pss:.0f} MB is above the {threshold_mb} MB threshold and not even "
                          "one worker fits under it: raise the threshold (MEMORY_WARN_MB) or find what grew.")
    elif total_pss > NEAR_FRACTION * threshold_mb:
        advice.append(f"Total PSS {total_pss:.0f} MB is near the {threshold_mb} MB threshold "
                      f"({100 * total_pss / threshold_mb:.0f}%): consider fewer workers "
                      f"(GUNICORN_WORKERS={max(1, len(workers) - 1)}).")
    if len(workers) >= 2:
        median_uss = statistics.median(w["uss_bytes"] for w in workers)
        for worker in workers:
            if median_uss and worker["uss_bytes"] > GROWN_FACTOR * median_uss:
                if settings["max_requests"]:
                    fix = f"lower GUNICORN_MAX_REQUESTS (now {settings['max_requests']}) to recycle workers sooner"
                else:
                    fix = "enable recycling with GUNICORN_MAX_REQUESTS=500"
                advice.append(f"Worker {worker['pid']} has grown to {worker['uss_mb']} MB private memory "
                              f"(median {median_uss / MB:.1f} MB): {fix}.")
    if not settings["max_requests"]:
        advice.append("Workers are never recycled (max_requests=0): set GUNICORN_MAX_REQUESTS=500 so "
                      "a slow leak cannot grow without bound.")
    if len(workers) != settings["workers"]:
        running = f"{len(workers)} worker{'' if len(workers) == 1 else 's'}"
        advice.append(f"{running} running but {settings['workers']} configured: a worker is "
                      "restarting, or the configuration changed since the server started.")
    cpu_bound = 2 * (psutil.cpu_count() or 1) + 1
    if settings["workers"] > cpu_bound:
        advice.append(f"{settings['workers']} workers exceed 2 x CPUs + 1 = {cpu_bound}: the extra workers "
                      "cost memory without adding throughput.")
    if not advice:
        advice.append("Memory is within limits; no change needed.")
    return advice


def threshold_default(environ):
    for source in (os.environ, environ):
        value = source.get("MEMORY_WARN_MB")
        if value:
            try:
                return int(value)
            except ValueError:
                continue
    return DEFAULT_THRESHOLD_MB


def report(master_pid, threshold_mb=None):
    master = psutil.Process(master_pid)
    environ, own_environment = master_environment(master)
    threshold = threshold_mb if threshold_mb is not None else threshold_default(environ)
    procs = processes(master)
    settings, sources = effective_settings(master, environ)
    totals = {f"{kind}_{unit}": (sum(p[f"{kind}_bytes"] for p in procs) if unit == "bytes" else
                                 round(sum(p[f"{kind}_bytes"] for p in procs) / MB, 1))
              for kind in ("rss", "pss", "uss") for unit in ("bytes", "mb")}
    return {
        "master_pid": master.pid,
        "command": " ".join(master.cmdline()),
        "processes": procs,
        "totals": totals,
        "settings": settings,
        "settings_from": sources,
        "environment": "master" if own_environment else "this process (the master's is not readable)",
        "threshold_mb": threshold,
        "over_threshold": totals["pss_bytes"] > threshold * MB,
        "recommendations": recommendations(procs, settings, threshold),
    }


def print_report(data):
    out = [f"Gunicorn master {data['master_pid']}: {data['command']}",
           f"{'process':<8} {'pid':>8} {'RSS MB':>9} {'PSS MB':>9} {'USS MB':>9}"]
    for p in data["processes"]:
        out.append(f"{p['role']:<8} {p['pid']:>8} {p['rss_mb']:>9.1f} {p['pss_mb']:>9.1f} {p['uss_mb']:>9.1f}")
    t = data["totals"]
    out.append(f"{'total':<8} {'':>8} {t['rss_mb']:>9.1f} {t['pss_mb']:>9.1f} {t['uss_mb']:>9.1f}")
    s = data["settings"]
    out.append(f"Settings: workers={s['workers']} threads={s['threads']} class={s['worker_class']} "
               f"timeout={s['timeout']} max_requests={s['max_requests']} "
               f"max_requests_jitter={s['max_requests_jitter']} "
               f"(from {', '.join(data['settings_from']) or 'Gunicorn defaults'}; environment: {data['environment']})")
    state = "ABOVE" if data["over_threshold"] else "within"
    out.append(f"Total PSS {t['pss_mb']:.1f} MB is {state} the {data['threshold_mb']} MB threshold.")
    out.append("Recommendations:")
    out.extend(f"  - {line}" for line in data["recommendations"])
    print("\n".join(out))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Memory of the SegDash Gunicorn master and workers.")
    parser.add_argument("--pid", type=int, help="the Gunicorn master's pid (default: find it)")
    parser.add_argument("--threshold-mb", type=int, default=None,
                        help="fail above this total PSS (default: MEMORY_WARN_MB, else 1500)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)

    if args.pid is not None:
        if not psutil.pid_exists(args.pid):
            print(f"No process {args.pid}.", file=sys.stderr)
            return 2
        master_pid = args.pid
    else:
        masters = find_masters()
        if not masters:
            print(f"No Gunicorn master running {APP_TOKEN} found.", file=sys.stderr)
            return 2
        if len(masters) > 1:
            print(f"Several Gunicorn masters found ({', '.join(map(str, masters))}): choose one with --pid.",
                  file=sys.stderr)
            return 2
        master_pid = masters[0]
    try:
        data = report(master_pid, args.threshold_mb)
    except psutil.AccessDenied as exc:
        print(f"Cannot read the memory of process {exc.pid}: run as the user that runs Gunicorn.",
              file=sys.stderr)
        return 2
    except psutil.NoSuchProcess as exc:
        print(f"Process {exc.pid} is gone.", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print_report(data)
    return 1 if data["over_threshold"] else 0


if __name__ == "__main__":
    sys.exit(main())
