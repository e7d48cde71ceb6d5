"""The SLURM backend: pure translation here; against the real single-node SLURM below.

The real tests need ``sinfo`` (``.ci/setup-slurm.sh`` starts SLURM); they skip
without it unless ``DASKFLOW_REQUIRE_SERVICES=1``, which makes that a failure.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

import dask.config
import pytest

from daskflow.clusters import (
    ClusterStartTimeoutError,
    ResourceRequest,
    ResourceRequestError,
    WorkerKilledError,
    get_backend,
)
from daskflow.exceptions import ClusterError, ConfigurationError

from .contract import ClusterContract, MiB, alive_pids

GiB = 2**30


# -- how SLURM says a job ended: its own strings, as causes ---------------------------------------
#: ``scontrol show job`` of a job that ran out of time, as this machine's SLURM 22.05 wrote it
SCONTROL_TIMEOUT = """JobId=455 JobName=daskflow-1a2b3c4d
   UserId=root(0) GroupId=root(0) MCS_label=N/A
   Priority=4294901266 Nice=0 Account=(null) QOS=(null)
   JobState=TIMEOUT Reason=TimeLimit Dependency=(null)
   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0
   RunTime=00:01:10 TimeLimit=00:01:00 TimeMin=N/A
"""


@pytest.mark.fast
@pytest.mark.parametrize("state, cause", [
    ("OUT_OF_MEMORY", "out-of-memory"), ("TIMEOUT", "walltime"), ("DEADLINE", "walltime"),
    ("PREEMPTED", "preempted"), ("NODE_FAIL", "worker-lost"), ("BOOT_FAIL", "worker-lost"),
    ("CANCELLED", "worker-lost"), ("FAILED", "worker-lost"), ("RUNNING", None),
    ("COMPLETED", None), ("", None)])
def test_a_jobs_state_is_a_cause(state: str, cause: str | None) -> None:
    from daskflow.clusters.slurm.deaths import job_state_cause
    assert job_state_cause(state) == cause


@pytest.mark.fast
def test_scontrol_show_job_is_read_as_its_fields() -> None:
    from daskflow.clusters.slurm.deaths import job_state_cause, parse_job
    fields = parse_job(SCONTROL_TIMEOUT)
    assert (fields["JobState"], fields["Reason"], fields["TimeLimit"]) == (
        "TIMEOUT", "TimeLimit", "00:01:00")
    assert job_state_cause(fields["JobState"]) == "walltime"


@pytest.mark.fast
@pytest.mark.parametrize("line, cause", [
    ("slurmstepd-localhost: error: StepId=454.batch exceeded memory limit (1090883584 > "
     "209715200), being killed", "out-of-memory"),                    # OverMemoryKill
    ("slurmstepd-localhost: error: Exceeded job memory limit", "out-of-memory"),
    ("slurmstepd: error: Detected 1 oom-kill event(s) in StepId=1234.batch. Some of your "
     "processes may have been killed by the cgroup out-of-memory handler.", "out-of-memory"),
    ("slurmstepd-localhost: error: *** JOB 455 ON localhost CANCELLED AT 2026-12-06T16:05:33 "
     "DUE TO TIME LIMIT ***", "walltime"),
    ("slurmstepd: error: *** JOB 1234 ON node01 CANCELLED AT 2024-01-01T00:00:00 DUE TO "
     "PREEMPTION ***", "preempted"),
    ("slurmstepd: error: *** JOB 1234 ON node01 CANCELLED AT 2024-01-01T00:00:00 DUE TO NODE "
     "FAILURE, SEE SLURMCTLD LOG FOR DETAILS ***", "worker-lost"),
    ("slurmstepd: error: *** JOB 1234 ON node01 CANCELLED AT 2024-01-01T00:00:00 ***",
     "worker-lost"),                                                  # scancel
    ("distributed.nanny.memory - WARNING - Worker tcp://10.0.0.5:40123 (pid=4242) exceeded 95% "
     "memory budget. Restarting...", "out-of-memory"),                 # Dask's nanny
    ("distributed.worker - INFO - Stopping worker", None),
])
def test_slurmstepds_lines_are_a_cause(line: str, cause: str | None) -> None:
    from daskflow.clusters.slurm.deaths import signs_cause
    assert signs_cause([line]) == cause


@pytest.mark.fast
def test_a_job_state_that_names_a_cause_wins_else_slurmstepds_lines_do() -> None:
    from daskflow.clusters.slurm.deaths import job_cause
    over = ["slurmstepd-localhost: error: StepId=503.batch exceeded memory limit (419463168 > "
            "419430400), being killed"]
    assert job_cause("FAILED", over) == "out-of-memory"   # as OverMemoryKill ends a job here
    assert job_cause("TIMEOUT", over) == "walltime"
    assert job_cause("CANCELLED", []) == "worker-lost" and job_cause("", []) is None


# -- pure translation: no SLURM needed ----------------------------------------------------------
@pytest.mark.fast
def test_kwargs_size_one_job_per_worker() -> None:
    from daskflow.clusters.slurm import SLURMBackend
    kwargs = SLURMBackend().cluster_kwargs(
        ResourceRequest(cpu=3.5, memory=1536 * MiB, gpu=2, disk=10 * GiB, workers=4),
        name="daskflow-abc")
    assert kwargs["cores"] == 4 and kwargs["processes"] == 1
    assert kwargs["memory"] == 1536 * MiB
    assert kwargs["job_mem"] == "1536M"  # exact, not jobqueue's round-up to 2G
    assert "--gres=gpu:2" in kwargs["job_extra_directives"]
    assert "--tmp=10240M" in kwargs["job_extra_directives"]
    assert kwargs["job_name"] == kwargs["name"] == "daskflow-abc"
    assert kwargs["walltime"] == "01:00:00"
    assert kwargs["scheduler_options"].pop("preload")  # the max lifetime: test_labels.py
    assert kwargs["scheduler_options"] == {"dashboard_address": "127.0.0.1:0",
                                           "allowed_failures": 0,
                                           "idle_timeout": "20 minutes"}
    assert "n_workers" not in kwargs  # workers come from scale(jobs=...)


@pytest.mark.fast
def test_kwargs_take_settings_from_config_and_options_over_config() -> None:
    from daskflow.clusters.slurm import SLURMBackend
    settings = {"daskflow.cluster.slurm.queue": "gpu", "daskflow.cluster.slurm.account": "lab",
                "daskflow.cluster.slurm.walltime": "02:00:00",
                "daskflow.cluster.slurm.python": "/opt/py/bin/python",
                "daskflow.cluster.slurm.job-extra-directives": ["--qos=short"],
                "daskflow.cluster.slurm.memory": "8GiB",
                "daskflow.cluster.idle-timeout": None}
    with dask.config.set(settings):
        kwargs = SLURMBackend(queue="debug").cluster_kwargs(ResourceRequest(gpu=1))
    assert kwargs["queue"] == "debug" and kwargs["account"] == "lab"
    assert kwargs["walltime"] == "02:00:00" and kwargs["python"] == "/opt/py/bin/python"
    # then the labels' --comment (test_labels.py)
    assert kwargs["job_extra_directives"][:2] == ["--qos=short", "--gres=gpu:1"]
    assert kwargs["job_extra_directives"][2].startswith("--comment=daskflow;")
    assert kwargs["memory"] == 8 * GiB and kwargs["job_mem"] == "8192M"
    assert "idle_timeout" not in kwargs["scheduler_options"]


@pytest.mark.fast
def test_job_script_has_the_directives() -> None:
    from daskflow.clusters.slurm import SLURMBackend
    script = SLURMBackend(queue="debug", account="lab").job_script(
        ResourceRequest(cpu=2, memory=GiB, gpu=1), name="daskflow-x")
    for line in ("#SBATCH -J daskflow-x", "#SBATCH -p debug", "#SBATCH -A lab",
                 "#SBATCH --cpus-per-task=2", "#SBATCH --mem=1024M", "#SBATCH --gres=gpu:1"):
        assert line in script
    assert "--nthreads 2" in script and "--memory-limit 1.00GiB" in script


@pytest.mark.fast
def test_job_script_exports_the_environment_after_the_configured_prologue() -> None:
    from daskflow.clusters.slurm import SLURMBackend
    backend = SLURMBackend(job_script_prologue=["module load cuda"])
    request = ResourceRequest(env={"MODE": "it's fast", "LEVEL": 2})
    assert backend.cluster_kwargs(request)["job_script_prologue"] == [
        "module load cuda", "export LEVEL=2", "export MODE='it'\"'\"'s fast'"]
    script = backend.job_script(request, name="daskflow-x")
    lines = script.splitlines()
    worker = next(i for i, line in enumerate(lines) if "distributed.cli.dask_worker" in line)
    assert lines.index("module load cuda") < lines.index("export LEVEL=2") < worker
    assert "\nexport " not in backend.job_script(ResourceRequest(), name="daskflow-x")


@pytest.mark.fast
def test_unknown_option_is_refused_with_the_allowed_ones() -> None:
    with pytest.raises(ConfigurationError, match="unknown option 'partition'.*queue"):
        get_backend("slurm", partition="debug")


@pytest.mark.fast
@pytest.mark.parametrize("gres, gpus", [("gpu:2", 2), ("(null)", 0), ("gpu:a100:4(S:0-1)", 4),
                                        ("gpu:a100:2,mps:100", 2), ("gpu:v100:2,gpu:t4:1", 3)])
def test_gpus_are_read_from_sinfo_gres(gres: str, gpus: int) -> None:
    from daskflow.clusters.slurm.backend import _gpus
    assert _gpus(gres) == gpus


# -- against a real SLURM -----------------------------------------------------------------------
def squeue(job_name: str) -> list[str]:
    """The jobs named ``job_name`` (all jobs for "") that squeue lists."""
    name = ["-n", job_name] if job_name else []
    out = subprocess.run(["squeue", "-h", *name, "-o", "%i %j %T"], capture_output=True,
                         text=True, timeout=30).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


@pytest.mark.slurm
@pytest.mark.usefixtures("require_slurm")
class TestSLURMContract(ClusterContract):
    backend_name = "slurm"
    request = ResourceRequest(cpu=1, memory=512 * MiB, workers=2)
    too_big = ResourceRequest(cpu=1, memory=30 * GiB)  # the node has 20000 MB
    memory_tolerance = 0.01  # jobqueue passes --memory-limit with two decimals
    sigkill_grace = 90.0     # workers give up on a vanished scheduler, then the job ends

    def remaining(self, found: dict[str, Any]) -> list[str]:
        return squeue(found["job_name"]) + alive_pids(found["pids"])

    def check_worker(self, client: Any) -> None:
        jobs = client.run(lambda: os.environ.get("SLURM_JOB_ID"))
        assert all(jobs.values()) and len(set(jobs.values())) == 2  # one job per worker
        for job_id in jobs.values():
            shown = subprocess.run(["scontrol", "show", "job", "-o", job_id],
                                   capture_output=True, text=True, timeout=30).stdout
            assert "mem=512M" in shown and "NumCPUs=1" in shown

    def check_refusal(self, message: str) -> None:
        super().check_refusal(message)
        assert "30720 MB" in message and "20000 MB" in message
        assert "Requested node configuration is not available" in message  # SLURM's reason


@pytest.mark.slurm
@pytest.mark.usefixtures("require_slurm")
class TestSLURMRequests:
    def test_more_cores_than_any_node_is_refused(self) -> None:
        # sbatch would accept it and leave it pending forever (PartitionConfig)
        with pytest.raises(ResourceRequestError, match="at most 2 CPUs"):
            get_backend("slurm").check(ResourceRequest(cpu=64))

    def test_more_gpus_than_any_node_is_refused(self) -> None:
        with pytest.raises(ResourceRequestError, match=r"at most 2 GPUs \(Gres\)"):
            get_backend("slurm").check(ResourceRequest(gpu=3))

    def test_unknown_partition_is_refused_with_the_known_ones(self) -> None:
        with pytest.raises(ResourceRequestError, match=r"no partition 'gpu'.*debug"):
            get_backend("slurm", queue="gpu").check(ResourceRequest())

    def test_what_sbatch_refuses_is_refused_with_its_words(self) -> None:
        backend = get_backend("slurm", job_extra_directives=["--constraint=bigmem"])
        with pytest.raises(ResourceRequestError, match="SLURM refuses.*(?i:feature)"):
            backend.check(ResourceRequest())

    def test_a_refused_submission_fails_fast_with_sbatchs_error(self, monkeypatch) -> None:
        backend = get_backend("slurm")
        monkeypatch.setattr(backend, "check", lambda request: None)  # as if sinfo had lied
        started = time.monotonic()
        with pytest.raises(ClusterError, match="Memory specification can not be satisfied"):
            with backend.open(ResourceRequest(memory=30 * GiB)):
                pytest.fail("started")
        assert time.monotonic() - started < 30  # not the 120 s start timeout

    def test_a_gpu_worker_gets_its_gpu(self) -> None:
        from distributed import Client
        with get_backend("slurm").open(ResourceRequest(memory=400 * MiB, gpu=1)) as cluster, \
                Client(cluster) as client:
            seen = client.submit(lambda: os.environ.get("CUDA_VISIBLE_DEVICES")).result(60)
        assert seen == "0"

    def test_ctrl_c_while_jobs_are_starting_leaves_no_job(self, monkeypatch) -> None:
        backend = get_backend("slurm")
        monkeypatch.setattr(backend, "new_cluster_name", lambda: "daskflow-ctrlc-test")

        def interrupted(cluster, request, *, name, enough=None):
            deadline = time.monotonic() + 30
            while not squeue(name):  # once SLURM has the job, before its worker is up
                assert time.monotonic() < deadline, "no job was submitted"
                time.sleep(0.02)
            raise KeyboardInterrupt

        monkeypatch.setattr(backend, "wait_for_workers", interrupted)
        with pytest.raises(KeyboardInterrupt):
            with backend.open(ResourceRequest(memory=400 * MiB)):
                pytest.fail("started")
        assert squeue("daskflow-ctrlc-test") == []

    def test_start_timeout_says_what_squeue_says_and_leaves_nothing(self) -> None:
        backend = get_backend("slurm")
        before = set(squeue(""))
        with dask.config.set({"daskflow.cluster.start-timeout": "0.5s"}):
            with pytest.raises(ClusterStartTimeoutError, match="squeue: job") as info:
                with backend.open(ResourceRequest(memory=400 * MiB)):
                    pytest.fail("started")
        assert info.value.expected == 1 and info.value.available == 0
        assert set(squeue("")) <= before


@pytest.mark.slurm
@pytest.mark.usefixtures("require_slurm")
class TestSLURMWorkerDeath:
    def run_until_killed(self, task: Any, memory: int = 300 * MiB) -> tuple[WorkerKilledError, str]:
        from distributed import Client
        job_name = ""
        with pytest.raises(WorkerKilledError) as info:
            with get_backend("slurm").open(ResourceRequest(memory=memory)) as cluster, \
                    Client(cluster) as client:
                job_name = cluster.job_name
                client.submit(task, pure=False).result(timeout=120)
        assert squeue(job_name) == []
        return info.value, job_name

    def test_a_job_over_its_mem_is_killed_by_slurm_and_reported(self) -> None:
        def hog_in_a_child() -> int:  # the nanny watches only the worker: SLURM must act
            import subprocess
            import sys
            code = ("import time; a = bytearray(1024 * 2**20); a[::4096] = b'x' * len(a[::4096]);"
                    " time.sleep(60)")
            return subprocess.run([sys.executable, "-c", code]).returncode

        error, _ = self.run_until_killed(hog_in_a_child)
        assert error.cause == "out-of-memory"
        assert "SLURM killed worker" in str(error) and "exceeded memory limit" in str(error)
        assert error.job_id and error.job_id in str(error)
        assert type(error.__cause__).__name__ == "KilledWorker"

    def test_a_worker_over_its_dask_limit_is_reported_as_out_of_memory(self) -> None:
        def hog() -> int:
            import numpy as np
            blocks = [np.ones(50 * MiB // 8) for _ in range(40)]
            return len(blocks)

        error, _ = self.run_until_killed(hog)
        assert error.cause == "out-of-memory"
        assert "95%" in str(error) and "@resources(memory=...)" in str(error)
