"""BENCHMARKS.md and its PNG plots, from the results of one run."""
import os

try:  # plots need matplotlib (requirements-bench.txt); the report is written without them otherwise
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:  # pragma: no cover - depends on the environment
    plt = None

SECTIONS = (
    "## Summary: targets",
    "## Machine, database and run",
    "## Datasets",
    "## Round trips per request",
    "## List: documents and bytes per request",
    "## Sync and auto-create wall time",
    "## At 10x: /api/metrics while a client writes",
    "## At 10x: uncached list pages and searches",
    "## At 10x: searches beside an unrelated request",
    "## At 10x: a day in the life through Gunicorn",
    "## Load: cached /api/batches against the bare Flask endpoint",
    "## Workers and worker class",
    "## Memory after mixed requests",
    "## Memory of a 100,000-row CSV export",
    "## Profiles",
    "## Recommended code changes",
    "## Method and caveats",
)

ROUND_TRIP_ROWS = (
    # key, label, SegDash budget (data round trips) or None, baseline key
    ("list", "list, nothing cached yet", None, "list"),
    ("list_next_page", "list, another page of a cached count", 1, "list"),
    ("list_cached", "list, page cached", 0, "list"),
    ("list_filtered_cached", "list filtered by status, page cached", 0, "list"),
    ("sync", "sync", "per_files", "sync"),
    ("sync_idle", "sync, nothing new to link", "per_files", "sync_idle"),
    ("auto_create", "auto-create", "per_files", "auto_create"),
    ("check", "check", 2, "check"),
    ("metrics", "metrics", 1, "metrics"),
    ("metrics_cached", "metrics, cached", 0, "metrics"),
)


# ------------------------------------------------------------------ formatting


def n(value):
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def secs(value):
    if value is None:
        return "–"
    if value < 1:
        return f"{value * 1000:,.0f} ms"
    if value < 120:
        return f"{value:,.1f} s"
    if value < 7200:
        return f"{value / 60:,.1f} min"
    if value < 3 * 86400:
        return f"{value / 3600:,.1f} h"
    return f"{value / 86400:,.1f} days"


def ms(value):
    if value is None:
        return "–"
    return f"{value:,.2f} ms" if value < 1 else f"{value:,.1f} ms"


def mb(value):
    return "–" if value is None else f"{value:,.1f} MB"


def kb(value):
    return "–" if value is None else f"{value / 1024:,.1f} KB"


def ratio(a, b, digits=1):
    if a is None or b in (None, 0):
        return "–"
    value = a / b
    if value >= 100:
        return f"{value:,.0f}×"
    return f"{value:,.{digits}f}×"


def pct(a, b):
    if a is None or not b:
        return "–"
    return f"{100.0 * a / b:,.1f}%"


def table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------ targets


def evaluate(results):
    """One row per target: what, measured, target, status."""
    rows = []
    scales = results["scales"]
    keys = list(scales)
    for key, label, budget, _base in ROUND_TRIP_ROWS:
        if budget is None:
            continue
        if budget == "per_files":  # jobs write in chunks: their round trips grow with files / chunk
            rows.append({"target": f"Round trips: {label} (per 10,000 files linked where it links any)",
                         "measured": " / ".join(f"{per_10k_files(scales[k]['segdash'][key])} ({k})" for k in keys),
                         "goal": "report (grows with files / chunk)", "met": True, "report_only": True,
                         "by": None})
            continue
        counts = [scales[k]["segdash"][key]["n_data"] for k in keys]
        same = len(set(counts)) == 1
        worst = max(counts)
        met = worst <= budget and same
        detail = " / ".join(f"{c}" for c in counts)
        extra = [scales[k]["segdash"][key]["n_bookkeeping"] for k in keys]
        rows.append({
            "target": f"Round trips: {label}",
            "measured": f"{detail} data round trips ({' / '.join(keys)})"
                        + (f"; bookkeeping {' / '.join(str(e) for e in extra)}" if any(extra) else ""),
            "goal": f"≤ {budget}, same at both scales" if budget else "0 at both scales",
            "met": met,
            "by": None if met else (f"{worst - budget} over" if worst > budget else "differs between scales"),
        })
    from bench import report_wait

    rows.extend(report_wait.evaluate(results))
    big = scales[keys[-1]]
    seg_sync = big["segdash"]["sync"]["seconds"]
    estimate = big["baseline_sync_estimate"]
    speedup = estimate["seconds"] / seg_sync if estimate.get("seconds") and seg_sync else None
    rows.append({"target": f"Sync at {keys[-1]}: faster than the baseline",
                 "measured": f"{n(speedup)}× (baseline {secs(estimate.get('seconds'))}"
                             f"{', extrapolated' if estimate.get('extrapolated') else ''}, SegDash {secs(seg_sync)})",
                 "goal": "≥ 100×", "met": speedup is not None and speedup >= 100,
                 "by": None if speedup is None or speedup >= 100 else f"{100 - speedup:.0f}× short"})
    for key in keys:
        seg = scales[key]["segdash"]["sync"]
        flo = scales[key]["floor"]["sync"]["seconds"]
        to_floor = seg["seconds"] / flo if flo else None
        rows.append({"target": f"Sync at {key}: close to the floor (with its chunks and jobs)",
                     "measured": f"{to_floor:.2f}× the floor (SegDash {secs(seg['seconds'])}, floor {secs(flo)})",
                     "goal": "≤ 1.2×", "met": to_floor is not None and to_floor <= 1.2,
                     "by": None if to_floor is None or to_floor <= 1.2 else f"{(to_floor / 1.2 - 1) * 100:.0f}% over"})
        gap = (seg.get("progress") or {}).get("max_gap_s")
        rows.append({"target": f"Sync at {key}: progress written at least every 2 s",
                     "measured": f"longest interval {secs(gap)} ({seg['progress']['checkpoints']} progress writes, "
                                 f"first after {secs(seg['progress']['first_s'])})" if gap is not None else "–",
                     "goal": "≤ 2 s", "met": gap is not None and gap <= 2.0,
                     "by": None if gap is None or gap <= 2.0 else f"{gap - 2.0:.1f} s over"})
    resume = results.get("resume")
    if resume:
        budget = resume["lease_seconds"] + resume["poll_seconds"] + 2.0
        after = resume.get("resumed_after_s")
        exact = (resume.get("state") == "done" and resume["records"] == resume["distinct_files"]
                 and resume["batches_with_wrong_count"] == 0)
        rows.append({"target": "A job runner killed mid-sync: the job resumed by another runner, every file "
                               "linked once",
                     "measured": f"resumed {secs(after)} after the kill (lease {resume['lease_seconds']} s), "
                                 f"done {secs(resume.get('finished_after_s'))} after it; {n(resume['records'])} "
                                 f"records for {n(resume['distinct_files'])} files, "
                                 f"{resume['batches_with_wrong_count']} batch counts wrong",
                     "goal": f"≤ lease + poll + 2 s ({secs(budget)}), exactly once",
                     "met": after is not None and after <= budget and exact,
                     "by": None if after is not None and after <= budget and exact else
                     ("not exactly once" if not exact else
                      "the sync ended before the kill" if resume.get("state_at_kill") != "running" else
                      "not resumed" if after is None else f"{after - budget:.1f} s over")})
    rows.append({"target": f"Sync of every file at {keys[-1]}, end to end",
                 "measured": secs(seg_sync), "goal": "≤ 40 s", "met": seg_sync <= 40.0,
                 "by": None if seg_sync <= 40.0 else f"{seg_sync - 40.0:.0f} s over"})
    for key in keys:
        seg = scales[key]["segdash"]["list_next_page"]
        page = seg["items"]
        rows.append({"target": f"List documents per request ({key})",
                     "measured": f"{seg['docs']} documents from the database, {page} items in the response "
                                 f"(baseline: {n(scales[key]['baseline']['list']['docs'])} documents)",
                     "goal": f"= page size ({page})", "met": seg["docs"] == page,
                     "by": None if seg["docs"] == page else f"{seg['docs'] - page:+d} documents"})
    load = results["load"]
    bare, listed = load["bare"]["rps"], load["segdash_list"]["rps"]
    share = listed / bare if bare else None
    rows.append({"target": "Cached /api/batches under 16 clients vs the bare Flask endpoint",
                 "measured": f"{n(listed)} req/s vs {n(bare)} req/s = {pct(listed, bare)} "
                             f"(p50 {ms(load['segdash_list']['p50_ms'])}, p95 {ms(load['segdash_list']['p95_ms'])})",
                 "goal": "≥ 70%", "met": share is not None and share >= 0.7,
                 "by": None if share is None or share >= 0.7 else
                 f"{(0.7 - share) * 100:.1f} points short ({pct(listed, bare)} of the bare endpoint)"})
    memory = results["memory"]["after"]
    pss = sum(row["pss_mb"] for row in memory)
    rss = sum(row["rss_mb"] for row in memory)
    workers = sum(1 for row in memory if row["role"] == "worker")
    requests = results["memory"]["load"]["requests"]
    rows.append({"target": f"Memory: master + {workers} workers after {n(requests)} mixed requests",
                 "measured": f"PSS {mb(pss)} (RSS {mb(rss)})", "goal": "PSS ≤ 350 MB", "met": pss <= 350,
                 "by": None if pss <= 350 else f"{mb(pss - 350)} over"})
    export = results["export"]
    growth = export["segdash"]["growth_mb"]
    rows.append({"target": f"CSV export of {n(export['segdash']['rows'])} rows: worker RSS growth",
                 "measured": f"{mb(growth)} (baseline that loads all rows: {mb(export['baseline']['growth_mb'])})",
                 "goal": "≤ 15 MB", "met": growth <= 15, "by": None if growth <= 15 else f"{mb(growth - 15)} over"})
    sweep = results["workers"]
    measured = [r for r in sweep["rows"] if "error" not in r]
    if measured:
        best = {cls: max((r for r in measured if r["worker_class"] == cls), key=lambda r: r["metrics_cached"]["rps"])
                for cls in sorted({r["worker_class"] for r in measured})}
        check = sweep.get("gevent_as_shipped")
        note = "; gevent as shipped hangs (early-patch prototype measured)" if check and check["hung"] else ""
        counts = "/".join(str(w) for w in sorted({r["workers"] for r in measured}))
        rows.append({"target": f"Workers {counts}, gthread vs gevent (report)",
                     "measured": "best cached req/s: " + ", ".join(
                         f"{cls} {b['metrics_cached']['rps']:,.0f} ({b['workers']} workers)" for cls, b in best.items())
                         + note,
                     "goal": "report", "met": True, "report_only": True, "by": None})
    return rows


