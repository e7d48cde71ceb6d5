"""daskflow's settings, kept in ``dask.config`` under the ``daskflow`` key.

Defaults ship in ``daskflow.yaml`` beside this module and are merged the way
every Dask project does it; a user overrides them with a YAML file in the Dask
config folder, ``DASK_DASKFLOW__...`` environment variables or
``dask.config.set({"daskflow.run.max-workers": 4})``.
"""

from __future__ import annotations

import os
from typing import Any

import dask.config
import yaml

_DEFAULTS_FILE = os.path.join(os.path.dirname(__file__), "daskflow.yaml")

with open(_DEFAULTS_FILE) as _f:
    _DEFAULTS = yaml.safe_load(_f)

if _DEFAULTS not in dask.config.defaults:  # each code package's daskflow imports this
    dask.config.update_defaults(_DEFAULTS)   # once in a shared worker: add them once


def get(key: str, override_with: Any = None) -> Any:
    """Return ``daskflow.<key>`` from dask.config, or ``override_with`` when it is not None.

    >>> get("run.max-num-splits")
    100
    """
    return dask.config.get(f"daskflow.{key}", override_with=override_with)
