"""What a worker's nanny tells the driver when its worker process dies; travels by value.

Dask's nanny knows how its worker process ended (its exit code, or that its own
memory monitor stopped it, which it announces as a ``worker-restart-memory`` event)
but says the first only in its log.  :class:`WatchExits`, a nanny plugin, puts it on
the scheduler's event topic :data:`EXIT_TOPIC` instead, together with the journal
of each batch of splits the process was running: a batch (``batch.py``) notes in a
file on its host each split attempt it starts and the records of each it ends
(:class:`Journal`), which outlives the process, so the driver learns exactly which
split was running and keeps the results of those it had finished.

Like ``remote/_on_cluster.py`` this module is pickled by value to clusters that have
no daskflow: the standard library, distributed and msgpack only, no daskflow import.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from typing import Any

import msgpack

EXIT_TOPIC = "daskflow-worker-exit"
#: journal bytes one exit event carries at most (a batch's records, small artifacts inline)
JOURNAL_LIMIT = 8 * 2**20


def journal_folder(worker_address: str) -> str:
    """Where the batches of the worker at ``worker_address`` keep their journals: a
    private folder on its host (not the worker's own, which the nanny clears when it
    dies)."""
    name = re.sub(r"[^A-Za-z0-9.]+", "_", worker_address)
    return os.path.join(tempfile.gettempdir(), f"daskflow-journal-{os.getuid()}", name)


def journal_name(batch_key: str) -> str:
    """The file name of the journal of the batch with Dask key ``batch_key``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", batch_key)


class Journal:
    """One batch's notes, appended as it goes: ``("s", start)`` when a split's attempt
    starts, ``("e", entry)`` when it ends (the entry the batch will commit).  Each note
    is one ``write``: a process killed between two leaves whole notes only."""

    def __init__(self, worker_address: str, batch_key: str) -> None:
        folder = journal_folder(worker_address)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        self.path = os.path.join(folder, journal_name(batch_key))
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND,
                          0o600)
        self.packer = msgpack.Packer(default=str)

    def started(self, record: dict[str, Any]) -> None:
        os.write(self.fd, self.packer.pack(("s", record)))

    def ended(self, entry: dict[str, Any]) -> None:
        os.write(self.fd, self.packer.pack(("e", entry)))

    def close(self) -> None:
        """The batch committed its records: its journal is not needed any more."""
        os.close(self.fd)
        try:
            os.remove(self.path)
        except OSError:
            pass


def read_journal(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    """The whole notes of a journal, in order."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(data)
    notes = []
    try:
        for kind, value in unpacker:
            notes.append((kind, value))
    except (ValueError, msgpack.UnpackException):  # a note cut short: the ones before it
        pass
    return notes


def _journals(worker_address: str) -> dict[str, bytes]:
    folder = journal_folder(worker_address)
    found: dict[str, bytes] = {}
    total = 0
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return found
    for name in names:
        try:
            with open(os.path.join(folder, name), "rb") as f:
                data = f.read(JOURNAL_LIMIT - total)
        except OSError:
            continue
        found[name] = data
        total += len(data)
    shutil.rmtree(folder, ignore_errors=True)
    return found


def __getattr__(name: str) -> Any:
    """``WatchExits``, made when first asked for: ``import daskflow`` stays without
    distributed (this module is imported by the runtime's modules at import time)."""
    if name == "WatchExits":
        globals()["WatchExits"] = cls = _watch_exits_class()
        return cls
    raise AttributeError(name)


def _watch_exits_class() -> type:
    from distributed import NannyPlugin

    class WatchExits(NannyPlugin):
        """On each nanny: when its worker process ends while the nanny runs (a kill, a crash,
        the memory monitor), log ``{"worker", "exitcode", "journals"}`` on :data:`EXIT_TOPIC`."""

        name = "daskflow-exit-watch"
        idempotent = True

        def setup(self, nanny: Any) -> None:
            original = nanny._on_worker_exit_sync

            def on_exit(exitcode: int) -> None:
                address = nanny.worker_address
                if getattr(nanny.status, "name", "") == "running" and address:
                    try:
                        nanny.log_event(EXIT_TOPIC, {"worker": address, "exitcode": exitcode,
                                                     "journals": _journals(address)})
                    except Exception:  # noqa: BLE001  the driver then knows less, nothing breaks
                        pass
                original(exitcode)

            self._original = original
            nanny._on_worker_exit_sync = on_exit   # the next worker process's exit
            if nanny.process is not None:          # this one's
                nanny.process.on_exit = on_exit

        def teardown(self, nanny: Any) -> None:
            original = getattr(self, "_original", None)
            if original is not None:
                nanny._on_worker_exit_sync = original

    return WatchExits
