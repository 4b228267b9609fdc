"""The report's sections on requests people wait on at the largest scale (bench/wait.py),
and their rows in the summary of targets. Targets are the bar's; met/missed comes from
the measured figures only."""
from bench.report import mb, ms, n, profile_table, secs, table

P95_TARGET_MS = 50.0          # /api/metrics under writes; uncached list pages and searches
INTERFERENCE_FACTOR = 2.0     # an unrelated request's p95 beside a dozen searchers, vs idle
DAY_ERRORS = 0


def _failed(section):
    return not isinstance(section, dict) or "error" in section


def evaluate(results):
    """Summary rows (same shape as report.evaluate's)."""
    wait = results.get("wait")
    if not wait:
        return []
    rows = []
    metrics = wait.get("metrics", {})
    if _failed(metrics):
        rows.append(_broken("/api/metrics p95 under 16 clients while one writes every 100 ms", metrics))
    else:
        run = metrics["load"]
        p95 = run["p95_ms"]
        met = p95 is not None and p95 <= P95_TARGET_MS and run["errors"] == 0
        rows.append({"target": f"/api/metrics under {metrics['clients']} clients while one writes every "
                               f"{metrics['write_interval_s'] * 1000:.0f} ms ({metrics['workers']} workers)",
                     "measured": f"p95 {ms(p95)}, p50 {ms(run['p50_ms'])}, max {ms(run['max_ms'])}, "
                                 f"{n(run['rps'])} req/s, {n(run['errors'])} errors; "
                                 f"{n(metrics['writes']['n'])} writes ({n(metrics['writes'].get('per_s'))}/s)",
                     "goal": f"p95 ≤ {P95_TARGET_MS:.0f} ms", "met": met,
                     "by": None if met else (f"{ms(p95 - P95_TARGET_MS)} over" if p95 and p95 > P95_TARGET_MS
                                             else f"{run['errors']} errors")})
    lists = wait.get("lists", {})
    if _failed(lists):
        rows.append(_broken("Uncached list pages and searches p95", lists))
    else:
        worst = max(lists["rows"], key=lambda r: r["p95_ms"] or 0)
        bad = [r for r in lists["rows"] if set(r["statuses"]) != {"200"}]
        over = [r for r in lists["rows"] if (r["p95_ms"] or 0) > P95_TARGET_MS]
        met = not over and not bad
        rows.append({"target": f"Uncached list pages and searches ({len(lists['rows'])} sorts and filters)",
                     "measured": f"worst p95 {ms(worst['p95_ms'])} ({worst['case']}); "
                                 f"{len(over)} of {len(lists['rows'])} cases over the target"
                                 + (f"; {len(bad)} cases with non-200 answers" if bad else ""),
                     "goal": f"p95 ≤ {P95_TARGET_MS:.0f} ms in every case", "met": met,
                     "by": None if met else (f"{ms(worst['p95_ms'] - P95_TARGET_MS)} over in the worst case"
                                             if over else "non-200 answers")})
    inter = wait.get("interference", {})
    if _failed(inter):
        rows.append(_broken("Unrelated request beside a dozen searchers", inter))
    else:
        idle, loaded = inter["idle"]["p95_ms"], inter["loaded"]["p95_ms"]
        factor = loaded / idle if idle and loaded is not None else None
        met = factor is not None and factor <= INTERFERENCE_FACTOR
        rows.append({"target": f"Cached `{inter['probe']}` beside {inter['searchers']} searchers",
                     "measured": f"p95 {ms(loaded)} vs {ms(idle)} idle = {n(factor)}×",
                     "goal": f"≤ {INTERFERENCE_FACTOR:.0f}× idle", "met": met,
                     "by": None if met else f"{n(factor)}× idle"})
    day = wait.get("day", {})
    if _failed(day):
        rows.append(_broken("Day in the life: errors", day))
    else:
        met = day["errors"] <= DAY_ERRORS
        rows.append({"target": f"Day in the life ({day['segmenters']} segmenters + 1 lead, {secs(day['seconds'])}, "
                               f"{day['workers']} workers): errors",
                     "measured": f"{n(day['errors'])} errors in {n(day['requests'])} requests "
                                 f"({n(day['refused_409'])} refused transitions, 409, counted apart); "
                                 f"sync {day['sync'].get('state', 'not finished')}",
                     "goal": "0 errors", "met": met and day["sync"].get("state") == "done",
                     "by": None if met and day["sync"].get("state") == "done" else
                     (f"{day['errors']} errors" if not met else f"sync {day['sync'].get('state', 'not finished')}")})
        worst = max(day["endpoints"].items(), key=lambda kv: kv[1]["p95_ms"] or 0)
        start, end = _total(day["memory_start"], "pss_mb"), _total(day["memory_end"], "pss_mb")
        rows.append({"target": "Day in the life: p50/p95/max per endpoint, worker memory (report)",
                     "measured": f"slowest p95 {ms(worst[1]['p95_ms'])} ({worst[0]}); worker PSS "
                                 f"{mb(start)} → {mb(end)}",
                     "goal": "report", "met": True, "report_only": True, "by": None})
    return rows


