"""``@project(name=...)``: runs of a flow grouped by project and branch (Metaflow's meaning).

>>> @project(name="fraud_model")                         # doctest: +SKIP
... class TrainFlow(FlowSpec): ...

A run is on the branch ``user.<username>`` by default (``$METAFLOW_OWNER`` instead when
set), ``test.<branch>`` with ``--branch``, ``prod`` with ``--production`` and
``prod.<branch>`` with both, exactly as Metaflow 2.19 names them; ``@project(branch=...,
production=...)`` sets the same in the code (and any value may come from a ``Config``);
``current.project_name``, ``current.branch_name``, ``current.project_flow_name``
(``<project>.<branch>.<Flow>``), ``current.is_production`` and
``current.is_user_branch`` say which, and the run carries the system tags
``project:<name>`` and ``project_branch:<branch>``, so
``namespace("project_branch:prod")`` lists the production runs.
"""

from __future__ import annotations

import os
import re
from typing import Any, NamedTuple

from .exceptions import FlowDefinitionError

_BAD = re.compile(r"[^a-z0-9_]")
_LONGEST = 128


def project(cls: type | None = None, *, name: Any = None, branch: Any = None,
            production: Any = None) -> Any:
    """Put a flow class in project ``name`` (lowercase letters, digits and underscores).

    ``branch=`` and ``production=`` set what ``--branch`` and ``--production`` would (as
    Metaflow 2.19's ``@project``); giving one both here and, differently, on the command
    line is refused.
    """
    if cls is not None:  # bare @project: no name
        cls._df_project = ProjectSpec(None)
        return cls

    def attach(flow_cls: type) -> type:
        flow_cls._df_project = ProjectSpec(name, branch, production)
        return flow_cls

    return attach


class ProjectSpec(NamedTuple):
    """What ``@project(...)`` was given (a value may wait for a ``Config``)."""

    name: Any
    branch: Any = None
    production: Any = None


def _spec(flow_cls: type) -> ProjectSpec:
    from .configs import resolve_delayed
    spec = flow_cls._df_project
    return ProjectSpec(*(resolve_delayed(v, flow_cls) for v in spec))


def flow_project(flow_cls: type) -> str | None:
    """The project of ``flow_cls`` (None without ``@project``); a bad name is refused."""
    if not has_project(flow_cls):
        return None
    name = _spec(flow_cls).name
    _check(name, "The @project name", flow_cls, "@project(name='some_name')")
    return name


def has_project(flow_cls: type) -> bool:
    return hasattr(flow_cls, "_df_project")


def project_facts(flow_cls: type, *, branch: str | None, production: bool,
                  user: str) -> dict[str, Any] | None:
    """What ``current`` says of the run's project and branch; None without ``@project``.

    Metaflow 2.19's rules (``format_name`` of its project decorator): the branch is
    ``test.<branch>`` or ``prod.<branch>`` with a branch, ``prod`` with production alone,
    else ``user.<$METAFLOW_OWNER or the user>``.
    """
    if not has_project(flow_cls):
        if branch or production:
            raise FlowDefinitionError(
                f"--branch and --production need @project on {flow_cls.__name__}: add "
                f"@project(name='...') above the class.")
        return None
    name = flow_project(flow_cls)
    spec = _spec(flow_cls)
    branch = _one_value("branch", spec.branch, branch, None)
    production = bool(_one_value("production", spec.production, production, False))
    if branch:
        _check(branch, "The branch name", flow_cls, "--branch my_branch")
        branch_name = f"{'prod' if production else 'test'}.{branch}"
    elif production:
        branch_name = "prod"
    else:
        branch_name = f"user.{os.environ.get('METAFLOW_OWNER') or user}"
    return {"project_name": name, "branch_name": branch_name,
            "project_flow_name": f"{name}.{branch_name}.{flow_cls.__name__}",
            "is_production": production, "is_user_branch": branch is None and not production}


def _one_value(option: str, attribute: Any, given: Any, default: Any) -> Any:
    """The decorator's value unless the command line gave a different, non-default one."""
    if attribute is None:
        return given
    if given not in (None, default) and given != attribute:
        raise FlowDefinitionError(
            f"You cannot pass {option} as both a command-line argument and an attribute "
            f"of the @project decorator: drop --{option} or @project({option}=...).")
    return attribute


def project_tags(facts: dict[str, Any] | None) -> list[str]:
    if not facts:
        return []
    return [f"project:{facts['project_name']}", f"project_branch:{facts['branch_name']}"]


def _check(value: Any, what: str, flow_cls: type, example: str) -> None:
    if not value:
        raise FlowDefinitionError(f"@project on {flow_cls.__name__} needs a name. Try "
                                  f"@project(name='some_name').")
    if not isinstance(value, str) or _BAD.search(value):
        raise FlowDefinitionError(
            f"{what} {value!r} of {flow_cls.__name__} must contain only lowercase "
            f"alphanumeric characters and underscores, e.g. {example}.")
    if len(value) > _LONGEST:
        raise FlowDefinitionError(f"{what} {value[:20]!r}... is longer than {_LONGEST} "
                                  f"characters.")
