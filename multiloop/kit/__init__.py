"""The backend author's kit: check that a backend really behaves as multiloop's core needs.

    python -m multiloop check-backend NAME [--quick] [--json FILE] [--plugin MODULE]

Facts that shape the kit:

- A backend that is subtly wrong rarely fails loudly: one that loses WRITE readiness stalls the first
  transport whose send buffer fills; one that reports EPERM as a generic error breaks only regular files
  (``python app.py < data.txt``); one that ignores its timeout spins or makes timers late; one that keeps
  reporting a closed fd burns a CPU. Each needs a check that provokes exactly that situation.
- Those checks must run where the backend is installed -- often a plain, non-editable install without
  multiloop's test suite or pytest -- so they ship in the package and use nothing but the standard library
  and the public API.
- CPython's own asyncio tests (``test.test_asyncio``, part of most interpreters' standard library) are the
  broadest statement of what an event loop must do; multiloop's conformance runner
  (:mod:`multiloop.kit.conformance`) runs them against any backend.

Design: behavioural checks are plain functions registered in :data:`CHECKS` (poller-level ones in
:mod:`.poller_checks`, loop-level ones in :mod:`.loop_checks`), run with a :class:`~.harness.Harness` that
owns every resource a check creates and verifies none leaks. :mod:`.behaviour` runs them in a child process
with a per-check alarm, so a hang or a crash is one failed check, not a dead kit; :mod:`.cli` runs that and
the CPython modules and prints the verdict. ``tests/test_kit_checks.py`` runs the same checks under pytest on
every backend, and ``tests/test_kit.py`` proves that the kit catches deliberately broken backends.
"""

from __future__ import annotations

from . import loop_checks, poller_checks  # noqa: F401  (they register their checks)
from .harness import CHECKS, Check, CheckFailure, Harness, Outcome, SkipCheck, check, run_check

__all__ = ["CHECKS", "Check", "CheckFailure", "Harness", "Outcome", "SkipCheck", "check", "run_check"]
