"""What a flow name, run id, step name and task id may be.

The datastore builds paths from these, so each is checked before a path is:
``Flow("../../tmp")`` or ``resume --origin-run-id ../../outside/123`` is
refused here instead of reading or writing outside the datastore.  The CLI
and the runtime call the same functions for what a user types.

>>> check_run_id("1712345678901234")
'1712345678901234'
>>> check_flow_name("../../tmp")                               # doctest: +SKIP
InvalidNameError: Flow name '../../tmp' is not a Python identifier: ...
"""

from __future__ import annotations

import re

from ..exceptions import InvalidNameError

_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also takes '²' and '٣'


def check_flow_name(name: str) -> str:
    """``name`` if it is a flow's name (its FlowSpec class name), else InvalidNameError."""
    return _identifier(name, "Flow name", "a flow is named after its FlowSpec class, e.g. "
                                          "'HelloFlow'")


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is a run id as daskflow makes them (digits), else InvalidNameError.

    Resume takes its ``--origin-run-id`` through this too.
    """
    return _digits(run_id, "Run id", "a daskflow run id: run ids are digits, as a run prints "
                                     "them (e.g. 1712345678901234). Check the pathspec or "
                                     "--origin-run-id")


def check_step_name(name: str) -> str:
    """``name`` if it is a step's name (a method name), else InvalidNameError."""
    return _identifier(name, "Step name", "a step is named after its method, e.g. 'start'")


def check_task_id(task_id: str) -> str:
    """``task_id`` if it is a task id as daskflow makes them (digits), else InvalidNameError."""
    return _digits(task_id, "Task id", "a daskflow task id: task ids are digits, e.g. 3")


def _identifier(name: str, what: str, hint: str) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise InvalidNameError(f"{what} {name!r} is not a Python identifier: {hint}.")
    return name


def _digits(name: str, what: str, hint: str) -> str:
    if not isinstance(name, str) or not _DIGITS.fullmatch(name):
        raise InvalidNameError(f"{what} {name!r} is not {hint}.")
    return name


def is_step_name(name: str) -> bool:
    return name.isidentifier()


def is_id(name: str) -> bool:
    """True for a run or task id (what a listing keeps; anything else is not ours)."""
    return bool(_DIGITS.fullmatch(name))