def per_10k_files(measured):
    """Data round trips of a job per 10,000 files it linked (as text), or the count when it linked none."""
    linked = (measured.get("result") or {}).get("files_linked")
    if not linked:
        return f"{measured['n_data']} round trips"
    return f"{measured['n_data'] * 10_000 / linked:,.1f} per 10,000 files ({measured['n_data']} for {linked:,})"


# ------------------------------------------------------------------ plots


def _save(fig, plots_dir, name):
    path = os.path.join(plots_dir, name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return name


def plot_round_trips(results, plots_dir):
    scales = results["scales"]
    keys = list(scales)
    rows = [r for r in ROUND_TRIP_ROWS if r[0] in ("list_next_page", "sync", "auto_create", "check", "metrics",
                                                   "metrics_cached")]
    fig, ax = plt.subplots(figsize=(9, 4.2))
    width = 0.2
    for i, key in enumerate(keys):
        seg = [max(scales[key]["segdash"][r[0]]["n_data"], 0.0) for r in rows]
        base = [baseline_round_trips(scales[key], r[3]) for r in rows]
        x = [j + (i - 0.5) * width * 2 for j in range(len(rows))]
        ax.bar([v - width / 2 for v in x], [max(v, 0.5) for v in seg], width, label=f"SegDash ({key})")
        ax.bar([v + width / 2 for v in x], base, width, label=f"baseline ({key})", alpha=0.7)
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r[1].replace(", ", "\n") for r in rows], fontsize=8)
    ax.set_ylabel("database round trips per request (log)")
    ax.set_title("Round trips per request (SegDash 0 shown as 0.5)")
    ax.legend(fontsize=8)
    return _save(fig, plots_dir, "round_trips.png")


