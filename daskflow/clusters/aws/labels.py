"""A cluster's labels in AWS's terms: tags on its ECS task definitions, tasks and EC2 instances.

``daskflow clusters list`` finds daskflow's tasks and instances by the
``daskflow-cluster`` tag and reads their run back from the others (:mod:`.inventory`).
"""

from __future__ import annotations

import re

from ..labels import ClusterLabels

#: prefix of daskflow's own tag keys
TAG_PREFIX = "daskflow-"
#: the tag on every resource of a daskflow cluster: its unique name
CLUSTER_TAG = "daskflow-cluster"
#: what an AWS tag value may hold (letters, digits, spaces and + - = . _ : / @)
AWS_VALUE_BAD = re.compile(r"[^\w +\-=.:/@]")


def aws_tags(labels: ClusterLabels) -> dict[str, str]:
    """ECS/EC2 tags: ``daskflow-run``, ``daskflow-step``, ... (values cleaned for AWS).

    >>> aws_tags(ClusterLabels(run="F/1", step="a,b", user="x y"))
    {'daskflow-run': 'F/1', 'daskflow-step': 'a_b', 'daskflow-user': 'x y'}
    """
    return {TAG_PREFIX + k: AWS_VALUE_BAD.sub("_", v)[:256] for k, v in labels.items()}


def from_aws_tags(tags: dict[str, str]) -> ClusterLabels:
    """The labels of a task's or instance's tags (cleaned values stay cleaned)."""
    return ClusterLabels.from_fields({k[len(TAG_PREFIX):]: v for k, v in tags.items()
                                      if k.startswith(TAG_PREFIX)})
