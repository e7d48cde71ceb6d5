"""A time bound on a wrapped cluster class's whole start, and a clean failed start.

dask-kubernetes' and dask-cloudprovider's clusters wait, while they start, on
things that may never come (an operator that does not act, a scheduler that is
never reachable), some without any bound. :class:`BoundedStart` runs their
``_start`` under ``asyncio.wait_for`` and turns the timeout into a
:class:`~daskflow.clusters.errors.ClusterStartTimeoutError`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .errors import ClusterStartTimeoutError
from .request import ResourceRequest


class BoundedStart:
    """Mixin, listed before a ``SpecCluster`` subclass: ``class X(BoundedStart, KubeCluster)``.

    Takes two keyword arguments of its own, ``daskflow_start_timeout`` (seconds)
    and ``daskflow_request`` (for the error message). A subclass says what a
    timeout means with :meth:`start_timeout_advice`, may let some timeouts of
    the wrapped class through (:meth:`own_timeout`), and may drop what a failed
    start leaves registered (:meth:`forget`).
    """

    #: what the error calls this cluster ("Kubernetes", "AWS (fargate)")
    kind = "the"

    def __init__(self, *, daskflow_start_timeout: float, daskflow_request: ResourceRequest,
                 **kwargs: Any) -> None:
        self._daskflow_start_timeout = daskflow_start_timeout
        self._daskflow_request = daskflow_request
        try:
            super().__init__(**kwargs)
        except BaseException:
            self.forget()
            runner = getattr(self, "_loop_runner", None)
            if runner is not None:  # a failed start leaves its loop thread running
                try:
                    runner.stop()
                except Exception:
                    pass
            # what it started is the backend's verified teardown's to remove (open() runs
            # it); this half-made object must not warn "unclosed cluster" when collected
            from distributed.core import Status
            self.status = Status.closed
            raise

    def forget(self) -> None:
        """After a failed start: drop finalizers or registries that would close it later."""

    def own_timeout(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the wrapped class's own, clearer, timeout: then it goes through."""
        return False

    def start_timeout_advice(self) -> str:
        """What was not ready, and where to look."""
        return ""

    async def _start(self) -> None:
        timeout = self._daskflow_start_timeout
        try:
            await asyncio.wait_for(super()._start(), timeout)  # type: ignore[misc]
        except asyncio.TimeoutError as exc:
            if self.own_timeout(exc):
                raise
            raise ClusterStartTimeoutError(
                f"The {self.kind} cluster {getattr(self, 'name', '?')} of "
                f"{self._daskflow_request.describe()} did not start within the start timeout "
                f"of {timeout:g}s {self.start_timeout_advice()}Raise "
                f"daskflow.cluster.start-timeout if it is only slow.",
                expected=self._daskflow_request.workers, available=0,
                timeout=timeout) from exc
