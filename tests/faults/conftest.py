"""Fixtures of the fault tests: moto's S3 behind the fault proxy (``proxy.py``).

Every test module here is marked ``faults`` (``pytest -m faults`` runs the group). The proxy's
seed is ``DASKFLOW_FAULT_SEED`` (default 32), so a failure seen in CI is replayed with
the same draws: ``DASKFLOW_FAULT_SEED=<seed> pytest tests/faults``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest


PROXY = Path(__file__).with_name("proxy.py")
BUCKET = "daskflow-fault-tests"


def fault_seed() -> int:
    return int(os.environ.get("DASKFLOW_FAULT_SEED", "32"))


@dataclass
class FlakyStore:
    """moto's S3 seen through the fault proxy: ``url`` is the endpoint to give clients,
    ``moto`` the server itself (for checks that must not meet a fault)."""

    url: str
    moto: str
    process: subprocess.Popen
    stats_path: Path
    log_path: Path
    seed: int
    env: dict[str, str] = field(default_factory=dict)

    def stats(self) -> dict[str, int]:
        try:
            return json.loads(self.stats_path.read_text())
        except (OSError, ValueError):
            return {}

    def go_down(self) -> None:
        """The store stops answering (connections refused) until :meth:`come_back`."""
        self.process.send_signal(signal.SIGUSR1)

    def come_back(self) -> None:
        self.process.send_signal(signal.SIGUSR2)
        time.sleep(0.5)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def aws_env(endpoint: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true"}


def start_proxy(moto: str, folder: Path, *, seed: int, faults: dict[str, float],
                max_seconds: float = 600) -> FlakyStore:
    """The proxy in front of ``moto``, with ``faults`` (proxy.py's options) as the mix; it
    exits by itself after ``max_seconds`` (twice pytest's limit of a test) if nothing
    stops it before."""
    stats, log = folder / "proxy-stats.json", folder / "proxy-faults.jsonl"
    options = [a for name, value in faults.items() for a in (f"--{name}", str(value))]
    process = subprocess.Popen(
        [sys.executable, str(PROXY), "--upstream", moto, "--seed", str(seed),
         "--max-seconds", str(max_seconds), "--stats", str(stats), "--log", str(log),
         *options], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    port = process.stdout.readline().strip()  # type: ignore[union-attr]
    if not port.isdigit():
        process.kill()
        pytest.fail(f"the fault proxy did not start: {port}{process.stdout.read()}")
    process.stdout.close()  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}"
    return FlakyStore(url, moto, process, stats, log, seed, aws_env(url))


def make_bucket(moto: str) -> None:
    import boto3
    s3 = boto3.client("s3", endpoint_url=moto, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass


#: issue 32's fault mix: 20% 503 SlowDown, 5% resets, 2% answers cut short, 5% of the
#: requests up to 2 s late (proxy.py's defaults)
FAULT_MIX = {"slowdown": 0.2, "reset": 0.05, "cut": 0.02, "delay": 0.05, "max-delay": 2.0}
#: the retry policy of the tests: daskflow's own layer does the retrying, with short waits
#: (botocore tries each request once; s3fs waits 0.1 s, 0.17 s, ... between its tries), so
#: a run of a few hundred requests fits CI. bench/flaky_store.py uses the default policy.
QUICK_POLICY = {"DASK_DASKFLOW__DATASTORE__S3__MAX_ATTEMPTS": "1",
                "DASK_DASKFLOW__DATASTORE__S3__RETRIES": "5",
                "DASK_DASKFLOW__DATASTORE__S3__CONNECT_TIMEOUT": "5s",
                "DASK_DASKFLOW__DATASTORE__RETRY__ATTEMPTS": "6",
                "DASK_DASKFLOW__DATASTORE__RETRY__BACKOFF": "50ms",
                "DASK_DASKFLOW__DATASTORE__RETRY__MAX_BACKOFF": "2s"}


@pytest.fixture
def flaky_s3(moto_server, tmp_path, monkeypatch):  # noqa: F811
    """moto behind the proxy with :data:`FAULT_MIX`, the env (and :data:`QUICK_POLICY`) set
    in this process too; yields the FlakyStore."""
    import dask.config
    store = _proxied(moto_server, tmp_path, monkeypatch, FAULT_MIX)
    store.env.update(QUICK_POLICY)
    policy = {name[len("DASK_"):].lower().replace("__", ".").replace("_", "-"): value
              for name, value in QUICK_POLICY.items()}  # the same, for this process
    with dask.config.set(policy):
        yield store
    store.stop()


def _proxied(moto: str, folder: Path, monkeypatch, faults: dict[str, float]) -> FlakyStore:
    make_bucket(moto)
    store = start_proxy(moto, folder, seed=fault_seed(), faults=faults)
    for key, value in store.env.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    import s3fs
    s3fs.S3FileSystem.clear_instance_cache()  # none made for another endpoint is reused
    return store


@pytest.fixture
def s3_prefix(request):
    """The test's own prefix in the bucket (named by the test and the seed, so a replay
    makes the same requests), the datastore root of this process's client too."""
    import hashlib

    import dask.config
    name = hashlib.sha1(f"{request.node.nodeid}|{fault_seed()}".encode()).hexdigest()[:8]
    root = f"s3://{BUCKET}/{name}"
    with dask.config.set({"daskflow.datastore.root": root}):
        yield root

