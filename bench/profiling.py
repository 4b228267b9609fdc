"""Profiles for the report: py-spy on another process, cProfile in this one."""
import cProfile
import io
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile

_FRAME_LINE = re.compile(r":\d+\)$")


def py_spy_path():
    found = shutil.which("py-spy")
    if found:
        return found
    candidate = os.path.join(os.path.dirname(sys.executable), "py-spy")
    return candidate if os.path.exists(candidate) else None


class PySpy:
    """`py-spy record` of a running process (and its children) while something else runs."""

    def __init__(self, pid, seconds, subprocesses=False, rate=97):
        self.pid = pid
        self.seconds = seconds
        self.subprocesses = subprocesses
        self.rate = rate
        self.output = tempfile.mktemp(prefix="bench-pyspy-", suffix=".txt")
        self.process = None
        self.error = None

    def start(self):
        binary = py_spy_path()
        if binary is None:
            self.error = "py-spy is not installed (pip install -r requirements-bench.txt)"
            return self
        command = [binary, "record", "--pid", str(self.pid), "--duration", str(max(1, int(self.seconds))),
                   "--rate", str(self.rate), "--format", "raw", "--output", self.output, "--nonblocking"]
        if self.subprocesses:
            command.append("--subprocesses")
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        return self

    def finish(self, top=12):
        if self.process is None:
            return {"error": self.error}
        try:
            _, err = self.process.communicate(timeout=self.seconds + 60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        if not os.path.exists(self.output):
            return {"error": f"py-spy produced no profile: {(err or '').strip()[-300:]}"}
        with open(self.output) as handle:
            stacks = handle.read().splitlines()
        os.unlink(self.output)
        return summarize_collapsed(stacks, top)


def _frame_name(frame):
    frame = _FRAME_LINE.sub(")", frame.strip())
    # "function (path/to/module.py)" -> "function (module.py)"
    match = re.match(r"^(.*) \((.*)\)$", frame)
    if match:
        path = match.group(2).replace("\\", "/").split("/")
        return f"{match.group(1)} ({'/'.join(path[-2:])})"
    return frame


def summarize_collapsed(lines, top=12):
    """Top functions by own samples and by inclusive samples, from collapsed stacks."""
    own, inclusive, total, idle = {}, {}, 0, 0
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        count = int(count)
        frames = [_frame_name(f) for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        total += count
        leaf = frames[-1]
        own[leaf] = own.get(leaf, 0) + count
        for name in set(frames):
            if "threading.py" in name or "gunicorn/" in name and "handle" not in name:
                continue  # thread start-up frames are in every stack and say nothing
            inclusive[name] = inclusive.get(name, 0) + count
        if any(word in leaf for word in ("wait (threading.py)", "select (", "poll (", "accept (", "recv_into (")):
            idle += count

    def ranked(table):
        return [{"function": name, "samples": n, "percent": 100.0 * n / total}
                for name, n in sorted(table.items(), key=lambda item: -item[1])[:top]]

    return {"samples": total, "own": ranked(own), "inclusive": ranked(inclusive),
            "idle_percent": 100.0 * idle / total if total else 0.0}


def py_spy_dump(pid):
    """The current stacks of a process (text), or an error message."""
    binary = py_spy_path()
    if binary is None:
        return "py-spy is not installed"
    try:
        result = subprocess.run([binary, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"py-spy dump failed: {exc}"
    return result.stdout or result.stderr


def cprofile(function, top=12):
    """Run `function` under cProfile; returns (its result, top entries by own time and cumulative time)."""
    profiler = cProfile.Profile()
    result = profiler.runcall(function)
    stats = pstats.Stats(profiler, stream=io.StringIO())
    total = sum(entry[2] for entry in stats.stats.values())  # total own time

    def rows(sort_index):
        ranked = sorted(stats.stats.items(), key=lambda item: -item[1][sort_index])[:top]
        out = []
        for (filename, line, name), (_cc, nc, tt, ct, _callers) in ranked:
            out.append({"function": f"{name} ({os.path.basename(filename)}:{line})", "calls": nc,
                        "own_s": tt, "cumulative_s": ct,
                        "own_percent": 100.0 * tt / total if total else 0.0})
        return out

    return result, {"total_s": total, "by_own": rows(2), "by_cumulative": rows(3)}
