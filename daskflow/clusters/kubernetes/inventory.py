"""daskflow's live DaskClusters on Kubernetes, found by label selector, and how ``gc`` ends them.

Every DaskCluster daskflow creates carries ``app.kubernetes.io/managed-by=daskflow``
and the run's labels (``daskflow.dev/flow``, ``/run-id``, ``/step``, ``/user``,
``/version``) with the exact values as annotations (:mod:`.labels`). Listing is
one GET of the DaskCluster collection with that label selector
(:func:`list_query`); ending one is a DELETE of the resource, which the Dask
operator follows by removing its pods. The kubernetes backend's ``live_clusters``
and ``end_cluster`` are these.

No API server runs where daskflow is tested: the query and the reading of its
answer (:func:`parse_daskclusters`) are tested on their own, against resources
made by the backend's own ``cluster_spec``.
"""

from __future__ import annotations

import calendar
import time
from typing import Any
from urllib.parse import urlencode

from ..live import LiveCluster
from .api import api_client, run_bounded
from .labels import K8S_PREFIX, MANAGED_BY, from_kubernetes, label_value

GROUP, VERSION, PLURAL = "kubernetes.dask.org", "v1", "daskclusters"


def label_selector(**labels: str) -> str:
    """``app.kubernetes.io/managed-by=daskflow``, narrowed by daskflow's labels.

    >>> label_selector(user="ana")
    'app.kubernetes.io/managed-by=daskflow,daskflow.dev/user=ana'
    """
    parts = [f"{MANAGED_BY[0]}={MANAGED_BY[1]}"]
    parts += [f"{K8S_PREFIX}{k.replace('_', '-')}={label_value(v)}" for k, v in labels.items()]
    return ",".join(parts)


def list_query(namespace: str | None = None, **labels: str) -> dict[str, Any]:
    """The request ``list`` sends: method, path and query of the DaskCluster collection.

    >>> list_query("ml")["url"]
    '/apis/kubernetes.dask.org/v1/namespaces/ml/daskclusters?labelSelector=app.kubernetes.io%2Fmanaged-by%3Ddaskflow'
    """
    where = f"/namespaces/{namespace}" if namespace else ""
    params = {"labelSelector": label_selector(**labels)}
    return {"method": "GET", "path": f"/apis/{GROUP}/{VERSION}{where}/{PLURAL}",
            "params": params,
            "url": f"/apis/{GROUP}/{VERSION}{where}/{PLURAL}?{urlencode(params)}",
            # the same, as kr8s's Api.call_api builds it
            "call": {"method": "GET", "base": "/apis", "version": f"{GROUP}/{VERSION}",
                     "namespace": namespace, "url": PLURAL, "params": params}}


def delete_query(name: str, namespace: str) -> dict[str, Any]:
    return {"method": "DELETE",
            "path": f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}",
            "call": {"method": "DELETE", "base": "/apis", "version": f"{GROUP}/{VERSION}",
                     "namespace": namespace, "url": f"{PLURAL}/{name}"}}


def parse_daskclusters(items: list[dict[str, Any]]) -> list[LiveCluster]:
    """DaskCluster resources (the ``items`` of the list answer) as live clusters."""
    found = []
    for item in items:
        metadata = item.get("metadata") or {}
        if (metadata.get("labels") or {}).get(MANAGED_BY[0]) != MANAGED_BY[1]:
            continue  # the selector already did this; an answer is not trusted blindly
        status = item.get("status") or {}
        worker = ((item.get("spec") or {}).get("worker") or {})
        found.append(LiveCluster(
            "kubernetes", str(metadata.get("name")), from_kubernetes(metadata),
            _timestamp(metadata.get("creationTimestamp")), worker.get("replicas"),
            str(status.get("phase") or "Created"),
            handle={"namespace": metadata.get("namespace") or "default"}))
    return found


def _timestamp(text: Any) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


def list_clusters(namespace: str | None, timeout: float) -> list[LiveCluster]:
    """daskflow's DaskClusters in ``namespace`` (None: the kubeconfig context's), bounded."""
    query = list_query(namespace)

    async def fetch() -> list[dict[str, Any]]:
        api = await api_client(timeout)
        async with api.call_api(**query["call"]) as response:
            return list(response.json().get("items") or [])

    return parse_daskclusters(run_bounded(fetch(), timeout, what="list DaskClusters"))


def delete(cluster: LiveCluster, timeout: float) -> str:
    """Delete ``cluster``'s DaskCluster; the operator removes its pods."""
    query = delete_query(cluster.name, cluster.handle.get("namespace") or "default")

    async def send() -> None:
        api = await api_client(timeout)
        async with api.call_api(**query["call"]):
            pass

    run_bounded(send(), timeout, what=f"delete DaskCluster {cluster.name}")
    return "deleted the DaskCluster (the operator removes its pods)"
