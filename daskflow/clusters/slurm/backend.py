"""The SLURM backend: ``dask_jobqueue.SLURMCluster``, one SLURM job per worker.

Settings live in ``daskflow.cluster.slurm`` (queue, account, walltime, python,
job-extra-directives, ...); keyword arguments of :class:`SLURMBackend` override
them. Every cluster gets a unique job name, so that teardown can check with
``squeue`` that none of its jobs is left, and so that a worker's death can be
explained from its job's log (``slurmstepd: ... exceeded memory limit``).
"""

from __future__ import annotations

import getpass
import glob
import math
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import dask_jobqueue  # noqa: F401  (missing: the registry says "pip install 'daskflow[slurm]'")

from ... import config
from ... import causes
from ..base import ClusterBackend, logger
from ..deaths import Death
from ..errors import BackendUnavailableError, ResourceRequestError
from ..labels import current_labels
from ..lifetime import preload
from ..listen import DashboardLinkWhereItListens, bind_address
from ..live import LiveCluster
from ..request import MiB, ResourceRequest, export_lines, format_bytes
from ..security import CredentialFiles, cluster_security
from .deaths import job_cause, parse_job
from .inventory import SQUEUE_FORMAT, parse_squeue
from .labels import slurm_comment

# squeue reasons that no amount of waiting fixes (SLURM's "Job Reason Codes").
HOPELESS_REASONS = {
    "PartitionConfig", "PartitionNodeLimit", "PartitionTimeLimit", "AccountNotAllowed",
    "QOSNotAllowed", "InvalidAccount", "InvalidQOS", "BadConstraints", "ReqNodeNotAvail",
    "QOSMaxMemoryPerJob", "QOSMaxCpuPerJobLimit", "QOSMaxGRESPerJob", "QOSMaxWallDurationPerJobLimit",
    "AssocMaxWallDurationPerJobLimit", "AssocMaxCpuPerJobLimit", "AssocMaxMemPerJobLimit",
    "AssocMaxGRESPerJob", "JobHeldAdmin", "JobHeldUser", "DependencyNeverSatisfied",
}

# Workers record their own submission errors here, by job name (see _job_class).
_submit_errors: dict[str, list[str]] = {}


@dataclass(frozen=True)
class SlurmNode:
    """One node of a partition as ``sinfo -N`` reports it."""

    name: str
    partition: str
    cpus: int
    memory_mb: int
    gpus: int
    tmp_mb: int
    state: str
    address: str = ""  # NodeAddr: where the node is reached


