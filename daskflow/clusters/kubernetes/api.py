"""The Kubernetes API as the kubernetes backend uses it: bounded calls, and its errors.

Every call goes through kr8s on a fresh event loop in a thread, with a bound
(``daskflow.cluster.kubernetes.api-timeout``), so that nothing can hang; each way
the cluster can be unusable has its own error that says what to do.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

from ..errors import BackendUnavailableError

GROUP_VERSION = "kubernetes.dask.org/v1"


# -- errors: one per way the cluster can be unusable, each saying what to do -------------------
class KubeconfigError(BackendUnavailableError):
    """No Kubernetes credentials: no kubeconfig, or one without a usable context."""

    headline = "No Kubernetes credentials"


class KubernetesUnreachableError(BackendUnavailableError):
    """The API server of the kubeconfig's context does not answer (or refuses the credentials)."""

    headline = "Kubernetes API server unreachable"


class KubernetesForbiddenError(BackendUnavailableError):
    """This user may not create DaskClusters in the namespace (RBAC)."""

    headline = "Kubernetes namespace forbidden"


class DaskOperatorMissingError(BackendUnavailableError):
    """The Dask operator's CRDs are not installed, or its controller does not act on them."""

    headline = "Dask Kubernetes operator missing"


def kubeconfig_found() -> bool:
    """Whether this machine has a kubeconfig (``KUBECONFIG``, else ``~/.kube/config``)."""
    return bool(os.environ.get("KUBECONFIG")) or os.path.exists(
        os.path.expanduser("~/.kube/config"))


async def api_client(timeout: float) -> Any:
    """A kr8s client of the kubeconfig's context, each of its calls bounded by ``timeout``."""
    import kr8s
    api = await asyncio.wait_for(kr8s.asyncio.api(kubeconfig=os.environ.get("KUBECONFIG")),
                                 timeout)
    api.timeout = timeout
    return api


def run_bounded(coroutine: Any, timeout: float, *, what: str) -> Any:
    """Run ``coroutine`` on a fresh event loop in a thread; give up after ``timeout`` seconds.

    kr8s keeps one client per thread and loop; a fresh thread and loop per call
    keeps a stale client of a finished loop from being reused.
    """
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # handed to the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=run, name="daskflow-kubernetes-api", daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise KubernetesUnreachableError(
            f"The Kubernetes API did not finish {what} within {time.monotonic() - started:.0f}s. "
            f"Is the cluster reachable (kubectl cluster-info)? Raise "
            f"daskflow.cluster.kubernetes.api-timeout if it is only slow.")
    if "error" in result:
        raise result["error"]
    return result.get("value")


def status_code(exc: Any) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def server_of(exc: BaseException | None, where: str) -> str:
    """The API server's URL from the failed request (else which kubeconfig was used)."""
    while exc is not None:
        try:
            request = getattr(exc, "request", None)
            if request is not None:
                return f"{request.url.scheme}://{request.url.netloc.decode()} (from {where})"
        except RuntimeError:  # httpx: an error raised before any request was made
            pass
        exc = exc.__cause__ or exc.__context__
    return f"of {where}"