def _broken(target, section):
    error = section.get("error") if isinstance(section, dict) else "not run"
    return {"target": target, "measured": f"not measured: {error}", "goal": "–", "met": False,
            "by": "section failed"}


def _total(rows, key, role="worker"):
    return sum(r[key] for r in rows if r["role"] == role)


def _profiles(profiles, what):
    """The py-spy tables of a profiled run, as markdown lines."""
    if not profiles:
        return []
    during = profiles.get("load") or {}
    out = [f"Profiles (py-spy, 97 Hz, CPU-active samples, during a separate run of {what}: "
           f"{n(during.get('requests'))} requests, p95 {ms(during.get('p95_ms'))}):\n"]
    for key, title in (("database", "Database server"), ("workers", "Gunicorn master and workers")):
        spy = profiles.get(key) or {}
        if spy.get("error"):
            out.append(f"{title}: not profiled ({spy['error']}).\n")
        elif spy.get("own"):
            out.append(f"**{title}** ({n(spy['samples'])} samples), top functions by own time:\n")
            out.append(profile_table(spy["own"][:8]))
            out.append("\nand by inclusive time:\n")
            out.append(profile_table(spy["inclusive"][:8]))
            out.append("")
    return out


def _explain_cell(explain):
    if not explain or explain.get("error"):
        return "–"
    return f"{n(explain.get('keys_examined'))} keys, {n(explain.get('docs_examined'))} docs"


