"""How a run's tasks go to a scheduler: as they are, or sealed for one that runs share.

On a cluster of its own a run submits its functions as Dask does (:class:`PlainCalls`).
On an existing scheduler, which runs of other code may share, each call goes as
``_packages.call_in_package(package, <cloudpickled call>, *futures)``
(:class:`PackageCalls`): the scheduler and the workers' event loops see only builtins
and a function that travels by value, and the worker unpickles the call among the
modules of the run's own code package (``_packages.py`` says how). The futures come
back as :class:`OpenedFuture`, whose result and exception are unpickled here.

>>> calls = PackageCalls(package_of(archive.sha, url, max_packages=10))  # doctest: +SKIP
>>> future = calls.submit(client, execute_task, ctx_future, spec, key="start-1-17")
>>> future.result()           # the TaskRef, not its sealed bytes
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import socket
from collections.abc import Callable, Sequence
from typing import Any

import cloudpickle
from distributed import Future

from . import _on_cluster, _packages
from ._packages import MARK, Package
from .errors import CodeInstallError
from .plain_calls import PlainCalls


def package_of(sha: str, url: str, *, max_packages: int) -> Package:
    """What a run's calls name: its code package (sha, where workers read it), this
    process (a worker thread in it has our modules already) and the workers' limit."""
    return (sha, url, (socket.gethostname(), os.getpid()), int(max_packages), False)


@functools.lru_cache(maxsize=None)
def loader_version() -> str:
    """What names this daskflow's worker-side loader: a hash of its modules' source."""
    digest = hashlib.sha256()
    for module in (_on_cluster, _packages):
        with open(module.__file__, "rb") as f:  # type: ignore[arg-type]
            digest.update(f.read())
    return digest.hexdigest()[:16]


def in_package() -> Package | None:
    """The package of the task this thread runs on a shared scheduler, else None."""
    return _packages.current_package()


def opened(value: Any) -> Any:
    """A task's result as its function returned it."""
    if isinstance(value, tuple) and len(value) == 2 and value[0] == MARK:
        return cloudpickle.loads(value[1])
    return value


def opened_error(exc: BaseException | None) -> BaseException | None:
    """A task's exception as its function raised it."""
    if isinstance(exc, RuntimeError) and len(exc.args) == 3 and exc.args[0] == MARK:
        return cloudpickle.loads(exc.args[1])
    return exc


class OpenedFuture(Future):
    """A future of a sealed call: ``result()`` and ``exception()`` give what the
    function returned or raised."""

    def result(self, timeout: Any = None) -> Any:
        try:
            return opened(super().result(timeout))
        except RuntimeError as exc:
            error = opened_error(exc)
            if error is exc:
                raise
            raise error from None

    def exception(self, timeout: Any = None, **kwargs: Any) -> Any:
        return opened_error(super().exception(timeout, **kwargs))

    #: how a reader of the future's state opens its error (``dask_client.erred_with``)
    opened_error = staticmethod(opened_error)


class PackageCalls(PlainCalls):
    """Calls sealed with the run's code package, for a scheduler that runs share."""

    def __init__(self, package: Package) -> None:
        self.package = package
        self.version = loader_version()
        self.entry = _by_value(_packages.enter)

    def install(self, client: Any) -> None:
        """Put the code that runs the calls in every worker process of ``client``'s
        cluster (those that join later get it too), once per daskflow version."""
        try:
            client.register_plugin(_packages.InstallPackages(self.version))
        except Exception as exc:
            raise CodeInstallError(
                f"Preparing the workers of the scheduler at {client.scheduler.address} for "
                f"the run's code package {self.package[0][:12]} failed: "
                f"{type(exc).__name__}: {exc}.") from exc

    def submit(self, client: Any, func: Callable, *args: Any, key: str,
               priority: int = 0) -> Any:
        call, deps = seal_call(func, args, {})
        return _opening(client.submit(self.entry, self.version, self.package, call, *deps,
                                      key=key, pure=False, priority=priority))

    def map(self, client: Any, func: Callable, *iterables: Sequence[Any], keys: list[str],
            priorities: Sequence[int] | None = None, kwargs: dict[str, Any] | None = None,
            **options: Any) -> list[Any]:
        priorities = priorities or [0] * len(keys)
        if self.package[4] and options.get("workers") is None:  # from inside a task:
            from distributed import get_worker            # where its package is active
            options.update(workers=[get_worker().address], allow_other_workers=True)
        sealed = [seal_call(func, args, kwargs or {}) for args in zip(*iterables)]
        if len({len(deps) for _, deps in sealed}) > 1:  # unlike tasks: one at a time
            return [_opening(client.submit(self.entry, self.version, self.package, call,
                                           *deps, key=key, pure=False, priority=priority,
                                           **options))
                    for (call, deps), key, priority in zip(sealed, keys, priorities)]
        calls = [call for call, _ in sealed]
        deps = [list(d) for d in zip(*[d for _, d in sealed])]  # the n-th futures of each
        futures = super().map(client, self.entry, [self.version] * len(calls),
                              [self.package] * len(calls), calls, *deps, keys=keys,
                              priorities=priorities, **options)
        return [_opening(f) for f in futures]


def calls_here() -> PlainCalls:
    """How code in a task submits more tasks: sealed with the task's own package when
    it runs on a shared scheduler (``parallel_map`` in a step), else as they are."""
    package = in_package()
    return PlainCalls() if package is None else PackageCalls(package)


class _ByValue:
    """A function that Dask's pickle (plain pickle first) sends with its code: it
    unpickles as the function itself where daskflow is not installed."""

    def __init__(self, func: Callable) -> None:
        for module in (_on_cluster, _packages):  # workers have no daskflow
            cloudpickle.register_pickle_by_value(module)
        self.func = func
        self.data = cloudpickle.dumps(func)
        self.__name__ = func.__name__   # Dask names task groups by it

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def __reduce__(self) -> tuple:
        return pickle.loads, (self.data,)


@functools.lru_cache(maxsize=None)
def _by_value(func: Callable) -> _ByValue:
    return _ByValue(func)


def _opening(future: Any) -> OpenedFuture:
    """``future`` itself (its state, its reference count) as an :class:`OpenedFuture`."""
    future.__class__ = OpenedFuture
    return future


def _plain(future: Any) -> Any:
    """A dependency as the scheduler takes it: a plain Future (an :class:`OpenedFuture`
    would be pickled by reference to daskflow, which the scheduler does not have)."""
    return Future(future.key, future.client) if type(future) is not Future else future


def seal_call(func: Callable, args: Sequence[Any],
              kwargs: dict[str, Any]) -> tuple[bytes, list[Any]]:
    """``func(*args, **kwargs)`` as bytes, its futures apart (Dask hands their values to
    the task): each future's place (an index, or a keyword) goes into the bytes."""
    where: list[int | str] = []
    deps: list[Any] = []
    rest = []
    for index, arg in enumerate(args):
        if isinstance(arg, Future):
            where.append(index)
            deps.append(_plain(arg))
        else:
            rest.append(arg)
    plain = {}
    for name, value in kwargs.items():
        if isinstance(value, Future):
            where.append(name)
            deps.append(_plain(value))
        else:
            plain[name] = value
    return cloudpickle.dumps((func, tuple(rest), plain, tuple(where))), deps
