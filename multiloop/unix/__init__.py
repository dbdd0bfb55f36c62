"""Unix-specific loop features, one module per concern; UnixMixin composes them.

- :mod:`.pipes` / :mod:`.pipe_transports`: ``connect_read_pipe`` / ``connect_write_pipe``.
- :mod:`.signals`: ``add_signal_handler`` / ``remove_signal_handler`` (``signal.set_wakeup_fd``).
- :mod:`.subprocess` / :mod:`.subprocess_transport` / :mod:`.child_watcher`: ``subprocess_exec`` /
  ``subprocess_shell`` and how child exits are noticed (:func:`child_watcher_kind`).
"""

from __future__ import annotations

from .child_watcher import child_watcher_kind
from .pipes import PipesMixin
from .signals import SignalsMixin
from .subprocess import SubprocessMixin

__all__ = ["UnixMixin", "child_watcher_kind"]


class UnixMixin(SubprocessMixin, SignalsMixin, PipesMixin):
    """Pipes, signals and subprocesses."""
