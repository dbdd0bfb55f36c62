"""The reliability suite (:mod:`multiloop.reliability`) at CI size, every scenario on every backend.

Each scenario checks the loop's promises itself and returns the broken ones as ``failures``; these tests
assert there are none, plus the figure that proves the scenario did its work (bytes verified, reports
counted), so a scenario that silently did nothing fails too. ``python -m multiloop soak`` runs the same
scenarios bigger and longer.
"""

from __future__ import annotations

import pytest

from multiloop.reliability import run_scenario


def run(name: str, backend: str):
    result = run_scenario(name, backend, "ci", seed=1234)
    if result.skipped:
        pytest.skip(result.skipped)
    assert result.failures == [], result.figures
    return result.figures


def test_descriptor_exhaustion_is_reported_once_per_pause_and_accepting_resumes_when_descriptors_free(backend):
    figures = run("emfile", backend)
    # Closing other files: the first retry after that accepts (one delay at most, no further report).
    assert figures["hogs_served_after_free_s"] >= 0
    # A flood that ends frees the server's own connections: accepting resumes without the (1 h) timed retry,
    # after exactly one report.
    assert figures["flood_reports"] == 1
    assert figures["flood_served_after_free_s"] >= 0
