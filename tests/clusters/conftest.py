"""Fixtures for the cluster tests: a real SLURM when there is one, job logs in a temp folder."""

from __future__ import annotations

import os
import shutil
import subprocess

import dask.config
import pytest


def slurm_problem() -> str | None:
    """Why SLURM cannot be used here, or None when ``sinfo`` answers."""
    if shutil.which("sinfo") is None:
        return "sinfo is not on PATH (run .ci/setup-slurm.sh)"
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
                              timeout=10)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 10 s (slurmctld down?)"
    if done.returncode != 0:
        return f"sinfo failed: {done.stderr.strip()}"
    if not any(s.startswith(("idle", "mix", "alloc")) for s in done.stdout.split()):
        return f"no SLURM node is up (sinfo states: {done.stdout.split()})"
    return None


@pytest.fixture(scope="session")
def require_slurm() -> None:
    """Skip without SLURM, unless DASKFLOW_REQUIRE_SERVICES=1 (or =slurm) makes that a failure."""
    problem = slurm_problem()
    if problem is None:
        return
    if services_required("slurm"):
        pytest.fail(f"SLURM is required (DASKFLOW_REQUIRE_SERVICES=1) but unusable: {problem}")
    pytest.skip(f"SLURM unavailable: {problem}")


@pytest.fixture(autouse=True)
def slurm_logs_in_tmp(tmp_path):
    """Job logs of this test's SLURM clusters go to its own temp folder."""
    with dask.config.set({"daskflow.cluster.slurm.log-directory": str(tmp_path / "slurm-logs")}):
        yield tmp_path / "slurm-logs"


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "ssh: needs sshd and asyncssh (a private sshd on 127.0.0.1 is started)")


def services_required(service: str) -> bool:
    """``DASKFLOW_REQUIRE_SERVICES=1`` (or ``all``) requires every service; ``slurm,ssh`` some."""
    wanted = {s.strip() for s in os.environ.get("DASKFLOW_REQUIRE_SERVICES", "").split(",")}
    return bool(wanted & {"1", "all", service})


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A private sshd on 127.0.0.1 (its own host key, one client key); yields connect options."""
    import socket
    import time

    problem = None
    sshd_bin = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd")
                                        else None)
    if sshd_bin is None or shutil.which("ssh-keygen") is None:
        problem = "sshd/ssh-keygen not installed (apt-get install openssh-server)"
    try:
        import asyncssh  # noqa: F401
    except ImportError:
        problem = problem or "asyncssh not installed (pip install 'daskflow[ssh]')"
    if problem:
        if services_required("ssh"):
            pytest.fail(f"SSH is required (DASKFLOW_REQUIRE_SERVICES=1): {problem}")
        pytest.skip(problem)

    folder = tmp_path_factory.mktemp("sshd")
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        str(folder / key)], check=True)
    (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (folder / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPidFile {folder / 'sshd.pid'}\n"
        "UsePAM no\nStrictModes no\nPasswordAuthentication no\nPermitRootLogin yes\n"
        "AcceptEnv *\nSubsystem sftp internal-sftp\n")
    os.makedirs("/run/sshd", exist_ok=True)  # privilege separation directory
    server = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(folder / "sshd_config")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                err = server.stderr.read().decode() if server.poll() is not None else ""
                server.kill()
                message = f"sshd did not start: {err.strip()}"
                if services_required("ssh"):
                    pytest.fail(message)
                pytest.skip(message)
            time.sleep(0.05)
    yield {"port": port, "known_hosts": None, "client_keys": [str(folder / "client_key")]}
    server.terminate()
    server.wait(10)
    server.stderr.close()
