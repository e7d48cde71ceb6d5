"""What a step asks for (:class:`ResourceRequest`) and who can give it (:class:`ClusterBackend`).

A backend turns a request into the keyword arguments of the Dask cluster class
it wraps, with a pure function (``cluster_kwargs``) that a test can check
without starting anything, and starts that cluster as a context manager that
closes it in every outcome.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from ..exceptions import ClusterError


@dataclass(frozen=True)
class ResourceRequest:
    """The size of one worker and how many of them.

    >>> ResourceRequest(cpu=4, memory=16 * 2**30, workers=2).total_cpu
    8
    """

    cpu: float = 1
    memory: int | None = None   # bytes per worker; None: the backend's default
    gpu: int = 0
    disk: int | None = None     # bytes per worker
    workers: int = 1

    @property
    def threads(self) -> int:
        return max(1, math.ceil(self.cpu))

    @property
    def total_cpu(self) -> int:
        return self.threads * self.workers


class ClusterBackend:
    """Base of every cluster backend.

    Contract for a subclass:

    - ``name``: the registry name (``local``, ``slurm``, ...);
    - ``cluster_kwargs(request)``: pure translation into the wrapped class's kwargs;
    - ``check(request)``: raise :class:`ClusterError` before anything starts when the
      request cannot be met (say what was asked, what exists, and what could serve it);
    - ``make_cluster(request)``: start and return the cluster;
    - ``open(request)``: context manager that yields a started cluster and always
      closes it, on success, exception and interrupt.
    """

    name: ClassVar[str] = "base"

    def __init__(self, **options: Any) -> None:
        self.options = options

    def cluster_kwargs(self, request: ResourceRequest) -> dict[str, Any]:
        raise NotImplementedError

    def check(self, request: ResourceRequest) -> None:
        """Raise :class:`ClusterError` if this backend can never serve ``request``."""

    def make_cluster(self, request: ResourceRequest) -> Any:
        raise NotImplementedError

    @contextmanager
    def open(self, request: ResourceRequest) -> Iterator[Any]:
        self.check(request)
        try:
            cluster = self.make_cluster(request)
        except ClusterError:
            raise
        except Exception as exc:
            raise ClusterError(
                f"The {self.name} backend could not start a cluster for {request}: "
                f"{type(exc).__name__}: {exc}") from exc
        try:
            yield cluster
        finally:
            cluster.close()
