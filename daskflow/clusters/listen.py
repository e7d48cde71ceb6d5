"""Where a scheduler daskflow starts listens, and the dashboard link that says so.

A scheduler whose workers run elsewhere (SLURM jobs, SSH hosts) must listen where
they can reach it, and no wider: on the one local address this machine uses to
reach their nodes (the loopback when they all run here), not on every interface.
The dashboard link is made from where the dashboard's HTTP server really listens,
not from the scheduler's address.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

LOOPBACK = "127.0.0.1"


def route_address(host: str) -> str | None:
    """This machine's address on the way to ``host`` (the kernel's routing choice; a UDP
    socket is connected, nothing is sent); None when ``host`` does not resolve.

    >>> route_address("localhost")
    '127.0.0.1'
    """
    try:
        family, _, _, _, address = socket.getaddrinfo(host, 9, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect(address)
            return str(probe.getsockname()[0])
    except OSError:
        return None


def bind_address(hosts: Iterable[str]) -> str | None:
    """The one local address from which all ``hosts`` are reached; None when there is no
    single one (then the caller keeps its wider default and says so)."""
    found = {route_address(host) for host in hosts}
    if len(found) != 1 or None in found:
        return None
    return found.pop()


def listening_dashboard_link(cluster: Any) -> str | None:
    """The link of ``cluster``'s dashboard at the host its HTTP server listens on; None when
    the scheduler does not run in this process (or has no dashboard)."""
    from distributed.utils import format_dashboard_link
    scheduler = getattr(cluster, "scheduler", None)
    server = getattr(scheduler, "http_server", None)
    address = getattr(server, "address", None)
    if not address or "dashboard" not in (getattr(scheduler, "services", None) or {}):
        return None
    if address in ("0.0.0.0", "::"):  # every interface: the scheduler's host is one of them
        address = cluster.scheduler_address.split("://")[-1].rsplit(":", 1)[0].strip("[]")
    return str(format_dashboard_link(address, server.port))


class DashboardLinkWhereItListens:
    """Mixin for a cluster class whose scheduler may run in this process: ``dashboard_link``
    names the host the dashboard listens on (Dask's names the scheduler's)."""

    @property
    def dashboard_link(self) -> str:
        link = listening_dashboard_link(self)
        return link if link is not None else super().dashboard_link  # type: ignore[misc]