def render(results, section_titles):
    """The four sections, as markdown."""
    wait = results.get("wait") or {}
    out = []
    add = out.append
    titles = iter(section_titles)
    scale = f"{n(wait.get('batches'))} batches and {n(wait.get('files'))} mask files"

    # ---- metrics
    add(next(titles) + "\n")
    metrics = wait.get("metrics", {})
    if _failed(metrics):
        add(f"Not measured: {metrics.get('error') if isinstance(metrics, dict) else 'not run'}.\n")
    else:
        run, writes = metrics["load"], metrics["writes"]
        add(f"Target: `/api/metrics` p95 ≤ {P95_TARGET_MS:.0f} ms under {metrics['clients']} clients while one "
            f"client writes every {metrics['write_interval_s'] * 1000:.0f} ms, at {scale}. Gunicorn with "
            f"{metrics['workers']} workers (shipped settings); {metrics['clients']} keep-alive clients in "
            f"{run['processes']} processes; the writer assigns pending batches to a segmenter and, on its next "
            f"pass over them, unassigns them through `PATCH /api/batches/<id>` (each write bumps the cache "
            f"version, so every worker's cached figures become stale).\n")
        add(table(["", "requests", "req/s", "p50", "p95", "max", "statuses"], [
            ["/api/metrics", n(run["requests"]), n(run["rps"]), ms(run["p50_ms"]), ms(run["p95_ms"]),
             ms(run["max_ms"]), ", ".join(f"{k}: {n(v)}" for k, v in sorted(run["statuses"].items()))],
            ["the writes (PATCH)", n(writes["n"]), n(writes.get("per_s")), ms(writes["p50_ms"]), ms(writes["p95_ms"]),
             ms(writes["max_ms"]), ", ".join(f"{k}: {n(v)}" for k, v in sorted(writes["statuses"].items()))],
        ]))
        add(f"\nThe writes go out on schedule whatever each takes (up to {writes.get('max_in_flight')} open at "
            f"once): {n(writes.get('per_s'))} writes/s made, {n(writes.get('skipped'))} skipped because that many "
            f"were still open.")
        base, comp = metrics["baseline_no_cache"], metrics["segdash_compute"]
        add(f"\nBaseline, in-process, {base['n']} runs each: the old pipeline (every batch loaded and counted in "
            f"Python, files counted, no cache) takes {ms(base['p50_ms'])} median ({ms(base['max_ms'])} max); "
            f"SegDash's own computation of the figures (`dashboard_stats._compute`, one aggregation, run by one "
            f"process per change and stored) {ms(comp['p50_ms'])} median. Under the load above a request "
            f"reads the stored figures (one round trip) or its worker's cache.\n")
        out.extend(_profiles(metrics.get("profiles"), "/api/metrics under the same writes"))

    # ---- lists
    add(next(titles) + "\n")
    lists = wait.get("lists", {})
    if _failed(lists):
        add(f"Not measured: {lists.get('error') if isinstance(lists, dict) else 'not run'}.\n")
    else:
        add(f"Target: p95 ≤ {P95_TARGET_MS:.0f} ms for every sort and filter with nothing cached, at {scale}. "
            f"In-process (`app.test_client()`, one request at a time) with the worker's page and count caches "
            f"emptied before every request, so each request counts the matches and fetches its page from the "
            f"database. {lists['samples']} requests per case of {lists['per_page']} rows, cycling over pages "
            f"{', '.join(str(p) for p in lists['pages'])}. *Examined* is the server's `explain` "
            f"(executionStats) of the page's find at the first and the last of those pages; *returned* is the "
            f"most documents one request's find brought back.\n")
        first, last = lists["pages"][0], lists["pages"][-1]
        rows = []
        for r in lists["rows"]:
            explain = r["explain"]
            rows.append([f"`{r['case']}`", n(r["total"]), ms(r["p50_ms"]), ms(r["p95_ms"]), ms(r["max_ms"]),
                         n(r["docs_returned_max"]), n(r["data_round_trips_max"]),
                         _explain_cell(explain.get(str(first), explain.get(first))),
                         _explain_cell(explain.get(str(last), explain.get(last))),
                         (explain.get(str(first)) or explain.get(first) or {}).get("plan") or "–",
                         "**met**" if (r["p95_ms"] or 0) <= P95_TARGET_MS and set(r["statuses"]) == {"200"}
                         else "**missed**"])
        add(table(["case", "matches", "p50", "p95", "max", "returned", "round trips", f"examined, page {first}",
                   f"examined, page {last}", "plan", f"p95 ≤ {P95_TARGET_MS:.0f} ms"], rows))
        add("")
        add(_list_notes(lists))
    shapes = wait.get("shapes", {})
    if _failed(shapes):
        add(f"Query shapes: not measured ({shapes.get('error') if isinstance(shapes, dict) else 'not run'}).\n")
    else:
        add("Baseline: the shapes sent directly with pymongo (no app in between), "
            f"{shapes['open_range']['n']} runs each, 50 rows sorted by number:\n")
        names = {"open_range": "open range `number > x`, limit 50 (previous shape)",
                 "bounded_range": "bounded range `x < number ≤ x + 50`, limit 50"}
        srows = []
        for key, value in shapes.items():
            if not isinstance(value, dict):
                continue
            if key.startswith("regex:"):
                label = f"unanchored case-insensitive regex on id and name, `{key[6:]}` (previous shape)"
            elif key.startswith("search_keys:"):
                label = f"search keys (prefix equality on the multikey index), `{key[12:]}`"
            else:
                label = names.get(key, key)
            srows.append([label, ms(value["p50_ms"]), ms(value["p95_ms"]), n(value["returned_max"]),
                          _explain_cell(value["explain"]), value["explain"].get("plan") or "–"])
        add(table(["shape", "p50", "p95", "returned", "examined", "plan"], srows))
        add("")
        open_keys = (shapes["open_range"]["explain"] or {}).get("keys_examined")
        bounded_keys = (shapes["bounded_range"]["explain"] or {}).get("keys_examined")
        if open_keys is not None and bounded_keys is not None:
            add(f"The open range examined {n(open_keys)} index keys to return 50 rows, the bounded range "
                f"{n(bounded_keys)} (one explain each, at the first start drawn); the regex shapes read every "
                f"batch (a collection scan), the search keys only the matches. On MongoDB the open range with "
                f"a limit stops after 50 keys as well, and an unanchored case-insensitive regex still scans "
                f"every index key or document.\n")

    # ---- interference
    add(next(titles) + "\n")
    inter = wait.get("interference", {})
    if _failed(inter):
        add(f"Not measured: {inter.get('error') if isinstance(inter, dict) else 'not run'}.\n")
    else:
        idle, loaded, searches = inter["idle"], inter["loaded"], inter.get("searches") or {}
        factor = loaded["p95_ms"] / idle["p95_ms"] if idle["p95_ms"] and loaded["p95_ms"] is not None else None
        add(f"Target: a dozen concurrent searchers leave an unrelated request's p95 within "
            f"{INTERFERENCE_FACTOR:.0f}× of its idle value. Gunicorn with {inter['workers']} workers; the "
            f"unrelated request is a cached batch detail (`{inter['probe']}`), sent by one client for "
            f"{secs(inter['seconds'])} alone, then for as long beside {inter['searchers']} clients searching "
            f"(`q` drawn from 3,000 different id, name and number prefixes, so few are served from a page "
            f"cache; the per-user limit of expensive requests is lifted for this run).\n")
        add(table(["", "requests", "p50", "p95", "max", "statuses"], [
            ["detail, alone", n(idle["requests"]), ms(idle["p50_ms"]), ms(idle["p95_ms"]), ms(idle["max_ms"]),
             _statuses(idle)],
            ["detail, beside the searchers", n(loaded["requests"]), ms(loaded["p50_ms"]), ms(loaded["p95_ms"]),
             ms(loaded["max_ms"]), _statuses(loaded)],
            ["the searches", n(searches.get("requests")), ms(searches.get("p50_ms")), ms(searches.get("p95_ms")),
             ms(searches.get("max_ms")), _statuses(searches)],
        ]))
        add(f"\np95 beside the searchers ÷ p95 alone = {n(factor)}× "
            f"({'**met**' if factor is not None and factor <= INTERFERENCE_FACTOR else '**missed**'}; "
            f"target ≤ {INTERFERENCE_FACTOR:.0f}×). On a machine whose cores are all busy serving the searches, "
            f"the unrelated request waits for a core whatever the searches cost; the search p95 above says how "
            f"much of that is the searches' own work.\n")
        out.extend(_profiles(inter.get("profiles"), f"the {inter['searchers']} searchers alone"))

    # ---- day
    add(next(titles) + "\n")
    day = wait.get("day", {})
    if _failed(day):
        add(f"Not measured: {day.get('error') if isinstance(day, dict) else 'not run'}.\n")
    else:
        sync = day["sync"]
        think = day["think_s"]
        add(f"Target: errors 0 (any 5xx, a request without an answer, or a 4xx the client did not expect; "
            f"409 on a status change is counted apart). {day['segmenters']} segmenter clients and 1 lead client "
            f"for {secs(day['seconds'])} through Gunicorn with {day['workers']} workers (shipped settings, "
            f"worker recycling included) and a job runner (`flask --app app run-jobs`), at {scale}. Each client "
            f"pauses {think[0]:.1f}–{think[1]:.1f} s between steps. A segmenter loads its queue page (`/my`, "
            f"the page's five lists and `/api/me/summary`), opens one of its open batches, uploads a small PNG "
            f"to it and moves it on as the policy allows (start, complete, restart). The lead loads the "
            f"overview (page, `/api/metrics`, segmenters, last syncs), the list (a page, a sort, a search), "
            f"reviews the next completed batch (detail, a mask uploaded today when it has one — the seeded "
            f"masks at this scale have no content stored — then reviewed, or rejected with a reason one time "
            f"in four), and once uploads three unlinked files and starts a sync "
            f"(`POST /api/sync-batch-files`), polled through `GET /api/jobs/<id>` to its end.\n")
        add(f"{n(day['requests'])} requests in {secs(day['wall_s'])}; **{n(day['errors'])} errors**; "
            f"{n(day['refused_409'])} refused transitions (409); {n(day['uploads'])} masks uploaded to batches; "
            f"{n(day['workers_replaced'])} of the {day['workers']} workers at the end were not there at the start "
            f"(recycled by `max_requests`).\n")
        if day["error_samples"]:
            add("Errors seen: " + ", ".join(f"{e['endpoint']} → {e['status']} ({e['client']})"
                                            for e in day["error_samples"]) + ".\n")
        rows = [[f"`{label}`", ", ".join(row["roles"]), n(row["n"]), ms(row["p50_ms"]), ms(row["p95_ms"]),
                 ms(row["max_ms"]), ", ".join(f"{k}: {n(v)}" for k, v in sorted(row["statuses"].items()))]
                for label, row in day["endpoints"].items()]
        add(table(["endpoint", "by", "requests", "p50", "p95", "max", "statuses"], rows))
        result = sync.get("result") or {}
        add(f"\nThe sync: {sync.get('state', 'not finished')}"
            + (f", created {sync.get('created_at')}, finished {sync.get('finished_at')}, seen done by the lead "
               f"{secs(sync.get('seen_after_s'))} after it was started ({n(sync.get('polls'))} polls)"
               if sync.get("finished") else "")
            + (f"; scanned {n(result.get('files_scanned'))} files, linked {n(result.get('files_linked'))} "
               f"in {ms(result.get('duration_ms'))}" if result else "")
            + (f"; could not start: {sync['start_error']}" if sync.get("start_error") else "")
            + (f"; error: {sync['error']}" if sync.get("error") else "") + ".\n")
        mrows = []
        for when, key in (("start", "memory_start"), ("end", "memory_end")):
            for role in ("master", "worker"):
                mrows.append([when, role, n(sum(1 for r in day[key] if r["role"] == role)),
                              mb(_total(day[key], "rss_mb", role)), mb(_total(day[key], "pss_mb", role)),
                              mb(max((r["rss_mb"] for r in day[key] if r["role"] == role), default=None))])
        add("Gunicorn memory (psutil `memory_full_info`), summed per role:\n")
        add(table(["when", "role", "processes", "RSS", "PSS", "largest RSS"], mrows))
        add("")
    seconds = wait.get("sections_seconds") or {}
    if seconds:
        add("Time taken by these sections: " + ", ".join(f"{k} {secs(v)}" for k, v in seconds.items()) + ".\n")
    return "\n".join(out) + "\n"


