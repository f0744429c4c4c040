"""Run a Python entry point with its garbage-collector pauses timed (``gc.callbacks``).

Usage: ``PYTHON bench/gcwrap.py OUT.json MODULE:FUNCTION ARGV0 [ARG...]``
(or ``FILE.py:FUNCTION``: a script loaded from its path, as for ``bench/relay.py``)

It installs a ``gc.callbacks`` hook, then calls ``MODULE.FUNCTION()`` with
``sys.argv = [ARGV0, ARG...]`` (for our server ``twisted.scripts.twistd:run twistd -n
--pidfile= b2bua --config FILE``; for sippy ``sippy.b2bua:main_func b2bua ...``).
It imports nothing of the wrapped program and nothing outside the standard library,
so any interpreter can run it.

Every collection is timed with ``perf_counter`` between the ``start`` and ``stop``
phases. The hook keeps, per generation, the count, the total time and a histogram
(buckets 10 % wide from 10 us), plus a bounded list of the collections that took
1 ms or more (``time.monotonic()`` at the end, generation, ms, objects collected).
Nothing grows per collection, so the wrapper adds no memory per call. A daemon
thread rewrites OUT.json (atomically) every 0.5 s and once more at exit; a reader
takes two snapshots and subtracts them to get the pauses within a window. The
thread only wakes twice a second, which costs the wrapped program nothing measurable.

Experiments (off unless set; they change the program's GC, so never in the figures
calls.py stores): ``GCWRAP_THRESHOLD=700,10,10`` calls ``gc.set_threshold`` before the
program starts; ``GCWRAP_FREEZE_AFTER=SECONDS`` calls ``gc.collect(); gc.freeze()``
once, that long after start (after start-up, before the load), from the daemon thread;
``GCWRAP_CENSUS_AT=SECONDS`` writes OUT.census.json once, that long after start: the
40 commonest types among ``gc.get_objects()`` (it holds the GIL for a while).
"""

from __future__ import annotations

import atexit
import gc
import importlib
import importlib.util
import json
import math
import os
import sys
import threading
import time

BUCKET_BASE = 1e-5  # seconds: the first bucket holds pauses below 10 us
BUCKET_GROWTH = 1.1
BUCKETS = 160  # 10 us * 1.1**159 is about 38 s: the last bucket is open-ended
LONG = 1e-3  # collections at least this long are also kept one by one
LONG_KEEP = 20000
INTERVAL = 0.5


def bucket_of(seconds: float) -> int:
    """Histogram bucket index of a pause of ``seconds``."""
    if seconds < BUCKET_BASE:
        return 0
    return min(BUCKETS - 1, 1 + int(math.log(seconds / BUCKET_BASE, BUCKET_GROWTH)))


class GCTimer:
    """The ``gc.callbacks`` hook and its running totals."""

    def __init__(self, out: str) -> None:
        self.out = out
        self.count = [0, 0, 0]
        self.total = [0.0, 0.0, 0.0]
        self.max = [0.0, 0.0, 0.0]
        self.hist = [[0] * BUCKETS for _ in range(3)]
        self.long: list[tuple[float, int, float, int]] = []
        self.started = 0.0
        self.lock = threading.Lock()

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self.started = now
            return
        took = now - self.started
        gen = info.get("generation", 2)
        self.count[gen] += 1
        self.total[gen] += took
        if took > self.max[gen]:
            self.max[gen] = took
        self.hist[gen][bucket_of(took)] += 1
        if took >= LONG and len(self.long) < LONG_KEEP:
            self.long.append((time.monotonic(), gen, took * 1e3, info.get("collected", 0)))

    def snapshot(self) -> dict[str, object]:
        return {
            "pid": os.getpid(),
            "written": time.monotonic(),
            "bucket_base_s": BUCKET_BASE,
            "bucket_growth": BUCKET_GROWTH,
            "count": list(self.count),
            "total_s": list(self.total),
            "max_s": list(self.max),
            "hist": [list(h) for h in self.hist],
            "long": list(self.long),
        }

    def write(self) -> None:
        with self.lock:
            data = json.dumps(self.snapshot())
            tmp = self.out + ".tmp"
            with open(tmp, "w") as f:
                f.write(data)
            os.replace(tmp, self.out)

    def census(self) -> None:
        counts: dict[str, int] = {}
        objects = gc.get_objects()
        for obj in objects:
            kind = type(obj)
            name = f"{kind.__module__}.{kind.__qualname__}"
            counts[name] = counts.get(name, 0) + 1
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:40]
        with open(self.out + ".census.json", "w") as f:
            json.dump({"tracked": len(objects), "top": top}, f, indent=1)

    def loop(self, freeze_after: float, census_at: float) -> None:
        began = time.monotonic()
        while True:
            time.sleep(INTERVAL)
            if census_at and time.monotonic() - began >= census_at:
                census_at = 0.0
                self.census()
            if freeze_after and time.monotonic() - began >= freeze_after:
                freeze_after = 0.0
                gc.collect()
                gc.freeze()
            try:
                self.write()
            except OSError:
                pass


def main() -> None:
    out, target = sys.argv[1], sys.argv[2]
    timer = GCTimer(out)
    gc.callbacks.append(timer)
    atexit.register(timer.write)
    if threshold := os.environ.get("GCWRAP_THRESHOLD"):
        gc.set_threshold(*(int(x) for x in threshold.split(",")))
    freeze_after = float(os.environ.get("GCWRAP_FREEZE_AFTER") or 0)
    census_at = float(os.environ.get("GCWRAP_CENSUS_AT") or 0)
    args = (freeze_after, census_at)
    threading.Thread(target=timer.loop, args=args, name="gcwrap", daemon=True).start()
    module, _, function = target.partition(":")
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    sys.argv = sys.argv[3:]
    if module.endswith(".py"):
        spec = importlib.util.spec_from_file_location("__gcwrap_target__", module)
        assert spec is not None and spec.loader is not None, module
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
    else:
        loaded = importlib.import_module(module)
    entry = getattr(loaded, function)
    sys.exit(entry())


if __name__ == "__main__":
    main()
