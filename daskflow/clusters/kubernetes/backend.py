"""The Kubernetes backend: dask-kubernetes' operator (``KubeCluster``), one pod per worker.

Settings live in ``daskflow.cluster.kubernetes`` (namespace, image,
service-account, node-selector, tolerations, GPU node placement, ...). The
request becomes a ``DaskCluster`` resource (:meth:`KubernetesBackend.cluster_spec`,
pure, checked in the tests against the CRD schema that ships inside
dask-kubernetes), which ``KubeCluster(custom_cluster_spec=...)`` creates.

Before anything is created, :meth:`~KubernetesBackend.check` asks the API
server, with a bound on every call, whether there are credentials, whether it
answers, whether the Dask operator's CRDs are installed and whether this user
may create DaskClusters in the namespace; each failure has its own error that
says what to do. Teardown deletes the DaskCluster (its pods go with it) and
checks that neither it nor any of its pods is left.

The pure parts, Kubernetes quantities and the CRD schema check, are in
:mod:`.spec`; the ``KubeCluster`` subclass with a bounded start in
:mod:`.cluster`.
"""

from __future__ import annotations

import asyncio
from typing import Any

# missing: the registry says "pip install 'daskflow[kubernetes]'"
import dask_kubernetes  # noqa: F401

from ... import config
from ...secrets import resolve
from ..base import SCHEDULER_ENV, logger
from ..containers import ContainerBackend
from ..deaths import Death
from ..errors import (
    BackendUnavailableError,
    ClusterStartTimeoutError,
    ResourceRequestError,
)
from ..labels import current_labels
from ..lifetime import scheduler_args
from ..live import LiveCluster
from ..request import ResourceRequest, format_bytes
from . import inventory
from .deaths import pod_cause, pod_words
from .api import (
    GROUP_VERSION,
    DaskOperatorMissingError,
    KubeconfigError,
    KubernetesForbiddenError,
    KubernetesUnreachableError,
    api_client,
    kubeconfig_found,
    run_bounded,
    server_of,
    status_code,
)
from .labels import kubernetes_annotations, kubernetes_labels
from .secrets import (
    container_envs,
    create_secret,
    delete_secret,
    secret_name,
    secret_object,
    secret_refs,
)
from .spec import (
    cpu_quantity,
    memory_quantity,
    parse_quantity,
    validate_cluster_spec,
)

CLUSTER_LABEL = "dask.org/cluster-name"