def plot_sync(results, plots_dir):
    scales = results["scales"]
    keys = list(scales)
    fig, ax = plt.subplots(figsize=(7, 4))
    labels = ["baseline (extrapolated)", "SegDash", "floor"]
    for i, key in enumerate(keys):
        s = scales[key]
        values = [s["baseline_sync_estimate"]["seconds"] or 0, s["segdash"]["sync"]["seconds"],
                  s["floor"]["sync"]["seconds"]]
        ax.bar([j + i * 0.38 for j in range(3)], values, 0.36, label=key)
        for j, v in enumerate(values):
            ax.text(j + i * 0.38, v, secs(v), ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.set_xticks([j + 0.19 for j in range(3)])
    ax.set_xticklabels(labels)
    ax.set_ylabel("wall time, seconds (log)")
    ax.set_title("Sync: link every unlinked file")
    ax.legend()
    return _save(fig, plots_dir, "sync_time.png")


def plot_load(results, plots_dir):
    load = results["load"]
    items = [("bare Flask", load["bare"]), ("SegDash list", load["segdash_list"]),
             ("floor: page find only", load["floor_list"]), ("baseline list", load["baseline_list"])]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.bar([k for k, _ in items], [v["rps"] for _, v in items], color=["#888", "#1f77b4", "#9467bd", "#d62728"])
    a.set_yscale("log")
    a.set_ylabel("requests/s (log)")
    a.set_title("16 concurrent clients")
    a.tick_params(axis="x", labelrotation=30, labelsize=8)
    x = range(len(items))
    b.bar([i - 0.2 for i in x], [v["p50_ms"] or 0 for _, v in items], 0.4, label="p50")
    b.bar([i + 0.2 for i in x], [v["p95_ms"] or 0 for _, v in items], 0.4, label="p95")
    b.set_yscale("log")
    b.set_xticks(list(x))
    b.set_xticklabels([k for k, _ in items], rotation=30, fontsize=8)
    b.set_ylabel("latency, ms (log)")
    b.legend()
    return _save(fig, plots_dir, "load.png")


def plot_workers(results, plots_dir):
    rows = [r for r in results["workers"]["rows"] if "error" not in r]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, title in ((axes[0], "metrics_cached", "/api/metrics (cached: no database)"),
                           (axes[1], "list", "/api/batches (1 database round trip)")):
        for worker_class in sorted({r["worker_class"] for r in rows}):
            points = sorted((r["workers"], r[key]["rps"]) for r in rows if r["worker_class"] == worker_class)
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=worker_class)
        ax.set_xlabel("Gunicorn workers")
        ax.set_ylabel("requests/s")
        ax.set_title(title, fontsize=9)
        ax.set_ylim(bottom=0)
        ax.legend()
    return _save(fig, plots_dir, "workers.png")


def plot_memory(results, plots_dir):
    after = results["memory"]["after"]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    labels = [f"{r['role']}\n{r['pid']}" for r in after]
    x = range(len(after))
    ax.bar([i - 0.2 for i in x], [r["rss_mb"] for r in after], 0.4, label="RSS")
    ax.bar([i + 0.2 for i in x], [r["pss_mb"] for r in after], 0.4, label="PSS")
    ax.set_xticks(list(x))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("MB")
    ax.set_title(f"After the mixed requests: total PSS {sum(r['pss_mb'] for r in after):.0f} MB, "
                 f"RSS {sum(r['rss_mb'] for r in after):.0f} MB")
    ax.legend()
    return _save(fig, plots_dir, "memory.png")


def plot_export(results, plots_dir):
    export = results["export"]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for key, label in (("segdash", "SegDash (streamed from the cursor)"),
                       ("baseline", "baseline (load all, then write)")):
        samples = export[key]["samples"]
        start = export[key]["rss_start_mb"]
        ax.plot([s[0] for s in samples], [s[1] - start for s in samples], label=label)
    ax.axhline(15, color="grey", linestyle="--", linewidth=1, label="target: 15 MB")
    ax.set_xlabel("seconds since the request")
    ax.set_ylabel("worker RSS growth, MB")
    ax.set_title(f"CSV export of {export['segdash']['rows']:,} rows")
    ax.legend(fontsize=8)
    return _save(fig, plots_dir, "export_rss.png")


# ------------------------------------------------------------------ the document


def baseline_round_trips(scale, base_key):
    if base_key == "sync":
        return scale["baseline_sync_estimate"]["round_trips"]
    if base_key == "sync_idle":  # the same 45 finds per batch, nothing to write
        estimate = scale["baseline_sync_estimate"]
        return estimate["round_trips"] - estimate["total_link_updates"]
    return scale["baseline"][base_key]["n_data"]


def profile_table(entries, key="percent"):
    return table(["function", "samples", "share"],
                 [[f"`{e['function']}`", n(e["samples"]), f"{e['percent']:.1f}%"] for e in entries])


def write(results, out_path, plots_dir):
    rel = os.path.relpath(plots_dir, os.path.dirname(out_path))
    plots = {}
    if plt is None:
        print("matplotlib is not installed: the report is written without plots "
              "(pip install -r requirements-bench.txt)")
    for name, function in (("round_trips", plot_round_trips), ("sync", plot_sync), ("load", plot_load),
                           ("workers", plot_workers), ("memory", plot_memory), ("export", plot_export)):
        if plt is None:
            plots[name] = None
            continue
        try:
            plots[name] = f"{rel}/{function(results, plots_dir)}"
        except Exception as exc:  # a plot must not lose the report
            plots[name] = None
            print(f"plot {name} failed: {exc}")
    text = render(results, plots)
    with open(out_path, "w") as handle:
        handle.write(text)


def image(plots, key, alt):
    return f"![{alt}]({plots[key]})\n" if plots.get(key) else ""


