"""How Kubernetes says a worker's pod ended, as a cause: its pod status.

A worker is one pod.  Its status says why it stopped: a container terminated with
reason ``OOMKilled`` (its memory limit), the pod ``Evicted`` by the kubelet, or a
``DisruptionTarget`` condition (preempted by the scheduler for a pod of higher
priority, evicted through the Eviction API, its node drained or tainted).  A pure
function here, fed in the tests with pod statuses as the API server writes them.

>>> pod_cause({"status": {"containerStatuses": [{"lastState": {"terminated":
...     {"reason": "OOMKilled", "exitCode": 137}}}]}})
'out-of-memory'
"""

from __future__ import annotations

from typing import Any

from ... import causes

#: DisruptionTarget reasons (Kubernetes' pod disruption conditions): capacity taken back
DISRUPTIONS = {"PreemptionByScheduler", "PreemptionByKubeScheduler", "EvictionByEvictionAPI",
               "DeletionByTaintManager", "TerminationByKubelet", "DeletionByPodGC"}


def _terminations(pod: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        for key in ("state", "lastState"):
            terminated = (status.get(key) or {}).get("terminated")
            if terminated:
                found.append(terminated)
    return found


def pod_cause(pod: dict[str, Any]) -> str | None:
    """The cause a worker pod's status gives; None for a pod that runs and never stopped."""
    status = pod.get("status") or {}
    terminations = _terminations(pod)
    if any(t.get("reason") == "OOMKilled" for t in terminations):
        return causes.OUT_OF_MEMORY
    if status.get("reason") in ("Evicted", "Preempting"):
        return causes.PREEMPTED
    for condition in status.get("conditions") or []:
        if condition.get("type") == "DisruptionTarget" and condition.get("status") == "True" \
                and condition.get("reason") in DISRUPTIONS:
            return causes.PREEMPTED
    if terminations or status.get("phase") in ("Failed", "Succeeded"):
        return causes.WORKER_LOST
    return None


def pod_words(pod: dict[str, Any]) -> str:
    """What a pod's status says of its end, for the record."""
    status = pod.get("status") or {}
    parts = [f"pod {(pod.get('metadata') or {}).get('name', '?')} {status.get('phase', '?')}"]
    if status.get("reason"):
        parts.append(f"{status['reason']}: {status.get('message', '')}".strip(": "))
    for condition in status.get("conditions") or []:
        if condition.get("type") == "DisruptionTarget" and condition.get("status") == "True":
            parts.append(f"DisruptionTarget {condition.get('reason')}: "
                         f"{condition.get('message', '')}".strip(": "))
    for terminated in _terminations(pod):
        parts.append(f"container terminated: {terminated.get('reason')} "
                     f"(exit code {terminated.get('exitCode')})")
    return "; ".join(parts)