class KubernetesBackend(ContainerBackend):
    """Workers as pods of a DaskCluster, each sized by the request (requests = limits).

    >>> spec = KubernetesBackend(namespace="ml").cluster_spec(
    ...     ResourceRequest(cpu=2, memory=8 * 2**30, gpu=1, workers=3), name="daskflow-1")
    >>> spec["spec"]["worker"]["replicas"]
    3
    >>> spec["spec"]["worker"]["spec"]["containers"][0]["resources"]["limits"]
    {'cpu': '2', 'memory': '8Gi', 'nvidia.com/gpu': '1'}
    """

    name = "kubernetes"
    config_section = "cluster.kubernetes"
    #: `daskflow clusters list` asks the API server (:mod:`.inventory`)
    listed_by = "kubernetes"
    #: secret variables come from a Secret the pods refer to (:mod:`.secrets`)
    secrets_by_reference = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._secrets_made: set[str] = set()  # clusters whose Secret this backend created

    # -- translation (pure) ------------------------------------------------------------
    def worker_resources(self, request: ResourceRequest) -> dict[str, dict[str, str]]:
        """Requests and limits of a worker container: equal, so the pod is Guaranteed QoS."""
        amounts = {"cpu": cpu_quantity(request.cpu),
                   "memory": memory_quantity(self.worker_memory(request))}
        if request.gpu:
            amounts[self.option("gpu-resource")] = str(request.gpu)
        if request.disk is not None:
            amounts["ephemeral-storage"] = memory_quantity(request.disk)
        return {"requests": dict(amounts), "limits": dict(amounts)}

    def scheduler_resources(self) -> dict[str, dict[str, str]]:
        from dask.utils import parse_bytes
        amounts = {"cpu": cpu_quantity(float(self.option("scheduler-cpu"))),
                   "memory": memory_quantity(parse_bytes(self.option("scheduler-memory")))}
        return {"requests": dict(amounts), "limits": dict(amounts)}

    def idle_timeout(self) -> int:
        from dask.utils import parse_timedelta
        idle = config.get("cluster.idle-timeout")
        return int(parse_timedelta(idle)) if idle else 0

    def cluster_spec(self, request: ResourceRequest, name: str) -> dict[str, Any]:
        """The ``kubernetes.dask.org/v1`` DaskCluster for ``request`` (nothing is contacted)."""
        from dask_kubernetes.operator import make_cluster_spec
        env, worker_env = container_envs(self.option("env"), request, name)
        worker_command = [*self.option("worker-command"),
                          "--nthreads", str(request.threads),
                          "--memory-limit", str(self.worker_memory(request))]
        spec = make_cluster_spec(name=name, image=self.image(), n_workers=request.workers,
                                 resources=self.worker_resources(request), env=env,
                                 worker_command=worker_command,
                                 idle_timeout=self.idle_timeout())
        labels = current_labels()  # run, step, user, version: for `daskflow clusters list`
        spec["metadata"]["labels"] = kubernetes_labels(labels)
        spec["metadata"]["annotations"] = kubernetes_annotations(labels)
        worker_pod = spec["spec"]["worker"]["spec"]
        scheduler_pod = spec["spec"]["scheduler"]["spec"]
        # the step's variables, over the settings', on the workers only; secrets by reference
        worker_pod["containers"][0]["env"] = worker_env
        scheduler = scheduler_pod["containers"][0]
        scheduler["env"] = [*(scheduler.get("env") or []),
                            *({"name": k, "value": v} for k, v in SCHEDULER_ENV.items())]
        # distributed 2026.6 removed the dask-scheduler script make_cluster_spec still uses
        scheduler["args"] = [*self.option("scheduler-command"), "--host", "0.0.0.0",
                             *scheduler_args(request)]  # its max lifetime, enforced there
        scheduler["resources"] = self.scheduler_resources()
        node_selector = dict(self.option("node-selector") or {})
        tolerations = list(self.option("tolerations") or [])
        if request.gpu:
            node_selector.update(self.option("gpu-node-selector") or {})
            tolerations += list(self.option("gpu-tolerations") or [])
        if node_selector:
            worker_pod["nodeSelector"] = node_selector
        if tolerations:
            worker_pod["tolerations"] = tolerations
        for pod in (worker_pod, scheduler_pod):
            if self.option("service-account"):
                pod["serviceAccountName"] = self.option("service-account")
            for container in pod["containers"]:
                container["imagePullPolicy"] = self.option("image-pull-policy")
        return spec

    def cluster_kwargs(self, request: ResourceRequest, *,
                       name: str | None = None) -> dict[str, Any]:
        """Keyword arguments of ``dask_kubernetes.operator.KubeCluster`` for ``request``."""
        from dask.utils import parse_timedelta
        name = name or "daskflow"
        start_timeout = parse_timedelta(config.get("cluster.start-timeout"))
        kwargs: dict[str, Any] = {
            "name": name,
            "custom_cluster_spec": self.cluster_spec(request, name),
            "n_workers": request.workers,
            "shutdown_on_close": True,
            "idle_timeout": self.idle_timeout(),
            # KubeCluster's own waits (operator acting, scheduler pod): well within ours,
            # so that its clearer error comes first and it can still delete what it made
            "resource_timeout": max(1, int(min(start_timeout / 2, parse_timedelta(
                self.option("resource-timeout"))))),
            "quiet": True,
        }
        if self.option("namespace"):
            kwargs["namespace"] = self.option("namespace")
        return kwargs

    def describe(self, request: ResourceRequest) -> str:
        """What would be asked, concretely; nothing is contacted.

        ``kubernetes: 3 worker pods requesting cpu=2, memory=8Gi, nvidia.com/gpu=1 in
        namespace ml (image ..., 2 threads each)``
        """
        asked = ", ".join(f"{k}={v}" for k, v in
                          self.worker_resources(request)["requests"].items())
        namespace = self.option("namespace")
        where = f"namespace {namespace}" if namespace else "the kubeconfig's namespace"
        pods = f"{request.workers} worker pod{'s' if request.workers != 1 else ''}"
        return (f"kubernetes: {pods} requesting {asked} in {where} "
                f"(image {self.image()}, {request.threads} thread"
                f"{'s' if request.threads != 1 else ''} each)")

    # -- before anything starts ------------------------------------------------------------
    def check(self, request: ResourceRequest) -> None:
        """Refuse a broken spec, then ask the API server (bounded) whether the cluster can start."""
        problems = validate_cluster_spec(self.cluster_spec(request, "daskflow-check"))
        if problems:
            raise ResourceRequestError(
                f"The DaskCluster daskflow would create for {request.describe()} does not "
                f"match the operator's schema: {'; '.join(problems)}. Check the settings "
                f"under daskflow.cluster.kubernetes.")
        nodes = self.preflight()
        if nodes and self.option("check-nodes"):
            self._check_fits_a_node(request, nodes)

    def api_timeout(self) -> float:
        from dask.utils import parse_timedelta
        return float(parse_timedelta(self.option("api-timeout")))

    def preflight(self) -> list[dict[str, Any]]:
        """Credentials, API server, operator CRD and RBAC, in that order; the nodes if readable.

        Every call is bounded by ``daskflow.cluster.kubernetes.api-timeout``; the
        whole check runs on its own event loop in a thread, so nothing here can hang.
        """
        timeout = self.api_timeout()
        return run_bounded(self._preflight(timeout), 4 * timeout + 5,
                            what="the Kubernetes API preflight check")

    async def _preflight(self, timeout: float) -> list[dict[str, Any]]:
        import os

        import httpx
        import kr8s
        kubeconfig = os.environ.get("KUBECONFIG")
        where = f"KUBECONFIG={kubeconfig}" if kubeconfig else "~/.kube/config"
        try:
            api = await asyncio.wait_for(kr8s.asyncio.api(kubeconfig=kubeconfig), timeout)
        except ValueError as exc:  # kr8s: "Unable to find valid credentials", no such context
            raise KubeconfigError(
                f"No Kubernetes credentials were found ({where}; no in-cluster service "
                f"account): {exc}. Point KUBECONFIG at your cluster's kubeconfig (kubectl "
                f"config view should show it), or run inside the cluster.") from exc
        except (httpx.TransportError, OSError, asyncio.TimeoutError,
                kr8s.APITimeoutError) as exc:
            raise self._unreachable(exc, where, timeout) from exc
        except kr8s.ServerError as exc:
            raise KubernetesUnreachableError(
                f"The Kubernetes API server {server_of(exc, where)} refused daskflow's request "
                f"for its version: {exc}. Are the credentials in {where} still valid? "
                f"(kubectl auth whoami)") from exc
        try:
            api.timeout = timeout
            namespace = self.option("namespace") or api.namespace
            server = api.auth.server
            await self._check_operator(api, namespace, server)
            return await self._nodes(api)
        except (httpx.TransportError, OSError, asyncio.TimeoutError,
                kr8s.APITimeoutError) as exc:
            raise self._unreachable(exc, where, timeout) from exc
        finally:
            session = getattr(api, "_session", None)  # this loop ends here: so does its client
            if session is not None:
                await session.aclose()

    async def _check_operator(self, api: Any, namespace: str, server: str) -> None:
        import kr8s
        try:
            async with api.call_api("GET", version=GROUP_VERSION, base="/apis") as response:
                kinds = {r.get("name") for r in response.json().get("resources", [])}
        except kr8s.ServerError as exc:
            if status_code(exc) == 404:
                raise DaskOperatorMissingError(
                    f"The Kubernetes cluster at {server} has no {GROUP_VERSION} API: the Dask "
                    f"operator's CustomResourceDefinitions are not installed. Install the "
                    f"operator (helm install --repo https://helm.dask.org --create-namespace "
                    f"-n dask-operator --generate-name dask-kubernetes-operator), or ask your "
                    f"cluster admin to.") from exc
            raise
        if "daskclusters" not in kinds:
            raise DaskOperatorMissingError(
                f"The Kubernetes cluster at {server} serves {GROUP_VERSION} without the "
                f"daskclusters resource ({', '.join(sorted(k for k in kinds if k)) or 'none'}): "
                f"the Dask operator's CRDs are incomplete. Reinstall the operator.")
        try:
            async with api.call_api("GET", version=GROUP_VERSION, base="/apis",
                                    namespace=namespace, url="daskclusters",
                                    params={"limit": "1"}):
                pass
            review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                      "spec": {"resourceAttributes": {
                          "group": "kubernetes.dask.org", "resource": "daskclusters",
                          "verb": "create", "namespace": namespace}}}
            async with api.call_api("POST", version="authorization.k8s.io/v1", base="/apis",
                                    url="selfsubjectaccessreviews",
                                    content=_json(review)) as response:
                status = response.json().get("status", {})
        except kr8s.ServerError as exc:
            if status_code(exc) == 403:
                raise KubernetesForbiddenError(
                    f"Kubernetes forbids this user to use DaskClusters in namespace "
                    f"'{namespace}' ({server}): {exc}. Choose a namespace you may use "
                    f"(daskflow.cluster.kubernetes.namespace), or ask your cluster admin for "
                    f"a Role allowing create/get/list/delete on daskclusters.kubernetes.dask.org "
                    f"there.") from exc
            raise
        if status.get("allowed") is False:
            reason = status.get("reason") or status.get("evaluationError") or "no reason given"
            raise KubernetesForbiddenError(
                f"Kubernetes does not allow this user to create DaskClusters in namespace "
                f"'{namespace}' ({server}; SelfSubjectAccessReview: {reason}). Choose a "
                f"namespace you may use (daskflow.cluster.kubernetes.namespace), or ask your "
                f"cluster admin for a Role allowing create on daskclusters.kubernetes.dask.org.")

    async def _nodes(self, api: Any) -> list[dict[str, Any]]:
        """The nodes' allocatable resources; [] when this user may not list nodes."""
        import kr8s
        if not self.option("check-nodes"):
            return []
        try:
            async with api.call_api("GET", version="v1", url="nodes") as response:
                items = response.json().get("items", [])
        except kr8s.ServerError:
            return []  # listing nodes is often forbidden: then the scheduler decides
        return [{"name": n.get("metadata", {}).get("name", "?"),
                 **{k: parse_quantity(v) for k, v in
                    n.get("status", {}).get("allocatable", {}).items()
                    if k in ("cpu", "memory", self.option("gpu-resource"))}}
                for n in items if not n.get("spec", {}).get("unschedulable")]

    def _check_fits_a_node(self, request: ResourceRequest, nodes: list[dict[str, Any]]) -> None:
        gpu_key = self.option("gpu-resource")
        memory = self.worker_memory(request)
        fits = [n for n in nodes if n.get("cpu", 0) >= request.cpu
                and n.get("memory", 0) >= memory and n.get(gpu_key, 0) >= request.gpu]
        if fits:
            return
        biggest = max(nodes, key=lambda n: (n.get("memory", 0), n.get("cpu", 0)))
        short = []
        if not any(n.get("cpu", 0) >= request.cpu for n in nodes):
            short.append(f"at most {max(n.get('cpu', 0) for n in nodes):g} CPUs")
        if not any(n.get("memory", 0) >= memory for n in nodes):
            short.append(f"at most {format_bytes(int(max(n.get('memory', 0) for n in nodes)))}")
        if request.gpu and not any(n.get(gpu_key, 0) >= request.gpu for n in nodes):
            short.append(f"at most {int(max(n.get(gpu_key, 0) for n in nodes))} {gpu_key}")
        raise ResourceRequestError(
            f"No node of the Kubernetes cluster can hold a worker pod of "
            f"{request.describe_worker()} (memory "
            f"{memory_quantity(memory)}): its {len(nodes)} schedulable node(s) have "
            f"{'; '.join(short) or 'no single node with all of it'} allocatable (largest: "
            f"{biggest['name']}: {biggest.get('cpu', 0):g} CPUs, "
            f"{format_bytes(int(biggest.get('memory', 0)))}, {int(biggest.get(gpu_key, 0))} "
            f"GPUs). Ask for less in @resources(...); if a cluster autoscaler adds bigger "
            f"nodes on demand, set daskflow.cluster.kubernetes.check-nodes to false.")

    def _unreachable(self, exc: BaseException, where: str, timeout: float) -> Exception:
        return KubernetesUnreachableError(
            f"The Kubernetes API server {server_of(exc, where)} did not answer within "
            f"{timeout:g}s: {type(exc).__name__}: {exc or 'timed out'}. Is the cluster up "
            f"and reachable from here (VPN, kubectl cluster-info)? Raise "
            f"daskflow.cluster.kubernetes.api-timeout if it is only slow.")

    # -- start ----------------------------------------------------------------------------
    def make_cluster(self, request: ResourceRequest, *, name: str) -> Any:
        from dask.utils import parse_timedelta

        from .cluster import (
            DaskflowKubeCluster,  # imports dask-kubernetes' operator
        )
        kwargs = self.cluster_kwargs(request, name=name)
        timeout = parse_timedelta(config.get("cluster.start-timeout"))
        self.create_secret(request, name)
        try:
            cluster = DaskflowKubeCluster(daskflow_start_timeout=timeout,
                                          daskflow_request=request, **kwargs)
        except ClusterStartTimeoutError:
            raise
        except Exception as exc:
            raise self._start_error(exc, request, kwargs) from exc
        cluster._daskflow_namespace = cluster.namespace  # type: ignore[attr-defined]
        cluster.job_name = name  # type: ignore[attr-defined]  # as dask-jobqueue's: to find it
        return cluster

    def create_secret(self, request: ResourceRequest, name: str) -> None:
        """The cluster's Secret (:mod:`.secrets`), when it has secret variables."""
        refs = secret_refs(self.option("env"), request)
        if not refs:
            return
        values = {var: resolve(ref, name=var) for var, ref in refs.items()}
        secret = secret_object(name, values, {"app.kubernetes.io/managed-by": "daskflow",
                                              CLUSTER_LABEL: name})

        async def create() -> None:
            api = await api_client(self.api_timeout())
            await create_secret(api, self.option("namespace") or api.namespace, secret)

        run_bounded(create(), self.api_timeout() + 2, what="creating the cluster's Secret")
        self._secrets_made.add(name)

    def cleanup(self, snapshot: Any, *, failing: bool) -> None:
        """Delete the cluster's Secret (if it has one); say so if that fails."""
        if snapshot["name"] not in self._secrets_made:
            return

        async def delete() -> None:
            api = await api_client(self.api_timeout())
            await delete_secret(api, snapshot["namespace"] or api.namespace, snapshot["name"])

        try:
            run_bounded(delete(), self.api_timeout() + 2, what="deleting the cluster's Secret")
            self._secrets_made.discard(snapshot["name"])
        except Exception as exc:
            logger.warning("Could not delete the Secret %s of cluster %s (%s: %s): delete it "
                           "by hand (kubectl delete secret %s).", secret_name(snapshot["name"]),
                           snapshot["name"], type(exc).__name__, exc,
                           secret_name(snapshot["name"]))

    def _start_error(self, exc: Exception, request: ResourceRequest,
                     kwargs: dict[str, Any]) -> Exception:
        import kr8s
        namespace = kwargs.get("namespace") or "the kubeconfig's namespace"
        text = str(exc)
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)) and "actioned" in text:
            return DaskOperatorMissingError(
                f"The DaskCluster {kwargs['name']} was created in {namespace}, but the Dask "
                f"operator did not act on it within {kwargs['resource_timeout']}s ({text}). "
                f"Is the operator's controller running? (kubectl get pods -A -l "
                f"app.kubernetes.io/name=dask-kubernetes-operator)")
        if isinstance(exc, kr8s.ServerError) and status_code(exc) == 403:
            return KubernetesForbiddenError(
                f"Kubernetes refused to create the DaskCluster {kwargs['name']} in "
                f"{namespace}: {text}. Ask your cluster admin for create/delete on "
                f"daskclusters.kubernetes.dask.org there.")
        if "Custom Resource Definitions installed" in text:
            return DaskOperatorMissingError(
                f"Creating the DaskCluster in {namespace} failed: {text}")
        return BackendUnavailableError(
            f"The kubernetes backend could not start a cluster of {request.describe()} in "
            f"{namespace}: {type(exc).__name__}: {text}")

    def pending_reason(self, cluster: Any, name: str) -> str | None:
        """What the worker pods wait for (Unschedulable, ImagePullBackOff, ...), from the API."""
        namespace = getattr(cluster, "_daskflow_namespace", None) or self.option("namespace")
        try:
            pods = run_bounded(self._pods(namespace, name), self.api_timeout() + 2,
                                what="listing the cluster's pods")
        except Exception:
            return None
        waiting = [f"{p['name']}: {p['reason']}" for p in pods if p["reason"]]
        return f"Pods: {'; '.join(waiting)}." if waiting else None

    # -- why a worker died (:mod:`.deaths`) ---------------------------------------------------
    def explain_worker_death(self, cluster: Any, worker: Any) -> Death | None:
        """Read the status of the worker's pod (found by its IP, else its name)."""
        namespace = getattr(cluster, "_daskflow_namespace", None) or self.option("namespace")
        name = getattr(cluster, "job_name", None) or getattr(cluster, "name", None)
        if not name:
            return None
        pods = run_bounded(self._pod_statuses(namespace, name), self.api_timeout() + 2,
                           what="reading the worker's pod status")
        host = str(getattr(worker, "address", "")).rsplit(":", 1)[0].split("://")[-1]
        worker_name = str(getattr(worker, "name", ""))
        for pod in pods:
            if host and (pod.get("status") or {}).get("podIP") == host or \
                    worker_name and (pod.get("metadata") or {}).get("name") == worker_name:
                cause = pod_cause(pod)
                if cause is None:
                    return None
                words = pod_words(pod)
                return Death(cause, f"Kubernetes ended worker {worker_name}: {words}", (words,))
        return None

    async def _pod_statuses(self, namespace: str | None, name: str) -> list[dict]:
        api = await api_client(self.api_timeout())
        async with api.call_api("GET", version="v1", namespace=namespace or api.namespace,
                                url="pods",
                                params={"labelSelector": f"{CLUSTER_LABEL}={name}"}) as resp:
            return list(resp.json().get("items", []))

    # -- teardown: the DaskCluster and every pod of it must be gone ---------------------------
    def snapshot(self, cluster: Any, name: str) -> Any:
        namespace = getattr(cluster, "_daskflow_namespace", None) or self.option("namespace")
        return {"name": name, "namespace": namespace}

    def leftovers(self, snapshot: Any) -> list[str]:
        try:
            return run_bounded(self._leftovers(snapshot), self.api_timeout() + 2,
                                what="checking the cluster is gone")
        except Exception as exc:
            return [f"(cannot tell whether DaskCluster {snapshot['name']} is gone: {exc})"]

    async def _leftovers(self, snapshot: Any) -> list[str]:
        import kr8s
        api = await api_client(self.api_timeout())
        namespace = snapshot["namespace"] or api.namespace
        left = []
        try:
            async with api.call_api("GET", version=GROUP_VERSION, base="/apis",
                                    namespace=namespace,
                                    url=f"daskclusters/{snapshot['name']}"):
                left.append(f"DaskCluster {snapshot['name']} in namespace {namespace}")
        except kr8s.ServerError as exc:
            if status_code(exc) != 404:
                raise
        left += [f"pod {p['name']} ({p['phase']})"
                 for p in await self._pods(namespace, snapshot["name"], api=api)]
        return left

    async def _pods(self, namespace: str | None, name: str, api: Any = None) -> list[dict]:
        api = api or await api_client(self.api_timeout())
        async with api.call_api("GET", version="v1", namespace=namespace or api.namespace,
                                url="pods",
                                params={"labelSelector": f"{CLUSTER_LABEL}={name}"}) as resp:
            items = resp.json().get("items", [])
        pods = []
        for pod in items:
            status = pod.get("status", {})
            reasons = [c.get("reason") for c in status.get("conditions", [])
                       if c.get("status") == "False" and c.get("reason")]
            reasons += [s.get("state", {}).get("waiting", {}).get("reason")
                        for s in status.get("containerStatuses", [])
                        if s.get("state", {}).get("waiting")]
            pods.append({"name": pod.get("metadata", {}).get("name", "?"),
                         "phase": status.get("phase", "?"),
                         "reason": ", ".join(r for r in reasons if r)})
        return pods

    def force_teardown(self, snapshot: Any) -> None:
        run_bounded(self._force(snapshot), self.api_timeout() * 2 + 2,
                     what="deleting the DaskCluster")

    async def _force(self, snapshot: Any) -> None:
        import kr8s
        api = await api_client(self.api_timeout())
        namespace = snapshot["namespace"] or api.namespace
        try:  # the operator deletes the cluster's pods and services with it
            async with api.call_api("DELETE", version=GROUP_VERSION, base="/apis",
                                    namespace=namespace, url=f"daskclusters/{snapshot['name']}"):
                pass
        except kr8s.ServerError as exc:
            if status_code(exc) != 404:
                raise
        for pod in await self._pods(namespace, snapshot["name"], api=api):
            try:  # a backstop, for pods the operator has not deleted
                async with api.call_api("DELETE", version="v1", namespace=namespace,
                                        url=f"pods/{pod['name']}",
                                        params={"gracePeriodSeconds": "0"}):
                    pass
            except kr8s.ServerError as exc:
                if status_code(exc) != 404:
                    raise

    # -- `daskflow clusters list` / `gc`: DaskClusters by label selector (:mod:`.inventory`) --
    @classmethod
    def set_up_here(cls) -> bool:
        return kubeconfig_found()

    def live_clusters(self) -> list[LiveCluster]:
        return inventory.list_clusters(self.option("namespace"), self.api_timeout())

    def end_cluster(self, cluster: LiveCluster) -> str:
        return inventory.delete(cluster, self.api_timeout())


def _json(value: Any) -> str:
    import json
    return json.dumps(value)

