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
    import socket

    from .scratch import alive

    pid = driver.get("pid")
    if driver.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    return not alive(pid)


def driver_alive(record: dict[str, Any], now: float | None = None) -> bool:
    """True for a run still running in some driver process (its heartbeat is fresh)."""
    return record.get("status") == "running" and HEARTBEAT in record and \
        not driver_lost(record, now)


def _seconds(key: str) -> float:
    from dask.utils import parse_timedelta
    return float(parse_timedelta(config.get(key), default="s"))
