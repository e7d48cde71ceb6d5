"""Capture what a task prints, per task, even with several tasks in one process.

``sys.stdout`` and ``sys.stderr`` are replaced once per process by a router
that sends each thread's writes to the capture of the task that thread runs,
and everything else to the original stream.  Complete lines can also be
forwarded to the driver as Dask events, so the terminal shows task output
from any cluster, prefixed with the task's pathspec.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

OUTPUT_TOPIC = "daskflow-output"
TASK_TOPIC = "daskflow-task"      # attempts starting and failing, for the live view
STREAM_LIMIT = 1_000_000  # characters per task echoed to the terminal; the log keeps all

_local = threading.local()
_install_lock = threading.Lock()


class _Capture:
    def __init__(self, pathspec: str, forward: Any) -> None:
        self.pathspec = pathspec
        self.forward = forward
        self.buffers = {"stdout": io.StringIO(), "stderr": io.StringIO()}
        self.pending = {"stdout": "", "stderr": ""}
        self.streamed = 0

    def write(self, stream: str, text: str) -> None:
        self.buffers[stream].write(text)
        if self.forward is None:
            return
        data = self.pending[stream] + text
        if "\n" not in text and len(data) < 8192:
            self.pending[stream] = data  # wait for the rest of the line
            return
        head, sep, tail = data.rpartition("\n")
        if not sep:  # a very long line without a newline: send it as it is
            head, tail = data, ""
        self.pending[stream] = tail
        self._send(stream, head + sep)

    def _send(self, stream: str, text: str) -> None:
        if not text or self.streamed > STREAM_LIMIT:
            return
        self.streamed += len(text)
        if self.streamed > STREAM_LIMIT:
            text += (f"[output of {self.pathspec} is long: the terminal shows the first "
                     f"{STREAM_LIMIT} characters; `logs` has all of it]\n")
        try:
            self.forward(OUTPUT_TOPIC, {"p": self.pathspec, "s": stream, "t": text})
        except Exception:
            self.forward = None  # the driver is gone; keep capturing

    def flush_pending(self) -> None:
        for stream, text in self.pending.items():
            if text:
                self._send(stream, text if text.endswith("\n") else text + "\n")
                self.pending[stream] = ""


class _Router(io.TextIOBase):
    def __init__(self, name: str, original: TextIO) -> None:
        self.name = name
        self.original = original

    def write(self, text: str) -> int:
        cap = getattr(_local, "capture", None)
        if cap is None:
            return self.original.write(text)
        cap.write(self.name, text)
        return len(text)

    def flush(self) -> None:
        if getattr(_local, "capture", None) is None:
            self.original.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8")

    def fileno(self) -> int:
        return self.original.fileno()


def _install() -> None:
    with _install_lock:
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router("stdout", sys.stdout)
        if not isinstance(sys.stderr, _Router):
            sys.stderr = _Router("stderr", sys.stderr)


def announce(event: str, step: str, task_id: str, attempt: int) -> None:
    """Tell the driver an attempt started or failed (no-op off a Dask worker)."""
    forward = _forwarder()
    if forward is not None:
        try:
            forward(TASK_TOPIC, {"e": event, "s": step, "t": task_id, "a": attempt})
        except Exception:
            pass  # the view only misses a detail


def _forwarder() -> Any:
    try:
        from distributed import get_worker
        return get_worker().log_event
    except (ImportError, ValueError):
        return None  # not on a Dask worker: nothing to forward to


@contextmanager
def capture_output(pathspec: str, stream: bool) -> Iterator[_Capture]:
    """Capture this thread's stdout/stderr while the block runs."""
    _install()
    cap = _Capture(pathspec, _forwarder() if stream else None)
    previous = getattr(_local, "capture", None)
    _local.capture = cap
    try:
        yield cap
    finally:
        _local.capture = previous
        cap.flush_pending()
