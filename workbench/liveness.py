"""Whether a process that claimed a run or a job is still alive on this host.

A training process records ``host:pid`` when it marks its run ``running``. If that process is
killed (SIGKILL, OOM, a closed laptop lid), nothing gets to write a final status; readers use
this module to tell a live run from an interrupted one instead of showing "running" forever.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def owner_tag() -> str:
    """``host:pid`` of this process, as stored in a run's ``owner`` column."""
    return f"{socket.gethostname()}:{os.getpid()}"


def pid_alive(pid: int, cmdline_token: bytes | None = None) -> bool:
    """True unless ``pid`` is certainly gone (or a zombie, or, given ``cmdline_token``, a
    different program that reused the pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust kill(0)
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return cmdline_token is None or cmdline_token in cmdline


def owner_alive(owner: str | None) -> bool:
    """False only when ``owner`` names a process on this host that no longer runs; a run owned
    by another host (a shared home on a cluster file system) is trusted."""
    if not owner or ":" not in owner:
        return True
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    return int(pid) == os.getpid() or pid_alive(int(pid))
