"""Temporary files and folders that carry the pid of the process that owns them.

A process that dies without cleaning up (``kill -9``, the kernel's out-of-memory killer)
leaves its temporary files behind: a folder of TLS credentials with a private key in
it, the spool of a task's output, an artifact half serialized.  Each such name is
``<prefix><pid>-<random>``, so a later process on this machine can tell an orphan (its
owner is gone) from a file in use, whoever made it and however old it is.  A recycled
pid makes an orphan look owned: it is left for a later sweep, never the other way round.

>>> prefix = owned_prefix("daskflow-artifact-")                 # doctest: +SKIP
>>> orphans(tempfile.gettempdir(), "daskflow-artifact-")         # doctest: +SKIP
['/tmp/daskflow-artifact-4242-x1y2z3']
"""

from __future__ import annotations

import os
import re
import shutil


def owned_prefix(prefix: str) -> str:
    """``prefix`` with this process's pid, for ``tempfile.mkstemp``/``mkdtemp``."""
    return f"{prefix}{os.getpid()}-"


def owner(name: str, prefix: str) -> int | None:
    """The pid a name made with :func:`owned_prefix` carries, else None."""
    found = re.match(re.escape(prefix) + r"(\d+)-", name)
    return int(found.group(1)) if found else None


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host: another user's does, a zombie (killed,
    not yet reaped by its parent) does not."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process: alive
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def orphans(folder: str, prefix: str) -> list[str]:
    """The paths in ``folder`` named with ``prefix`` whose owner process is gone."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found = []
    for name in names:
        pid = owner(name, prefix)
        if pid is not None and not alive(pid):
            found.append(os.path.join(folder, name))
    return sorted(found)


def remove(path: str) -> bool:
    """Remove a file or a folder (whole); True if it was there to remove."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    except FileNotFoundError:
        return False
    except OSError:
        return False  # not ours to remove after all (another user's): left alone
    return True
