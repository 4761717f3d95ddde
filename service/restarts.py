"""When the supervisor restarts a process that died: at once, unless it keeps dying young.

A worker or the decision-log writer that dies now and then (killed, out of memory) is replaced at
once, as before. One that dies again soon after each start (a disk that fails every write, a bug
hit by every request, a database file it may no longer open) would otherwise be started again
every half second for ever: each start imports the whole stack and loads the models, some two
seconds of CPU, on a machine whose other worker is still serving. So each death of a process that
lived less than :attr:`RestartBackoff.stable_after_s` doubles the wait before its next start, up
to :attr:`RestartBackoff.max_delay_s`; a process that lived longer starts the count again.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field


@dataclass
class RestartBackoff:
    """The wait before each restart, per process slot (a worker's slot, or the writer)."""

    #: The wait after the second early death in a row (the first is restarted at once).
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    #: A process that lived at least this long died of something else than its start: no backoff.
    stable_after_s: float = 60.0
    _early_deaths: dict[Hashable, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 < self.first_delay_s <= self.max_delay_s:
            raise ValueError("need 0 < first_delay_s <= max_delay_s")
        if self.stable_after_s <= 0:
            raise ValueError("stable_after_s must be positive")

    def delay_s(self, slot: Hashable, lived_s: float) -> float:
        """Seconds to wait before restarting ``slot``, whose process just died after ``lived_s``."""
        if lived_s >= self.stable_after_s:
            self._early_deaths[slot] = 0
        before = self._early_deaths.get(slot, 0)
        self._early_deaths[slot] = before + 1
        if before == 0:
            return 0.0
        return min(self.first_delay_s * 2 ** (before - 1), self.max_delay_s)
