"""What a step asks for: :class:`ResourceRequest`, the size of one worker, how many, their environment.

Its own module, below every backend and the base class, so that the steps, the
runtime and each backend's pure translation can use it without importing the
lifecycle machinery of :mod:`.base` (and without import circles through it).
Byte sizes in words (:func:`format_bytes`) and the shell lines of a request's
environment (:func:`export_lines`) are here too: every backend says sizes and
sets the environment the same way.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from .errors import ResourceRequestError

MiB = 2**20
GiB = 2**30


def format_bytes(n: int) -> str:
    """Exact when short, rounded otherwise: ``16 GiB``, ``1536 MiB``, ``23.54 GiB``.

    >>> format_bytes(1536 * 2**20), format_bytes(24684096 * 1024)
    ('1536 MiB', '23.54 GiB')
    """
    for unit, size in (("TiB", 2**40), ("GiB", GiB), ("MiB", MiB), ("KiB", 2**10)):
        if n % size == 0 and 0 < n // size < 10000:
            return f"{n // size} {unit}"
    from dask.utils import format_bytes as dask_format_bytes
    return dask_format_bytes(n)


#: what an environment variable's name may be: a shell word (it becomes ``export NAME=...``)
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, repr=False)
class ResourceRequest:
    """The size of one worker, how many of them, and the environment they start with.

    ``cpu`` may be fractional (Metaflow allows it); a worker gets
    ``ceil(cpu)`` threads. ``memory`` and ``disk`` are bytes per worker,
    None for the backend's default. ``max_memory`` (bytes, or None) is how far a
    task's memory may grow when an attempt runs out of it: not part of the worker's
    size, the runtime's bound for its retries. ``env`` holds the environment variables
    every worker of the cluster is started with (``@environment``): given as a
    mapping or pairs, kept as sorted ``(name, value)`` pairs, read back with
    :attr:`env_dict`. Equal requests compare and hash equal, so a runtime can
    tell when two adjacent steps could share a cluster.

    >>> ResourceRequest(cpu=4, memory=16 * 2**30, workers=2).total_cpu
    8
    >>> ResourceRequest(cpu=4, memory=16 * 2**30, gpu=1, workers=2).describe()
    '2 workers x (4 cores, 16 GiB, 1 GPU)'
    >>> request = ResourceRequest(env={"MODE": "fast", "LEVEL": 3})
    >>> request.env, request.describe()
    ((('LEVEL', '3'), ('MODE', 'fast')), '1 worker x (1 core), env LEVEL, MODE')
    """

    cpu: float = 1
    memory: int | None = None   # bytes per worker; None: the backend's default
    gpu: int = 0
    disk: int | None = None     # bytes per worker
    workers: int = 1
    env: tuple[tuple[str, str], ...] = ()   # the workers' environment variables, sorted
    secrets: tuple[tuple[str, str], ...] = ()   # secret variables: (name, reference), sorted
    max_lifetime: float | None = None   # seconds; None: daskflow.cluster.max-lifetime
    max_memory: int | None = None   # bytes a task's retries may grow to after running out

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.cpu, (int, float)) or isinstance(self.cpu, bool) \
                or not self.cpu > 0:
            problems.append(f"cpu={self.cpu!r} (a positive number)")
        for field in ("memory", "disk", "max_memory"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or value <= 0):
                problems.append(f"{field}={value!r} (a positive number of bytes or None)")
        if isinstance(self.max_memory, int) and isinstance(self.memory, int) and \
                self.max_memory < self.memory:
            problems.append(f"max_memory={self.max_memory!r} (at least memory={self.memory!r})")
        if not isinstance(self.gpu, int) or isinstance(self.gpu, bool) or self.gpu < 0:
            problems.append(f"gpu={self.gpu!r} (a whole number >= 0)")
        if not isinstance(self.workers, int) or isinstance(self.workers, bool) \
                or self.workers < 1:
            problems.append(f"workers={self.workers!r} (a whole number >= 1)")
        if self.max_lifetime is not None and (
                not isinstance(self.max_lifetime, (int, float)) or isinstance(
                    self.max_lifetime, bool) or not 0 < self.max_lifetime < math.inf):
            problems.append(f"max_lifetime={self.max_lifetime!r} (positive seconds or None)")
        env, env_problem = _normalize_env(self.env)
        object.__setattr__(self, "env", env)  # frozen: the one normalization it gets
        if env_problem:
            problems.append(env_problem)
        secrets, secrets_problem = _normalize_secrets(self.secrets, {n for n, _ in env})
        object.__setattr__(self, "secrets", secrets)
        if secrets_problem:
            problems.append(secrets_problem)
        if problems:
            raise ResourceRequestError("Invalid resource request: " + "; ".join(problems) + ".")

    def __repr__(self) -> str:
        # env by name only: a request gets logged, and a value may be a secret
        env = f", env=<{', '.join(name for name, _ in self.env)}>" if self.env else ""
        if self.secrets:
            env += f", secrets={self.secrets!r}"  # references (env:NAME, an ARN), not values
        life = f", max_lifetime={self.max_lifetime!r}" if self.max_lifetime else ""
        if self.max_memory:
            life += f", max_memory={self.max_memory!r}"
        return (f"ResourceRequest(cpu={self.cpu!r}, memory={self.memory!r}, gpu={self.gpu!r}, "
                f"disk={self.disk!r}, workers={self.workers!r}{env}{life})")

    @property
    def threads(self) -> int:
        """Threads (and cores) per worker: ``cpu`` rounded up."""
        return max(1, math.ceil(self.cpu))

    @property
    def total_cpu(self) -> int:
        return self.threads * self.workers

    @property
    def env_dict(self) -> dict[str, str]:
        """``env`` as a new dict, for the keyword argument of a cluster class."""
        return dict(self.env)

    def describe_worker(self) -> str:
        """``4 cores, 16 GiB, 1 GPU``: one worker's size."""
        parts = [f"{self.threads} core{'s' if self.threads != 1 else ''}"]
        if self.memory is not None:
            parts.append(format_bytes(self.memory))
        if self.gpu:
            parts.append(f"{self.gpu} GPU{'s' if self.gpu != 1 else ''}")
        if self.disk is not None:
            parts.append(f"{format_bytes(self.disk)} disk")
        return ", ".join(parts)

    def describe(self) -> str:
        """``2 workers x (4 cores, 16 GiB, 1 GPU)``: for the terminal and error messages.

        Environment variables are named, never shown with their values (they may be secret).
        """
        workers = f"{self.workers} worker{'s' if self.workers != 1 else ''}"
        env = f", env {', '.join(name for name, _ in self.env)}" if self.env else ""
        if self.secrets:
            env += f", secrets {', '.join(name for name, _ in self.secrets)}"
        return f"{workers} x ({self.describe_worker()}){env}"


