"""Helpers shared by the browser tests (imported by the test modules of this folder)."""

from __future__ import annotations

import time


def wait_until(predicate, timeout, what):
    """Poll ``predicate`` until it returns something truthy (returned), or fail after
    ``timeout`` seconds naming ``what``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = predicate()
        except Exception:  # element re-rendered between find and read
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
