"""``@secrets(sources=[...])``: Metaflow's decorator, on daskflow's secret references.

Each source becomes references of :mod:`daskflow.secrets`, put in the step's plan as
``@environment(secrets=...)`` puts them, so the values reach the step's tasks (or its
cluster's workers) and nothing else:

- ``"aws-secrets-manager.ID"`` (or ``{"type": "aws-secrets-manager", "id": ID}``) holding a
  JSON object: each key is a variable (``-``, ``.``, ``/`` made ``_``, as Metaflow does),
  ``aws-secretsmanager:ID#KEY``; the driver reads the keys when the run is planned, the
  values when it needs them;
- with ``options={"json": False}``: the whole text, in a variable named after the
  secret (or ``options["env_var_name"]``), ``aws-secretsmanager:ID``;
- ``"env.NAME"`` (daskflow's own source): the driver's variable ``NAME``, as ``NAME`` (or
  ``options["env_var_name"]``);
- a source without a type takes ``$METAFLOW_DEFAULT_SECRETS_BACKEND_TYPE``.

Metaflow's checks hold, with its messages: no variable from two sources, none starting
with ``METAFLOW_``, and, unless ``allow_override=True``, none already set (here: in the
driver's environment or by the step's ``@environment``). They run on the driver before the
run starts, where Metaflow's run in the task. ``role=`` and other backends (GCP, Azure,
Metaflow's test-only ``inline``) are refused in one line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..secrets import NAME, SecretError, SecretRef, json_keys
from .base import StepDecorator, StepDecoratorError, StepPlan

AWS = "aws-secrets-manager"      # Metaflow's name for the backend
ENV = "env"                      # daskflow's
DEFAULT_TYPE = "METAFLOW_DEFAULT_SECRETS_BACKEND_TYPE"
_ARN_NAME = re.compile(r"^arn:aws:secretsmanager:[^:]*:[^:]*:secret:(.+)-[A-Za-z0-9]{6}$")


class SecretSource(NamedTuple):
    """One entry of ``sources``, as Metaflow's SecretSpec: backend type, id, options."""

    type: str
    id: str
    options: Mapping[str, Any]

    def __str__(self) -> str:  # Metaflow's spelling in its messages
        return f"{self.id} ({self.type})"


class Secrets(StepDecorator):
    """Put secrets in the step's environment (Metaflow's ``@secrets``).

    >>> @secrets(sources=["aws-secrets-manager.prod/db"])    # doctest: +SKIP
    ... @step
    ... def start(self):
    ...     connect(password=os.environ["password"])
    """

    name = "secrets"

    @dataclass
    class Options:
        sources: list[Any] = field(default_factory=list)
        role: str | None = None
        allow_override: bool = False

    def validate(self) -> None:
        if self.options.role is not None:
            raise StepDecoratorError(
                f"@secrets(role={self.options.role!r}): daskflow reads secrets with the "
                f"driver's own AWS credentials and assumes no role; drop role=.")
        if not isinstance(self.options.sources, (list, tuple)):
            raise StepDecoratorError("@secrets(sources=...) must be a list of secret specs.")
        self.sources = [_source(spec) for spec in self.options.sources]

    def plan(self, *, step: StepPlan) -> None:
        added: dict[str, SecretSource] = {}
        refs: dict[str, SecretRef] = {}
        try:
            for source in self.sources:
                for var, ref in _references(source).items():
                    self._check(var, source, added, step)
                    added[var] = source
                    refs[var] = ref
            for var in refs:
                if var in step.secrets:
                    raise SecretError(f"Secret '{added[var]}' will inject '{var}' as env var, "
                                      f"and it is also added by @environment(secrets).")
        except SecretError as exc:
            raise SecretError(f"{step.where()}: {exc}") from None
        step.secrets.update(refs)

    def _check(self, var: str, source: SecretSource, added: dict[str, SecretSource],
               step: StepPlan) -> None:
        """Metaflow's checks of a variable a secret sets, in its words. Whether it exists
        already is asked of the driver's environment and the step's @environment (Metaflow
        asks the task's); ``env.NAME`` sets the variable it reads, which is allowed."""
        if not NAME.fullmatch(var):
            raise SecretError(f"Invalid env vars from secret {source.id}: Found invalid env "
                              f"var name '{var}'.")
        if var.startswith("METAFLOW_"):
            raise SecretError(f"Invalid env vars from secret {source.id}: Found disallowed "
                              f"env var name '{var}' (starts with 'METAFLOW_').")
        if var in added:
            raise SecretError(f"Secret '{source}' will inject '{var}' as env var, and it is "
                              f"also added by '{added[var]}'")
        reads_itself = source.type == ENV and source.id == var
        if not self.options.allow_override and not reads_itself and (
                var in os.environ or var in step.env):
            raise SecretError(f"Secret '{source}' will inject '{var}' as env var, but it "
                              f"already exists in env (allow_override=True replaces it)")


