"""Which backends exist, and how to get one by name.

Like fsspec's registry: a table of known backends that maps a name to a lazily
imported ``module:Class`` and an install hint, :func:`register_backend` for
classes defined at run time, and the ``daskflow.backends`` entry-point group
so another package can add one::

    [project.entry-points."daskflow.backends"]
    pbs = "mypackage.pbs:PBSBackend"

As prefect-dask does, any Dask cluster class can also be named by dotted path
(``dask_jobqueue.PBSCluster``): it gets the request translated into the
keyword arguments its signature takes, merged with
``daskflow.cluster.cluster-kwargs`` and the caller's keyword arguments.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from .. import config
from .base import ClusterBackend
from .errors import BackendNotInstalledError, ResourceRequestError, UnknownBackendError
from .processes import LocalProcessTeardown
from .request import ResourceRequest, export_lines

ENTRY_POINT_GROUP = "daskflow.backends"

#: name -> {"class": "module:Class", "err": what to do when the import fails}
known_backends: dict[str, dict[str, str]] = {
    "local": {"class": "daskflow.clusters.local:LocalBackend"},
    "slurm": {"class": "daskflow.clusters.slurm:SLURMBackend",
              "err": "The slurm backend needs dask-jobqueue: pip install 'daskflow[slurm]'"},
    "ssh": {"class": "daskflow.clusters.ssh:SSHBackend",
            "err": "The ssh backend needs asyncssh: pip install 'daskflow[ssh]'"},
    "kubernetes": {"class": "daskflow.clusters.kubernetes:KubernetesBackend",
                   "err": "The kubernetes backend needs dask-kubernetes: "
                          "pip install 'daskflow[kubernetes]'"},
    # "aws" launches what daskflow.cluster.aws.launch-type says; the others pin one, so
    # that one flow can put steps on Fargate and on GPU instances by @resources(backend=)
    **{name: {"class": f"daskflow.clusters.aws:{cls}",
              "err": f"The {name} backend needs dask-cloudprovider: pip install 'daskflow[aws]'"}
       for name, cls in (("aws", "AWSBackend"), ("aws-fargate", "AWSFargateBackend"),
                         ("aws-ecs", "AWSECSBackend"), ("aws-ec2", "AWSEC2Backend"))},
}

_registry: dict[str, type[ClusterBackend]] = {}


def register_backend(name: str, cls: type[ClusterBackend] | str, clobber: bool = False,
                     errtxt: str | None = None) -> None:
    """Make ``cls`` (a class, or a ``"module:Class"`` string imported when used) the backend ``name``.

    Raises ``ValueError`` if ``name`` is taken, unless ``clobber=True``.

    >>> class PBSBackend(ClusterBackend):
    ...     name = "pbs"
    >>> register_backend("pbs", PBSBackend)
    >>> type(get_backend("pbs")).__name__
    'PBSBackend'
    """
    if isinstance(cls, str):
        if name in known_backends and not clobber:
            raise ValueError(f"Backend '{name}' is already registered as "
                             f"{known_backends[name]['class']}; pass clobber=True to replace it.")
        known_backends[name] = {"class": cls, **({"err": errtxt} if errtxt else {})}
        _registry.pop(name, None)
        return
    if not (isinstance(cls, type) and issubclass(cls, ClusterBackend)):
        raise TypeError(f"register_backend('{name}', ...) needs a ClusterBackend subclass "
                        f"or a 'module:Class' string, not {cls!r}.")
    if (name in _registry or name in known_backends) and not clobber:
        current = _registry.get(name) or known_backends[name]["class"]
        raise ValueError(f"Backend '{name}' is already registered as {current}; "
                         f"pass clobber=True to replace it.")
    _registry[name] = cls


def available_backends() -> list[str]:
    """Every backend name: known, registered, and from installed packages' entry points."""
    return sorted(set(known_backends) | set(_registry) | set(_entry_points()))