def render(results, plots):
    scales = results["scales"]
    keys = list(scales)
    big_key = keys[-1]
    machine = results["machine"]
    out = []
    add = out.append
    quick = results["profile"] != "full"
    add("# SegDash benchmark\n")
    add(f"Written by `.venv/bin/python -m bench{' --quick' if quick else ''}` on {results['started']} "
        f"in {secs(results['total_seconds'])}. Every figure below was measured in that one run, on one "
        f"database server and the same data; ratios are taken between figures of this run.\n")
    if quick:
        add("**Quick smoke run: tiny datasets and short loads. Its figures only show that the benchmark "
            "works; the real figures come from the full run.**\n")

    # ---- targets
    add(SECTIONS[0] + "\n")
    target_rows = evaluate(results)
    add(table(["target", "measured", "goal", "status"],
              [[r["target"], r["measured"], r["goal"],
                ("reported" if r.get("report_only") else "**met**") if r["met"] else f"**missed**: {r['by']}"]
               for r in target_rows]))
    add("")
    missed = [r for r in target_rows if not r["met"]]
    if missed:
        add("Each miss is explained, with its measurement and profile, in the section it belongs to and in "
            "[Recommended code changes](#recommended-code-changes).\n")

    # ---- machine
    add(SECTIONS[1] + "\n")
    db = results["database"]
    la0, la1 = machine["load_average_start"], machine["load_average_end"]
    add(table(["", ""], [
        ["CPU", f"{machine['cpu_model']}: {machine['physical_cores']} cores, {machine['logical_cpus']} threads"],
        ["RAM", f"{machine['ram_gb']:.1f} GB"],
        ["OS, Python", f"{machine['os']}, Python {machine['python']}"],
        ["Database", db["text"]],
        ["Packages", ", ".join(f"{k} {v}" for k, v in results["packages"].items() if v)],
        ["Date", results["started"]],
        ["Load average (1/5/15 min) at start / end",
         f"{' '.join(f'{x:.1f}' for x in la0)} / {' '.join(f'{x:.1f}' for x in la1)}"],
        ["Run time", secs(results["total_seconds"])],
        ["Gunicorn", f"`gunicorn -c gunicorn_config.py` with the shipped settings (2 threads per gthread worker, "
                     f"max_requests 500 + jitter 50, preload); {results['settings']['workers']} workers unless "
                     f"stated; bound to 127.0.0.1"],
        ["Load client", f"{results['settings']['clients']} client threads (http.client keep-alive) in "
                        f"{results['settings']['client_processes']} processes on the same machine; each load "
                        f"bounded to {n(results['settings']['load_requests'])} requests or "
                        f"{results['settings']['load_seconds']:.0f} s"],
    ]))
    add("\nThe machine is shared: other test suites may have run during the benchmark (see the load average), "
        "so absolute times are noisy; the ratios compare figures taken minutes apart in the same run.\n")

    # ---- datasets
    add(SECTIONS[2] + "\n")
    drows = []
    for key in keys:
        d = scales[key]["dataset"]
        sc = scales[key]["scale"]
        drows.append([key, n(d["batches"]), n(d["files"]), n(d["chunks"]), n(d["unlinked_files"]),
                      secs(d["insert_seconds"]), secs(d["index_seconds"]),
                      "all files unlinked (as after an import)" if sc["unlinked"] else "seeded: most files linked"])
    add(table(["scale", "batches", "mask files", "chunks", "unlinked files", "bulk insert", "index build",
               "state"], drows))
    add("\nBuilt by `seed.seed_demo()` (SPEC §4 filename layouts such as `batch_0007/img_0001.png`, "
        "`Batch-7/mask_1.png`, `b0007_img0001.png`, `masks/2026-11/b_7/…`, `export\\batch_0007\\…`; about 3% of "
        "files match no rule, 3% name batches that do not exist, a few duplicate contents), inserted into "
        "collections without indexes, then `db.ensure_indexes()`. At 10x the file contents (masks.chunks) are "
        "left out: no operation measured at that scale reads them. Before each sync run every link is reset "
        "(files unlinked, batches emptied) so that the baseline, SegDash and the floor link the same files.\n")

    # ---- round trips
    add(SECTIONS[3] + "\n")
    add("Counted with a pymongo `CommandListener` around one request through `app.test_client()` (after a "
        "warm-up request that caches the token lookup). *Data* = commands on batches, masks.files, masks.chunks, "
        "mask_records, sync_waiting and the cross-collection `bulkWrite`; *bookkeeping* = job record, lease, "
        "cache version, sync watermark and notes of counts being settled (jobs, app_state). "
        "getMore counts as a round trip. The baseline's counts are for its own code path "
        "(sync: 45 regex finds per batch plus 2 writes per file linked; extrapolated to the full run when "
        "the run was time-boxed).\n")
    rt_rows = []
    for key, label, budget, base_key in ROUND_TRIP_ROWS:
        if budget == "per_files":
            row = [label, "; ".join(per_10k_files(scales[k]["segdash"][key]) + f" ({k})" for k in keys)]
        else:
            row = [label, "–" if budget is None else ("0" if budget == 0 else f"≤ {budget}")]
        for k in keys:
            seg = scales[k]["segdash"][key]
            row.append(f"{seg['n_data']}" + (f" + {seg['n_bookkeeping']}" if seg["n_bookkeeping"] else ""))
        for k in keys:
            base = baseline_round_trips(scales[k], base_key)
            row.append(n(base))
        for k in keys:
            base = baseline_round_trips(scales[k], base_key)
            seg = scales[k]["segdash"][key]["n_data"]
            row.append(ratio(base, seg) if seg else "∞")
        rt_rows.append(row)
    add(table(["request", "budget (data)"] + [f"SegDash {k} (data + bookkeeping)" for k in keys]
              + [f"baseline {k}" for k in keys] + [f"baseline ÷ SegDash {k}" for k in keys], rt_rows))
    add("")
    add(image(plots, "round_trips", "round trips per request"))
    add("Commands SegDash sent, at " + big_key + ":\n")
    crow = []
    for key, label, _b, _base in ROUND_TRIP_ROWS:
        seg = scales[big_key]["segdash"][key]
        crow.append([label, ", ".join(f"`{c['label']}` {ms(c['ms'])}" for c in seg["commands"])])
    add(table(["request", "commands (server time)"], crow))
    add("")

    # ---- list documents and bytes
    add(SECTIONS[4] + "\n")
    lrows = []
    for k in keys:
        seg = scales[k]["segdash"]["list_next_page"]
        base = scales[k]["baseline"]["list"]
        flo = scales[k]["floor"]["list"]
        lrows.append([k, n(seg["docs"]), n(flo["docs"]), n(base["docs"]), ratio(base["docs"], seg["docs"]),
                      kb(seg["reply_bytes"]), kb(base["reply_bytes"]), ratio(base["reply_bytes"], seg["reply_bytes"]),
                      kb(seg["response_bytes"]), kb(base["response_bytes"]),
                      ratio(base["response_bytes"], seg["response_bytes"]),
                      ms(seg["seconds"] * 1000), ms(flo["seconds"] * 1000), ms(base["seconds"] * 1000)])
    add(table(["scale", "SegDash docs from DB", "floor docs", "baseline docs", "baseline ÷ SegDash",
               "SegDash DB reply", "baseline DB reply", "÷", "SegDash response", "baseline response", "÷",
               "SegDash time", "floor time", "baseline time"], lrows))
    add("\nPage size 50; SegDash's figures are for page 2 of a list whose count is cached (the first request of "
        "a list also counts it; a page already cached costs no database work at all). SegDash fetches exactly "
        "the page: whether a next page exists comes from the total. Its response carries the 8 list fields of "
        "50 items; the baseline loads every full batch document and returns full "
        "documents. Times are single in-process requests (test client / direct call).\n")

    # ---- sync
    add(SECTIONS[5] + "\n")
    srows = []
    for k in keys:
        s = scales[k]
        est = s["baseline_sync_estimate"]
        seg = s["segdash"]["sync"]
        flo = s["floor"]["sync"]
        srows.append([k, n(seg["result"]["files_linked"]), n(seg["result"]["batches_updated"]),
                      secs(est["seconds"]) + (" (extrapolated)" if est.get("extrapolated") else ""),
                      secs(seg["seconds"]), secs(flo["seconds"]), ratio(est["seconds"], seg["seconds"]),
                      f"{seg['seconds'] / flo['seconds']:.2f}×" if flo["seconds"] else "–",
                      secs((seg.get("progress") or {}).get("first_s")),
                      secs((seg.get("progress") or {}).get("max_gap_s")),
                      f"{seg['n_data']} + {seg['n_bookkeeping']}", n(flo["n_data"]), n(est["round_trips"])])
    add(table(["scale", "files linked", "batches updated", "baseline", "SegDash", "floor",
               "baseline ÷ SegDash", "SegDash ÷ floor", "first progress", "longest between progress writes",
               "SegDash round trips (data + bookkeeping)", "floor round trips", "baseline round trips"], srows))
    add("")
    add(image(plots, "sync", "sync wall time"))
    for k in keys:
        s = scales[k]
        est = s["baseline_sync_estimate"]
        eq = s["baseline_equivalence"]
        loop = s["baseline"]["sync"]["loop"]
        if est.get("extrapolated"):
            add(f"- **{k} baseline, extrapolated**: the old loop ran for {secs(est['measured_seconds'])} "
                f"(time box), doing {n(est['finds_measured'])} of its {n(est['total_finds'])} regex finds "
                f"({est['fraction_finds'] * 100:.3f}%, {loop['batches_done']} whole batches) at "
                f"{ms(est['per_find_s'] * 1000)} per find, and linking {n(est['files_linked_measured'])} files"
                + (f" (+{n(est['calibration_files'])} more timed with the same per-file writes)"
                   if est["calibration_files"] else "")
                + f" at {ms(est['per_file_link_s'] * 1000)} per file (2 writes). Full run = "
                  f"{n(est['total_finds'])} finds × per-find time + {n(est['files_to_link'])} files × per-file "
                  f"time = **{secs(est['seconds'])}**, linear in both (every find scans the whole files "
                  f"collection: a case-insensitive regex cannot use an index).")
        if eq.get("batches_compared"):
            add(f"  For the {eq['batches_compared']} batch(es) it finished, the baseline linked "
                f"{'exactly the same' if eq['same'] else 'DIFFERENT'} files as SegDash "
                f"({n(eq['files_compared'])} files).")
        sim = s.get("baseline_simulation")
        if sim:
            add(f"  Same work? The baseline's 45 regexes per batch, applied in Python to all {n(sim['files'])} "
                f"file names (batches in id order, first match wins), would link {n(sim['baseline_linked'])} "
                f"files; SegDash linked {n(sim['segdash_linked'])}; {n(sim['same'])} are linked to the same "
                f"batch by both, {n(sim['different_batch'])} to different batches, {n(sim['only_segdash'])} "
                f"only by SegDash, {n(sim['only_baseline'])} only by the baseline. The extrapolation therefore "
                f"counts {n(est.get('files_to_link'))} per-file links.")
        if s.get("notes"):
            for note in s["notes"]:
                add(f"- note ({k}): {note}")
    add("")
    add("SegDash's sync is a background job written in chunks (at most SYNC_CHUNK_SIZE files, and about a "
        "second of writing, each); its time here is the request that queues it plus the job run to its end in "
        "the benchmark process, as a job runner runs it, with every chunk's round trips and checkpoints. "
        "The floor sends what the sync cannot avoid — one find of the unlinked files and one bulk write of "
        "the same links — and nothing else (no job record, chunks, existence query or cache bump). "
        "Server time per SegDash sync command at " + big_key + ": "
        + ", ".join(f"`{c['label']}` {secs((c['ms'] or 0) / 1000)}"
                    for c in scales[big_key]["segdash"]["sync"]["commands"])
        + ".\n")
    resume = results.get("resume")
    if resume:
        add(f"**A job runner killed mid-sync** (seed scale, every link reset first, runner processes as "
            f"`start_optimized.sh` runs them, lease {resume['lease_seconds']} s, poll {resume['poll_seconds']} s): "
            f"the runner was killed (SIGKILL to its process group) after the job had written progress — "
            f"{n(resume['done_at_kill'])} of {n(resume['files'])} files read, {n(resume['linked_at_kill'])} "
            f"records written. A second runner took the job over {secs(resume.get('resumed_after_s'))} after the "
            f"kill (attempt {resume.get('attempts')}) and it ended `{resume.get('state')}` "
            f"{secs(resume.get('finished_after_s'))} after the kill, having linked "
            f"{n(resume.get('files_linked_by_job'))} files; afterwards {n(resume['records'])} records name "
            f"{n(resume['distinct_files'])} distinct files and {resume['batches_with_wrong_count']} batches "
            f"have a mask_count other than their current records.\n")
    arows = []
    for k in keys:
        seg = scales[k]["segdash"]["auto_create"]
        base = scales[k]["baseline"]["auto_create"]
        arows.append([k, n(seg["result"]["created"]), secs(seg["seconds"]), secs(base["seconds"]),
                      ratio(base["seconds"], seg["seconds"]), f"{seg['n_data']} + {seg['n_bookkeeping']}",
                      n(base["n_data"]), n(seg["docs"]), n(base["docs"])])
    add("Auto-create (after the sync, so the unlinked files are those matching no rule or naming a missing batch):\n")
    add(table(["scale", "batches created", "SegDash", "baseline", "baseline ÷ SegDash",
               "SegDash round trips", "baseline round trips", "SegDash docs read", "baseline docs read"], arows))
    add("")

    from bench import report_wait

    add(report_wait.render(results, SECTIONS[6:10]))

    # ---- load
    load = results["load"]
    add(SECTIONS[10] + "\n")
    lr = []
    bare_rps = load["bare"]["rps"]
    for label, key in (("bare Flask endpoint (`bench/bare_app.py`)", "bare"),
                       ("**SegDash** `GET /api/batches?per_page=50`, page cached", "segdash_list"),
                       ("floor: the page find alone, 16 threads straight to the database", "floor_list"),
                       ("baseline list (every batch loaded), `bench/baseline_app.py`", "baseline_list")):
        r = load[key]
        lr.append([label, n(r["requests"]), n(r.get("errors", 0)), f"{r['rps']:,.1f}", pct(r["rps"], bare_rps),
                   ms(r["p50_ms"]), ms(r["p95_ms"])])
    add(table(["server", "requests", "errors", "requests/s", "of bare", "p50", "p95"], lr))
    add("")
    add(image(plots, "load", "load"))
    seg_rps, floor_rps = load["segdash_list"]["rps"], load["floor_list"]["rps"]
    add(f"Every worker keeps the rendered page (and the count) in its cache, cleared by every write "
        f"(cache.py's coherence rule), so a cached list request sends no database command: SegDash serves "
        f"{seg_rps:,.1f} req/s = {pct(seg_rps, bare_rps)} of the bare endpoint, and {ratio(seg_rps, floor_rps)} "
        f"what the database alone serves for the page find under the same 16 clients ({floor_rps:,.1f} req/s). "
        f"One page find, alone, took {ms(scales[keys[0]]['floor']['list']['seconds'] * 1000)} at {keys[0]} and "
        f"{ms(scales[big_key]['floor']['list']['seconds'] * 1000)} at {big_key} for the same 50 documents"
        + (" — SecantusDB does not push `limit` into its scan, so a page costs O(N) in the collection "
           "(see the database profile below); that is what a page that is not cached yet costs"
           if results["database"]["name"] == "SecantusDB" else "")
        + f". Each response carries {kb(load['segdash_list'].get('bytes_per_response'))} (a page of 50 rows) "
          f"against the bare endpoint's {n(load['bare'].get('bytes_per_response'))} bytes, and the clients "
          f"read it all.\n")
    cpu = results.get("cpu")
    if cpu:
        rows = cpu["rows"]
        bare_cpu = rows["bare"]["cpu_ms"]
        labels = (("bare", "bare Flask `/bare`"), ("healthz", "SegDash `/healthz` (one ping)"),
                  ("metrics_cached", "SegDash `/api/metrics`, cached (0 round trips)"),
                  ("list", "SegDash `/api/batches`, page cached (0 round trips)"))
        add("Where the time goes once the database is out of the way: CPU time per request in one process "
            "(Flask test client, one thread, no HTTP; the database server's own work is not in the CPU "
            "column, only in the wall column):\n")
        add(table(["request", "requests", "CPU per request", "× bare", "wall per request"],
                  [[label, n(rows[key]["requests"]), ms(rows[key]["cpu_ms"]), ratio(rows[key]["cpu_ms"], bare_cpu, 2),
                    ms(rows[key]["wall_ms"])] for key, label in labels if key in rows]))
        add("")

    # ---- workers
    add(SECTIONS[11] + "\n")
    wr = []
    for r in results["workers"]["rows"]:
        if "error" in r:
            wr.append([r["worker_class"], r["workers"], "error: " + r["error"], "", "", ""])
            continue
        m, li = r["metrics_cached"], r["list"]
        wr.append([r["worker_class"], r["workers"], f"{m['rps']:,.1f}", f"{ms(m['p50_ms'])} / {ms(m['p95_ms'])}",
                   f"{li['rps']:,.1f}", f"{ms(li['p50_ms'])} / {ms(li['p95_ms'])}"])
    add(table(["class", "workers", "/api/metrics cached req/s", "p50 / p95", "/api/batches req/s", "p50 / p95"], wr))
    add("\nEach row: its own Gunicorn (`gunicorn_config.py`, `GUNICORN_WORKERS` and `GUNICORN_WORKER_CLASS` set, "
        "`GUNICORN_MAX_REQUESTS=0`), warmed up, then 16 clients per endpoint, bounded to "
        f"{n(results['workers']['rows'][0].get('metrics_cached', {}).get('bounds', {}).get('max_requests'))} "
        f"requests or "
        f"{results['workers']['rows'][0].get('metrics_cached', {}).get('bounds', {}).get('max_seconds', 0):.0f} s.\n")
    add(image(plots, "workers", "workers"))
    add(workers_text(results))

    # ---- memory
    mem = results["memory"]
    add(SECTIONS[12] + "\n")
    after = mem["after"]
    mrows = [[r["role"], r["pid"], mb(r["rss_mb"]), mb(r["pss_mb"]), mb(r["uss_mb"])] for r in after]
    mrows.append(["**total**", "", f"**{mb(sum(r['rss_mb'] for r in after))}**",
                  f"**{mb(sum(r['pss_mb'] for r in after))}**", mb(sum(r["uss_mb"] for r in after))])
    add(table(["process", "pid", "RSS", "PSS", "USS"], mrows))
    before = mem["before"]
    ml = mem["load"]
    add(f"\nAfter {n(ml['requests'])} mixed requests ({n(ml['errors'])} errors, {ml['rps']:,.1f} req/s, "
        f"{secs(ml['seconds'])}; bounded to {n(ml['bounds']['max_requests'])} requests or "
        f"{ml['bounds']['max_seconds']:.0f} s) from 16 clients. Right after start: PSS "
        f"{mb(sum(r['pss_mb'] for r in before))}, RSS {mb(sum(r['rss_mb'] for r in before))}. Mix (% of "
        f"requests): " + ", ".join(f"{k} {v}" for k, v in mem["mix_percent"].items())
        + ". Workers recycle after 500 + jitter requests (shipped setting), so some of them are young. "
          "PSS shares the pages that the preloaded app gave every worker; RSS counts them in each.\n")
    add(image(plots, "memory", "memory"))

    # ---- export
    ex = results["export"]
    add(SECTIONS[13] + "\n")
    erows = []
    for label, key in (("SegDash `GET /api/export/batches.csv` (streamed from a cursor)", "segdash"),
                       ("baseline: every row loaded, whole CSV built, then sent", "baseline")):
        e = ex[key]
        erows.append([label, e["status"], n(e["rows"]), mb(e["bytes"] / 1024 / 1024), secs(e["seconds"]),
                      secs(e["first_byte_s"]), mb(e["rss_start_mb"]), mb(e["rss_peak_mb"]),
                      f"**{mb(e['growth_mb'])}**"])
    add(table(["export", "status", "rows", "size", "time", "first byte", "worker RSS before", "peak", "growth"], erows))
    add(f"\nOne Gunicorn worker (so the serving worker is known), RSS sampled every 20 ms with psutil during the "
        f"request; a warm-up export of one row ran first. Data: {n(results['export_dataset']['rows'])} batches "
        f"in a separate database (bulk insert {secs(results['export_dataset']['insert_seconds'])}, with the "
        f"unique id index the export's sort uses).\n")
    add(image(plots, "export", "export RSS"))

    # ---- profiles
    add(SECTIONS[14] + "\n")
    add(profiles_text(results))

    # ---- recommendations
    add(SECTIONS[15] + "\n")
    add(recommendations_text(results, target_rows))

    # ---- method
    add(SECTIONS[16] + "\n")
    add(method_text(results))
    phases = results.get("phase_seconds", {})
    add("\nRun time by phase: " + ", ".join(f"{k} {secs(v)}" for k, v in phases.items()) + ".\n")
    return "\n".join(out) + "\n"


