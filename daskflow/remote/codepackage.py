"""The code package: a flow's folder and daskflow itself, in one content-addressed archive.

At run start the driver packages the flow file's folder (the files matching
``daskflow.code.include`` and no ``daskflow.code.exclude`` pattern) and daskflow's
own files into a gzipped tar whose bytes depend on the content only (sorted
entries, fixed mtimes and owners), so its sha256 names it. The datastore keeps it
once per flow, content-addressed (``datastore/blobs.py``), the run's record keeps
:meth:`CodeArchive.record`, and :class:`RunCode` reads it back (Metaflow's ``Run.code``).

Archive layout: the flow folder's files at the top (so ``import helpers`` works with
the archive's folder on ``sys.path``), ``daskflow/`` beside them, and ``INFO``.

>>> archive = build_code_package("flows/hello.py")              # doctest: +SKIP
>>> record = store_code(archive, ArtifactStore(".daskflow", "HelloFlow"))
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cached_property
from typing import Any

from dask.utils import format_bytes, parse_bytes

from .. import config
from ..datastore import ArtifactStore
from ..datastore.layout import code_key
from ..exceptions import ArtifactError, ConfigurationError, DataNotFoundError
from .errors import CodePackageTooLargeError

INFO = "INFO"               # the archive's description, a JSON file at its top
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PACKAGE_FILES = ["*.py", "*.yaml", "*.css", "*.js"]   # daskflow's code and package data


@dataclass(frozen=True)
class CodeArchive:
    """A built code package: the archive's bytes, their sha256 and what is in them."""

    data: bytes
    sha: str
    script: str                 # the flow file, relative to the archive's top
    files: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.data)

    def record(self) -> dict[str, Any]:
        """What the run's record keeps, for :func:`run_code` and the worker plugin."""
        return {"sha": self.sha, "key": code_key(self.sha),
                "script": self.script, "size": self.size}


def build_code_package(flow_file: str | os.PathLike | None, *, include: list[str] | None = None,
                       exclude: list[str] | None = None,
                       max_size: str | int | None = None) -> CodeArchive:
    """Package ``flow_file``'s folder and daskflow into one deterministic archive.

    Settings default to ``daskflow.code.include``, ``.exclude`` and ``.max-size``.
    The flow file itself is always shipped; with no file (a flow defined in a
    notebook, whose class travels by value) only daskflow is. Past the size limit (the files'
    total, before compression) :class:`CodePackageTooLargeError` names the
    biggest files and the setting.

    >>> archive = build_code_package("flow.py")                     # doctest: +SKIP
    >>> archive.sha, archive.size, "daskflow/flowspec.py" in archive.files
    """
    include, exclude = _patterns("include", include), _patterns("exclude", exclude)
    limit = _size_limit(max_size)
    entries: dict[str, str] = {}
    folder, script = "", ""
    if flow_file is not None:
        flow_file = os.path.abspath(os.fspath(flow_file))
        folder = os.path.dirname(flow_file)
        script = os.path.relpath(flow_file, folder).replace(os.sep, "/")
        entries = folder_files(flow_file, include=include, exclude=exclude)
    ours = _select(_PACKAGE_DIR, _PACKAGE_FILES, ["__pycache__", ".*"])
    # daskflow's own files win over a "daskflow" folder beside the flow (a checkout of it)
    entries = {name: path for name, path in entries.items()
               if name != INFO and not name.startswith("daskflow/")}
    entries.update({f"daskflow/{name}": path for name, path in ours.items()})

    sizes = {name: os.path.getsize(path) for name, path in entries.items()}
    if limit is not None and sum(sizes.values()) > limit:
        raise CodePackageTooLargeError(_too_large(folder, sizes, limit))
    contents = {name: _read(path) for name, path in entries.items()}
    from .. import __version__
    contents[INFO] = json.dumps({
        "script": script, "daskflow_version": __version__,
        "python_version": "%d.%d" % sys.version_info[:2]}, sort_keys=True).encode()
    data = _deterministic_tar_gz(contents)
    return CodeArchive(data, hashlib.sha256(data).hexdigest(), script, tuple(sorted(contents)))


def folder_files(flow_file: str, *, include: list[str] | None = None,
                 exclude: list[str] | None = None) -> dict[str, str]:
    """The files of ``flow_file``'s folder the package takes (the flow file always), by
    their name in the archive (what ``@cache`` hashes as the flow's other code too)."""
    flow_file = os.path.abspath(flow_file)
    folder = os.path.dirname(flow_file)
    entries = _select(folder, _patterns("include", include), _patterns("exclude", exclude))
    entries[os.path.relpath(flow_file, folder).replace(os.sep, "/")] = flow_file
    return entries


def flow_files(flow_file: str | os.PathLike) -> dict[str, str]:
    """The flow's own files, as a code package takes them (the flow file's folder through
    ``daskflow.code.include`` / ``.exclude``, the flow file always), each with the sha256 of
    its content (16 hex digits): what a run's record keeps (``code_files``), so that two
    runs are compared file by file, with or without a stored package. Milliseconds.

    >>> flow_files("flows/hello.py")                               # doctest: +SKIP
    {'hello.py': '3f2a...', 'helpers.py': '9c01...'}
    """
    entries = folder_files(os.fspath(flow_file))
    return {name: hashlib.sha256(_read(path)).hexdigest()[:16]
            for name, path in sorted(entries.items())}


