"""Whether a run's driver still lives: it writes a heartbeat into the run's record.

A driver killed with ``kill -9`` cannot mark its run failed; a reader that
sees a "running" record whose heartbeat stopped takes the run as failed
("driver lost"), and ``resume`` refuses an origin whose driver still beats.
"""

from __future__ import annotations

import time
from typing import Any

from . import config

HEARTBEAT = "heartbeat_at"


def heartbeat_interval() -> float:
    return _seconds("run.heartbeat-interval")


def driver_lost(record: dict[str, Any], now: float | None = None) -> bool:
    """True for a run recorded as running whose driver stopped beating, or whose driver
    process on this host is gone."""
    if record.get("status", "running") != "running" or HEARTBEAT not in record:
        return False
    if _gone_from_this_host(record.get("driver") or {}):
        return True
    return (now or time.time()) - float(record[HEARTBEAT]) > _seconds("run.driver-lost-after")


def _gone_from_this_host(driver: dict[str, Any]) -> bool:
    """The driver ran on this host and its process no longer exists (``kill -9``)."""
    import os
    import socket

    pid = driver.get("pid")
    if driver.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    try:  # a zombie (killed, not yet reaped by its parent) is gone too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return False


def driver_alive(record: dict[str, Any], now: float | None = None) -> bool:
    """True for a run still running in some driver process (its heartbeat is fresh)."""
    return record.get("status") == "running" and HEARTBEAT in record and \
        not driver_lost(record, now)


def _seconds(key: str) -> float:
    from dask.utils import parse_timedelta
    return float(parse_timedelta(config.get(key), default="s"))
