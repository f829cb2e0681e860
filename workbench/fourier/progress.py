"""Progress of a Fourier analysis over a run's checkpoints: a counter printed to stderr and kept
in the store as ``("fourier", "progress")``, which the browser page and widget read while the
``workbench fourier RUN --checkpoint all`` job runs."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable


class Progress:
    """Counts checkpoints taken up; reports to stderr and the store (``"progress"``)."""

    def __init__(self, total: int, save: Callable[[str, dict], None] | None):
        self.total, self.done, self._save = total, 0, save
        self._lock = threading.Lock()
        self.started = time.time()
        self._report()

    def _report(self) -> None:
        payload = {"done": self.done, "total": self.total, "started": self.started,
                   "updated": time.time()}
        print(f"fourier: checkpoint {self.done} / {self.total}", file=sys.stderr, flush=True)
        if self._save is not None:
            self._save("progress", payload)

    def tick(self) -> None:
        with self._lock:
            self.done += 1
            self._report()


__all__ = ["Progress"]
