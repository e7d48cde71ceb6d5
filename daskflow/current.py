"""``current``: what the running task is, readable anywhere in a step.

The values live in a context variable, so each task sees its own even when a
worker runs several at once in threads.
"""

from __future__ import annotations

import contextvars
import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_STATE: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "daskflow_current", default=None)
_CARD: contextvars.ContextVar[Any] = contextvars.ContextVar("daskflow_card", default=None)


def username() -> str:
    """The user a run is recorded under.

    Metaflow 2.19's rule (``util.get_username``): the first of ``$METAFLOW_USER``,
    ``$SUDO_USER``, ``$USERNAME``, ``$USER`` that is set and not ``root``, after daskflow's
    own ``$DASKFLOW_USER``. Where Metaflow finds none and refuses to run ("Unknown user"),
    daskflow takes the login name (``root`` in many containers).
    """
    if os.environ.get("DASKFLOW_USER"):
        return os.environ["DASKFLOW_USER"]
    for var in ("METAFLOW_USER", "SUDO_USER", "USERNAME", "USER"):
        if os.environ.get(var) and os.environ[var] != "root":
            return os.environ[var]
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


class Current:
    """Read-only facts about the task that is running (``None`` outside a task).

    >>> from daskflow import current
    >>> current.is_running_flow
    False
    """

    def _get(self, key: str) -> Any:
        state = _STATE.get()
        return None if state is None else state.get(key)

    @property
    def is_running_flow(self) -> bool:
        return _STATE.get() is not None

    @property
    def flow_name(self) -> str | None:
        return self._get("flow_name")

    @property
    def run_id(self) -> str | None:
        return self._get("run_id")

    @property
    def step_name(self) -> str | None:
        return self._get("step_name")

    @property
    def task_id(self) -> str | None:
        return self._get("task_id")

    @property
    def retry_count(self) -> int:
        return self._get("retry_count") or 0

    @property
    def origin_run_id(self) -> str | None:
        return self._get("origin_run_id")

    @property
    def parallel(self) -> Any:
        """In a ``num_parallel`` gang: ``num_nodes``, ``node_index``, ``main_ip`` (node 0's
        host, reachable by the others), ``main_port`` (free there, for a framework's
        rendezvous) and ``control_task_id``; outside one, a gang of one."""
        info = self._get("parallel")
        if info is not None:
            return info
        from types import SimpleNamespace
        return SimpleNamespace(main_ip="127.0.0.1", num_nodes=1, node_index=0,
                               control_task_id=self.task_id, main_port=None)

    @property
    def project_name(self) -> str | None:
        """The flow's ``@project`` name (None without one)."""
        return self._get("project_name")

    @property
    def branch_name(self) -> str | None:
        """``user.<name>``, ``test.<branch>``, ``prod`` or ``prod.<branch>``."""
        return self._get("branch_name")

    @property
    def project_flow_name(self) -> str | None:
        """``<project>.<branch>.<FlowName>``."""
        return self._get("project_flow_name")

    @property
    def is_production(self) -> bool | None:
        return self._get("is_production")

    @property
    def is_user_branch(self) -> bool | None:
        return self._get("is_user_branch")

    @property
    def parameter_names(self) -> list[str] | None:
        """The attribute names of the flow's parameters, sorted (as in Metaflow)."""
        names = self._get("parameter_names")
        return None if names is None else list(names)

    @property
    def pathspec(self) -> str | None:
        state = _STATE.get()
        if state is None:
            return None
        return f"{state['flow_name']}/{state['run_id']}/{state['step_name']}/{state['task_id']}"

    @property
    def run(self) -> Any:
        """The running :class:`~daskflow.Run` (Metaflow's ``current.run``); None outside
        a task.  Its record says ``running`` until the run ends."""
        make = self._get("make_run")  # the runtime gives it: the client is above us
        return make() if make is not None else None

    @property
    def task(self) -> Any:
        """The running :class:`~daskflow.Task` (Metaflow's ``current.task``); None outside
        a task.  Its attempt has no final record until it ends."""
        make = self._get("make_task")
        return make() if make is not None else None

    @property
    def tags(self) -> frozenset[str]:
        return frozenset(self._get("tags") or ())

    @property
    def username(self) -> str:
        return self._get("username") or username()

    @property
    def namespace(self) -> str:
        return f"user:{self.username}"

    @property
    def client(self) -> Any:
        """A ``distributed.Client`` on the cluster this task runs on."""
        if not self.is_running_flow:
            return None
        from distributed import get_client
        return get_client()

    @property
    def card(self) -> Any:
        """The step's cards (``current.card.append(Markdown(...))``); None without ``@card``."""
        return _CARD.get()

    def __repr__(self) -> str:
        return f"<current {self.pathspec or 'outside a running flow'}>"


current = Current()


@contextmanager
def bind(**state: Any) -> Iterator[None]:
    """Make ``current`` describe one task while the block runs."""
    token = _STATE.set(state)
    try:
        yield
    finally:
        _STATE.reset(token)


@contextmanager
def bind_card(collector: Any) -> Iterator[None]:
    """Make ``current.card`` the running task's cards while the block runs (``@card``)."""
    token = _CARD.set(collector)
    try:
        yield
    finally:
        _CARD.reset(token)