def get_backend_class(name: str) -> type[ClusterBackend]:
    """The class of backend ``name``, imported now.

    Raises :class:`UnknownBackendError` (with the known names and a did-you-mean)
    or :class:`BackendNotInstalledError` (with what to install).
    """
    if name in _registry:
        return _registry[name]
    if name in known_backends:
        entry = known_backends[name]
        cls = _import(entry["class"], hint=entry.get("err"), what=f"backend '{name}'")
    else:
        points = _entry_points()
        if name not in points:
            from ..exceptions import did_you_mean
            raise UnknownBackendError(
                f"Unknown cluster backend '{name}'.{did_you_mean(name, available_backends())} "
                f"Known backends: {', '.join(available_backends())}. A Dask cluster class "
                f"can also be given by dotted path, e.g. 'dask_jobqueue.PBSCluster'.")
        try:
            cls = points[name].load()
        except ImportError as exc:
            raise BackendNotInstalledError(
                f"Backend '{name}' (entry point {points[name].value} of package "
                f"{_dist_name(points[name])}) cannot be imported: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, ClusterBackend)):
        raise UnknownBackendError(f"Backend '{name}' is {cls!r}, not a ClusterBackend subclass.")
    _registry[name] = cls
    return cls


def get_backend(name: str | None = None, **options: Any) -> ClusterBackend:
    """A backend ready to ``open(request)``: by name, dotted path, or the configured default.

    ``name=None`` means ``daskflow.cluster.backend`` (``local`` unless
    configured). Keyword arguments override the backend's settings in
    ``daskflow.cluster.<name>`` (``queue="gpu"`` for slurm); for a dotted path
    they are keyword arguments of the cluster class.

    >>> get_backend("local")
    LocalBackend()
    >>> get_backend("distributed.LocalCluster", processes=False)
    DaskClusterBackend('distributed.LocalCluster', processes=False)
    """
    name = name or config.get("cluster.backend")
    if not isinstance(name, str):
        raise UnknownBackendError(f"A backend name must be a string, not {name!r}.")
    if name in _registry or name in known_backends or "." not in name.replace(":", "."):
        return get_backend_class(name)(**options)
    if name in _entry_points():
        return get_backend_class(name)(**options)
    target = _import(name, hint=None, what=f"cluster class '{name}'")
    if isinstance(target, type) and issubclass(target, ClusterBackend):
        return target(**options)
    if not callable(target):
        raise UnknownBackendError(f"'{name}' is {target!r}, not a Dask cluster class.")
    return DaskClusterBackend(target, **options)


class DaskClusterBackend(LocalProcessTeardown, ClusterBackend):
    """Any Dask cluster class, named by dotted path: the escape hatch.

    The request becomes the keyword arguments the class's signature takes
    (``n_workers``, ``threads_per_worker``/``nthreads``, ``memory_limit``,
    dask-jobqueue's ``cores``/``memory``); then ``daskflow.cluster.cluster-kwargs``
    and this backend's keyword arguments are merged over them. If the class
    takes no ``n_workers``, the cluster is scaled to ``request.workers``.

    >>> DaskClusterBackend("distributed.LocalCluster").cluster_kwargs(
    ...     ResourceRequest(cpu=2, memory=2**30, workers=3))  # doctest: +ELLIPSIS
    {'n_workers': 3, 'threads_per_worker': 2, 'memory_limit': 1073741824, ...}
    """

    name = "dotted-path"

    def __init__(self, cluster_class: Any, **options: Any) -> None:
        if isinstance(cluster_class, str):
            path = cluster_class
            cluster_class = _import(path, hint=None, what=f"cluster class '{path}'")
        self.cluster_class = cluster_class
        self.path = f"{cluster_class.__module__}.{cluster_class.__qualname__}"
        self.name = self.path  # type: ignore[misc]
        self.options = dict(options)  # any keyword of the class: no checking here

    def accepted(self) -> set[str]:
        """Keyword arguments the class (and a dask-jobqueue job class) names explicitly."""
        names: set[str] = set()
        classes = [self.cluster_class, getattr(self.cluster_class, "job_cls", None)]
        for target in classes:
            if not isinstance(target, type):
                continue
            for klass in target.__mro__:  # **kwargs passed up to a base's __init__
                if "__init__" not in vars(klass) or klass is object:
                    continue
                try:
                    params = inspect.signature(vars(klass)["__init__"]).parameters.values()
                except (TypeError, ValueError):
                    continue
                names |= {p.name for p in params
                          if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
                if any(p.kind == p.VAR_KEYWORD and p.name == "worker_kwargs"
                       for p in params):  # LocalCluster passes them on to its workers
                    classes += [c for c in _worker_classes() if c not in classes]
        names.discard("self")
        return names

    def cluster_kwargs(self, request: ResourceRequest, *,
                       name: str | None = None) -> dict[str, Any]:
        accepted = self.accepted()
        translated: dict[str, Any] = {}

        def offer(key: str, value: Any) -> None:
            if key in accepted and value is not None:
                translated[key] = value

        offer("n_workers", request.workers)
        if "threads_per_worker" in accepted:
            offer("threads_per_worker", request.threads)
        else:
            offer("nthreads", request.threads)
        offer("memory_limit", request.memory)
        if "cores" in accepted:  # dask-jobqueue: one process per job, sized like the worker
            offer("cores", request.threads)
            offer("processes", 1)
            offer("memory", request.memory)
        offer("dashboard_address", config.get("cluster.dashboard-address"))
        if name is not None:
            offer("name", name)
        kwargs = {**translated, **(config.get("cluster.cluster-kwargs") or {}), **self.options}
        if request.env and "job_script_prologue" in accepted:  # dask-jobqueue: after the user's
            kwargs["job_script_prologue"] = [*(kwargs.get("job_script_prologue") or []),
                                             *export_lines(request.env)]
        elif request.env and "env" in accepted:  # LocalCluster's nannies: over the user's
            kwargs["env"] = {**(kwargs.get("env") or {}), **request.env_dict}
        return kwargs

    def check(self, request: ResourceRequest) -> None:
        if request.env and not {"job_script_prologue", "env"} & self.accepted():
            raise ResourceRequestError(
                f"{self.path} takes no worker environment (no env= or job_script_prologue= "
                f"argument), so it cannot start workers with {', '.join(request.env_dict)}. "
                f"Use a daskflow backend (local, slurm, kubernetes, ...) for this step.")

    def make_cluster(self, request: ResourceRequest, *, name: str) -> Any:
        kwargs = self.cluster_kwargs(request, name=name)
        cluster = self.cluster_class(**kwargs)
        if "n_workers" not in kwargs:
            cluster.scale(request.workers)
        return cluster

    def __repr__(self) -> str:
        options = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"DaskClusterBackend({self.path!r}{options})"


def _import(path: str, *, hint: str | None, what: str) -> Any:
    """Import ``module:attr`` or ``module.attr``."""
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if hint:
            raise BackendNotInstalledError(f"{hint} ({type(exc).__name__}: {exc})") from exc
        if not module_name:
            raise UnknownBackendError(f"Cannot import {what}: '{path}' names no module.") \
                from exc
        raise UnknownBackendError(
            f"Cannot import {what}: {exc}. Known backends: "
            f"{', '.join(available_backends())}.") from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        from ..exceptions import did_you_mean
        raise UnknownBackendError(
            f"Cannot import {what}: module '{module_name}' has no '{attr}'."
            f"{did_you_mean(attr, [n for n in dir(module) if not n.startswith('_')])}") \
            from exc


def _worker_classes() -> tuple[type, ...]:
    """What LocalCluster starts: a Nanny (its default, with processes) or a Worker."""
    from distributed import Nanny, Worker
    return Worker, Nanny


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _dist_name(ep: Any) -> str:
    dist = getattr(ep, "dist", None)
    return getattr(dist, "name", "?") if dist is not None else "?"
