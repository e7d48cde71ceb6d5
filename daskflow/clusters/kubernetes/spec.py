"""The pure half of the kubernetes backend: Kubernetes quantities and the DaskCluster schema.

Nothing here contacts an API server; the CRD (with its ``openAPIV3Schema``) is the
one that ships inside the installed dask-kubernetes.
"""

from __future__ import annotations

import functools
import math
from typing import Any

#: Where the DaskCluster CRD (with its openAPIV3Schema) ships inside dask-kubernetes.
CRD_PATH = ("operator", "deployment", "helm", "dask-kubernetes-operator", "crds",
            "daskcluster.yaml")


# -- Kubernetes quantities ---------------------------------------------------------------------
_BINARY = (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))
_DECIMAL = (("E", 10**18), ("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3))


def memory_quantity(n: int) -> str:
    """Bytes as the shortest exact Kubernetes quantity: ``8Gi``, ``1500M``, ``512Mi``.

    >>> memory_quantity(8 * 2**30), memory_quantity(1500 * 10**6), memory_quantity(2**29)
    ('8Gi', '1500M', '512Mi')
    """
    for suffix, size in _BINARY + _DECIMAL:
        if n % size == 0 and n >= size:
            return f"{n // size}{suffix}"
    return str(n)


def cpu_quantity(cpu: float) -> str:
    """Cores as a Kubernetes quantity: ``2``, ``500m`` (millicores, rounded up).

    >>> cpu_quantity(2), cpu_quantity(0.5), cpu_quantity(1.25), cpu_quantity(0.0001)
    ('2', '500m', '1250m', '1m')
    """
    if float(cpu).is_integer():
        return str(int(cpu))
    return f"{max(1, math.ceil(cpu * 1000 - 1e-9))}m"


def parse_quantity(text: Any) -> float:
    """A Kubernetes quantity (``3920m``, ``16318056Ki``, ``1.5Gi``, ``2``) as a number.

    >>> parse_quantity("3920m"), parse_quantity("16Gi") == 16 * 2**30, parse_quantity("2")
    (3.92, True, 2.0)
    """
    text = str(text).strip()
    for suffix, size in _BINARY + _DECIMAL:
        if text.endswith(suffix):
            return float(text[:-len(suffix)]) * size
    if text.endswith("m"):
        return float(text[:-1]) / 1000
    return float(text)


@functools.lru_cache(maxsize=1)
def crd_schema() -> dict[str, Any]:
    """The DaskCluster ``openAPIV3Schema`` of the installed dask-kubernetes."""
    import os

    import dask_kubernetes
    import yaml
    path = os.path.join(os.path.dirname(dask_kubernetes.__file__), *CRD_PATH)
    with open(path) as f:
        crd = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return version["schema"]["openAPIV3Schema"]


def validate_cluster_spec(spec: dict[str, Any]) -> list[str]:
    """What the API server would refuse or silently drop in ``spec``; [] when it is all fine.

    Checks the DaskCluster against its CRD's schema with jsonschema, and also
    lists fields the schema does not know: a structural schema makes the API
    server prune them without a word, so a typo (``nodeselector``) would be lost.
    """
    import jsonschema
    schema = crd_schema()
    validator = jsonschema.Draft7Validator(schema)
    problems = [f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
                for error in sorted(validator.iter_errors(spec), key=lambda e: list(e.path))]
    problems += [f"{path}: unknown field (the API server would drop it)"
                 for path in _unknown_fields(spec, schema, "")]
    return problems


def _unknown_fields(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    if schema.get("x-kubernetes-preserve-unknown-fields") or not isinstance(schema, dict):
        return []
    found: list[str] = []
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if path == "" and key in ("apiVersion", "kind", "metadata"):
                continue
            sub = schema["properties"].get(key)
            where = f"{path}.{key}" if path else key
            if sub is None:
                found.append(where)
            else:
                found += _unknown_fields(item, sub, where)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            found += _unknown_fields(item, schema["items"], f"{path}[{i}]")
    return found
