"""Flow files written for Metaflow, run unchanged on daskflow.

``daskflow run flow.py run --alpha 1`` runs a file whose imports say ``from metaflow
import FlowSpec, step, ...``: an import hook (:mod:`.alias`), installed in that process
and in the workers of its run, answers ``import metaflow`` (and ``metaflow.cards``,
``metaflow.exception``, ...) with modules made from daskflow's own API, whether or not
Metaflow itself is installed. :mod:`.metaflow_names` is the table of what each
Metaflow name becomes, and of the features daskflow refuses, each with a one-line
reason. Nothing is written into site-packages, and a process that never asks for the
alias never gets it.
"""

from ..exceptions import MetaflowFeatureError
from .alias import (
    alias_active,
    install_metaflow_alias,
    is_metaflow_file,
    uninstall_metaflow_alias,
)

__all__ = [
    "MetaflowFeatureError",
    "alias_active",
    "install_metaflow_alias",
    "is_metaflow_file",
    "uninstall_metaflow_alias",
]