def workers_text(results):
    sweep = results["workers"]
    rows = [r for r in sweep["rows"] if "error" not in r]
    out = []
    check = sweep.get("gevent_as_shipped")
    if check and check["hung"]:
        out.append(
            f"**SegDash as shipped hangs on gevent workers.** With `GUNICORN_WORKER_CLASS=gevent` and "
            f"{check['workers']} worker(s), {n(check['ok'])} of {n(check['requests_sent'])} concurrent requests "
            f"were answered within {check.get('timeout_s', 8):.0f} s (bounded check, 16 clients); a hung worker "
            f"is only freed when Gunicorn's timeout (120 s) kills it. The stuck worker (py-spy dump):\n")
        stack = (check["stacks"] or ["(no stack)"])[0].strip().splitlines()
        out.append("```\n" + "\n".join(stack[:18]) + "\n```\n")
        out.append("A gevent worker must monkey-patch before the app is preloaded (`gunicorn_config.py` does "
                   "it at its top); locks created before the patch are OS locks that block the whole worker.\n")
    elif check:
        out.append(f"SegDash as shipped served {n(check['ok'])} of {n(check['requests_sent'])} concurrent requests "
                   f"on gevent workers in the bounded check (no hang: `gunicorn_config.py` monkey-patches before "
                   f"the app is preloaded).\n")
    if not rows:
        out.append("No worker configuration could be measured.\n")
        return "\n".join(out)
    for cls in sorted({r["worker_class"] for r in rows}):
        found = sorted((r for r in rows if r["worker_class"] == cls), key=lambda r: r["workers"])
        first = found[0]
        best_m = max(found, key=lambda r: r["metrics_cached"]["rps"])
        best_l = max(found, key=lambda r: r["list"]["rps"])
        out.append(f"- {cls}: "
                   f"cached /api/metrics {first['metrics_cached']['rps']:,.0f} req/s with {first['workers']} "
                   f"worker(s), best {best_m['metrics_cached']['rps']:,.0f} with {best_m['workers']} "
                   f"({ratio(best_m['metrics_cached']['rps'], first['metrics_cached']['rps'], 2)}); /api/batches "
                   f"{first['list']['rps']:,.1f} req/s with {first['workers']}, best {best_l['list']['rps']:,.1f} "
                   f"with {best_l['workers']} ({ratio(best_l['list']['rps'], first['list']['rps'], 2)}).")
    classes = sorted({r["worker_class"] for r in rows})
    if len(classes) == 2:
        best = {cls: max((r for r in rows if r["worker_class"] == cls), key=lambda r: r["metrics_cached"]["rps"])
                for cls in classes}
        best_list = {cls: max((r for r in rows if r["worker_class"] == cls), key=lambda r: r["list"]["rps"])
                     for cls in classes}
        out.append("- Best of each class: cached metrics " + " vs ".join(
            f"{cls} {best[cls]['metrics_cached']['rps']:,.0f} req/s" for cls in classes)
            + "; list " + " vs ".join(f"{cls} {best_list[cls]['list']['rps']:,.1f} req/s" for cls in classes) + ".")
    recycling = sweep.get("recycling")
    if recycling:
        same = [r for r in rows if r["worker_class"] == "gthread" and r["workers"] == recycling["workers"]]
        if same:
            a, b = recycling["metrics_cached"], same[0]["metrics_cached"]
            text = (f"- Worker recycling: the sweep runs with `GUNICORN_MAX_REQUESTS=0` so that it measures "
                    f"the worker count, not restarts. As shipped (max_requests 500 + jitter), gthread × "
                    f"{recycling['workers']} served cached metrics at {a['rps']:,.0f} req/s (p95 "
                    f"{ms(a['p95_ms'])}) against {b['rps']:,.0f} (p95 {ms(b['p95_ms'])}) without recycling")
            if a["rps"] < 0.9 * b["rps"]:
                text += (": each recycled worker starts with empty caches and recomputes the metrics "
                         "aggregation on its first request.")
            else:
                text += (": no cost of recycling shows at this load (a recycled worker recomputes its "
                         "caches on its first requests; the two runs differ by their noise).")
            out.append(text)
    cores = results["machine"]["logical_cpus"]
    gthread = sorted((r for r in rows if r["worker_class"] == "gthread"), key=lambda r: r["workers"])
    scaling = ""
    if len(gthread) > 1:
        one = gthread[0]
        top = max(gthread, key=lambda r: r["metrics_cached"]["rps"])
        top_list = max(gthread, key=lambda r: r["list"]["rps"])
        scaling = (f"Here cached metrics went from {one['metrics_cached']['rps']:,.0f} req/s with "
                   f"{one['workers']} gthread worker to {top['metrics_cached']['rps']:,.0f} with {top['workers']} "
                   f"({ratio(top['metrics_cached']['rps'], one['metrics_cached']['rps'], 2)}), and the cached list "
                   f"from {one['list']['rps']:,.0f} to {top_list['list']['rps']:,.0f} with {top_list['workers']} "
                   f"({ratio(top_list['list']['rps'], one['list']['rps'], 2)}). ")
    classes_text = "gevent (supported, `GUNICORN_WORKER_CLASS=gevent`) needs no thread per waiting request."
    best_rows = {cls: max((r for r in rows if r["worker_class"] == cls), key=lambda r: r["list"]["rps"])
                 for cls in {r["worker_class"] for r in rows}}
    if {"gthread", "gevent"} <= set(best_rows):
        g, t = best_rows["gevent"]["list"]["rps"], best_rows["gthread"]["list"]["rps"]
        classes_text = (f"in this run gevent served the cached list at {g:,.0f} req/s against gthread's {t:,.0f} "
                        f"({ratio(g, t, 2)}): for a deployment that serves mostly cached reads, "
                        f"`GUNICORN_WORKER_CLASS=gevent` is worth its measurement on the workstation.")
    out.append("")
    out.append(
        f"**What it implies.** {scaling}Both requests are served from the workers' caches, so they are "
        f"CPU-bound: this machine has {cores} logical CPUs, shared by the Gunicorn workers, the database "
        f"server and the 16-client load generator, and throughput stops growing at about {cores} busy "
        f"processes. For the Ryzen 5 5625U workstation (6 cores / 12 threads) this suggests — an inference, "
        f"not a measurement — that cached requests keep growing with workers up to about the core count, "
        f"which the shipped default of 8 workers × 2 threads covers while leaving threads for the database "
        f"and the OS (more workers would add memory, not throughput). Requests that reach the database "
        f"(a page not cached yet, sync, check) scale with the database, not with Gunicorn: SecantusDB serves "
        f"every query from one GIL-bound Python process, so on the workstation `mongod` (multi-threaded, "
        f"`limit` pushed into the index scan) is what lets them use the 12 threads. gthread with 2 threads "
        f"per worker is the default because a CPU-heavy step (a sync classifying 100,000 file names in "
        f"Python) holds a gevent worker's every other request until it is done, while threads share the "
        f"CPU; " + classes_text)
    return "\n".join(out) + "\n"


