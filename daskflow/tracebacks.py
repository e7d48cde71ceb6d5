"""Tracebacks of user code that ran on a Dask worker, as the user can read them.

Code pickled by value (a flow file, ``__main__``, a lambda) reaches the workers
with cloudpickle, which names its file ``<dynamic-code>``.  Its line numbers
are right, so the real file name can be put back, and its source lines read
where the file exists.  One implementation serves a step's traceback (the
runtime, on the worker, which knows the flow file) and ``parallel_map``'s (a
traceback formatted on a worker, repaired on the caller's side, which knows
the function's file).

>>> text = '  File "<dynamic-code>", line 3, in start\\n'
>>> restore_dynamic_code(text, "flow.py")
'  File "flow.py", line 3, in start\\n'
"""

from __future__ import annotations

import linecache
import os
import re
import traceback
from collections.abc import Sequence
from types import FrameType

__all__ = ["add_source_lines", "format_user_stack", "format_user_traceback",
           "restore_dynamic_code"]

DYNAMIC_CODE = "<dynamic-code>"

# The frames of daskflow's own code that call a step's body: the runtime's.
_RUNTIME = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runtime")

# A frame's line; in an exception group's traceback it follows a "    | " margin.
_FRAME = re.compile(r'(\s*(?:\|\s*)?)File "(.+)", line (\d+), in .*')
_DYNAMIC_FRAME = re.compile(r'(\s*(?:\|\s*)?)File "<dynamic-code>", line (\d+), in (.*)')


def format_user_traceback(exc: BaseException, flow_file: str | None = None, *,
                          skip: str | Sequence[str] = _RUNTIME) -> str:
    """``exc``'s traceback from the user's code down, with the flow file's real name.

    Parameters
    ----------
    exc : BaseException
        The exception, with its traceback.
    flow_file : str, optional
        The file that ``<dynamic-code>`` frames come from; None leaves them as
        they are (for a caller who knows the file, see :func:`restore_dynamic_code`).
    skip : str or sequence of str
        Frames at the top of the traceback whose file starts with one of these
        paths (files or folders) are dropped: the machinery that called the
        user's code.  Default: daskflow's runtime.  The last frame always stays.

    >>> try:                                                        # doctest: +SKIP
    ...     flow.start()
    ... except Exception as exc:
    ...     print(format_user_traceback(exc, "flow.py"))
    """
    prefixes = (skip,) if isinstance(skip, str) else tuple(skip)
    summary = traceback.TracebackException.from_exception(exc)
    frames = list(summary.stack)
    while len(frames) > 1 and frames[0].filename.startswith(prefixes):
        frames.pop(0)
    summary.stack = traceback.StackSummary.from_list(frames)
    text = "".join(summary.format())
    return restore_dynamic_code(text, flow_file) if flow_file else text


def format_user_stack(frame: FrameType, flow_file: str | None = None, *,
                      caller: str = _RUNTIME) -> str:
    """Where a running thread is, from the user's code down: the frames under the last
    one of ``caller`` (daskflow's runtime, which called the step), with the flow file's
    real name; the whole stack if no frame is the caller's."""
    frames = traceback.extract_stack(frame)
    called = [i for i, f in enumerate(frames) if f.filename.startswith(caller)]
    if called and called[-1] + 1 < len(frames):
        frames = traceback.StackSummary.from_list(frames[called[-1] + 1:])
    text = "".join(frames.format())
    return restore_dynamic_code(text, flow_file) if flow_file else text


def restore_dynamic_code(text: str, filename: str) -> str:
    """Name ``filename`` in ``text``'s ``<dynamic-code>`` frames, with their source lines.

    ``text`` is a formatted traceback (one from another process, say); a source
    line is added under each frame where ``filename`` can be read here.
    """
    if DYNAMIC_CODE not in text:
        return text
    lines = []
    for line in text.splitlines(keepends=True):
        match = _DYNAMIC_FRAME.fullmatch(line.rstrip("\n"))
        if match is None:
            lines.append(line)
            continue
        indent, lineno, name = match.groups()
        lines.append(f'{indent}File "{filename}", line {lineno}, in {name}\n')
        source = linecache.getline(filename, int(lineno)).strip()
        if source:
            lines.append(f"{indent}  {source}\n")  # under the File line, as Python does
    return "".join(lines)


def add_source_lines(text: str) -> str:
    """Put each frame's source line under it where the process that formatted ``text``
    could not read it and this one can: a notebook cell's code, which only the
    kernel's ``linecache`` holds, shown in a traceback formatted on a worker.

    >>> add_source_lines('  File "<nowhere>", line 1, in f\\n')
    '  File "<nowhere>", line 1, in f\\n'
    """
    lines = text.splitlines(keepends=True)
    out = []
    for i, line in enumerate(lines):
        out.append(line)
        match = _FRAME.fullmatch(line.rstrip("\n"))
        if match is None:
            continue
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if following.startswith(match.group(1) + "  ") and \
                not _FRAME.fullmatch(following.rstrip("\n")):
            continue  # it has its source line already
        source = linecache.getline(match.group(2), int(match.group(3))).strip()
        if source:
            out.append(f"{match.group(1)}  {source}\n")
    return "".join(out)
