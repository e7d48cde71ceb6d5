"""TLS for every cluster daskflow starts: a client without the run's credentials is refused."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import dask
import pytest
from distributed import Client

from daskflow import Flow
from daskflow.clusters import ResourceRequest, get_backend
from daskflow.clusters.security import cluster_security, credentials, make_credentials

from ..conftest import FLOWS, _env


def refused(address: str, security: str = "None") -> bool:
    """Whether a plain client, in a process of its own as another local user's would be,
    is refused by the scheduler at ``address``. (A refused Client left in this process
    can deadlock the next one when the garbage collector closes it.)"""
    code = ("import sys\nfrom distributed import Client\nfrom distributed.security import "
            f"Security\ntry:\n    Client({address!r}, security={security}, timeout=3)\n"
            "except Exception:\n    sys.exit(7)\nsys.exit(0)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True,
                          timeout=120).returncode == 7


@pytest.mark.fast
def test_credentials_are_ec_made_once_per_process_and_required():
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    cert, _ = credentials()
    assert credentials()[0] is cert  # reused by every cluster of the process
    assert isinstance(x509.load_pem_x509_certificate(cert.encode()).public_key(),
                      ec.EllipticCurvePublicKey)
    assert make_credentials()[0] != cert  # a new process gets new ones
    security = cluster_security()
    assert security.require_encryption and security.tls_worker_cert == cert
    with dask.config.set({"daskflow.cluster.tls": False}):
        assert cluster_security() is None


def test_local_cluster_listens_on_tls_and_refuses_a_plain_client():
    with get_backend("local", dashboard_address="").open(ResourceRequest(workers=1)) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        with Client(cluster) as client:  # the cluster's own security: accepted
            assert client.submit(sum, [1, 2]).result() == 3
        assert refused(address)
    with dask.config.set({"daskflow.cluster.tls": False}), \
            get_backend("local", dashboard_address="").open(ResourceRequest()) as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        assert not refused(cluster.scheduler_address)  # plain tcp takes a plain client


def test_a_runs_cluster_refuses_clients_without_its_credentials(workdir: Path):
    """During a real run: the address in _run.json (owner-only) takes no plain client."""
    proc = subprocess.Popen([sys.executable, str(FLOWS / "tls_probe.py"), "run"], cwd=workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        record_path, record = None, {}
        deadline = time.monotonic() + 120
        while "scheduler" not in record and time.monotonic() < deadline \
                and proc.poll() is None:
            time.sleep(0.2)
            found = list(workdir.glob(".daskflow/TLSProbeFlow/*/_run.json"))
            if found:
                record_path = found[0]
                try:
                    record = json.loads(record_path.read_text())
                except ValueError:  # between writes
                    pass
        assert record_path is not None and "scheduler" in record, proc.stderr
        assert stat.S_IMODE(os.stat(record_path).st_mode) == 0o600
        address = record["scheduler"]
        assert address.startswith("tls://")
        assert refused(address) and refused(address, "Security()")
        assert refused(address.replace("tls://", "tcp://"))  # the tcp:// spelling too
    finally:
        (workdir / "release").touch()
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    run = Flow("TLSProbeFlow").latest_run
    assert run.successful and run["start"].task.data.released


def _listening(pid: int | None = None) -> list[tuple[str, int]]:
    import psutil
    return [(c.laddr.ip, c.laddr.port) for c in psutil.Process(pid).net_connections()
            if c.status == psutil.CONN_LISTEN]


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1].split("/")[0])


@pytest.mark.slurm
@pytest.mark.usefixtures("require_slurm")
def test_slurm_cluster_uses_tls_from_private_files_binds_narrowly_and_leaves_no_key(
        slurm_logs_in_tmp: Path) -> None:
    import urllib.request
    request = ResourceRequest(memory=512 * 2**20)
    with get_backend("slurm").open(request) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")  # the single node is this machine
        scheduler_port = _port(address)
        bound = [ip for ip, port in _listening() if port == scheduler_port]
        assert bound and all(ip not in ("0.0.0.0", "::") for ip in bound), bound
        folders = list(slurm_logs_in_tmp.glob(".daskflow-tls-*"))
        assert len(folders) == 1 and stat.S_IMODE(folders[0].stat().st_mode) == 0o700
        script = cluster.job_script()
        assert "--tls-key" in script and "PRIVATE KEY" not in script
        with Client(cluster) as client:
            assert client.submit(sum, [1, 2]).result() == 3
        assert refused(address)
        link = cluster.dashboard_link
        dashboard_port = _port(link.rsplit("/", 1)[0])
        assert (link.split("//")[1].rsplit(":", 1)[0], dashboard_port) in _listening()
        with urllib.request.urlopen(link.replace("/status", "/health"), timeout=10) as answer:
            assert answer.status == 200
    assert not list(slurm_logs_in_tmp.glob(".daskflow-tls-*"))  # the key is gone


@pytest.mark.ssh
def test_ssh_cluster_uses_tls_binds_narrowly_and_leaves_no_key(sshd, workdir: Path) -> None:
    import urllib.request

    import psutil
    backend = get_backend("ssh", hosts=["127.0.0.1"], connect_options=sshd)
    with backend.open(ResourceRequest(memory=300 * 2**20)) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        folders = list(workdir.glob(".daskflow-tls-*"))
        assert len(folders) == 1 and stat.S_IMODE(folders[0].stat().st_mode) == 0o700
        listeners = [c for c in psutil.net_connections("inet")
                     if c.status == psutil.CONN_LISTEN and c.laddr.port == _port(address)]
        assert listeners and all(c.laddr.ip == "127.0.0.1" for c in listeners), listeners
        remote = [" ".join(p.info["cmdline"] or ()) for p in psutil.process_iter(["cmdline"])
                  if "distributed.cli.dask_spec" in " ".join(p.info["cmdline"] or ())]
        assert remote and not any("PRIVATE KEY" in line for line in remote)
        with Client(cluster) as client:
            assert client.submit(sum, [1, 2]).result() == 3
            assert all(w.startswith("tls://") for w in client.scheduler_info()["workers"])
        assert refused(address)
        with urllib.request.urlopen(cluster.dashboard_link, timeout=10) as answer:
            assert answer.status == 200
    assert not list(workdir.glob(".daskflow-tls-*"))