def profiles_text(results):
    out = []
    prof = results["load"].get("profiles", {})
    during = prof.get("load_during_profile", {})
    out.append(f"py-spy (`py-spy record --format raw`, 97 Hz, CPU-active samples only) during a separate "
               f"{n(during.get('requests'))}-request run of the cached list under 16 clients "
               f"({during.get('rps', 0):,.1f} req/s).\n")
    for key, title in (("database", "Database server"), ("workers", "Gunicorn master and workers")):
        spy = prof.get(key, {})
        if spy.get("error"):
            out.append(f"{title}: not profiled ({spy['error']}).\n")
        elif spy:
            out.append(f"**{title}** ({n(spy['samples'])} samples), top functions by own time:\n")
            out.append(profile_table(spy["own"][:10]))
            out.append("\nand by inclusive time:\n")
            out.append(profile_table(spy["inclusive"][:10]))
            out.append("")
    cp = results.get("cprofile_list")
    if cp:
        out.append(f"**cProfile of {cp['requests']} cached list requests in-process** (test client; "
                   f"{secs(cp['wall_s'])} wall), top entries by cumulative time:\n")
        out.append(table(["function", "calls", "own", "cumulative"],
                         [[f"`{e['function']}`", n(e["calls"]), secs(e["own_s"]), secs(e["cumulative_s"])]
                          for e in cp["by_cumulative"][:12]]))
        out.append("\nby own time:\n")
        out.append(table(["function", "calls", "own", "share of own time"],
                         [[f"`{e['function']}`", n(e["calls"]), secs(e["own_s"]), f"{e['own_percent']:.1f}%"]
                          for e in cp["by_own"][:10]]))
        out.append("")
    cpu = results.get("cpu")
    if cpu:
        pc = cpu["profile_list"]
        count = cpu["rows"]["list"]["requests"]
        out.append(f"**cProfile of {count} cached list requests in-process** ({secs(pc['total_s'])} of profiled "
                   f"time), top entries by cumulative time — what a request costs in SegDash's own stack once "
                   f"the database is out of the way (the test client's own frames left out):\n")
        out.append(table(["function", "calls", "own", "cumulative", "cumulative per request"],
                         [[f"`{e['function']}`", n(e["calls"]), secs(e["own_s"]), secs(e["cumulative_s"]),
                           ms(e["cumulative_s"] * 1000 / count)]
                          for e in pc["by_cumulative"]
                          if not any(skip in e["function"] for skip in ("runner.py", "(test.py", "(testing.py"))][:15]))
        out.append("")
    return "\n".join(out) + "\n"


