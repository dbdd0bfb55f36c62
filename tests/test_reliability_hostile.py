"""Hostile input to the fd API on every backend: the errors it raises, and the property-based scenario
(:mod:`multiloop.reliability.hostile`) at CI size."""

from __future__ import annotations

import pytest

from multiloop import InvalidFdError
from multiloop.reliability import run_scenario


@pytest.mark.parametrize("fd", [2**31, 2**63, 10**30])
@pytest.mark.parametrize("method", ["add_reader", "add_writer", "remove_reader", "remove_writer"])
def test_a_number_too_large_for_an_fd_is_an_error_naming_the_backend(loop, backend, method, fd):
    args = (fd, lambda: None) if method.startswith("add") else (fd,)
    with pytest.raises(InvalidFdError, match=f"^{backend}: Invalid file descriptor: {fd} ") as info:
        getattr(loop, method)(*args)
    # What the kernel interfaces raise for such a number (and stock asyncio lets through).
    assert isinstance(info.value, OverflowError)


class _FilenoFails:
    def fileno(self):
        raise OSError("no fd here")


@pytest.mark.parametrize("obj", ["3", 3.0, None, b"", object(), True, _FilenoFails()],
                         ids=["str", "float", "None", "bytes", "object", "bool", "fileno-raises"])
def test_an_object_that_is_no_fd_is_a_value_error_naming_the_backend(loop, backend, obj):
    with pytest.raises(ValueError, match=f"^{backend}: Invalid file object"):
        loop.add_reader(obj, lambda: None)
    with pytest.raises(ValueError, match=f"^{backend}: Invalid file object"):
        loop.remove_writer(obj)


def test_random_hostile_sequences_never_crash_spin_or_leak(backend):
    pytest.importorskip("hypothesis")
    result = run_scenario("hostile", backend, "ci", seed=1234)
    assert result.failures == [], result.figures
    assert result.figures["examples"] >= 60
    assert result.figures["threadsafe_callbacks"] == 8 * 2000
