"""How AWS says a worker ended, as a cause: an ECS task's stop code and reasons, an EC2
instance's state reason.

An ECS (or Fargate) worker is one task: ``DescribeTasks`` gives its ``stopCode``
(``SpotInterruption``, ``TerminationNotice``, ``EssentialContainerExited``,
``UserInitiated``, ...), its ``stoppedReason`` ("Your Spot Task was interrupted.",
"Host EC2 (instance i-...) terminated.") and each container's ``reason`` and
``exitCode`` ("OutOfMemoryError: Container killed due to memory usage", 137).  An EC2
worker is one instance: ``DescribeInstances`` gives its ``StateReason``
(``Server.SpotInstanceTermination``, ...).  Pure functions here, fed in the tests with
the strings AWS documents.

>>> ecs_task_cause({"stopCode": "SpotInterruption",
...                 "stoppedReason": "Your Spot Task was interrupted."})
'preempted'
"""

from __future__ import annotations

from typing import Any

from ... import causes

#: stopCode values that say the capacity was taken back
_PREEMPTED_CODES = {"SpotInterruption", "TerminationNotice"}
#: stoppedReason words of the same (Fargate Spot, an EC2 Spot container instance)
_PREEMPTED_WORDS = ("spot task was interrupted", "spot instance", "spotinterruption")
#: a container's reason when ECS (the kernel's OOM killer in its cgroup) killed it for memory
_OOM_WORDS = ("outofmemoryerror", "container killed due to memory usage", "oomkilled")

#: EC2 StateReason codes of an instance that the spot market took back
_SPOT_STATE_CODES = {"Server.SpotInstanceTermination", "Server.SpotInstanceShutdown"}


def ecs_task_cause(task: dict[str, Any]) -> str | None:
    """The cause a stopped ECS task (a ``DescribeTasks`` entry) gives; None for a task
    that has not stopped, or that says nothing of why."""
    code = task.get("stopCode") or ""
    reason = (task.get("stoppedReason") or "").lower()
    if code in _PREEMPTED_CODES or any(word in reason for word in _PREEMPTED_WORDS):
        return causes.PREEMPTED
    containers = task.get("containers") or []
    said = " ".join((c.get("reason") or "") for c in containers).lower()
    if any(word in said or word in reason for word in _OOM_WORDS):
        return causes.OUT_OF_MEMORY
    if task.get("lastStatus") == "STOPPED" or code or reason:
        return causes.WORKER_LOST
    return None


def ecs_task_words(task: dict[str, Any]) -> str:
    """What ECS said of a stopped task, for the record: ``stopCode SpotInterruption:
    "Your Spot Task was interrupted."``, its containers' reasons and exit codes."""
    parts = []
    if task.get("stopCode"):
        parts.append(f"stopCode {task['stopCode']}")
    if task.get("stoppedReason"):
        parts.append(f"stoppedReason {task['stoppedReason']!r}")
    for container in task.get("containers") or []:
        if container.get("reason") or container.get("exitCode") is not None:
            parts.append(f"container {container.get('name', '?')}: "
                         f"{container.get('reason') or 'exit code'} "
                         f"({container.get('exitCode')})")
    return "; ".join(parts) or "nothing"


def ec2_instance_cause(instance: dict[str, Any]) -> str | None:
    """The cause an EC2 instance (a ``DescribeInstances`` entry) gives; None while it runs."""
    state = (instance.get("State") or {}).get("Name")
    code = (instance.get("StateReason") or {}).get("Code") or ""
    if code in _SPOT_STATE_CODES or instance.get("InstanceLifecycle") == "spot" and \
            state in ("shutting-down", "terminated", "stopped", "stopping") and \
            code.startswith("Server."):
        return causes.PREEMPTED
    if state in ("shutting-down", "terminated", "stopped", "stopping"):
        return causes.WORKER_LOST
    return None
