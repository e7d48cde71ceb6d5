"""What each name of Metaflow 2.19 becomes on daskflow: mapped, or refused in one line.

One visible table, as Metaflow keeps its plugins in ``plugins/__init__.py``: for each
``metaflow`` module the alias answers (:mod:`.alias`), the names it maps to daskflow
(``"module:attribute"``, imported when first read) and the Metaflow features it
refuses, each with what to do instead. A Metaflow module that is not here (Metaflow's
internals: ``metaflow.metaflow_config``, ``metaflow.plugins.kubernetes``, ...) is refused
as a whole. docs/metaflow.md lists the same choices for readers.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from typing import Any

from ..exceptions import MetaflowFeatureError

_CLIENT = {name: f"daskflow.client:{name}" for name in (
    "Flow", "Run", "Step", "Task", "DataArtifact", "namespace", "get_namespace",
    "default_namespace")}
_METADATA = {name: f"daskflow.compat.metaflow_names:{name}" for name in (
    "get_metadata", "metadata", "default_metadata")}
_CONFIGS = {name: f"daskflow.configs:{name}" for name in ("Config", "ConfigValue",
                                                           "config_expr")}
_CARD_BASES = {"MetaflowCard": "daskflow.cards.registry:MetaflowCard",
               "MetaflowCardComponent": "daskflow.cards.components:MetaflowCardComponent"}
_COMPONENTS = {name: f"daskflow.cards.components:{name}" for name in (
    "Artifact", "Error", "Image", "Markdown", "ProgressBar", "Table", "VegaChart")}

_NO_ENVIRONMENTS = ("daskflow builds no environments: the workers need the flow's "
                    "packages in their image (the run's code package ships Python source "
                    "only); install them there")
_NO_DEPLOY = ("daskflow does not deploy flows to a scheduler (Argo Workflows, Step "
              "Functions, Airflow); start runs with `daskflow run` or Runner, on a "
              "schedule of your own")
_NO_USER_DECORATORS = ("Metaflow's user-defined decorators and mutators are not in "
                       "daskflow; write a daskflow step decorator "
                       "(daskflow.steps.StepDecorator) instead")
_NEW_COMPONENT = "use Markdown, Table or Artifact on the card instead"

#: module -> {Metaflow name: "daskflow module:attribute"}
MAPPED: dict[str, dict[str, str]] = {
    "metaflow": {
        "FlowSpec": "daskflow.flowspec:FlowSpec", "step": "daskflow.flowspec:step",
        "Parameter": "daskflow.parameters:Parameter",
        "IncludeFile": "daskflow.parameters:IncludeFile",
        "JSONType": "daskflow.parameters:JSONType",
        "JSONTypeClass": "daskflow.parameters:JSONTypeClass",
        "current": "daskflow.current:current",
        "Runner": "daskflow.runtime:Runner", "NBRunner": "daskflow.runtime:NBRunner",
        "parallel_map": "daskflow.collections:parallel_map",
        "parallel_imap_unordered": "daskflow.collections:parallel_imap_unordered",
        "card": "daskflow.cards:card",
        **{name: f"daskflow.steps:{name}" for name in (
            "catch", "retry", "timeout", "resources", "environment", "parallel")},
        "secrets": "daskflow.steps.secrets:secrets",
        "project": "daskflow.project:project",
        # flow decorators only a deployment reads: a local Metaflow run ignores them too
        **{name: "daskflow.compat.metaflow_names:deployment_only" for name in (
            "schedule", "trigger", "trigger_on_finish")},
        "yaml_parser": "daskflow.compat.metaflow_names:yaml_parser",
        "inspect_spin": "daskflow.runtime.spin:inspect_spin",
        **_CLIENT, **_METADATA, **_CONFIGS,
    },
    "metaflow.cards": {**_COMPONENTS, **_CARD_BASES,
                       "get_cards": "daskflow.cards:get_cards",
                       "DefaultCard": "daskflow.cards.registry:DefaultCard",
                       "BlankCard": "daskflow.cards.registry:BlankCard"},
    "metaflow.client": {**_CLIENT, **_METADATA},
    "metaflow.exception": {
        "MetaflowException": "daskflow.exceptions:DaskflowException",
        "MetaflowInternalError": "daskflow.exceptions:DaskflowException",
        "CommandException": "daskflow.exceptions:DaskflowException",
        "MetaflowNotFound": "daskflow.exceptions:DataNotFoundError",
        "MetaflowNamespaceMismatch": "daskflow.exceptions:DataNotFoundError",
        "MetaflowDataMissing": "daskflow.exceptions:DataNotFoundError",
        "MetaflowInvalidPathspec": "daskflow.exceptions:DataNotFoundError",
        "UnhandledInMergeArtifactsException": "daskflow.exceptions:MergeArtifactsError",
        "MissingInMergeArtifactsException": "daskflow.exceptions:MergeArtifactsError",
        "MetaflowTaggingError": "daskflow.exceptions:TagError",
    },
    "metaflow.metaflow_current": {"current": "daskflow.current:current",
                                  "Current": "daskflow.current:Current"},
    "metaflow.flowspec": {"FlowSpec": "daskflow.flowspec:FlowSpec"},
    "metaflow.parameters": {"Parameter": "daskflow.parameters:Parameter",
                            "JSONType": "daskflow.parameters:JSONType",
                            "JSONTypeClass": "daskflow.parameters:JSONTypeClass"},
    "metaflow.includefile": {"IncludeFile": "daskflow.parameters:IncludeFile"},
    "metaflow.user_configs": {},
    "metaflow.user_configs.config_parameters": dict(_CONFIGS),
    # the module path a custom card package may import its bases from
    "metaflow.plugins": {},
    "metaflow.plugins.cards": {},
    "metaflow.plugins.cards.card_modules": dict(_CARD_BASES),
    "metaflow.plugins.cards.card_modules.card": dict(_CARD_BASES),
    "metaflow.plugins.cards.card_modules.components": dict(_COMPONENTS),
}

#: packages among MAPPED (they have submodules)
PACKAGES = {"metaflow", "metaflow.cards", "metaflow.plugins", "metaflow.plugins.cards",
            "metaflow.plugins.cards.card_modules", "metaflow.user_configs"}

#: module -> {Metaflow name: why daskflow refuses it, and what to do instead}
REFUSED: dict[str, dict[str, str]] = {
    "metaflow": {
        "S3": "read and write object stores with fsspec/s3fs in the step "
              "(fsspec.open('s3://bucket/key')), or keep the data as artifacts",
        "batch": "give the step a cluster on AWS with @resources(backend='aws', cpu=..., "
                 "memory=...)",
        "kubernetes": "give the step a cluster on Kubernetes with "
                      "@resources(backend='kubernetes', cpu=..., memory=...)",
        **{name: _NO_ENVIRONMENTS for name in (
            "conda", "conda_base", "pypi", "pypi_base", "conda_environment_yml_parser",
            "requirements_txt_parser", "pyproject_toml_parser")},
        "pytorch_parallel": "use num_parallel= with @parallel and current.parallel "
                            "(main_ip, main_port) to start torch.distributed in the step",
        **{name: _NO_DEPLOY for name in (
            "Deployer", "NBDeployer", "DeployedFlow", "airflow_external_task_sensor",
            "airflow_s3_key_sensor", "airflow_internal", "argo_workflows_internal",
            "step_functions_internal", "namespaced_event_name")},
        "exit_hook": "run the code after the run instead (Runner(...).run() returns the "
                     "Run), or in the end step",
        **{name: _NO_USER_DECORATORS for name in (
            "FlowMutator", "StepMutator", "UserStepDecorator", "user_step_decorator",
            "USER_SKIP_STEP")},
        "Metaflow": "open the flows you know by name with Flow(name)",
        "R": "daskflow runs Python flows only",
        "profile": "time the code with time.perf_counter() or the run report's timeline",
        "unbounded_test_foreach_internal": "an internal of Metaflow's tests",
        "EXT_PKG": "daskflow finds card packages itself (see daskflow.cards.registry)",
    },
    "metaflow.cards": {
        "PythonCode": _NEW_COMPONENT, "ValueBox": _NEW_COMPONENT,
        "JSONViewer": _NEW_COMPONENT, "YAMLViewer": _NEW_COMPONENT,
        "EventsTimeline": _NEW_COMPONENT,
        "ErrorCard": "a card that fails to render shows its error on the page itself",
        "PageComponent": "subclass MetaflowCard and return your page's HTML from render()",
    },
}

#: Metaflow 2.19's own top-level submodules, so ``from metaflow import datastore`` is
#: refused as a module rather than missing as a name
_METAFLOW_SUBMODULES = {
    "cli", "cli_args", "cmd", "cmd_with_io", "datastore", "debug", "decorators",
    "event_logger", "events", "extension_support", "graph", "lint", "meta_files",
    "metadata_provider", "metaflow_config", "metaflow_config_funcs", "metaflow_environment",
    "metaflow_git", "metaflow_profile", "metaflow_version", "mflog", "monitor",
    "multicore_utils", "package", "packaging_sys", "runner", "runtime", "sidecar",
    "system", "system_context", "tagging_util", "task", "tracing", "tuple_util",
    "unbounded_foreach", "user_decorators", "util", "version"}


def module_known(fullname: str) -> bool:
    return fullname in MAPPED


def metaflow_has(fullname: str) -> bool:
    """Whether ``fullname`` is (under) one of Metaflow's own modules: such a module that
    daskflow does not answer is refused; any other name is simply not found."""
    first = fullname.split(".")[1] if "." in fullname else ""
    return first in _METAFLOW_SUBMODULES or f"metaflow.{first}" in MAPPED


def is_package(fullname: str) -> bool:
    return fullname in PACKAGES


def names_of(module: str) -> Iterable[str]:
    """The names a ``metaflow`` module maps (what ``from metaflow import *`` gives)."""
    return MAPPED.get(module, {}).keys()


def resolve_name(module: str, name: str) -> Any:
    """The daskflow object behind ``module.name``; a refused feature raises in one line."""
    target = MAPPED.get(module, {}).get(name)
    if target is not None:
        path, _, attr = target.partition(":")
        return getattr(importlib.import_module(path), attr)
    reason = REFUSED.get(module, {}).get(name)
    if reason is not None:
        what = f"@{name}" if name[:1].islower() and not name.endswith("_parser") else name
        raise MetaflowFeatureError(f"Metaflow's {what} ({module}.{name}): {reason}.")
    child = f"{module}.{name}"
    if child in MAPPED or (module == "metaflow" and name in _METAFLOW_SUBMODULES):
        return importlib.import_module(child)  # a refused one raises from the finder
    raise AttributeError(f"module {module!r} has no attribute {name!r}")


def refuse_module(fullname: str) -> None:
    """``import metaflow.X`` for an X daskflow does not answer: one line, naming it."""
    raise MetaflowFeatureError(
        f"Metaflow's module {fullname}: daskflow answers only metaflow, metaflow.cards, "
        f"metaflow.client, metaflow.exception and the few modules docs/metaflow.md lists, "
        f"with what it offers instead.")


# -- the few Metaflow functions that live here ------------------------------------------


def deployment_only(*args: Any, **kwargs: Any) -> Any:
    """``@schedule``, ``@trigger``, ``@trigger_on_finish``: read by Metaflow's deployments
    only; a local run ignores them, and so does daskflow (the class is unchanged)."""
    if len(args) == 1 and isinstance(args[0], type) and not kwargs:
        return args[0]
    return lambda cls: cls


def get_metadata() -> str:
    """Where the client reads runs, in Metaflow's spelling: ``local@<folder>`` (the folder
    holding the datastore, as Metaflow names the one holding ``.metaflow``)."""
    from ..datastore import resolve_root
    root = resolve_root()
    if "://" not in root:
        root = os.path.dirname(root.rstrip(os.sep)) or root
    return f"local@{root}"


def metadata(ms: str) -> str:
    """Read runs from another place: a folder, or ``local@<folder>`` (the datastore root,
    or a folder holding one); a metadata service is refused."""
    kind, _, where = ms.rpartition("@") if "@" in ms else ("local", "@", ms)
    if kind != "local" or ms.startswith(("http://", "https://")):
        raise MetaflowFeatureError(
            f"Metaflow's metadata service ({ms}) is not in daskflow: runs are read from "
            f"the datastore, so give its folder or URL (local@/path, s3://bucket/prefix).")
    import dask.config

    from .. import config
    _SET_ROOTS.append(config.get("datastore.root"))
    default = os.path.basename(str(_SET_ROOTS[0]))
    nested = os.path.join(where, default)
    root = nested if "://" not in where and os.path.isdir(nested) else where
    dask.config.set({"daskflow.datastore.root": root})
    return get_metadata()


_SET_ROOTS: list[Any] = []   # the roots metadata() replaced, the configured one first


def default_metadata() -> str:
    """Back to the configured datastore (``daskflow.datastore.root``)."""
    import dask.config
    if _SET_ROOTS:
        dask.config.set({"daskflow.datastore.root": _SET_ROOTS[0]})
        _SET_ROOTS.clear()
    return get_metadata()


def yaml_parser(text: str) -> Any:
    """Metaflow's ``yaml_parser`` for ``Config(parser=...)``: YAML text to a dict."""
    import yaml
    return yaml.safe_load(text)
