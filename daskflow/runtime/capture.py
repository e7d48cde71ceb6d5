"""Capture what a task prints, per task, even with several tasks in one process.

``sys.stdout`` and ``sys.stderr`` are replaced once per process by a router
that sends each thread's writes (text, or bytes through ``.buffer``) to the
capture of the task that thread runs, and everything else to the original
stream.  In a worker process that runs one task at a time, what is written to
the file descriptors themselves (``os.write``, subprocesses, C extensions) is
captured too, as Metaflow's task logs have it.  Complete lines can also be
forwarded to the driver as Dask events, so the terminal shows task output from
any cluster, prefixed with the task's pathspec; the text forwarded is always
valid UTF-8, so no output can break the worker's connection.
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from ..scratch import owned_prefix

OUTPUT_TOPIC = "daskflow-output"
TASK_TOPIC = "daskflow-task"      # attempts starting and failing, for the live view
STREAM_LIMIT = 1_000_000  # characters per task echoed to the terminal; the log keeps all

_local = threading.local()
_install_lock = threading.Lock()


class _Capture:
    def __init__(self, pathspec: str, forward: Any, spool: str | None = None) -> None:
        self.pathspec = pathspec
        self.forward = forward
        self.buffers = {"stdout": io.StringIO(), "stderr": io.StringIO()}
        self.pending = {"stdout": "", "stderr": ""}
        self.streamed = 0
        self.spool = spool
        self.spooled: dict[str, Any] = {}

    def _spool(self, stream: str, text: str) -> None:
        """Also on disk as it comes, so a process that dies keeps its output so far."""
        try:
            f = self.spooled.get(stream)
            if f is None:
                f = self.spooled[stream] = open(f"{self.spool}.{stream}", "a",
                                                encoding="utf-8", errors="replace")
            f.write(text)
            f.flush()
        except OSError:
            self.spool = None  # a full or read-only disk: the log still comes at the end

    def close_spool(self) -> None:
        for f in self.spooled.values():
            f.close()
        remove_spool(self.spool)

    def write(self, stream: str, text: str) -> None:
        self.buffers[stream].write(text)
        if self.spool is not None:
            self._spool(stream, text)
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
        # a lone surrogate (os.fsdecode of a non-UTF-8 name) would fail msgpack in the
        # worker's batched stream, and the worker would get no more tasks
        text = text.encode("utf-8", "replace").decode("utf-8")
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

    @property
    def buffer(self) -> _BinaryRouter:
        return _BinaryRouter(self)


class _BinaryRouter(io.RawIOBase):
    """``sys.stdout.buffer``: bytes a task writes go to its capture as text."""

    def __init__(self, router: _Router) -> None:
        self.router = router

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        cap = getattr(_local, "capture", None)
        if cap is None:
            return self.router.original.buffer.write(data)
        data = bytes(data)
        cap.write(self.router.name, data.decode("utf-8", "replace"))
        return len(data)

    def flush(self) -> None:
        self.router.flush()


def _install() -> None:
    with _install_lock:
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router("stdout", sys.stdout)
        if not isinstance(sys.stderr, _Router):
            sys.stderr = _Router("stderr", sys.stderr)


def announce(event: str, step: str, task_id: str | list[str], attempt: int,
             run_id: str, cause: str | None = None) -> None:
    """Tell the driver of run ``run_id`` an attempt started or failed (no-op off a Dask
    worker); a batch of splits announces all its task ids in one event.  ``cause``: why
    an attempt that is retried failed."""
    forward = _forwarder()
    if forward is not None:
        try:
            message = {"e": event, "s": step, "t": task_id, "a": attempt, "r": run_id}
            if cause is not None:
                message["c"] = cause
            forward(TASK_TOPIC, message)
        except Exception:
            pass  # the view only misses a detail


def _forwarder() -> Any:
    try:
        from distributed import get_worker
        return get_worker().log_event
    except (ImportError, ValueError):
        return None  # not on a Dask worker: nothing to forward to


@contextmanager
def capture_output(pathspec: str, stream: bool,
                   spool: str | None = None) -> Iterator[_Capture]:
    """Capture this thread's stdout/stderr while the block runs (and the process's
    file descriptors 1 and 2 when this process runs only this task).

    With ``spool`` (a path without suffix) the output is also written to
    ``<spool>.stdout``, ``.stderr``, ``.fd1`` and ``.fd2`` as it comes, and those files
    are removed at the end: after a crash they hold what the task printed
    (:func:`read_spool`).
    """
    _install()
    cap = _Capture(pathspec, _forwarder() if stream else None, spool)
    previous = getattr(_local, "capture", None)
    _local.capture = cap
    try:
        if previous is None and _one_task_at_a_time():
            with _capture_fds(cap, spool):
                yield cap
        else:
            yield cap
    finally:
        _local.capture = previous
        cap.flush_pending()
        cap.close_spool()


@contextmanager
def bind_capture(cap: _Capture) -> Iterator[None]:
    """Send this thread's stdout/stderr to ``cap`` (a capture another thread made) while
    the block runs: what a hook prints for an attempt, from the thread that calls it."""
    _install()
    previous = getattr(_local, "capture", None)
    _local.capture = cap
    try:
        yield
    finally:
        _local.capture = previous


_SPOOL_PARTS = (("stdout", "stdout"), ("fd1", "stdout"), ("stderr", "stderr"),
                ("fd2", "stderr"))
_SPOOL_NOTE = "json"


#: the first line Python's faulthandler writes when its process gets SIGSEGV
_SEGFAULT = "Fatal Python error: Segmentation fault"


def _report_crashes() -> None:
    """Have Python write where its code was to file descriptor 2 if the process crashes
    (SIGSEGV, SIGABRT, ...): while a task's descriptors are captured, into its spool, so
    that the attempt's stderr says how it died."""
    import faulthandler
    if not faulthandler.is_enabled():
        faulthandler.enable(file=2, all_threads=False)