class SLURMBackend(ClusterBackend):
    """Workers as SLURM jobs, each of the requested size (``--cpus-per-task``, ``--mem``, ``--gres``).

    >>> SLURMBackend(queue="debug").cluster_kwargs(
    ...     ResourceRequest(cpu=2, memory=2**30, gpu=1), name="daskflow-1")  # doctest: +ELLIPSIS
    {'cores': 2, 'processes': 1, 'memory': 1073741824, 'job_mem': '1024M', ...}
    """

    name = "slurm"
    config_section = "cluster.slurm"
    listed_by = "slurm"  # from squeue: its jobs can outlive the driver (:mod:`.inventory`)
    scheduler_in_process = True   # dask-jobqueue's scheduler runs in the driver
    shares_filesystem = True  # daskflow.cluster.slurm.shares-filesystem says otherwise

    # -- translation -----------------------------------------------------------------
    def cluster_kwargs(self, request: ResourceRequest, *,
                       name: str | None = None) -> dict[str, Any]:
        from dask.utils import parse_timedelta
        memory = self.worker_memory(request)
        directives = list(self.option("job-extra-directives") or [])
        if request.gpu:
            directives.append(f"--gres=gpu:{request.gpu}")
        if request.disk is not None:
            directives.append(f"--tmp={math.ceil(request.disk / MiB)}M")
        scheduler_options: dict[str, Any] = {
            "dashboard_address": config.get("cluster.dashboard-address"),
            "allowed_failures": self.option("allowed-failures"),
        }
        idle = config.get("cluster.idle-timeout")
        if idle:
            scheduler_options["idle_timeout"] = idle
        if preload(request):  # the scheduler itself ends the cluster at its max lifetime
            scheduler_options["preload"] = preload(request)
        # who the jobs belong to, for squeue and `daskflow clusters list`
        directives.append(f"--comment={slurm_comment(current_labels())}")
        log_directory = self.option("log-directory")
        job_name = name or self.option("job-name")
        kwargs: dict[str, Any] = {
            "cores": request.threads,
            "processes": 1,
            "memory": memory,
            # exact MiB: jobqueue's own --mem rounds up to whole GiB
            "job_mem": f"{math.ceil(memory / MiB)}M",
            "queue": self.option("queue"),
            "account": self.option("account"),
            "walltime": self.option("walltime"),
            "job_name": job_name,
            "name": job_name,
            "job_extra_directives": directives,
            # the step's variables last: they win over what a "module load" set
            "job_script_prologue": [*(self.option("job-script-prologue") or []),
                                    *export_lines(request.env)],
            "worker_extra_args": list(self.option("worker-extra-args") or []),
            "log_directory": os.path.abspath(log_directory) if log_directory else None,
            "death_timeout": parse_timedelta(self.option("death-timeout")),
            "scheduler_options": scheduler_options,
        }
        for key in ("python", "interface", "local-directory"):
            if self.option(key) is not None:
                kwargs[key.replace("-", "_")] = self.option(key)
        return kwargs

    def job_script(self, request: ResourceRequest, *, name: str | None = None) -> str:
        """The batch script one worker's job would be submitted with (scheduler address fake)."""
        kwargs = self.cluster_kwargs(request, name=name)
        for key in ("scheduler_options", "name"):
            kwargs.pop(key)
        job = _job_class()(scheduler="tcp://127.0.0.1:8786", name="check", **kwargs)
        return job.job_script()

    def describe(self, request: ResourceRequest) -> str:
        queue = self.option("queue")
        return f"slurm{f' (partition {queue})' if queue else ''}, {request.describe()}"

    # -- before anything starts ------------------------------------------------------
    def command(self, *args: str, check: bool = False, stdin: str | None = None
                ) -> subprocess.CompletedProcess[str]:
        """Run a SLURM command, bounded: they block while slurmctld is down."""
        from dask.utils import parse_timedelta
        timeout = parse_timedelta(self.option("command-timeout"))
        if shutil.which(args[0]) is None:
            raise BackendUnavailableError(
                f"SLURM's '{args[0]}' is not on PATH: the slurm backend needs a machine that "
                f"can submit SLURM jobs (a login node). Pick another backend, e.g. "
                f"@resources(..., backend='local').")
        try:
            done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                                  input=stdin)
        except subprocess.TimeoutExpired as exc:
            raise BackendUnavailableError(
                f"'{' '.join(args)}' did not answer within {timeout:g}s: is slurmctld up? "
                f"(scontrol ping). Raise daskflow.cluster.slurm.command-timeout if it is "
                f"only slow.") from exc
        if check and done.returncode != 0:
            raise BackendUnavailableError(
                f"'{' '.join(args)}' failed (exit {done.returncode}): "
                f"{(done.stderr or done.stdout).strip()}")
        return done

    def nodes(self) -> list[SlurmNode]:
        """The nodes of the partition jobs go to (``queue``, else the default partition)."""
        out = self.command("sinfo", "-h", "-N", "-o", "%N|%P|%c|%m|%G|%d|%t|%o",
                           check=True).stdout
        nodes = []
        for line in out.splitlines():
            parts = line.strip().split("|")
            if len(parts) != 8:
                continue
            name, partition, cpus, memory, gres, tmp, state, address = parts
            nodes.append(SlurmNode(name, partition, _int(cpus), _int(memory), _gpus(gres),
                                   _int(tmp), state, address))
        queue = self.option("queue")
        if queue:
            chosen = [n for n in nodes if n.partition.rstrip("*") == queue]
            if not chosen:
                partitions = sorted({n.partition.rstrip("*") for n in nodes})
                from ...exceptions import did_you_mean
                raise ResourceRequestError(
                    f"SLURM has no partition '{queue}' (daskflow.cluster.slurm.queue)."
                    f"{did_you_mean(queue, partitions)} Partitions (sinfo): "
                    f"{', '.join(partitions) or 'none'}.")
            return chosen
        default = [n for n in nodes if n.partition.endswith("*")]
        return default or nodes

    def check(self, request: ResourceRequest) -> None:
        """Refuse what no node of the partition can hold (sinfo), then ask SLURM (sbatch --test-only)."""
        nodes = self.nodes()
        memory_mb = math.ceil(self.worker_memory(request) / MiB)
        disk_mb = math.ceil(request.disk / MiB) if request.disk is not None else 0
        asked = (f"a worker of {request.threads} core(s), {memory_mb} MB memory (--mem)"
                 f"{f', {request.gpu} GPU(s)' if request.gpu else ''}"
                 f"{f', {disk_mb} MB temporary disk (--tmp)' if disk_mb else ''}")
        partition = (nodes[0].partition.rstrip("*") if nodes else self.option("queue")) or "?"
        fits = [n for n in nodes if n.cpus >= request.threads and n.memory_mb >= memory_mb
                and n.gpus >= request.gpu and n.tmp_mb >= disk_mb]
        script = self.job_script(request)
        verdict = self.command("sbatch", "--test-only", stdin=script)
        said = (verdict.stderr or verdict.stdout).strip().replace("\n", " ")
        if not fits:
            short = []
            if not any(n.cpus >= request.threads for n in nodes):
                short.append(f"at most {max((n.cpus for n in nodes), default=0)} CPUs")
            if not any(n.memory_mb >= memory_mb for n in nodes):
                short.append(f"at most {max((n.memory_mb for n in nodes), default=0)} MB "
                             f"memory (RealMemory)")
            if request.gpu and not any(n.gpus >= request.gpu for n in nodes):
                short.append(f"at most {max((n.gpus for n in nodes), default=0)} GPUs (Gres)")
            if disk_mb and not any(n.tmp_mb >= disk_mb for n in nodes):
                short.append(f"at most {max((n.tmp_mb for n in nodes), default=0)} MB "
                             f"temporary disk (TmpDisk)")
            if not short:
                short.append("no single node with all of it")
            biggest = ", ".join(f"{n.name}: {n.cpus} CPUs, {n.memory_mb} MB, {n.gpus} GPUs"
                                for n in _largest(nodes))
            raise ResourceRequestError(
                f"SLURM cannot run {asked} in partition '{partition}': its nodes have "
                f"{'; '.join(short)} (sinfo; largest: {biggest or 'no nodes'}). SLURM says: "
                f"{said or 'nothing'}. Ask for less in @resources(...), or choose a partition "
                f"with bigger nodes (daskflow.cluster.slurm.queue).")
        if verdict.returncode != 0:
            raise ResourceRequestError(
                f"SLURM refuses {asked} in partition '{partition}': {said}. Check the "
                f"partition, account, walltime and job-extra-directives under "
                f"daskflow.cluster.slurm.")

    # -- start -----------------------------------------------------------------------
    def make_cluster(self, request: ResourceRequest, *, name: str) -> Any:
        _submit_errors.pop(name, None)
        job_cls: Any = _job_class()
        kwargs = self.cluster_kwargs(request, name=name)
        if "interface" not in kwargs:  # an interface names where to listen already
            host = self.scheduler_host()
            if host:
                kwargs["scheduler_options"]["host"] = host
        if cluster_security() is not None:
            # the jobs read the run's credentials from files (a job script holds no key):
            # a private folder beside their logs, removed at teardown
            files = _credential_files[name] = CredentialFiles(self.log_folder())
            kwargs["security"] = files.security
        cluster = _cluster_class()(job_cls=job_cls, **kwargs)
        cluster._daskflow_name = name  # type: ignore[attr-defined]  # finds its job logs
        cluster.scale(jobs=request.workers)
        return cluster

    def scheduler_host(self) -> str | None:
        """Where the scheduler listens: ``scheduler-host``, else the one local address that
        reaches the partition's nodes (127.0.0.1 when they are this machine)."""
        host = self.option("scheduler-host")
        if host:
            return str(host)
        nodes = self.nodes()
        host = bind_address(node.address or node.name for node in nodes)
        if host is None:
            logger.warning(
                "The SLURM nodes (%s) are not all reached from one local address: the "
                "scheduler listens on every interface (TLS still applies). Set "
                "daskflow.cluster.slurm.scheduler-host or .interface to narrow it.",
                ", ".join(n.name for n in nodes[:5]))
        return host

    def log_folder(self) -> str:
        """The jobs' log directory (absolute): a filesystem the compute nodes share."""
        return os.path.abspath(self.option("log-directory") or ".")

    def jobs(self, name: str) -> list[tuple[str, str, str]]:
        """``(job id, state, reason)`` of each job named ``name`` that squeue still lists."""
        out = self.command("squeue", "-h", "-u", getpass.getuser(), "-n", name,
                           "-o", "%i|%T|%r").stdout
        return [tuple(line.strip().split("|", 2)) for line in out.splitlines()  # type: ignore
                if line.count("|") == 2]

    def startup_problem(self, cluster: Any, name: str) -> str | None:
        errors = _submit_errors.get(name)
        if errors:
            return (f"SLURM refused to submit a worker job ({name}): "
                    f"{_sbatch_error(errors[0])}")
        # Which jobs were submitted, read *before* asking squeue: a job submitted in
        # between must not look like one that already ended.
        submitted = {worker_name: getattr(job, "job_id", None)
                     for worker_name, job in list(getattr(cluster, "workers", {}).items())}
        jobs = self.jobs(name)
        for job_id, state, reason in jobs:
            if state == "PENDING" and reason in HOPELESS_REASONS:
                return (f"SLURM job {job_id} ({name}) is pending for a reason that will not "
                        f"go away: {reason} (squeue). Change the request or the "
                        f"partition/account/qos settings under daskflow.cluster.slurm.")
        listed = {job_id for job_id, _, _ in jobs}
        arrived = {info.get("name") for info in
                   cluster.scheduler_info.get("workers", {}).values()}
        for worker_name, submitted_id in submitted.items():
            if submitted_id and submitted_id not in listed and worker_name not in arrived:
                tail = _log_tail(cluster, submitted_id)
                return (f"SLURM job {submitted_id} ({name}) ended before its worker connected."
                        f"{' Its log ends with: ' + tail if tail else ''}")
        return None

    def pending_reason(self, cluster: Any, name: str) -> str | None:
        pending = [f"job {i} {s.lower()} ({r})" for i, s, r in self.jobs(name)]
        return f"squeue: {', '.join(pending)}." if pending else None

    # -- teardown ----------------------------------------------------------------------
    def snapshot(self, cluster: Any, name: str) -> Any:
        return name

    def leftovers(self, snapshot: Any) -> list[str]:
        return [f"SLURM job {job_id} {state.lower()}" for job_id, state, _ in
                self.jobs(snapshot)]

    def force_teardown(self, snapshot: Any) -> None:
        self.command("scancel", "-u", getpass.getuser(), "-n", snapshot)

    def cleanup(self, snapshot: Any, *, failing: bool) -> None:
        """Remove the cluster's job logs after a clean run (they explain failures: kept then)."""
        _submit_errors.pop(snapshot, None)
        files = _credential_files.pop(snapshot, None)
        if files is not None:
            files.remove()
        if failing or self.option("keep-logs") or not self.option("log-directory"):
            return
        folder = os.path.abspath(self.option("log-directory"))
        for path in glob.glob(os.path.join(glob.escape(folder), f"{snapshot}-*")):
            try:
                os.remove(path)
            except OSError:
                pass

    # -- why a worker died -------------------------------------------------------------
    def explain_worker_death(self, cluster: Any, worker: Any) -> Death | None:
        """Find the job whose log names this worker's address; how it ended, by ``scontrol
        show job`` (its JobState) and by what slurmstepd wrote in its log.  None while the
        job still runs (only the worker process died: its nanny knows how)."""
        folder = _log_directory(cluster)
        if folder is None:
            return None
        name: str = getattr(cluster, "_daskflow_name", None) or "*"
        deadline = time.monotonic() + 5.0  # slurmstepd writes its verdict as it kills
        while True:
            for path in sorted(glob.glob(os.path.join(glob.escape(folder), f"{name}-*.err"))):
                text = _read(path)
                if worker.address not in text:
                    continue
                signs = [line.strip() for line in text.splitlines()
                         if "slurmstepd" in line or "memory budget" in line]
                job_id = os.path.basename(path)[len(name) + 1:-len(".err")] \
                    if name != "*" else path
                state = self.job_state(job_id)
                cause = job_cause(state.get("JobState", ""), signs)
                if cause is not None:
                    return self._death(worker, path, job_id, signs, state, cause)
                if state.get("JobState") in ("RUNNING", "COMPLETING") or \
                        time.monotonic() >= deadline:
                    return None
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.2)

    def job_state(self, job_id: str) -> dict[str, str]:
        """``scontrol show job``'s fields of a job; {} once SLURM forgot it (MinJobAge)."""
        if not job_id.isdigit():
            return {}
        try:
            done = self.command("scontrol", "show", "job", job_id)
        except BackendUnavailableError:
            return {}
        return parse_job(done.stdout) if done.returncode == 0 else {}

    def _death(self, worker: Any, path: str, job_id: str, signs: list[str],
               state: dict[str, str], cause: str) -> Death:
        limit = getattr(worker, "memory_limit", None)
        evidence = tuple(dict.fromkeys(signs))[-4:]  # slurmstepd repeats itself
        if state.get("JobState"):
            evidence = (f"scontrol: JobState={state['JobState']} "
                        f"Reason={state.get('Reason', '?')}",) + evidence
        quoted = " | ".join(evidence) or "nothing from slurmstepd"
        where = f"worker {getattr(worker, 'name', '?')} (SLURM job {job_id})"
        said = {
            causes.OUT_OF_MEMORY: f"SLURM killed {where} for using more memory than its "
                                  f"allocation (--mem; worker limit "
                                  f"{format_bytes(limit) if limit else '?'})",
            causes.WALLTIME: f"SLURM ended {where} at its time limit (daskflow.cluster.slurm."
                             f"walltime = {self.option('walltime')})",
            causes.PREEMPTED: f"SLURM preempted {where}",
            causes.WORKER_LOST: f"{where} ended early ({state.get('JobState', 'cancelled')})",
        }[cause]
        return Death(cause, f"{said}. SLURM says: {quoted}. Job log: {path}", evidence,
                     job_id if job_id.isdigit() else None)

    # -- `daskflow clusters list` / `gc`: squeue, by the jobs' comment (:mod:`.inventory`) ----
    @classmethod
    def set_up_here(cls) -> bool:
        return shutil.which("squeue") is not None

    def live_clusters(self) -> list[LiveCluster]:
        out = self.command("squeue", "-h", "-u", getpass.getuser(), "-o", SQUEUE_FORMAT,
                           check=True).stdout
        return parse_squeue(out)

    def end_cluster(self, cluster: LiveCluster) -> str:
        jobs = list(cluster.handle.get("jobs") or [])
        if jobs:
            self.command("scancel", *jobs, check=True)
        return f"scancel {len(jobs)} job(s)"