def recommendations_text(results, target_rows):
    scales = results["scales"]
    keys = list(scales)
    load = results["load"]
    items = []
    bare = load["bare"]["rps"]
    seg = load["segdash_list"]["rps"]
    if seg < 0.7 * bare:
        cpu = (results.get("cpu") or {}).get("rows", {})
        text = (f"**Cached list below 70% of the bare endpoint.** SegDash {seg:,.1f} req/s = {pct(seg, bare)} "
                f"of the bare endpoint, with no database command per cached request.")
        if cpu:
            profile = (results.get("cpu") or {}).get("profile_list", {})
            count = cpu["list"]["requests"]
            own_code = ("sessions.py", "session_cookie.py", "auth.py", "cache.py", "logs.py", "metrics.py",
                        "memory_monitor.py", "batches.py", "pagination.py", "batch_service.py", "errors.py",
                        "csrf.py", "validation.py")
            parts = [e for e in profile.get("by_cumulative", [])
                     if any(f"({name}" in e["function"] or f"/{name}" in e["function"] for name in own_code)]
            named = ", ".join(f"`{e['function']}` {ms(e['cumulative_s'] * 1000 / count)}" for e in parts[:6])
            text += (f" In one process a cached list request costs {ms(cpu['list']['cpu_ms'])} of CPU and the "
                     f"bare endpoint {ms(cpu['bare']['cpu_ms'])} "
                     f"({ratio(cpu['list']['cpu_ms'], cpu['bare']['cpu_ms'], 2)})"
                     + (f"; largest entries of SegDash's own stack (cumulative per request, profiled): {named}"
                        if named else "") + ".")
        items.append(text)
    seg_list = scales[keys[0]]["segdash"]["list_next_page"]
    if seg_list["docs"] > seg_list["items"]:
        items.append(f"**Return exactly the page.** SegDash fetched {seg_list['docs']} documents for a page of "
                     f"{seg_list['items']}.")
    check = results["workers"].get("gevent_as_shipped")
    if check and check["hung"]:
        items.append(
            f"**gevent workers hang.** The bounded check answered {n(check['ok'])} of "
            f"{n(check['requests_sent'])} concurrent requests (stacks in "
            "[Workers and worker class](#workers-and-worker-class)).")
    others = [r for r in target_rows if not r["met"] and not any(
        word in r["target"] for word in ("Cached /api/batches", "List documents"))]
    for row in others:
        items.append(f"**{row['target']}**: missed ({row['by']}); measured {row['measured']}. See its section.")
    if not items:
        return "Every target is met; no code change is needed for the figures of this run.\n"
    return "\n".join(f"{i}. {text}" for i, text in enumerate(items, 1)) + "\n"


