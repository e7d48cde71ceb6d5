"""The SSH backend: ``distributed.SSHCluster`` on hosts you can ssh into.

The first host of ``daskflow.cluster.ssh.hosts`` runs the scheduler; workers go
round-robin over the others (or over the first, when it is the only one). The
scheduler runs remotely, so a driver that dies without closing leaves it
behind: the scheduler's ``idle_timeout`` (``daskflow.cluster.idle-timeout``)
closes it, and its workers follow after their ``death_timeout``.
"""

from __future__ import annotations

import os
import pickle
import socket
import threading
from typing import Any

import asyncssh  # noqa: F401  (missing: the registry says "pip install 'daskflow[ssh]'")

from .. import config
from .base import ClusterBackend
from .errors import ResourceRequestError
from .lifetime import preload
from .local import machine_cores, machine_memory
from .processes import LocalProcessTeardown
from .request import ResourceRequest, format_bytes
from .security import CredentialFiles, cluster_security

# SSHCluster hands the remote scheduler and workers this process's whole dask config
# (DASK_INTERNAL_INHERIT_CONFIG): the TLS settings are set there while a cluster starts.
_config_lock = threading.Lock()
# The credential files of each open cluster, by name, until its teardown removes them.
_credential_files: dict[str, CredentialFiles] = {}


