"""A cluster's labels in Kubernetes' terms: labels and annotations of its DaskCluster.

Labels select (``daskflow clusters list`` sends a label selector, :mod:`.inventory`)
but a label value is at most 63 letters, digits and ``-_.``; the exact values go to
annotations, which is where they are read back from.
"""

from __future__ import annotations

import re
from typing import Any

from ..labels import ClusterLabels

#: the Kubernetes label every daskflow DaskCluster carries, and ``list`` selects on
MANAGED_BY = ("app.kubernetes.io/managed-by", "daskflow")
#: prefix of daskflow's own label and annotation keys
K8S_PREFIX = "daskflow.dev/"
#: what a Kubernetes label value may be (at most 63 characters)
K8S_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def kubernetes_labels(labels: ClusterLabels) -> dict[str, str]:
    """Valid Kubernetes labels (``daskflow.dev/flow``, ``/run-id``, ``/step``, ...).

    A label value is at most 63 letters, digits, ``-_.`` that start and end
    alphanumeric; the exact values go to :func:`kubernetes_annotations`.

    >>> kubernetes_labels(ClusterLabels(run="Flow/17", step="a,b", user="ana@x"))
    ... # doctest: +NORMALIZE_WHITESPACE
    {'app.kubernetes.io/managed-by': 'daskflow', 'daskflow.dev/flow': 'Flow',
     'daskflow.dev/run-id': '17', 'daskflow.dev/step': 'a_b', 'daskflow.dev/user': 'ana_x'}
    """
    values = dict(labels.items())
    run = values.pop("run", None)
    if run:
        flow, _, run_id = run.partition("/")
        values = {"flow": flow, "run-id": run_id, **values}
    values.pop("driver", None)  # host:pid: an annotation, it selects nothing
    found = {MANAGED_BY[0]: MANAGED_BY[1]}
    found.update({K8S_PREFIX + k: label_value(v) for k, v in values.items()})
    return {k: v for k, v in found.items() if v}


def kubernetes_annotations(labels: ClusterLabels) -> dict[str, str]:
    """The exact values, which labels may have had to change."""
    return {K8S_PREFIX + k: v for k, v in labels.items()}


def from_kubernetes(metadata: dict[str, Any]) -> ClusterLabels:
    """Back from a DaskCluster's metadata: annotations first, labels as a fallback."""
    found = {k[len(K8S_PREFIX):]: v for k, v in
             {**(metadata.get("labels") or {}), **(metadata.get("annotations") or {})}.items()
             if k.startswith(K8S_PREFIX)}
    if "run" not in found and "flow" in found:
        found["run"] = f"{found['flow']}/{found.get('run-id', '')}"
    return ClusterLabels.from_fields(found)


def label_value(text: str) -> str:
    """``text`` as a valid Kubernetes label value: other characters become ``_``, cut to 63.

    >>> label_value("Flow/12 train"), label_value("-x-"), len(label_value("a" * 99))
    ('Flow_12_train', 'x', 63)
    """
    value = re.sub(r"[^-A-Za-z0-9_.]", "_", text)[:63]
    value = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)
    assert K8S_VALUE.fullmatch(value)
    return value
