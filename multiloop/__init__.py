"""multiloop: an asyncio event loop whose I/O backend is a pluggy plugin.

    import multiloop
    multiloop.run(main())                       # best backend here (epoll on Linux)
    loop = multiloop.new_loop(backend="poll")   # or name one; MULTILOOP_BACKEND / MULTILOOP_AVOID work too
    asyncio.run(main(), loop_factory=multiloop.loop_factory("select"))   # Python 3.12+
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from .api import backends, default_backend, loop_factory, new_loop, run
from .backend import (
    CAPABILITIES,
    ERROR,
    INVALID,
    READ,
    WRITE,
    Backend,
    Capability,
    Iteration,
    Poller,
    check_fd_open,
    translate_oserror,
)
from .errors import (
    BackendError,
    BackendUnavailableError,
    BadFdError,
    FdLimitError,
    LoopForkedError,
    MultiloopError,
    NoBackendAvailableError,
    PollerError,
    UnknownBackendError,
    UnpollableFdError,
)
from .fdtable import InvalidFdError
from .hookspecs import hookimpl, hookspec  # noqa: I001  (backends import hookimpl from here)
from .loop import EventLoop
from .registry import BackendInfo, BrokenPlugin
from .stats import LoopStats

if TYPE_CHECKING:
    from .policy import EventLoopPolicy as EventLoopPolicy

__version__ = "0.1.0"

__all__ = [
    "new_loop", "run", "loop_factory", "backends", "default_backend", "EventLoop",
    "hookimpl", "hookspec", "Backend", "BackendInfo", "BrokenPlugin", "Capability", "CAPABILITIES", "Poller",
    "Iteration", "READ", "WRITE", "ERROR", "INVALID", "translate_oserror", "check_fd_open", "LoopStats",
    "MultiloopError", "BackendError", "UnknownBackendError", "BackendUnavailableError",
    "NoBackendAvailableError", "PollerError", "BadFdError", "FdLimitError", "UnpollableFdError",
    "InvalidFdError", "LoopForkedError",
]
if sys.version_info < (3, 16):
    # Policies are gone in 3.16: there ``from multiloop import *`` must not ask for the class.
    __all__.append("EventLoopPolicy")


def __getattr__(name: str) -> Any:
    # Built on first use, never at import: asyncio deprecates the policy base class in 3.14 (policy.py).
    if name == "EventLoopPolicy":
        from .policy import event_loop_policy_class
        return event_loop_policy_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
