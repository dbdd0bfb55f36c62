"""The backend-author kit's behavioural checks (``multiloop.kit``), run as tests on every backend.

The checks ship inside the package so that ``python -m multiloop check-backend`` works from an installed copy;
this module is how the test suite runs them instead of keeping copies of the same scenarios.
"""

from __future__ import annotations

import pytest

from multiloop import kit


@pytest.mark.parametrize("name", list(kit.CHECKS))
def test_kit_check(name: str, backend: str) -> None:
    outcome = kit.run_check(kit.CHECKS[name], backend)
    assert outcome.outcome in ("passed", "skipped"), f"{name} on {backend}: {outcome.outcome}: {outcome.message}"


def test_every_check_says_what_it_checks_and_where() -> None:
    for chk in kit.CHECKS.values():
        assert chk.level in ("poller", "loop")
        assert chk.summary and chk.summary != chk.name, f"{chk.name} has no docstring"
    quick = [c for c in kit.CHECKS.values() if c.quick]
    assert quick and len(quick) < len(kit.CHECKS)