def _patterns(key: str, given: list[str] | str | None) -> list[str]:
    value = config.get(f"code.{key}", override_with=given)
    if isinstance(value, str):  # one pattern
        return [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(
            f"daskflow.code.{key} must be a list of glob patterns such as ['*.py'], "
            f"got {value!r}.")
    return list(value)


def _size_limit(given: str | int | None) -> int | None:
    value = config.get("code.max-size", override_with=given)
    try:
        return parse_bytes(value) if isinstance(value, str) else \
            (None if value is None else int(value))
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"daskflow.code.max-size must be a size such as '20MiB' (or null: no limit), "
            f"got {value!r}.") from exc


def _select(folder: str, include: list[str], exclude: list[str]) -> dict[str, str]:
    """Files under ``folder`` by archive name: matching an include pattern, and no exclude
    pattern matches their relative path or any folder on the way (excluded folders are
    not walked: a ``.venv`` costs nothing)."""
    found: dict[str, str] = {}
    for here, dirs, files in os.walk(folder):
        rel_here = os.path.relpath(here, folder).replace(os.sep, "/")
        prefix = "" if rel_here == "." else f"{rel_here}/"
        dirs[:] = sorted(d for d in dirs
                         if not _matches(d, exclude) and not _matches(prefix + d, exclude))
        for name in files:
            rel = prefix + name
            if _matches(rel, include) and not _matches(name, exclude) \
                    and not _matches(rel, exclude):
                found[rel] = os.path.join(here, name)
    return found


def _matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatchcase(name, pattern) for pattern in patterns)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _too_large(folder: str, sizes: dict[str, int], limit: int) -> str:
    biggest = sorted(sizes.items(), key=lambda item: -item[1])[:3]
    listed = ", ".join(f"{name} ({format_bytes(size)})" for name, size in biggest)
    return (f"The code package of {folder} would be {format_bytes(sum(sizes.values()))} "
            f"({len(sizes)} files), over the limit of {format_bytes(limit)}; the biggest: "
            f"{listed}. Leave data out of it (daskflow.code.exclude, or keep data files "
            f"beside the flow out of daskflow.code.include) or raise daskflow.code.max-size.")


def _deterministic_tar_gz(contents: dict[str, bytes]) -> bytes:
    """A .tar.gz whose bytes depend only on ``contents``: sorted, mtime 0, owner root."""
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(contents):
                info = tarfile.TarInfo(name)
                info.size = len(contents[name])
                info.mtime = 0
                info.mode = 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(contents[name]))
    return raw.getvalue()


def store_code(archive: CodeArchive, store: ArtifactStore) -> dict[str, Any]:
    """Keep ``archive`` in the datastore (once per content, atomically) and return
    its record."""
    record = archive.record()
    store.blobs.put_code(archive.sha, archive.data)
    return record


def code_url(store: ArtifactStore, record: dict[str, Any]) -> str:
    """Where a run's code package is, as a URL a worker can open with fsspec."""
    return store.blobs.code_url(record["key"])


class RunCode:
    """A run's code package, read back from the datastore (Metaflow's ``Run.code``).

    >>> code = run_code(store, run.record)                        # doctest: +SKIP
    >>> code.info["script"], code.flowspec[:40]
    >>> with code.extract() as folder: ...
    """

    def __init__(self, store: ArtifactStore, record: dict[str, Any]) -> None:
        self._store = store
        self._record = record
        self.sha: str = record["sha"]

    @property
    def path(self) -> str:
        """The archive's location in the datastore."""
        return code_url(self._store, self._record)

    @cached_property
    def _data(self) -> bytes:
        try:
            data = self._store.blobs.read_code(self._record["key"])
        except FileNotFoundError as exc:
            raise DataNotFoundError(
                f"The code package of this run is missing: {self.path} does not exist. "
                f"It may have been deleted; the run's code cannot be read back.") from exc
        if hashlib.sha256(data).hexdigest() != self.sha:
            raise ArtifactError(
                f"The code package {self.path} is corrupt: its sha256 is not {self.sha}.")
        return data

    @property
    def tarball(self) -> tarfile.TarFile:
        """The archive, open for reading."""
        return tarfile.open(fileobj=io.BytesIO(self._data), mode="r:gz")

    def _member(self, name: str) -> bytes:
        with self.tarball as tar:
            f = tar.extractfile(name)
            assert f is not None
            return f.read()

    @property
    def info(self) -> dict[str, Any]:
        """The package's ``INFO``: the flow file's name, daskflow's and Python's versions."""
        return json.loads(self._member(INFO))

    @property
    def script_name(self) -> str:
        return self._record["script"]

    @property
    def flowspec(self) -> str:
        """The source of the flow file as it ran."""
        return self._member(self.script_name).decode()

    def extract(self) -> tempfile.TemporaryDirectory:
        """The package unpacked into a temporary folder (removed when it is cleaned up)."""
        from ._on_cluster import unpack  # distributed's: not for a driver that only hashes
        tmp = tempfile.TemporaryDirectory(prefix=f"daskflow-code-{self.sha[:12]}-")
        unpack(self._data, tmp.name)
        return tmp

    def __repr__(self) -> str:
        return f"RunCode('{self.path}')"


def run_code(store: ArtifactStore, record: dict[str, Any]) -> RunCode | None:
    """``run.code``: the code package a run's record names, or None for a run without one."""
    code = record.get("code")
    return RunCode(store, code) if code else None