def crash_note(stderr: str) -> str:
    """The line Metaflow's runtime ends a dead task's stderr with: ``Task failed with a
    segmentation fault.`` when its process got SIGSEGV, else ``Task failed.``

    >>> crash_note("Fatal Python error: Segmentation fault\n")
    'Task failed with a segmentation fault.\n'
    """
    return "Task failed with a segmentation fault.\n" if _SEGFAULT in stderr \
        else "Task failed.\n"


def read_spool(spool: str) -> dict[str, str]:
    """What a dead attempt's process printed before it died, by stream."""
    found = {"stdout": "", "stderr": ""}
    for suffix, stream in _SPOOL_PARTS:
        try:
            with open(f"{spool}.{suffix}", "rb") as f:
                found[stream] += f.read().decode("utf-8", "replace")
        except OSError:
            pass
    return found


def note_spool(spool: str, attempt: dict[str, Any]) -> None:
    """Say beside the spool whose attempt it is (datastore root, flow, run, step, task,
    attempt): a later sweep that finds it orphaned stores it as that attempt's log."""
    try:
        with open(f"{spool}.{_SPOOL_NOTE}", "w") as f:
            json.dump(attempt, f)
    except OSError:
        pass  # no note: the output stays on the worker's own next attempt to keep


def spool_note(spool: str) -> dict[str, Any] | None:
    """What :func:`note_spool` said about ``spool``; None if nothing readable."""
    try:
        with open(f"{spool}.{_SPOOL_NOTE}") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def remove_spool(spool: str | None) -> None:
    if spool is None:
        return
    for suffix in [suffix for suffix, _ in _SPOOL_PARTS] + [_SPOOL_NOTE]:
        try:
            os.remove(f"{spool}.{suffix}")
        except OSError:
            pass


def _one_task_at_a_time() -> bool:
    try:
        from distributed import get_worker
        return get_worker().state.nthreads == 1
    except (ImportError, ValueError, AttributeError):
        return False  # not on a Dask worker: leave the process's descriptors alone


_libc_fflush: Any = None


def _flush_c_streams() -> None:
    global _libc_fflush
    try:
        if _libc_fflush is None:
            _libc_fflush = ctypes.CDLL(None).fflush
        _libc_fflush(None)
    except (OSError, AttributeError):
        pass


@contextmanager
def _capture_fds(cap: _Capture, spool: str | None = None) -> Iterator[None]:
    """What reaches file descriptors 1 and 2 meanwhile goes into ``cap`` at the end
    (into ``<spool>.fd1``/``.fd2`` on the way, when given)."""
    saved: dict[int, int] = {}
    files: dict[int, Any] = {}
    try:
        for fd in (1, 2):
            files[fd] = open(f"{spool}.fd{fd}", "w+b") if spool else _scratch_file(fd)
            saved[fd] = os.dup(fd)
            os.dup2(files[fd].fileno(), fd)
    except OSError:  # no such descriptor (closed): capture what Python writes only
        _restore(saved, files)
        yield
        return
    _report_crashes()
    try:
        yield
    finally:
        _flush_c_streams()
        _restore(saved, files)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            files[fd].seek(0)
            text = files[fd].read().decode("utf-8", "replace")
            _done_with(files[fd], spool)
            if text:
                cap.write(name, text)


_scratch = threading.local()


def spool_folder() -> str:
    """This user's folder of spools on this host."""
    return os.path.join(tempfile.gettempdir(), f"daskflow-spool-{os.getuid()}")


def scratch_spool() -> str:
    """The spool (a path without suffix) whose ``.fd1`` and ``.fd2`` are this thread's
    scratch files: a split of a batch that crashed left there what reached its
    descriptors (where its code was, from faulthandler), which whoever records its
    death reads as any spool (:func:`read_spool`).  Named by this process, as spools
    are, so a sweep removes those of processes that died."""
    return os.path.join(spool_folder(),
                        f"{owned_prefix('')}scratch-{threading.get_ident()}")


def _scratch_file(fd: int) -> Any:
    """An empty file to catch descriptor ``fd``, kept for the next task of this thread
    (:func:`scratch_spool`): a batch of short splits captures each split's descriptors,
    and making two files each time would cost more than a trivial split."""
    f = getattr(_scratch, f"fd{fd}", None)
    if f is None or f.closed:
        try:
            os.makedirs(spool_folder(), mode=0o700, exist_ok=True)
            f = open(f"{scratch_spool()}.fd{fd}", "w+b")
        except OSError:  # no spool folder to be had: unnamed, nothing after a crash
            f = tempfile.TemporaryFile()
        setattr(_scratch, f"fd{fd}", f)
    f.seek(0)
    f.truncate()
    return f


def _done_with(f: Any, spool: str | None) -> None:
    if spool:
        f.close()
    else:  # a scratch file: emptied for the next task
        f.seek(0)
        f.truncate()


def _restore(saved: dict[int, int], files: dict[int, Any]) -> None:
    for fd, copy in saved.items():
        os.dup2(copy, fd)
        os.close(copy)
    for fd, f in files.items():
        if fd not in saved:
            f.close()  # a scratch file closed here is made again next time
