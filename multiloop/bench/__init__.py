"""multiloop's benchmark suite, shipped with the package: ``python -m multiloop bench [--quick] [--json F]
[--chart F.png]``.

Every number is a *ratio against stock asyncio measured in the same process*, interleaved (asyncio, epoll,
poll, ..., uvloop, asyncio, epoll, ...), repeated, reported as the median with its spread. Absolute rates
depend on the machine and on whatever else runs on it; ratios taken side by side do not (much). Each workload
checks its result (every byte echoed exactly, callbacks in order, cancelled timers never fired). The method and
every workload are described in ``docs/benchmarks.md``; :mod:`.memory` measures memory per idle connection.

Modules: :mod:`.harness` (columns, interleaving, ratios, tables), :mod:`.micro` (the loop core),
:mod:`.netops` (sock_* and getaddrinfo), :mod:`.echo` with :mod:`.echo_client` (loopback servers loaded
from another process), :mod:`.memory`, :mod:`.chart` (optional, matplotlib), :mod:`.cli`.
"""

from __future__ import annotations

from .harness import Benchmark, Column, Result, Sample, SuiteResult, run_suite

__all__ = ["Benchmark", "Column", "Result", "Sample", "SuiteResult", "run_suite"]
