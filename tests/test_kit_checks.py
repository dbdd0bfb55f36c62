"""The backend-author kit's behavioural checks (``multiloop.kit``), run as tests on every backend.

The checks ship inside the package so that ``python -m multiloop check-backend`` works from an installed copy;
this module is how the test suite runs them instead of keeping copies of the same scenarios.
"""

from __future__ import annotations

import signal
import subprocess
import sys

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


CTRL_C_PROBE = """
import signal, sys
from multiloop.kit.harness import restore_ctrl_c
restored = restore_ctrl_c()
try:
    signal.raise_signal(signal.SIGINT)
except KeyboardInterrupt:
    print(restored, "KeyboardInterrupt")
else:
    print(restored, "nothing")
"""


@pytest.mark.parametrize("ignored", [True, False])
def test_restore_ctrl_c_undoes_an_inherited_ignored_sigint(ignored: bool) -> None:
    # What a background job of a non-interactive shell (cmd &, nohup) hands its children: SIGINT ignored, which
    # an exec keeps (and Python then installs no handler of its own).
    def start() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN if ignored else signal.SIG_DFL)

    out = subprocess.run([sys.executable, "-c", CTRL_C_PROBE], capture_output=True, text=True, timeout=60,
                         preexec_fn=start)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(ignored), "KeyboardInterrupt"]
