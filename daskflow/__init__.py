"""daskflow: Metaflow-style flows that run on Dask.

Change ``from metaflow import ...`` to ``from daskflow import ...`` and run
``python flow.py run``.
"""

__version__ = "0.1.0"

from . import config  # noqa: E402  (loads the defaults into dask.config)
from .collections import parallel_imap_unordered, parallel_map  # noqa: E402
from .configs import Config, ConfigValue, config_expr  # noqa: E402
from .client import DataArtifact, Flow, Run, Step, Task, default_namespace, get_namespace, namespace  # noqa: E402
from .cards import card  # noqa: E402
from .current import current  # noqa: E402
from .exceptions import DaskflowException  # noqa: E402
from .flowspec import FlowSpec, step  # noqa: E402
from .parameters import IncludeFile, JSONType, Parameter  # noqa: E402
from .project import project  # noqa: E402
from .runtime import NBRunner, Runner  # noqa: E402
from .steps import cache, catch, environment, parallel, resources, retry, timeout  # noqa: E402

__all__ = [
    "Config",
    "ConfigValue",
    "DaskflowException",
    "DataArtifact",
    "Flow",
    "FlowSpec",
    "IncludeFile",
    "JSONType",
    "NBRunner",
    "Parameter",
    "Run",
    "Runner",
    "Step",
    "Task",
    "cache",
    "card",
    "catch",
    "config",
    "config_expr",
    "current",
    "default_namespace",
    "environment",
    "get_namespace",
    "namespace",
    "parallel",
    "parallel_imap_unordered",
    "parallel_map",
    "project",
    "resources",
    "retry",
    "step",
    "timeout",
]