def _source(spec: Any) -> SecretSource:
    """A ``sources`` entry as Metaflow parses it: ``"type.id"`` or ``{"type", "id", ...}``."""
    if isinstance(spec, str):
        kind, dot, ident = spec.partition(".")
        return SecretSource(kind, ident, {}) if dot else SecretSource(_default_type(), spec, {})
    if isinstance(spec, Mapping):
        kind = spec.get("type", None)
        if kind is None:
            kind = _default_type()
        if not isinstance(kind, str):
            raise StepDecoratorError(f"Bad @secrets specification - 'type' must be a string - "
                                     f"found {type(kind)}")
        ident = spec.get("id")
        if not isinstance(ident, str):
            raise StepDecoratorError(f"Bad @secrets specification - 'id' must be a string - "
                                     f"found {type(ident)}")
        options = spec.get("options", {})
        if not isinstance(options, Mapping):
            raise StepDecoratorError(f"Bad @secrets specification - 'option' must be a dict - "
                                     f"found {type(options)}")
        if spec.get("role") is not None:
            raise StepDecoratorError("@secrets: daskflow assumes no role; drop 'role'.")
        return SecretSource(kind, ident, options)
    raise StepDecoratorError("@secrets sources items must be either a string or a dict")


def _default_type() -> str:
    kind = os.environ.get(DEFAULT_TYPE)
    if not kind:
        raise StepDecoratorError("No default secrets backend type configured, but needed by "
                                 "@secrets. Set METAFLOW_DEFAULT_SECRETS_BACKEND_TYPE.")
    return kind


def _references(source: SecretSource) -> dict[str, SecretRef]:
    """The variables one source gives, each as a reference (reads an AWS secret's keys)."""
    unknown = set(source.options) - {"json", "env_var_name"}
    if unknown:
        raise SecretError(f"@secrets option {min(unknown)!r} of {source} is not one "
                          f"daskflow reads (json, env_var_name); give a secret's ARN for its "
                          f"region.")
    renamed = source.options.get("env_var_name")
    if source.type == ENV:
        return {renamed or source.id: SecretRef("env", source.id)}
    if source.type != AWS:
        raise SecretError(f"Unknown secrets backend type {source.type} (available types: "
                          f"{AWS}, {ENV})")
    if not source.options.get("json", True):
        name = renamed or _secret_name(source.id)
        return {_sanitized(name): SecretRef("aws-secretsmanager", source.id)}
    keys = json_keys(source.id, name=str(source))
    found: dict[str, SecretRef] = {}
    for key in keys:
        var = _sanitized(key)
        if var in found:
            raise SecretError(f"Duplicate key in secret: '{key}' (sanitizes to '{var}')")
        found[var] = SecretRef("aws-secretsmanager", f"{source.id}#{key}")
    return found


def _secret_name(secret_id: str) -> str:
    """The secret's name, as AWS answers it: an ARN's name without its random suffix."""
    match = _ARN_NAME.match(secret_id)
    return match.group(1) if match else secret_id


def _sanitized(key: str) -> str:
    """Metaflow's rule: ``-``, ``.`` and ``/`` become ``_``."""
    return key.replace("-", "_").replace(".", "_").replace("/", "_")


#: ``@secrets(sources=[...])``
secrets = Secrets.decorator()