class SSHBackend(LocalProcessTeardown, ClusterBackend):
    """Workers started over SSH, each of the requested size.

    >>> SSHBackend(hosts=["a", "b", "c"]).cluster_kwargs(ResourceRequest(workers=3))["hosts"]
    ['a', 'b', 'c', 'b']
    """

    name = "ssh"
    config_section = "cluster.ssh"
    shares_filesystem = True  # daskflow.cluster.ssh.shares-filesystem says otherwise
    process_label = "process"  # the scheduler's, when it runs here, too

    def cluster_kwargs(self, request: ResourceRequest, *,
                       name: str | None = None) -> dict[str, Any]:
        from dask.utils import parse_timedelta
        hosts = list(self.option("hosts") or [])
        scheduler, workers = hosts[0], (hosts[1:] or hosts[:1])
        memory = request.memory if request.memory is not None else \
            (self.option("memory") or "auto")
        # The scheduler listens where the driver and the workers reach it, no wider, and
        # its dashboard there too (so that the link, made from the scheduler's host, is
        # where it listens): the loopback when every host is this machine.
        host = self.option("scheduler-host") or \
            ("127.0.0.1" if all(_is_loopback(h) for h in hosts) else scheduler)
        dashboard_port = str(config.get("cluster.dashboard-address") or ":0").rsplit(":", 1)[-1]
        scheduler_options: dict[str, Any] = {
            "host": host, "port": 0, "dashboard_address": f"{host}:{dashboard_port or 0}",
            "allowed_failures": 0}  # the runtime decides what runs again (base.SCHEDULER_ENV)
        idle = config.get("cluster.idle-timeout")
        if idle:
            scheduler_options["idle_timeout"] = idle
        if preload(request):  # the scheduler itself ends the cluster at its max lifetime
            scheduler_options["preload"] = preload(request)
        kwargs: dict[str, Any] = {
            "hosts": [scheduler] + [workers[i % len(workers)] for i in range(request.workers)],
            "connect_options": dict(self.option("connect-options") or {}),
            "worker_options": {"nthreads": request.threads, "memory_limit": memory,
                               "death_timeout": parse_timedelta(self.option("death-timeout")),
                               # the remote nanny sets them in its worker process
                               **({"env": request.env_dict} if request.env else {})},
            "scheduler_options": scheduler_options,
            "worker_class": "distributed.Nanny",
        }
        if self.option("remote-python"):
            kwargs["remote_python"] = self.option("remote-python")
        return kwargs  # no name: SSHCluster names its SpecCluster itself

    def _check(self, request: ResourceRequest) -> None:
        hosts = list(self.option("hosts") or [])
        if not hosts:
            raise ResourceRequestError(
                "The ssh backend has no hosts: set daskflow.cluster.ssh.hosts "
                "(the first runs the scheduler).")
        if request.gpu:
            raise ResourceRequestError(
                f"The ssh backend does not assign GPUs (asked for {request.gpu}): use the "
                f"slurm backend, or a GPU machine's local backend.")
        quoted = [name for name, value in request.env if "'" in value]
        if quoted:  # SSHCluster puts the workers' options, as JSON, in '...' unescaped
            raise ResourceRequestError(
                f"The ssh backend cannot give workers an environment value with a single "
                f"quote (' in {', '.join(quoted)}): distributed's SSHCluster passes it in "
                f"single quotes on the remote command line. Use another quote character, "
                f"or another backend.")
        worker_hosts = self.cluster_kwargs(request)["hosts"][1:]
        local = [h for h in worker_hosts if _is_this_machine(h)]
        if local and request.memory is not None \
                and request.memory * len(local) > machine_memory():
            raise ResourceRequestError(
                f"The ssh backend cannot give {len(local)} worker(s) of "
                f"{format_bytes(request.memory)} on this machine: it has "
                f"{format_bytes(machine_memory())}. Ask for less, or add hosts.")
        if local and request.threads > machine_cores():
            raise ResourceRequestError(
                f"The ssh backend cannot give a worker {request.threads} cores on this "
                f"machine: it has {machine_cores()}. Ask for fewer, or add hosts.")

    def make_cluster(self, request: ResourceRequest, *, name: str) -> Any:
        import dask.config
        from distributed import SSHCluster
        kwargs = self.cluster_kwargs(request, name=name)
        if cluster_security() is None:
            return SSHCluster(**kwargs)
        # The remote processes read the run's credentials from files in a private folder
        # of the shared working directory (a command line holds paths, never a key).
        files = _credential_files[name] = CredentialFiles(os.path.abspath("."))
        kwargs["security"] = files.security  # the driver's side
        kwargs["scheduler_options"]["protocol"] = "tls"
        kwargs["worker_options"]["protocol"] = "tls"
        security = files.security
        settings = {
            "distributed.comm.require-encryption": True,
            "distributed.comm.tls.ca-file": security.tls_ca_file,
            **{f"distributed.comm.tls.{role}.{part}": getattr(security, f"tls_{role}_{part}")
               for role in ("scheduler", "worker", "client") for part in ("cert", "key")}}
        with _config_lock, dask.config.set(settings):
            return SSHCluster(**kwargs)

    def check(self, request: ResourceRequest) -> None:
        if cluster_security() is not None and self.shares_filesystem is False:
            raise ResourceRequestError(
                "The ssh backend gives its hosts the run's TLS credentials as files in the "
                "working directory, which they do not share (daskflow.cluster.ssh."
                "shares-filesystem: false). Share it, or set daskflow.cluster.tls: false "
                "for hosts with their own security.")
        self._check(request)


    # -- teardown: processes on this machine can be checked; remote ones are trusted -----
    # A snapshot is (cluster name, pids here): the name finds the credential files.
    def snapshot(self, cluster: Any, name: str) -> Any:
        return name, self._local_pids(cluster)

    def leftovers(self, snapshot: Any) -> list[str]:
        return super().leftovers(snapshot[1] if snapshot else ())

    def force_teardown(self, snapshot: Any) -> None:
        super().force_teardown(snapshot[1] if snapshot else ())

    def cleanup(self, snapshot: Any, *, failing: bool) -> None:
        files = _credential_files.pop(snapshot[0], None) if snapshot else None
        if files is not None:
            files.remove()

    def worker_processes(self, cluster: Any) -> list[int]:
        return self._local_pids(cluster)

    def _local_pids(self, cluster: Any) -> list[int]:
        if cluster is None:
            return []
        pids: set[int] = set()
        try:
            local = [h for h in cluster.scheduler_info.get("workers", {})
                     if _is_this_machine(_host(h))]
            if local or _is_this_machine(_host(cluster.scheduler_address)):
                ran = cluster.sync(cluster.scheduler_comm.broadcast,
                                   msg={"op": "run", "function": pickle.dumps(_pids)},
                                   workers=local)
                for result in ran.values():
                    pids.update(result.get("result", ()) if isinstance(result, dict) else ())
                if _is_this_machine(_host(cluster.scheduler_address)):
                    ran = cluster.sync(cluster.scheduler_comm.run_function,
                                       function=pickle.dumps(os.getpid))
                    if isinstance(ran, dict) and "result" in ran:
                        pids.add(int(ran["result"]))
        except Exception:  # a dead scheduler cannot tell; close() does what it can
            pass
        pids.discard(os.getpid())
        return sorted(pids)



def _pids() -> list[int]:
    """A worker's pid and its nanny's (the process SSH started)."""
    import psutil
    me = psutil.Process()
    return [me.pid] + ([me.ppid()] if me.ppid() > 1 else [])


def _is_loopback(host: str) -> bool:
    try:
        return socket.gethostbyname(host).startswith("127.")
    except OSError:
        return False


def _host(address: str) -> str:
    return address.split("://")[-1].rsplit(":", 1)[0].strip("[]")


def _is_this_machine(host: str) -> bool:
    if host in ("localhost", "127.0.0.1", "::1", socket.gethostname()):
        return True
    try:
        import psutil
        mine = {a.address for addrs in psutil.net_if_addrs().values() for a in addrs}
        return socket.gethostbyname(host) in mine
    except OSError:
        return False
