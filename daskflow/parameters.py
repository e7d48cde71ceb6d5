"""Run parameters: ``Parameter``, ``IncludeFile`` and ``JSONType``, with Metaflow's meaning.

A parameter is declared as a class attribute of the flow and read as an
artifact in every step; it is read-only.  Values come from the command line
(``--alpha 0.5``) or from ``MyFlow.run(alpha=0.5)``, else from the environment
variable Metaflow reads (``METAFLOW_RUN_ALPHA``), else from the default, and are
checked before any task starts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from .exceptions import ParameterError, ReservedNameError


class JSONTypeClass:
    """Marks a parameter whose value is JSON text, parsed into Python objects."""

    name = "JSON"

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value)
        return value

    def __repr__(self) -> str:
        return "JSONType"


JSONType = JSONTypeClass()

_TRUE = {"true", "1", "yes", "y", "on", "t"}
_FALSE = {"false", "0", "no", "n", "off", "f"}


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not a boolean (use true or false)")


class Parameter:
    """A value given when the run starts, readable in every step as ``self.<name>``.

    Parameters
    ----------
    name : str
        The option name on the command line (``--name``) and keyword in ``MyFlow.run``.
    default : optional
        Value used when none is given; its type sets ``type`` when that is omitted.
    type : str, int, float, bool or JSONType, optional
    help : str, optional
    required : bool
        The run refuses to start without it.
    separator : str, optional
        Split a string value at this separator into a list of strings.

    When the option is not given, the environment variable ``METAFLOW_RUN_<NAME>``
    (the name upper-cased, dashes as underscores) gives the value, as in Metaflow.

    >>> class Train(FlowSpec):                              # doctest: +SKIP
    ...     alpha = Parameter("alpha", default=0.01, help="learning rate")
    ...     tags = Parameter("tags", default="a,b", separator=",")   # ["a", "b"]
    """

    def __init__(self, name: str, default: Any = None, type: Any = None,
                 help: str | None = None, required: bool = False,
                 show_default: bool = True, separator: str | None = None,
                 **kwargs: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ParameterError(f"Parameter name must be a non-empty string, got {name!r}.")
        self.name = name
        self.default = default
        self.help = help
        self.required = required
        self.show_default = show_default
        self.attr_name = name.replace("-", "_")
        # a default from a Config (``default=cfg.alpha``) is known when the run starts:
        # its type is inferred then (see with_known_default)
        self._type_given = type is not None
        if type is None:
            type = str if _delayed(default) else _infer_type(default)
        if type not in (str, int, float, bool) and not isinstance(type, JSONTypeClass):
            raise ParameterError(
                f"Parameter '{name}': type must be str, int, float, bool or JSONType, got {type!r}.")
        self.type = type
        if separator and type is not str:
            raise ParameterError(
                f"Parameter '{name}': separator= splits a string into a list, so the "
                f"parameter must be a string, but its type is {self.type_name}. Drop "
                f"separator= or use type=str with a string default.")
        self.separator = separator

    IS_CONFIG_PARAMETER = False   # Metaflow's mark; daskflow.configs.Config sets it

    def with_known_default(self, default: Any) -> Parameter:
        """This parameter with ``default`` (its config expression's value) in its place."""
        import copy
        known = copy.copy(self)
        known.default = default
        if not self._type_given:
            known.type = _infer_type(default)
        return known

    @property
    def envvar(self) -> str:
        """The environment variable read when the option is not given (Metaflow's name)."""
        return "METAFLOW_RUN_" + self.name.replace("-", "_").upper()

    def __set_name__(self, owner: type, attr: str) -> None:
        self.attr_name = attr

    # Parameters read as artifacts on a running flow and can never be assigned.
    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        return obj._parameter_value(self.attr_name)

    def __set__(self, obj: Any, value: Any) -> None:
        raise ReservedNameError(
            f"Flow level attributes and Parameters are not modifiable: parameter "
            f"'{self.name}' cannot be assigned in a step. Store the changed value under "
            f"another name (self.{self.attr_name}_used = ...).")

    @property
    def type_name(self) -> str:
        return getattr(self.type, "name", None) or self.type.__name__

    def convert(self, value: Any) -> Any:
        """Return ``value`` as this parameter's type, or raise :class:`ParameterError`."""
        try:
            if self.type is bool:
                return _parse_bool(value)
            if isinstance(self.type, JSONTypeClass):
                return self.type(value)
            if isinstance(value, self.type) and not (self.type is int and isinstance(value, bool)):
                return value
            if self.type is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(f"{value!r} is not a whole number")
            return self.type(value)
        except (ValueError, TypeError) as exc:
            raise ParameterError(
                f"Invalid value {value!r} for parameter '{self.name}': expected {self.type_name} "
                f"({exc}).") from exc

    def resolve(self, given: dict[str, Any]) -> Any:
        """Pick this parameter's value: from ``given`` (by name), else from its
        environment variable, else its default; split at ``separator`` if it has one."""
        if self.name in given and given[self.name] is not None:
            value = given[self.name]
            if self.separator and isinstance(value, (list, tuple)):
                return [str(v) for v in value]  # MyFlow.run(tags=["a", "b"])
            value = self.convert(value)
        elif self.envvar in os.environ:  # set, even empty: click's rule in Metaflow
            try:
                value = self.convert(os.environ[self.envvar])
            except ParameterError as exc:
                raise ParameterError(f"{exc} It came from ${self.envvar}.") from exc
        elif self.required and self.default is None:
            raise ParameterError(
                f"Missing required parameter '{self.name}': pass --{self.name} VALUE "
                f"(or set {self.envvar}).")
        else:
            value = None if self.default is None else self.convert(self.default)
        if self.separator and value:
            return value.split(self.separator)
        return value


def _delayed(value: Any) -> bool:
    """A config expression (daskflow.configs), known by its mark: no import of it here."""
    return bool(getattr(type(value), "_df_delayed", False))


# How a config expression becomes a value once the run's configs are known. daskflow.configs
# (the layer above, whose Config is a Parameter) registers it when imported, which it is
# wherever a config expression can exist: this module imports nothing above it.
_config_resolver: list[Callable[[Any, type], Any] | None] = [None]


def resolve_config_defaults_with(resolve: Callable[[Any, type], Any]) -> None:
    _config_resolver[0] = resolve


def _infer_type(default: Any) -> Any:
    if default is None:
        return str
    if isinstance(default, bool):
        return bool
    for kind in (int, float, str):
        if isinstance(default, kind):
            return kind
    if isinstance(default, (dict, list, tuple)):
        return JSONType
    raise ParameterError(
        f"Cannot infer a parameter type from default {default!r}; pass type=.")


class IncludeFile(Parameter):
    """A local file read when the run starts and stored as an artifact.

    The command line takes the file's path (``--data table.csv``); steps see
    its contents, text by default or bytes with ``is_text=False``.
    """

    def __init__(self, name: str, default: str | None = None, is_text: bool = True,
                 encoding: str = "utf-8", help: str | None = None,
                 required: bool = False, **kwargs: Any) -> None:
        super().__init__(name, default=default, type=str, help=help, required=required)
        self.is_text = is_text
        self.encoding = encoding

    @property
    def type_name(self) -> str:
        return "PATH"

    def convert(self, value: Any) -> Any:
        path = os.path.expanduser(str(value))
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise ParameterError(
                f"IncludeFile '{self.name}': cannot read {path!r} ({exc.strerror}).") from exc
        if not self.is_text:
            return data
        try:
            return data.decode(self.encoding)
        except UnicodeDecodeError as exc:
            raise ParameterError(
                f"IncludeFile '{self.name}': {path!r} is not {self.encoding} text; "
                f"pass is_text=False to read bytes.") from exc


def flow_parameters(flow_cls: type) -> dict[str, Parameter]:
    """Map each parameter's attribute name to its declaration, in definition order."""
    found: dict[str, Parameter] = {}
    for klass in reversed(flow_cls.__mro__):
        for attr, value in vars(klass).items():
            if isinstance(value, Parameter) and not value.IS_CONFIG_PARAMETER:
                found[attr] = value
    return found


def resolve_parameters(flow_cls: type, given: dict[str, Any],
                       pending: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Check ``given`` (by parameter name) against the flow and return values by attribute.

    Raises :class:`ParameterError` naming the first unknown, missing or bad parameter.
    Names in ``pending`` get their values later (a ``dask.delayed``): only their names
    are checked, and they are left out of the result.
    """
    params = flow_parameters(flow_cls)
    if any(_delayed(p.default) for p in params.values()):
        resolve_delayed = _config_resolver[0]
        assert resolve_delayed is not None, "daskflow.configs registers it on import"
        params = {attr: p.with_known_default(resolve_delayed(p.default, flow_cls))
                  if _delayed(p.default) else p for attr, p in params.items()}
    known = {p.name: p for p in params.values()}
    for name in given:
        if name not in known:
            from .exceptions import did_you_mean
            listed = ", ".join(sorted(known)) or "none"
            raise ParameterError(
                f"Unknown parameter '{name}' for flow {flow_cls.__name__}."
                f"{did_you_mean(name, known)} Known parameters: {listed}.")
    return {attr: p.resolve(given) for attr, p in params.items() if p.name not in pending}
