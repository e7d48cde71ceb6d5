"""A step cluster's secret variables, set in each worker process by a worker plugin.

A backend that cannot pass secrets by reference (local, SLURM, SSH, EC2) must not
put them in a job script, a command line or cloud-init (``ps``, ``scontrol``, the
instance's user data show those). So the driver reads the values and sends them
over the cluster's own connection (TLS by default) in this plugin, which sets
them in every worker process, those that join later too, before any task; tasks
the step submits to its cluster (``current.client``) see them as well.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from distributed import WorkerPlugin

from ..secrets import SecretValue


class WorkerSecrets(WorkerPlugin):
    """Sets ``values`` (name: :class:`~daskflow.secrets.SecretValue`) in ``os.environ``."""

    name = "daskflow-secrets"

    def __init__(self, values: Mapping[str, SecretValue]) -> None:
        self.values = dict(values)

    def __repr__(self) -> str:
        return f"WorkerSecrets({', '.join(self.values)})"

    def setup(self, worker: Any) -> None:
        os.environ.update({name: value.reveal() for name, value in self.values.items()})
