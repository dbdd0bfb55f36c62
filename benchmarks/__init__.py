"""multiloop's benchmark suite: the loop core and loopback I/O, on stock asyncio and every backend.

Every number is a *ratio against stock asyncio measured in the same process*, interleaved (asyncio, epoll,
poll, ..., asyncio, epoll, ...), repeated, reported as the median with its spread. Absolute rates depend on
the machine and on whatever else runs on it; ratios taken side by side do not (much). See README.md.

Run ``python -m benchmarks --help`` from the repository root.
"""

from __future__ import annotations

from .harness import Column, Result, Sample, SuiteResult, run_suite

__all__ = ["Column", "Result", "Sample", "SuiteResult", "run_suite"]