def _job_class() -> type:
    """SLURMJob that records a refused submission instead of only logging it."""
    global _JOB_CLASS
    if _JOB_CLASS is None:
        from dask_jobqueue.slurm import SLURMJob
        from distributed.core import Status

        class DaskflowSLURMJob(SLURMJob):
            async def start(self) -> None:
                try:
                    await super().start()
                except Exception as exc:  # SpecCluster would only log it
                    _submit_errors.setdefault(self.job_name, []).append(str(exc))
                    self.status = Status.failed

        _JOB_CLASS = DaskflowSLURMJob
    return _JOB_CLASS


_JOB_CLASS: type | None = None
_CLUSTER_CLASS: type | None = None
# The credential files of each open cluster, by name, until its teardown removes them.
_credential_files: dict[str, CredentialFiles] = {}


def _cluster_class() -> type:
    """SLURMCluster whose dashboard link names where the dashboard listens."""
    global _CLUSTER_CLASS
    if _CLUSTER_CLASS is None:
        from dask_jobqueue import SLURMCluster

        class DaskflowSLURMCluster(DashboardLinkWhereItListens, SLURMCluster):
            pass

        _CLUSTER_CLASS = DaskflowSLURMCluster
    return _CLUSTER_CLASS


def _log_directory(cluster: Any) -> str | None:
    kwargs = getattr(cluster, "_job_kwargs", {}) or {}
    return kwargs.get("log_directory")


def _log_tail(cluster: Any, job_id: str, lines: int = 3) -> str:
    folder = _log_directory(cluster)
    if not folder:
        return ""
    paths = glob.glob(os.path.join(glob.escape(folder), f"*-{job_id}.err"))
    text = _read(paths[0]) if paths else ""
    return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())


def _read(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _sbatch_error(message: str) -> str:
    errors = [line.strip() for line in message.splitlines() if "error" in line.lower()
              and "sbatch" in line]
    return " ".join(errors) or message.strip()


def _int(text: str) -> int:
    match = re.match(r"\d+", text.strip())
    return int(match.group()) if match else 0


def _gpus(gres: str) -> int:
    """``gpu:2``, ``gpu:a100:4(S:0-1)``, ``gpu:a100:2,mps:100`` -> GPUs per node."""
    total = 0
    for entry in gres.split(","):
        entry = re.sub(r"\(.*?\)", "", entry).strip()
        if entry.startswith("gpu"):
            total += _int(entry.rsplit(":", 1)[-1]) if ":" in entry else 1
    return total


def _largest(nodes: list[SlurmNode]) -> list[SlurmNode]:
    if not nodes:
        return []
    return [max(nodes, key=lambda n: (n.memory_mb, n.cpus, n.gpus))]
