"""The Kubernetes backend: its DaskCluster spec against the operator's CRD schema, and its
error handling against a local HTTP server that answers the way the API server does.

What is real here: dask-kubernetes' ``make_cluster_spec`` and ``KubeCluster`` (its
HTTP calls go through kr8s and httpx to a socket on 127.0.0.1), the CRD schema
that ships inside dask-kubernetes, and a kubeconfig read the way kubectl reads it.
What is not: the API server (:class:`FakeKubeAPI` below stores DaskClusters and
answers discovery, RBAC and node listing; it validates what it is sent against
the CRD schema as a real one does), and the operator (none here: no pod ever runs).
The contract's lifecycle tests need a real cluster with the Dask operator: they run
when DASKFLOW_TEST_KUBECONFIG points at one and skip otherwise.
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import dask.config
import pytest

pytest.importorskip("dask_kubernetes")
pytest.importorskip("jsonschema")

from daskflow.clusters import ResourceRequest, ResourceRequestError, get_backend
from daskflow.clusters.base import SCHEDULER_ENV
from daskflow.clusters.kubernetes import (
    DaskOperatorMissingError,
    KubeconfigError,
    KubernetesBackend,
    KubernetesForbiddenError,
    KubernetesUnreachableError,
    memory_quantity,
    validate_cluster_spec,
)
from daskflow.exceptions import ClusterError

#: what every scheduler daskflow starts gets (the runtime decides what runs again)
SCHEDULER_ENV_ITEMS = [{"name": k, "value": v} for k, v in SCHEDULER_ENV.items()]

from .contract import ClusterContract, MiB

GiB = 2**30
REAL_KUBECONFIG = os.environ.get("DASKFLOW_TEST_KUBECONFIG")


# -- the DaskCluster spec, checked against the CRD schema (pure) ----------------------------------
SPEC_TABLE = [
    # request, worker requests (= limits), threads, --memory-limit
    (ResourceRequest(cpu=2), {"cpu": "2", "memory": "4Gi"}, 2, 4 * GiB),
    (ResourceRequest(memory=16 * GiB), {"cpu": "1", "memory": "16Gi"}, 1, 16 * GiB),
    (ResourceRequest(cpu=4, memory=8 * GiB, gpu=1),
     {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "1"}, 4, 8 * GiB),
    (ResourceRequest(cpu=1, memory=2 * GiB, workers=40), {"cpu": "1", "memory": "2Gi"}, 1,
     2 * GiB),
    (ResourceRequest(cpu=0.5, memory=GiB), {"cpu": "500m", "memory": "1Gi"}, 1, GiB),
    (ResourceRequest(cpu=1.25), {"cpu": "1250m", "memory": "4Gi"}, 2, 4 * GiB),
    (ResourceRequest(memory=1500 * 10**6), {"cpu": "1", "memory": "1500M"}, 1, 1500 * 10**6),
    (ResourceRequest(memory=GiB // 2), {"cpu": "1", "memory": "512Mi"}, 1, GiB // 2),
    (ResourceRequest(memory=1234567891), {"cpu": "1", "memory": "1234567891"}, 1, 1234567891),
    (ResourceRequest(cpu=2, memory=4 * GiB, disk=50 * GiB),
     {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "50Gi"}, 2, 4 * GiB),
]


@pytest.mark.fast
@pytest.mark.parametrize("request_, amounts, threads, memory_limit", SPEC_TABLE,
                         ids=[r[0].describe() for r in SPEC_TABLE])
def test_spec_matches_the_crd_schema_and_sizes_the_workers(request_, amounts, threads,
                                                           memory_limit) -> None:
    spec = KubernetesBackend().cluster_spec(request_, "daskflow-test")
    assert validate_cluster_spec(spec) == []
    worker = spec["spec"]["worker"]
    assert worker["replicas"] == request_.workers
    container = worker["spec"]["containers"][0]
    assert container["resources"] == {"requests": amounts, "limits": amounts}
    args = container["args"]
    assert args[:2] == ["dask", "worker"]  # dask-worker is gone from distributed 2026.6
    assert args[args.index("--nthreads") + 1] == str(threads)
    assert args[args.index("--memory-limit") + 1] == str(memory_limit)
    gpu_pod = bool(request_.gpu)
    assert ("tolerations" in worker["spec"]) == gpu_pod


@pytest.mark.fast
def test_scheduler_is_sized_apart_and_settings_reach_the_pods() -> None:
    section = {"image": "registry.example/flows:1", "service-account": "dask-sa",
               "env": {"EXTRA": "1"}, "node-selector": {"pool": "batch"},
               "gpu-node-selector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
               "scheduler-cpu": 0.5, "scheduler-memory": "1GiB"}
    settings = {f"daskflow.cluster.kubernetes.{k}": v for k, v in section.items()}
    settings["daskflow.cluster.idle-timeout"] = "5 minutes"
    with dask.config.set(settings):
        spec = KubernetesBackend().cluster_spec(
            ResourceRequest(cpu=8, memory=32 * GiB, gpu=2), "daskflow-gpu")
    assert validate_cluster_spec(spec) == []
    assert spec["spec"]["idleTimeout"] == 300
    worker_pod = spec["spec"]["worker"]["spec"]
    scheduler_pod = spec["spec"]["scheduler"]["spec"]
    scheduler = scheduler_pod["containers"][0]
    # then its max lifetime's --preload (test_labels.py, test_lifetime.py)
    assert scheduler["args"][:4] == ["dask", "scheduler", "--host", "0.0.0.0"]
    assert scheduler["resources"]["limits"] == {"cpu": "500m", "memory": "1Gi"}
    assert worker_pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert worker_pod["nodeSelector"] == {"pool": "batch",
                                          "cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert worker_pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert "nodeSelector" not in scheduler_pod  # the scheduler needs no GPU node
    for pod in (worker_pod, scheduler_pod):
        assert pod["serviceAccountName"] == "dask-sa"
        assert pod["containers"][0]["image"] == "registry.example/flows:1"
    assert worker_pod["containers"][0]["env"] == [{"name": "EXTRA", "value": "1"}]
    assert scheduler["env"] == [{"name": "EXTRA", "value": "1"}, *SCHEDULER_ENV_ITEMS]


@pytest.mark.fast
def test_the_requests_environment_reaches_the_worker_containers_only() -> None:
    with dask.config.set({"daskflow.cluster.kubernetes.env": {"EXTRA": "1", "MODE": "slow"}}):
        spec = KubernetesBackend().cluster_spec(
            ResourceRequest(env={"MODE": "it's fast", "LEVEL": 2}), "daskflow-env")
    assert validate_cluster_spec(spec) == []  # the CRD's schema for a container's env
    worker = spec["spec"]["worker"]["spec"]["containers"][0]
    scheduler = spec["spec"]["scheduler"]["spec"]["containers"][0]
    assert worker["env"] == [{"name": "EXTRA", "value": "1"},
                             {"name": "MODE", "value": "it's fast"},  # the step's wins
                             {"name": "LEVEL", "value": "2"}]
    assert scheduler["env"] == [{"name": "EXTRA", "value": "1"},
                                {"name": "MODE", "value": "slow"}, *SCHEDULER_ENV_ITEMS]
    plain = KubernetesBackend().cluster_spec(ResourceRequest(), "daskflow-plain")
    assert validate_cluster_spec(plain) == []
    assert plain["spec"]["worker"]["spec"]["containers"][0]["env"] == []


@pytest.mark.fast
def test_default_image_is_the_installed_dask() -> None:
    spec = KubernetesBackend().cluster_spec(ResourceRequest(), "daskflow-x")
    assert spec["spec"]["worker"]["spec"]["containers"][0]["image"] == \
        f"ghcr.io/dask/dask:{dask.__version__}"


@pytest.mark.fast
def test_kube_cluster_kwargs() -> None:
    kwargs = get_backend("kubernetes", namespace="ml").cluster_kwargs(
        ResourceRequest(workers=3), name="daskflow-k")
    assert kwargs["shutdown_on_close"] is True and kwargs["namespace"] == "ml"
    assert kwargs["custom_cluster_spec"]["metadata"]["name"] == "daskflow-k"
    assert kwargs["n_workers"] == 3 and kwargs["idle_timeout"] == 1200
    assert kwargs["resource_timeout"] == 60


@pytest.mark.fast
def test_the_schema_check_catches_what_the_api_server_would_refuse_or_drop() -> None:
    spec = KubernetesBackend().cluster_spec(ResourceRequest(), "daskflow-x")
    spec["spec"]["worker"]["replicas"] = "two"
    spec["spec"]["worker"]["spec"]["nodeselector"] = {"pool": "a"}     # typo: pruned
    spec["spec"]["scheduler"]["spec"]["containers"][0]["env"] = None   # make_cluster_spec's
    del spec["spec"]["worker"]["spec"]["containers"]
    problems = "\n".join(validate_cluster_spec(spec))
    assert "spec.worker.replicas: 'two' is not of type 'integer'" in problems
    assert "spec.worker.spec.nodeselector: unknown field" in problems
    assert "env: None is not of type 'array'" in problems
    assert "'containers' is a required property" in problems


@pytest.mark.fast
def test_bad_settings_are_refused_before_contacting_anything() -> None:
    backend = get_backend("kubernetes", tolerations=[{"key": "a", "effect": 3}])
    with pytest.raises(ResourceRequestError, match=r"tolerations.*3 is not of type 'string'"):
        backend.check(ResourceRequest())


@pytest.mark.fast
@pytest.mark.parametrize("n, text", [(8 * GiB, "8Gi"), (1500 * 10**6, "1500M"),
                                     (GiB // 2, "512Mi"), (3 * 10**9, "3G"), (1023, "1023")])
def test_memory_quantities(n: int, text: str) -> None:
    assert memory_quantity(n) == text


@pytest.mark.fast
def test_describe_says_what_would_be_asked() -> None:
    text = get_backend("kubernetes", namespace="ml").describe(
        ResourceRequest(cpu=2, memory=8 * GiB, gpu=1, workers=3))
    assert text.startswith("kubernetes: 3 worker pods requesting cpu=2, memory=8Gi, "
                           "nvidia.com/gpu=1 in namespace ml")


# -- a local server that answers like the Kubernetes API server -----------------------------------
class FakeKubeAPI:
    """An HTTP server on 127.0.0.1 that answers the calls daskflow and KubeCluster make.

    ``operator``: whether the kubernetes.dask.org/v1 API exists (the CRDs are installed);
    ``forbidden``: namespaces where listing DaskClusters answers 403; ``denied``:
    namespaces where a SelfSubjectAccessReview for create answers allowed=false.
    Created DaskClusters are validated against the CRD schema (422 otherwise) and
    stored; no controller ever acts on them.
    """

    def __init__(self) -> None:
        self.operator = True
        self.forbidden: set[str] = set()
        self.denied: set[str] = set()
        self.nodes = [{"name": "node-a", "cpu": "4", "memory": "16Gi"},
                      {"name": "gpu-node", "cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"}]
        self.clusters: dict[tuple[str, str], dict] = {}
        self.created: list[dict] = []
        self.requests: list[tuple[str, str]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                api.handle(self, "GET")

            def do_POST(self) -> None:
                api.handle(self, "POST")

            def do_DELETE(self) -> None:
                api.handle(self, "DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(h.path)
        path, query = url.path.rstrip("/"), parse_qs(url.query)
        self.requests.append((method, path))
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length)) if length else None
        status, answer = self.answer(method, path, query, body)
        data = json.dumps(answer).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def answer(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if path == "/version":
            return 200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0"}
        if path == "/api/v1/nodes":
            return 200, {"kind": "NodeList", "items": [
                {"metadata": {"name": n["name"]},
                 "status": {"allocatable": {k: v for k, v in n.items() if k != "name"}}}
                for n in self.nodes]}
        if path.endswith("/selfsubjectaccessreviews"):
            namespace = body["spec"]["resourceAttributes"]["namespace"]
            allowed = namespace not in self.denied
            return 201, {**body, "status": {"allowed": allowed, **({} if allowed else {
                "reason": "RBAC: no role grants create on daskclusters"})}}
        if path.startswith("/apis/kubernetes.dask.org/v1"):
            if not self.operator:
                return 404, _status(404, "NotFound", "the server could not find the requested "
                                                     "resource")
            if path == "/apis/kubernetes.dask.org/v1":
                return 200, {"kind": "APIResourceList", "groupVersion": "kubernetes.dask.org/v1",
                             "resources": [{"name": "daskclusters", "namespaced": True,
                                            "kind": "DaskCluster"}]}
            namespace, kind = parts[4], parts[5]
            name = parts[6] if len(parts) > 6 else None
            if namespace in self.forbidden:
                return 403, _status(403, "Forbidden", f'daskclusters.kubernetes.dask.org is '
                                    f'forbidden: User "dev" cannot list resource '
                                    f'"daskclusters" in the namespace "{namespace}"')
            if kind != "daskclusters":
                return 404, _status(404, "NotFound", f"{kind} not found")
            if method == "POST":
                from daskflow.clusters.kubernetes import validate_cluster_spec
                problems = validate_cluster_spec(body)
                if problems:
                    return 422, _status(422, "Invalid", "; ".join(problems))
                self.created.append(body)
                self.clusters[(namespace, body["metadata"]["name"])] = {
                    **body, "metadata": {**body["metadata"], "namespace": namespace}}
                return 201, self.clusters[(namespace, body["metadata"]["name"])]
            if name is None:
                return 200, {"kind": "DaskClusterList", "metadata": {}, "items": [
                    c for (ns, _), c in self.clusters.items() if ns == namespace]}
            if (namespace, name) not in self.clusters:
                return 404, _status(404, "NotFound", f'daskclusters "{name}" not found')
            if method == "DELETE":
                return 200, self.clusters.pop((namespace, name))
            return 200, self.clusters[(namespace, name)]
        if len(parts) >= 5 and parts[:2] == ["api", "v1"] and parts[4] == "pods":
            return 200, {"kind": "PodList", "metadata": {}, "items": []}
        return 404, _status(404, "NotFound", f"{path} not found")


def _status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
            "reason": reason, "code": code}


def write_kubeconfig(path: Path, server: str, namespace: str = "default") -> Path:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "dev",
                                                   "namespace": namespace}}],
        "users": [{"name": "dev", "user": {"token": "not-a-real-token"}}]}))
    return path


@pytest.fixture
def kube_api(tmp_path: Path, monkeypatch) -> Any:
    """A FakeKubeAPI, with KUBECONFIG pointing at it."""
    api = FakeKubeAPI()
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", api.url)))
    yield api
    api.close()


def timed_check(backend: Any, request: ResourceRequest | None = None) -> float:
    started = time.monotonic()
    backend.check(request or ResourceRequest())
    return time.monotonic() - started


# -- the four ways a cluster is unusable, each a clear error within seconds -----------------------
def test_no_kubeconfig(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    started = time.monotonic()
    with pytest.raises(KubeconfigError, match="No Kubernetes credentials") as info:
        get_backend("kubernetes").check(ResourceRequest())
    assert time.monotonic() - started < 5
    assert "missing-kubeconfig" in str(info.value) and "KUBECONFIG" in str(info.value)
    assert isinstance(info.value, ClusterError)


def test_unreachable_api_server(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", "https://127.0.0.1:1")))
    started = time.monotonic()
    with pytest.raises(KubernetesUnreachableError, match="did not answer") as info:
        get_backend("kubernetes").check(ResourceRequest())
    assert time.monotonic() - started < 5
    assert "https://127.0.0.1:1" in str(info.value) and "kubectl cluster-info" in str(info.value)


def test_operator_not_installed(kube_api: FakeKubeAPI) -> None:
    kube_api.operator = False
    with pytest.raises(DaskOperatorMissingError, match="CustomResourceDefinitions are not "
                                                       "installed.*helm install"):
        timed_check(get_backend("kubernetes"))


def test_forbidden_namespace(kube_api: FakeKubeAPI) -> None:
    kube_api.forbidden.add("prod")
    with pytest.raises(KubernetesForbiddenError, match=r"namespace 'prod'.*cannot list"):
        timed_check(get_backend("kubernetes", namespace="prod"))


def test_namespace_where_create_is_denied(kube_api: FakeKubeAPI) -> None:
    kube_api.denied.add("readonly")
    with pytest.raises(KubernetesForbiddenError, match=r"'readonly'.*RBAC: no role grants"):
        timed_check(get_backend("kubernetes", namespace="readonly"))


def test_a_usable_cluster_passes_the_check_quickly(kube_api: FakeKubeAPI) -> None:
    assert timed_check(get_backend("kubernetes")) < 5
    calls = [path for _, path in kube_api.requests]
    assert "/apis/kubernetes.dask.org/v1" in calls
    assert "/apis/kubernetes.dask.org/v1/namespaces/default/daskclusters" in calls
    assert not kube_api.created  # a check creates nothing


def test_a_worker_no_node_can_hold_is_refused(kube_api: FakeKubeAPI) -> None:
    with pytest.raises(ResourceRequestError, match=r"at most 32 GiB.*Ask for less"):
        get_backend("kubernetes").check(ResourceRequest(memory=64 * GiB))
    with pytest.raises(ResourceRequestError, match=r"at most 1 nvidia.com/gpu"):
        get_backend("kubernetes").check(ResourceRequest(gpu=2))
    get_backend("kubernetes").check(ResourceRequest(cpu=8, memory=32 * GiB, gpu=1))
    get_backend("kubernetes", check_nodes=False).check(ResourceRequest(memory=64 * GiB))


def test_no_operator_controller_fails_within_the_bound_and_leaves_nothing(
        kube_api: FakeKubeAPI) -> None:
    """KubeCluster really creates the DaskCluster here; no controller acts on it."""
    backend = get_backend("kubernetes")
    request = ResourceRequest(cpu=2, memory=GiB, workers=2)
    started = time.monotonic()
    with dask.config.set({"daskflow.cluster.start-timeout": "4s"}):
        with pytest.raises(DaskOperatorMissingError, match="did not act on it within 2s.*"
                                                           "controller running"):
            with backend.open(request):
                pytest.fail("a cluster started without an operator")
    assert time.monotonic() - started < 15
    [created] = kube_api.created
    name = created["metadata"]["name"]
    assert created["metadata"].pop("namespace") == "default"  # the kubeconfig's (kr8s adds it)
    assert created == backend.cluster_spec(request, name)  # what KubeCluster sent, unchanged
    assert ("DELETE", f"/apis/kubernetes.dask.org/v1/namespaces/default/daskclusters/{name}") \
        in kube_api.requests
    assert kube_api.clusters == {}


def test_teardown_deletes_a_daskcluster_that_was_left(kube_api: FakeKubeAPI) -> None:
    backend = get_backend("kubernetes")
    spec = backend.cluster_spec(ResourceRequest(), "daskflow-left")
    kube_api.clusters[("default", "daskflow-left")] = spec
    snapshot = backend.snapshot(None, "daskflow-left")
    assert backend.leftovers(snapshot) == ["DaskCluster daskflow-left in namespace default"]
    backend.force_teardown(snapshot)
    assert backend.leftovers(snapshot) == [] and kube_api.clusters == {}


def test_clusters_list_and_gc_ask_the_api_server_through_the_registry(
        kube_api: FakeKubeAPI) -> None:
    """``daskflow clusters list`` finds daskflow's DaskClusters by label selector, with
    their labels; ``gc`` deletes the one whose driver is gone, and nothing else."""
    import socket
    import subprocess

    from daskflow.clusters import inventory
    from daskflow.clusters.labels import ClusterLabels, labelled
    gone = subprocess.Popen(["true"])
    gone.wait()
    labels = ClusterLabels(run="GoneFlow/3", step="fit, score", user="ana@example.org",
                           version="0.1.0", driver=f"{socket.gethostname()}:{gone.pid}")
    with labelled(labels):
        spec = get_backend("kubernetes").cluster_spec(ResourceRequest(workers=2), "daskflow-k1")
    spec["metadata"].update(namespace="default", creationTimestamp="2026-12-03T10:00:00Z")
    kube_api.clusters[("default", "daskflow-k1")] = spec
    kube_api.clusters[("default", "not-ours")] = {"metadata": {"name": "not-ours"}}
    with dask.config.set({"daskflow.cluster.kubernetes.namespace": "default",
                          "daskflow.cluster.list-backends": "auto"}):
        assert "kubernetes" in inventory.chosen_listings()  # a kubeconfig is set up here
        found, notes = inventory.live_clusters(["kubernetes"])
        assert notes == []
        [cluster] = found
        assert (cluster.backend, cluster.name, cluster.labels, cluster.workers) == \
            ("kubernetes", "daskflow-k1", labels, 2)
        assert (cluster.run_alive, cluster.why) == (False, f"driver pid {gone.pid} gone")
        assert inventory.end(cluster) == "deleted the DaskCluster (the operator removes its pods)"
    assert ("DELETE", "/apis/kubernetes.dask.org/v1/namespaces/default/daskclusters/"
                      "daskflow-k1") in kube_api.requests
    assert list(kube_api.clusters) == [("default", "not-ours")]


# -- the shared contract ----------------------------------------------------------------------
NEEDS_CLUSTER = ("needs a Kubernetes cluster with the Dask operator that runs pods; none can "
                 "run here (no container runtime). Set DASKFLOW_TEST_KUBECONFIG to a "
                 "kubeconfig for such a cluster to run it.")


class TestKubernetesContract(ClusterContract):
    backend_name = "kubernetes"
    request = ResourceRequest(cpu=1, memory=400 * MiB, workers=2)
    too_big = ResourceRequest(cpu=1, memory=2**50)

    @pytest.fixture(autouse=True)
    def _cluster(self, tmp_path: Path, monkeypatch, request) -> Any:
        if REAL_KUBECONFIG:
            monkeypatch.setenv("KUBECONFIG", REAL_KUBECONFIG)
            yield None
            return
        if request.node.name != "test_refuses_a_request_too_big_before_starting":
            pytest.skip(NEEDS_CLUSTER)
        api = FakeKubeAPI()
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", api.url)))
        yield api
        api.close()

    def remaining(self, found: dict[str, Any]) -> list[str]:
        backend = self.backend()  # make_cluster sets job_name: the DaskCluster's name
        return backend.leftovers(backend.snapshot(None, found["job_name"]))

    def check_refusal(self, message: str) -> None:
        super().check_refusal(message)
        assert "1024 TiB" in message and "largest: gpu-node" in message

    def test_nothing_left_long_after_the_driver_is_sigkilled(self, tmp_path: Path) -> None:
        pytest.skip("a SIGKILLed driver leaves the DaskCluster to its idleTimeout (set from "
                    "daskflow.cluster.idle-timeout, checked above in the spec); watching it "
                    "expire needs a real operator. " + NEEDS_CLUSTER)


# -- how Kubernetes says a worker's pod ended: pod statuses as the API server writes them ---------
def pod(status: dict) -> dict:
    return {"metadata": {"name": "daskflow-1a2b-default-worker-5f6d7"}, "status": status}


RUNNING = {"state": {"running": {"startedAt": "2026-12-06T16:00:00Z"}}}


@pytest.mark.fast
@pytest.mark.parametrize("status, cause", [
    ({"phase": "Running", "containerStatuses": [{**RUNNING, "restartCount": 1, "lastState": {
        "terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}, "out-of-memory"),
    ({"phase": "Failed", "reason": "Evicted", "message": (
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 91348Ki."
        " Container worker was using 1234Mi, request is 1Gi, has larger consumption of "
        "memory.")}, "preempted"),
    ({"phase": "Running", "conditions": [{
        "type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
        "message": "Preempted in order to admit critical pod"}]}, "preempted"),
    ({"phase": "Running", "conditions": [{
        "type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting"}]}, "preempted"),
    ({"phase": "Failed", "containerStatuses": [{"state": {"terminated": {
        "exitCode": 1, "reason": "Error"}}}]}, "worker-lost"),
    ({"phase": "Running", "containerStatuses": [RUNNING]}, None),
])
def test_a_worker_pods_status_is_a_cause(status: dict, cause: str | None) -> None:
    from daskflow.clusters.kubernetes.deaths import pod_cause
    assert pod_cause(pod(status)) == cause


@pytest.mark.fast
def test_a_pods_end_is_said_in_its_own_words() -> None:
    from daskflow.clusters.kubernetes.deaths import pod_words
    said = pod_words(pod({"phase": "Running", "containerStatuses": [{**RUNNING, "lastState": {
        "terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}))
    assert said == ("pod daskflow-1a2b-default-worker-5f6d7 Running; container terminated: "
                    "OOMKilled (exit code 137)")