def _normalize_env(env: Any) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """``env`` as sorted (name, value) string pairs, and what is wrong with it (or None)."""
    try:
        pairs = list(env.items()) if isinstance(env, Mapping) else [tuple(p) for p in env]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError
    except (TypeError, ValueError):
        return (), f"env={env!r} (a mapping of variable names to values)"
    bad_names = [name for name, _ in pairs
                 if not isinstance(name, str) or not ENV_NAME.fullmatch(name)]
    if bad_names:
        return (), (f"env names {', '.join(repr(n) for n in bad_names)} (letters, digits and "
                    f"underscores, not starting with a digit)")
    bad_values = [name for name, value in pairs
                  if not isinstance(value, (str, int, float)) or isinstance(value, bool)]
    if bad_values:
        return (), (f"env values of {', '.join(bad_values)} (a string or a number each; "
                    f"values are not shown)")
    if len({name for name, _ in pairs}) != len(pairs):
        return (), "env names given twice"
    return tuple(sorted((name, str(value)) for name, value in pairs)), None


def _normalize_secrets(secrets: Any, env_names: set[str]
                       ) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """``secrets`` as sorted (name, reference) pairs, and what is wrong with it (or None)."""
    from ..secrets import SecretError, parse_secrets
    try:
        pairs = dict(secrets.items() if isinstance(secrets, Mapping) else secrets)
        refs = parse_secrets({name: str(ref) for name, ref in pairs.items()}, what="secrets")
    except SecretError as exc:
        return (), str(exc)
    except (TypeError, ValueError):
        return (), "secrets (a mapping of variable names to references such as env:NAME)"
    if set(refs) & env_names:
        return (), f"secrets {', '.join(sorted(set(refs) & env_names))} also given in env"
    return tuple(sorted((name, str(ref)) for name, ref in refs.items())), None


def export_lines(env: tuple[tuple[str, str], ...]) -> list[str]:
    """Shell lines that set ``env`` (a request's) in a job script, each value quoted.

    >>> export_lines((("MODE", "fast run"),))
    ["export MODE='fast run'"]
    """
    return [f"export {name}={shlex.quote(value)}" for name, value in env]


class TaskResources(NamedTuple):
    """What one attempt ran with: worker threads, its memory limit in bytes (None: no
    limit) and GPUs.  ``current.resources`` and ``Task(...).resources`` give it.

    >>> TaskResources(cpu=1, memory=2**30, gpu=0).describe()
    '1 core, 1 GiB'
    """

    cpu: int
    memory: int | None
    gpu: int

    def describe(self) -> str:
        parts = [f"{self.cpu} core{'s' if self.cpu != 1 else ''}"]
        if self.memory:
            parts.append(format_bytes(self.memory))
        if self.gpu:
            parts.append(f"{self.gpu} GPU{'s' if self.gpu != 1 else ''}")
        return ", ".join(parts)

    @classmethod
    def from_record(cls, value: Any) -> TaskResources | None:
        if not isinstance(value, dict):
            return None
        return cls(int(value.get("cpu") or 1), value.get("memory") or None,
                   int(value.get("gpu") or 0))
