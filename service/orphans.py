"""Workers and the decision-log writer do not outlive their supervisor.

``kill -9`` of the supervisor of ``borderrisk serve --workers N`` (its pid alone, not its process
group) used to leave the workers serving and holding the port, and the writer without anyone to
replace it: a restarted service then found its port taken. Each child therefore asks the kernel
(Linux ``prctl(PR_SET_PDEATHSIG)``) for SIGTERM when the supervisor ends, which stops it as a
SIGTERM from the supervisor would: a worker finishes its in-flight requests, the writer answers what
it has. A child whose supervisor ended before it asked is told so by its parent pid, and exits.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

import structlog

__all__ = ["end_with_parent"]

log = structlog.get_logger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def end_with_parent(parent: int) -> bool:
    """Have this process receive SIGTERM when process ``parent`` ends. False if ``parent`` is no
    longer this process's parent (it has ended already): the caller should exit. Elsewhere than on
    Linux, nothing is asked and True is returned."""
    if not sys.platform.startswith("linux"):
        return True
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:  # pragma: no cover - never seen
        log.warning("parent_death_signal_unavailable", error=os.strerror(ctypes.get_errno()))
    return os.getppid() == parent
