"""Reporting an exception raised by a callback the compiled loop ran inline, exactly as ``Handle._run`` would.

Facts: ``asyncio.Handle._run`` reports a failing callback to the loop's exception handler with the message
``"Exception in callback <callback source>"``, the exception, the handle and (in debug mode) the handle's
source traceback. The callback source is formatted by ``asyncio.format_helpers._format_callback_source``, a
private function (its signature gained a ``debug`` argument in 3.12). This is the only module that names it;
``tests/test_callback_report.py`` compares what this module reports with what ``Handle._run`` reports, so a
release that changes either fails loudly.
"""

from __future__ import annotations

import inspect
from asyncio import format_helpers as _format_helpers
from typing import Any

_format: Any = _format_helpers._format_callback_source
_TAKES_DEBUG = "debug" in inspect.signature(_format).parameters


def report_callback_error(handle: Any, exc: BaseException) -> None:
    """What ``handle._run()`` does after its callback raised ``exc`` (not SystemExit/KeyboardInterrupt)."""
    loop = handle._loop
    if _TAKES_DEBUG:
        source = _format(handle._callback, handle._args, debug=loop.get_debug())
    else:
        source = _format(handle._callback, handle._args)
    context: dict[str, Any] = {"message": f"Exception in callback {source}", "exception": exc, "handle": handle}
    if handle._source_traceback:
        context["source_traceback"] = handle._source_traceback
    loop.call_exception_handler(context)


__all__ = ["report_callback_error"]
