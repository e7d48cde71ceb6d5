"""The Kubernetes backend: dask-kubernetes' operator (``KubeCluster``), one pod per worker.

Everything about Kubernetes is in this folder:

- :mod:`.backend`: the request as a ``DaskCluster`` resource, the preflight, start, teardown;
- :mod:`.api`: bounded calls to the API server (kr8s), and an error per way it can fail;
- :mod:`.spec`: Kubernetes quantities and the check against the operator's CRD schema;
- :mod:`.secrets`: secret variables as a Secret the pods refer to;
- :mod:`.cluster`: ``KubeCluster`` with a bounded start;
- :mod:`.labels`: a cluster's run, step, user, ... as labels and annotations;
- :mod:`.inventory`: daskflow's live DaskClusters, found by label selector.

Importing this package imports dask-kubernetes: the registry does it only when
the kubernetes backend is asked for.
"""

from .api import (
    DaskOperatorMissingError,
    KubeconfigError,
    KubernetesForbiddenError,
    KubernetesUnreachableError,
)
from .backend import KubernetesBackend
from .spec import cpu_quantity, memory_quantity, parse_quantity, validate_cluster_spec

__all__ = ["DaskOperatorMissingError", "KubeconfigError", "KubernetesBackend",
           "KubernetesForbiddenError", "KubernetesUnreachableError", "cpu_quantity",
           "memory_quantity", "parse_quantity", "validate_cluster_spec"]
