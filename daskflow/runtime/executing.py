"""Runs in a subprocess, awaited from an event loop: Metaflow's ``ExecutingRun``.

``Runner(...).async_run(**params)`` starts ``python FLOW_FILE run ...`` (the
command a user types, with the runner's options) and returns an
:class:`ExecutingRun` as soon as the run has its id: ``status``, ``returncode``,
``run``, ``await wait()``, ``async for position, line in stream_log("stdout")``,
``stdout`` and ``stderr``. Many runs can be awaited from one event loop, each in its
own process with its own cluster.

>>> executing = await Runner("train.py").async_run(alpha=0.5)     # doctest: +SKIP
>>> async for _, line in executing.stream_log("stdout"):
...     print(line)
>>> await executing.wait()
>>> executing.status, executing.run.data.result
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from typing import Any

from ..exceptions import RunFailed
from ..scratch import owned_prefix

POLL = 0.05  # seconds between looks at the run-id file and the logs
RUN_LOGS = "daskflow-run-"  # a run's output files in the temporary folder


class ExecutingRun:
    """A run going on in a subprocess (Metaflow's names and meaning).

    It is a context manager (sync or async): leaving it stops a run still going
    (SIGTERM: tasks cancelled, clusters closed, the run recorded as failed) and removes
    its log files.
    """

    def __init__(self, process: asyncio.subprocess.Process, command: list[str],
                 folder: str, pathspec: str, root: str) -> None:
        self.command = command
        self.pathspec = pathspec
        self._root = root
        self._process = process
        self._folder = folder

    @property
    def run(self) -> Any:
        """The :class:`~daskflow.client.Run`, as stored now."""
        from ..client import Run
        return Run(self.pathspec, _namespace_check=False, _root=self._root)

    # -- state ------------------------------------------------------------------------
    @property
    def returncode(self) -> int | None:
        """The subprocess's exit code; None while it runs."""
        return self._process.returncode

    @property
    def status(self) -> str:
        """``running``, ``successful`` or ``failed``."""
        code = self.returncode
        return "running" if code is None else "successful" if code == 0 else "failed"

    @property
    def stdout(self) -> str:
        """What the run printed to stdout so far."""
        return self._read("stdout")

    @property
    def stderr(self) -> str:
        return self._read("stderr")

    def _path(self, stream: str) -> str:
        if stream not in ("stdout", "stderr"):
            raise ValueError(f"stream must be 'stdout' or 'stderr', got {stream!r}.")
        return os.path.join(self._folder, stream)

    def _read(self, stream: str) -> str:
        try:
            with open(self._path(stream), encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # -- waiting ----------------------------------------------------------------------
    async def wait(self, timeout: float | None = None,
                   stream: str | None = None) -> ExecutingRun:
        """Wait for the run to end (at most ``timeout`` seconds, then stop it and raise
        ``TimeoutError``); with ``stream``, print that stream as it comes."""
        async def ended() -> None:
            if stream is not None:
                async for _, line in self.stream_log(stream):
                    print(line, file=sys.stderr if stream == "stderr" else sys.stdout)
            await self._process.wait()

        try:
            await asyncio.wait_for(ended(), timeout)
        except asyncio.TimeoutError:
            await self.kill()
            raise TimeoutError(
                f"Run {self.pathspec} did not end within {timeout} s; it was stopped."
            ) from None
        return self

    async def stream_log(self, stream: str,
                         position: int | None = None) -> AsyncIterator[tuple[int, str]]:
        """Yield ``(position, line)`` for each line of ``stream`` as the run writes it,
        from byte ``position`` (default: the start), until the run has ended."""
        path = self._path(stream)
        offset = position or 0  # where the next whole line starts
        while True:
            running = self.returncode is None
            with open(path, "rb") as f:
                f.seek(offset)
                chunk = f.read()
            *lines, rest = chunk.split(b"\n")
            for line in lines:
                offset += len(line) + 1
                yield offset, line.decode("utf-8", errors="replace")
            if not running:
                if rest:
                    yield offset + len(rest), rest.decode("utf-8", errors="replace")
                return
            await asyncio.sleep(POLL)

    async def kill(self) -> None:
        """Stop the run if it still goes on (as Ctrl-C would: recorded as failed)."""
        if self.returncode is None:
            self._process.send_signal(signal.SIGTERM)
            await self._process.wait()

    def cleanup(self) -> None:
        """Remove the log files (after the run ended)."""
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> ExecutingRun:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.returncode is None:
            self._process.send_signal(signal.SIGTERM)
        self.cleanup()

    async def __aenter__(self) -> ExecutingRun:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.kill()
        self.cleanup()

    def __repr__(self) -> str:
        return f"ExecutingRun({self.pathspec!r}, status={self.status!r})"


async def start(command_args: list[str], flow_file: str, class_name: str,
                root: str) -> ExecutingRun:
    """Start ``python FLOW_FILE <command_args>`` (``--run-id-file`` is added) and return
    once the run has its id."""
    folder = tempfile.mkdtemp(prefix=owned_prefix(RUN_LOGS))
    id_file = os.path.join(folder, "run_id")
    command = [sys.executable, "-m", __name__, flow_file, *command_args,
               "--run-id-file", id_file]
    with open(os.path.join(folder, "stdout"), "wb") as out, \
            open(os.path.join(folder, "stderr"), "wb") as err:
        process = await asyncio.create_subprocess_exec(
            *command, stdout=out, stderr=err, stdin=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    while not _recorded(class_name, _read_id(id_file), root):
        if process.returncode is not None:
            with open(os.path.join(folder, "stderr"), encoding="utf-8",
                      errors="replace") as f:
                tail = f.read().strip().splitlines()[-1:] or ["(no output)"]
            shutil.rmtree(folder, ignore_errors=True)
            raise RunFailed(f"The run of {flow_file} ended (exit code {process.returncode}) "
                            f"before it started: {tail[0]}", run_pathspec=None)
        await asyncio.sleep(POLL)
    return ExecutingRun(process, command, folder, f"{class_name}/{_read_id(id_file)}", root)


def _recorded(flow_name: str, run_id: str, root: str) -> bool:
    """Whether the run's record is there to read (it follows the id by a moment)."""
    if not run_id:
        return False
    from ..datastore import ArtifactStore
    from ..exceptions import DataNotFoundError
    try:
        ArtifactStore(root, flow_name).read_run(run_id)
    except DataNotFoundError:
        return False
    return True


def _read_id(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


def cli_value(value: Any) -> str:
    """A parameter's value as its command-line option takes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _main(argv: list[str]) -> None:
    """``python -m daskflow.runtime.executing FLOW_FILE ARGS...``: the flow file's command
    line, also for a file without a ``__main__`` guard (a notebook cell saved as one)."""
    from .flowfile import load_flow

    flow_cls = load_flow(argv[0])
    sys.argv = argv
    flow_cls()


if __name__ == "__main__":
    _main(sys.argv[1:])