def _list_notes(lists):
    """What the explains say about the slow cases, and what MongoDB does with the same shapes."""
    first = str(lists["pages"][0])
    wide = []
    for r in lists["rows"]:
        explain = r["explain"].get(first) or {}
        keys = explain.get("keys_examined")
        if keys is not None and keys > lists["per_page"] * max(lists["pages"]) and r["total"] > lists["per_page"]:
            wide.append((r["case"], keys, r["total"]))
    if not wide:
        return ("Every page's find examined no more index keys than the rows up to its page: its cost does not "
                "grow with the collection.\n")
    cases = ", ".join(f"`{case}` ({n(keys)} keys for {n(total)} matches)" for case, keys, total in wide[:6])
    return (f"Where a case misses, the explain says why: the page's find examined every match, not the page — "
            f"{cases}{' …' if len(wide) > 6 else ''} — although the plan walks an index in the sort's order and "
            f"the limit is {lists['per_page']}: this server applies `limit` after the index scan. MongoDB stops "
            f"such a scan (LIMIT over an IXSCAN that provides the sort) after skip + limit keys, so there the "
            f"find's cost follows the page, not the collection; the count of the matches (one per uncached "
            f"page) still reads one index key per match on either server.\n")


def _statuses(run):
    return ", ".join(f"{k}: {n(v)}" for k, v in sorted((run.get("statuses") or {}).items())) or "–"
