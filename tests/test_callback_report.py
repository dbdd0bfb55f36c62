"""A callback that raises is reported the same way whether the loop ran it through ``Handle._run`` (pure Python)
or inline (compiled): message, exception, handle, source traceback. Fails loudly if a Python release changes
what ``Handle._run`` reports or the private formatter multiloop._callback_report uses."""

from __future__ import annotations

import asyncio

import pytest

from multiloop._callback_report import report_callback_error


def failing(x: int) -> None:
    raise ZeroDivisionError(x)


def capture(loop: asyncio.AbstractEventLoop) -> list[dict]:
    seen: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    return seen


@pytest.mark.parametrize("debug", [False, True])
def test_the_report_is_what_handle_run_reports(loop, debug):
    loop.set_debug(debug)
    seen = capture(loop)
    handle = asyncio.Handle(failing, (7,), loop)
    handle._run()
    try:
        failing(7)
    except ZeroDivisionError as exc:
        report_callback_error(handle, exc)
    stock, ours = seen
    assert ours["message"] == stock["message"]
    assert ours.keys() == stock.keys()
    assert ours["handle"] is stock["handle"] is handle
    assert type(ours["exception"]) is type(stock["exception"]) is ZeroDivisionError


def test_a_failing_callback_on_the_loop_is_reported_as_stock_asyncio_reports_it(loop):
    seen = capture(loop)
    handle = loop.call_soon(failing, 3)
    loop.call_soon(loop.stop)
    loop.run_forever()
    stock_loop = asyncio.new_event_loop()
    try:
        stock_seen = capture(stock_loop)
        stock_loop.call_soon(failing, 3)
        stock_loop.call_soon(stock_loop.stop)
        stock_loop.run_forever()
    finally:
        stock_loop.close()
    (ours,), (stock,) = seen, stock_seen
    assert ours["message"] == stock["message"]
    assert ours["handle"] is handle
    assert isinstance(ours["exception"], ZeroDivisionError) and ours["exception"].args == (3,)
    assert ours.keys() == stock.keys()


def test_system_exit_from_a_callback_leaves_run_forever(loop):
    def leave() -> None:
        raise SystemExit(5)

    loop.call_soon(leave)
    with pytest.raises(SystemExit):
        loop.run_forever()
