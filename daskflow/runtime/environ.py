"""Environment variables of one task, never seen by another.

Tasks are threads of a worker process and ``os.environ`` belongs to the
process.  So a task with its own variables (``@environment``) runs alone in
its process: it waits for the running tasks to end, and tasks that come
meanwhile wait for it (a readers-writer lock, writers first).  A step on its
own cluster has its workers started with the variables as well.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


class _Exclusive:
    """Many tasks at once, or one task with its own environment alone."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.running = 0
        self.alone = False
        self.waiting_alone = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self.cond:
            while self.alone or self.waiting_alone:
                self.cond.wait()
            self.running += 1
        try:
            yield
        finally:
            with self.cond:
                self.running -= 1
                self.cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self.cond:
            self.waiting_alone += 1
            while self.alone or self.running:
                self.cond.wait()
            self.waiting_alone -= 1
            self.alone = True
        try:
            yield
        finally:
            with self.cond:
                self.alone = False
                self.cond.notify_all()


_lock = _Exclusive()


@contextmanager
def task_environment(env: Mapping[str, str]) -> Iterator[None]:
    """Run the block with ``env`` set in the process and alone in it; restore after."""
    if not env:
        with _lock.shared():
            yield
        return
    with _lock.exclusive():
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