def method_text(results):
    return (
        "- **Baseline** (`bench/baseline.py`, benchmark only): list = `list(db.batches.find())` of every "
        "batch, sorted and sliced in Python, full documents returned; sync = for each batch, 9 spellings of its "
        "number × 5 positions in a path = 45 case-insensitive regex finds on masks.files, and for each file "
        "found and not yet linked one update of the file and one of its batch; auto-create = every file loaded "
        "into memory, then one `insert_one` per missing batch; metrics and check = every document loaded and "
        "counted in Python; no cache. When the baseline sync would run longer than its time box it is cut "
        "between two finds and extrapolated linearly (finds × time per find + files × time per file link), "
        "said next to the figure.\n"
        "- **SegDash**: the real code. Round trips, documents and response bytes through `app.test_client()` "
        "in the benchmark process with a pymongo `CommandListener`; the cache version is re-read only after "
        "writes there (as in tests/test_round_trips.py) — under Gunicorn each worker also re-reads it at most "
        "once a second (bookkeeping). Latency and throughput through Gunicorn started with the repository's "
        "`gunicorn_config.py`.\n"
        "- **Floor** (`bench/floor.py`): sync = one find of the unlinked files plus the same bulk write of the "
        "same links; list = one find of one page; request overhead = `bench/bare_app.py` under the same "
        "Gunicorn configuration.\n"
        "- Load: every loop is bounded in requests and seconds, sent only to 127.0.0.1; latencies are per "
        "request, measured by the client; requests/s = successful responses ÷ the time from the first request "
        "to the last response.\n"
        "- Memory: `psutil.Process.memory_full_info()` (PSS, RSS, USS) of the master and every worker.\n"
        "- SecantusDB is a pure-Python server: ~1–2 ms per write operation, `limit`/`skip` not pushed into "
        "scans. Round trips and documents carry over to MongoDB; wall times and requests/s of database-bound "
        "requests are this database's.\n")
