"""Secret environment variables: named by reference, resolved only where needed, never shown.

A secret is given as a *reference* ``source:what``, never as its value:

- ``env:NAME``: the driver's environment variable ``NAME`` (set by a vault, CI, ...);
- ``aws-secretsmanager:ARN-or-name``: an existing AWS Secrets Manager secret;
  ``aws-secretsmanager:ARN-or-name#KEY``: the value of ``KEY`` in such a secret that holds
  a JSON object (how Metaflow's ``@secrets`` reads one, see :mod:`daskflow.steps.secrets`).

``@environment(secrets={"DB_PASSWORD": "env:DB_PASSWORD"})`` (or just
``secrets=["DB_PASSWORD"]``, short for that) and a backend's ``env:`` setting with a
``{secret: reference}`` entry use the same spelling. A reference is safe to show
(``show`` and errors name it); the value is read on the driver only when a cluster
or a task needs it, and it is held in a :class:`SecretValue`, whose ``repr`` and
``str`` never show it, so a log line, record or error message that prints the plan
of a step shows ``<secret>``.

>>> ref = parse_reference("env:DB_PASSWORD", what="DB_PASSWORD")
>>> ref.source, ref.target, str(ref)
('env', 'DB_PASSWORD', 'env:DB_PASSWORD')
>>> SecretValue("hunter2")
<secret>
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .exceptions import ConfigurationError

#: the sources a reference may name
SOURCES = ("env", "aws-secretsmanager")
#: what an environment variable's name may be
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SecretError(ConfigurationError):
    """A secret reference is malformed, or its value cannot be read."""

    headline = "Secret error"


@dataclass(frozen=True)
class SecretRef:
    """Where a secret's value is: ``source`` (one of :data:`SOURCES`) and ``target``."""

    source: str
    target: str

    def __str__(self) -> str:
        return f"{self.source}:{self.target}"


class SecretValue:
    """A secret's value: ``reveal()`` gives it; ``repr``/``str`` never do."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Any, ...]:
        return (SecretValue, (self._value,))


def parse_reference(spec: Any, *, what: str) -> SecretRef:
    """``"env:NAME"`` or ``"aws-secretsmanager:ARN"`` as a :class:`SecretRef`; ``what`` names
    the variable in the error."""
    source, _, target = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if source not in SOURCES or not target:
        raise SecretError(
            f"The secret {what} is given as {_shown(spec)}: give a reference, "
            f"'env:NAME' (a variable of the driver's environment) or "
            f"'aws-secretsmanager:ARN-or-name', never the value itself.")
    if source == "env" and not NAME.fullmatch(target):
        raise SecretError(f"The secret {what} refers to {spec!r}: '{target}' is not an "
                          f"environment variable name.")
    return SecretRef(source, target)


def _shown(spec: Any) -> str:
    """A bad reference in an error: it may be the secret itself, so only its type and size."""
    if isinstance(spec, str):
        return f"a string of {len(spec)} characters without a known source"
    return f"a {type(spec).__name__}"


def parse_secrets(spec: Any, *, what: str) -> dict[str, SecretRef]:
    """``secrets=`` of ``@environment``: names (``env:`` the same name) or names to references.

    >>> parse_secrets(["TOKEN"], what="@environment(secrets)")
    {'TOKEN': SecretRef(source='env', target='TOKEN')}
    """
    if isinstance(spec, (list, tuple)):
        spec = {name: f"env:{name}" for name in spec}
    if not isinstance(spec, Mapping):
        raise SecretError(f"{what} must be a list of variable names or a dict of names to "
                          f"references, e.g. {{'DB_PASSWORD': 'env:DB_PASSWORD'}}.")
    bad = [name for name in spec if not isinstance(name, str) or not NAME.fullmatch(name)]
    if bad:
        raise SecretError(f"{what}: {bad[0]!r} is not an environment variable name.")
    return {name: parse_reference(ref, what=name) for name, ref in spec.items()}


def split_env(env: Mapping[str, Any] | None, *, what: str
              ) -> tuple[dict[str, str], dict[str, SecretRef]]:
    """A backend's ``env:`` setting as plain values and secrets (``{secret: reference}``).

    >>> split_env({"MODE": "fast", "DB": {"secret": "env:DB"}}, what="env")
    ({'MODE': 'fast'}, {'DB': SecretRef(source='env', target='DB')})
    """
    plain: dict[str, str] = {}
    secret: dict[str, SecretRef] = {}
    for name, value in (env or {}).items():
        if isinstance(value, Mapping):
            if set(value) != {"secret"}:
                raise SecretError(f"{what}: {name} must be a value or {{secret: reference}}, "
                                  f"e.g. {{secret: 'env:{name}'}}.")
            secret[name] = parse_reference(value["secret"], what=name)
        else:
            plain[name] = str(value)
    return plain, secret


def resolve(ref: SecretRef, *, name: str) -> SecretValue:
    """The value of ``ref``, read here (the driver); an error names it, never shows a value."""
    if ref.source == "env":
        value = os.environ.get(ref.target)
        if value is None:
            raise SecretError(f"The secret {name} refers to the environment variable "
                              f"{ref.target}, which is not set here: set it before the run.")
        return SecretValue(value)
    secret_id, _, key = ref.target.partition("#")
    text = _secretsmanager_value(secret_id, name)
    if not key:
        return SecretValue(text)
    entries = json_secret(secret_id, text)
    if key not in entries:
        raise SecretError(f"The secret {name} refers to the key {key!r} of AWS Secrets Manager "
                          f"secret {secret_id}, which has no such key.")
    return SecretValue(str(entries[key]))


def json_keys(secret_id: str, name: str) -> list[str]:
    """The keys of an AWS Secrets Manager secret that holds a JSON object (read here, on
    the driver; never their values)."""
    return list(json_secret(secret_id, _secretsmanager_value(secret_id, name)))


def json_secret(secret_id: str, text: str) -> dict[str, Any]:
    """A secret's text as the JSON object Metaflow's @secrets expects; errors in its words."""
    import json
    try:
        value = json.loads(text)
    except ValueError:
        raise SecretError(f"Failed to retrieve secret '{secret_id}': Secret string could not "
                          f"be parsed as JSON") from None
    if not isinstance(value, dict):
        raise SecretError(f"Failed to retrieve secret '{secret_id}': Secret string is a JSON, "
                          f"but not an object (dict-like) - actual type {type(value)}.")
    return value


def _secretsmanager_value(secret_id: str, name: str) -> str:
    try:
        import botocore.exceptions as bx
        import botocore.session
    except ImportError:
        raise SecretError(f"The secret {name} refers to AWS Secrets Manager, which needs "
                          f"botocore: pip install 'daskflow[aws]'.") from None
    session = botocore.session.get_session()
    region = secret_id.split(":")[3] if secret_id.startswith("arn:") else None
    try:
        client = session.create_client("secretsmanager", region_name=region)
        answer = client.get_secret_value(SecretId=secret_id)
    except (bx.BotoCoreError, bx.ClientError) as exc:
        raise SecretError(f"The secret {name} refers to AWS Secrets Manager secret "
                          f"{secret_id}, which could not be read ({type(exc).__name__}). "
                          f"Check its name, region and your credentials.") from None
    if "SecretString" not in answer:
        raise SecretError(f"AWS Secrets Manager secret {secret_id} holds binary data; daskflow "
                          f"reads text secrets only.")
    return answer["SecretString"]


def reveal(values: Mapping[str, SecretValue]) -> dict[str, str]:
    """``{name: value}`` for a task's environment."""
    return {name: value.reveal() for name, value in values.items()}
