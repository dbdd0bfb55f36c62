"""Formatting of exception-handler contexts for the default handler, matching stock asyncio's log output
(users grep their logs for it) and adding the backend name."""

from __future__ import annotations

import asyncio
import logging
import traceback
from typing import Any

logger = logging.getLogger("asyncio")

_TRACEBACK_KEYS = {
    "source_traceback": "Object created at (most recent call last):\n",
    "handle_traceback": "Handle created at (most recent call last):\n",
}


def log_exception_context(loop: asyncio.AbstractEventLoop, context: dict[str, Any], current_handle: Any) -> None:
    message = context.get("message") or "Unhandled exception in event loop"
    exception = context.get("exception")
    exc_info: Any = (type(exception), exception, exception.__traceback__) if exception is not None else False
    if ("source_traceback" not in context and current_handle is not None
            and getattr(current_handle, "_source_traceback", None)):
        context = dict(context, handle_traceback=current_handle._source_traceback)
    lines = [message]
    for key in sorted(context):
        if key in ("message", "exception"):
            continue
        value = context[key]
        if key in _TRACEBACK_KEYS:
            text = _TRACEBACK_KEYS[key] + "".join(traceback.format_list(value)).rstrip()
        else:
            text = repr(value)
        lines.append(f"{key}: {text}")
    lines.append(f"multiloop backend: {getattr(loop, 'backend', '?')}")
    logger.error("\n".join(lines), exc_info=exc_info)
