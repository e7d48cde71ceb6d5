"""``Config`` and ``config_expr``: configuration read when a run starts (Metaflow 2.13+).

A ``Config`` is declared like a ``Parameter``; its value comes from a file
(``--config NAME PATH``), a JSON value (``--config-value NAME JSON``), the environment
(``METAFLOW_FLOW_CONFIG`` / ``METAFLOW_FLOW_CONFIG_VALUE``, a JSON object of names to
paths or values) or its default (``default=`` a path, ``default_value=`` a value), parsed
as JSON unless ``parser=`` says otherwise. Unlike a parameter it is known before the
flow's decorators are, so the class body may use it anywhere a value goes:

>>> class Train(FlowSpec):                              # doctest: +SKIP
...     cfg = Config("cfg", default="train.json")
...     alpha = Parameter("alpha", default=cfg.alpha)
...     @resources(cpu=cfg.cpu)
...     @environment(vars={"MODE": config_expr("cfg.mode.upper()")})
...     @step
...     def start(self):
...         print(self.cfg.model.depth)                  # a read-only ConfigValue

In the class body ``cfg.x.y`` (and ``config_expr("...")``) is a :class:`DelayEvaluator`,
evaluated once the run's values are known (:func:`apply_configs`); in a step
``self.cfg`` is the value, stored with the run like a parameter, which ``resume`` and
``spin`` reuse. What a step's ``self.next(...)`` calls never depends on a config: the
graph is read from the source.
"""

from __future__ import annotations

import collections.abc
import copy
import importlib
import inspect
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .exceptions import DaskflowException
from .parameters import Parameter, resolve_config_defaults_with

ID = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
UNPACK = "_df_unpack_"          # the key ``**cfg`` gives in a decorator's keywords
ENV_PATHS = "METAFLOW_FLOW_CONFIG"
ENV_VALUES = "METAFLOW_FLOW_CONFIG_VALUE"


class ConfigError(DaskflowException, ValueError):
    """A configuration is missing, unreadable or malformed, or an expression fails."""

    headline = "Bad configuration"


class ConfigValue(collections.abc.Mapping, dict):  # type: ignore[misc]
    """A configuration's value: a read-only nested mapping, ``cfg["a"]["b"]`` or ``cfg.a.b``.

    >>> ConfigValue({"model": {"depth": 3}}).model.depth
    3
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_data", {k: _construct(v) for k, v in data.items()})
        dict.__init__(self, self._data)

    def to_dict(self) -> dict[str, Any]:
        """The value as plain dicts and lists."""
        return _to_dict(self._data)

    def __getattr__(self, key: str) -> Any:
        if key == "_data":
            raise AttributeError(key)
        if key in self._data:
            return self._data[key]
        raise AttributeError(f"The configuration has no key '{key}' (its keys: "
                             f"{', '.join(map(str, self._data)) or 'none'}).")

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def keys(self) -> Any:
        return self._data.keys()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ConfigValue):
            return self._data == other._data
        return isinstance(other, dict) and self._data == other

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def copy(self) -> ConfigValue:
        return ConfigValue(self._data)

    def _immutable(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("ConfigValue is immutable")

    __setattr__ = __setitem__ = __delattr__ = __delitem__ = _immutable  # type: ignore
    clear = update = setdefault = pop = popitem = _immutable  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._data)

    __str__ = __repr__

    def __dir__(self) -> list[str]:
        return sorted(set(dir(type(self))) | {k for k in self._data if ID.match(str(k))})

    def __reduce__(self) -> tuple[Any, ...]:
        return (ConfigValue, (self.to_dict(),))


def _construct(value: Any) -> Any:
    if isinstance(value, ConfigValue):
        return value
    if isinstance(value, Mapping):
        return ConfigValue(value)
    if isinstance(value, (list, tuple, set)):
        return type(value)(_construct(v) for v in value)
    return value


def _to_dict(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _to_dict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return type(value)(_to_dict(v) for v in value)
    return value


class DelayEvaluator(collections.abc.Mapping):  # type: ignore[misc]
    """An expression on the flow's configs, evaluated once their values are known.

    ``cfg.a["b"]`` in a class body records the path; ``config_expr("cfg.a.lower()")``
    any expression (in the globals of the module that wrote it). ``**cfg.opts`` in a
    decorator's keywords unpacks the value when it is known.
    """

    _df_delayed = True  # what daskflow's other modules look for (they import none of this)

    def __init__(self, expr: str, saved_globals: dict[str, Any] | None = None) -> None:
        self._expr = expr
        self._globals = saved_globals
        self._access: list[Any] | None = [] if ID.match(expr) else None

    def __reduce__(self) -> tuple[Any, ...]:
        # Without the module's globals: a pickled flow class carries its expressions,
        # but only the driver evaluates them.
        return (_rebuild, (self._expr, self._access))

    def _with(self, key: Any) -> DelayEvaluator:
        if self._access is None:
            raise AttributeError(f"config_expr({self._expr!r}) is a whole expression: put "
                                 f"the access inside it, config_expr('{self._expr}.{key}').")
        other = copy.copy(self)
        other._access = [*self._access, key]
        return other

    def __getattr__(self, name: str) -> DelayEvaluator:
        if name.startswith("__") or name in ("_expr", "_globals", "_access"):
            raise AttributeError(name)
        return self._with(name)

    def __getitem__(self, key: Any) -> Any:
        if key == self._unpack_key:
            return self
        return self._with(key)

    @property
    def _unpack_key(self) -> str:
        return f"{UNPACK}{id(self)}"

    def __iter__(self) -> Iterator[str]:  # ``**evaluator`` in a call's keywords
        yield self._unpack_key

    def __len__(self) -> int:
        return 1

    def text(self) -> str:
        """The expression, as ``show`` and errors name it."""
        parts = [self._expr, *(f"[{a!r}]" if not isinstance(a, str) or not ID.match(a)
                               else f".{a}" for a in self._access or [])]
        return "".join(parts)

    def __repr__(self) -> str:
        return f"config_expr({self.text()!r})"

    def evaluate(self, configs: Mapping[str, Any]) -> Any:
        """The value, given the configs by attribute name."""
        scope = dict(configs)
        try:
            value = eval(self._expr, self._globals or {}, scope)  # noqa: S307  the flow's own code
            for key in self._access or []:
                if isinstance(key, DelayEvaluator):
                    key = key.evaluate(configs)
                value = value[key] if isinstance(value, Mapping) else getattr(value, key)
        except Exception as exc:  # noqa: BLE001  named with the expression, in one line
            raise ConfigError(f"The config expression {self.text()!r} could not be "
                              f"evaluated: {type(exc).__name__}: {exc}.") from None
        return value


def _rebuild(expr: str, access: list[Any] | None) -> DelayEvaluator:
    evaluator = DelayEvaluator(expr)
    evaluator._access = access
    return evaluator


def config_expr(expr: str) -> DelayEvaluator:
    """An expression on the flow's configs, for where a ``Config`` is not reachable or a
    plain access is not enough: ``@project(name=config_expr("cfg.project.name"))``,
    ``@environment(vars={"M": config_expr("cfg.mode.lower()")})``."""
    frame = inspect.currentframe()
    caller = frame.f_back.f_globals if frame is not None and frame.f_back else {}
    return DelayEvaluator(expr, saved_globals=caller)


class Config(Parameter):
    """A configuration of the flow (see the module's docstring).

    Parameters
    ----------
    name : str
        Its name on the command line (``--config NAME PATH``).
    default : str or callable, optional
        A file to read when none is given.
    default_value : dict, str or callable, optional
        The value (or JSON text) when none is given; only one of the two defaults.
    help : str, optional
    required : bool, optional
        Refuse to run without one (ignored when there is a default).
    parser : callable or str, optional
        Turns the text into the value (a function, or its dotted name); JSON by default.
    plain : bool
        Give the value as it is, not as a :class:`ConfigValue`.
    """

    def __init__(self, name: str, default: Any = None, default_value: Any = None,
                 help: str | None = None, required: bool | None = None,
                 parser: Callable[[str], Any] | str | None = None, plain: bool = False,
                 **kwargs: Any) -> None:
        if default is not None and default_value is not None:
            raise ConfigError(f"For config '{name}', you can only specify default or "
                              f"default_value, not both.")
        super().__init__(name, type=str, help=help, required=bool(required))
        self.default_path = default
        self.default = default_value
        self.parser = parser
        self.plain = plain
        self._whole = DelayEvaluator(name)

    IS_CONFIG_PARAMETER = True  # Metaflow's mark: not a run option, read before the run
    _df_delayed = True

    # In the class body: a delayed access (``cfg.alpha``); on a running flow: the value.
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_whole":
            raise AttributeError(name)
        return getattr(self._whole, name)

    def __getitem__(self, key: Any) -> Any:
        return self._whole[key]

    def keys(self) -> Any:  # ``**cfg`` in a decorator's keywords
        return list(iter(self._whole))

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        value = obj._parameter_value(self.attr_name)
        return value if self.plain or value is None else ConfigValue(value)

    @property
    def type_name(self) -> str:
        return "CONFIG"

    def resolve(self, given: dict[str, Any]) -> Any:
        raise ConfigError(f"Config '{self.name}' is read with --config/--config-value, "
                          f"not as a parameter.")

    def read(self, text: str | None, *, where: str) -> Any:
        """The value of ``text`` (from ``where``: a file, --config-value, the default)."""
        if text is None:
            return None
        parser = self.parser
        if isinstance(parser, str):
            parser = _named_parser(parser, self.name)
        try:
            value = parser(text) if parser is not None else \
                text if self.plain else json.loads(text)
        except Exception as exc:  # noqa: BLE001  one line naming the config and where it came from
            what = "not valid JSON" if parser is None else "refused by its parser"
            raise ConfigError(f"configuration value for '{self.name}' ({where}) is {what}: "
                              f"{exc}") from None
        if not self.plain and not isinstance(value, Mapping):
            raise ConfigError(f"configuration value for '{self.name}' ({where}) is a "
                              f"{type(value).__name__}, not a mapping; pass plain=True to "
                              f"Config to keep any value.")
        return _to_dict(value) if isinstance(value, Mapping) else value


def _named_parser(dotted: str, config: str) -> Callable[[str], Any]:
    if dotted.startswith("."):  # Metaflow's own parsers, relative to `metaflow`
        dotted = "metaflow" + dotted
    path, _, attr = dotted.rpartition(".")
    try:
        if path == "metaflow":
            from .compat.metaflow_names import resolve_name
            return resolve_name("metaflow", attr)
        return getattr(importlib.import_module(path), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"The parser {dotted!r} of config '{config}' cannot be imported: "
                          f"{exc}.") from None


def flow_configs(flow_cls: type) -> dict[str, Config]:
    """The flow's configs by attribute name, in definition order."""
    found: dict[str, Config] = {}
    for klass in reversed(flow_cls.__mro__):
        for attr, value in vars(klass).items():
            if isinstance(value, Config):
                found[attr] = value
    return found


def pairs(given: Any, option: str) -> dict[str, str]:
    """``--config`` / ``--config-value`` as ``{name: text}``: from click's pairs, a dict or
    a sequence of pairs (``Runner(config_value={"cfg": {...}})``)."""
    if not given:
        return {}
    items = given.items() if isinstance(given, Mapping) else given
    out: dict[str, str] = {}
    for item in items:
        name, value = item
        out[str(name)] = value if isinstance(value, str) else json.dumps(value)
    return out


def load_configs(flow_cls: type, paths: Any = None, values: Any = None) -> dict[str, Any]:
    """Each config's value by attribute name, as Metaflow picks it: the command line's
    file or value (never both for one name), else the environment's, else the default.

    Every problem is gathered into one line, as Metaflow reports them.
    """
    configs = flow_configs(flow_cls)
    by_name = {c.name: attr for attr, c in configs.items()}
    paths, values = pairs(paths, "--config"), pairs(values, "--config-value")
    if not configs and not paths and not values:
        return {}
    paths = paths or _from_env(ENV_PATHS)
    values = values or _from_env(ENV_VALUES)
    for option, given in (("--config", paths), ("--config-value", values)):
        for name in given:
            if name not in by_name:
                raise ConfigError(f"{option} {name}: {flow_cls.__name__} has no config "
                                  f"'{name}' (its configs: {', '.join(by_name) or 'none'}).")
    both = sorted(set(paths) & set(values))
    if both:
        raise ConfigError(f"Cannot provide both a value and a file for the same "
                          f"configuration. Found such values for '{', '.join(both)}'.")
    loaded: dict[str, Any] = {}
    problems: list[str] = []
    for attr, config in configs.items():
        try:
            loaded[attr] = _value_of(flow_cls, config, paths, values)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("Bad values passed for configuration options: "
                          + ", ".join(problems))
    return loaded


def _value_of(flow_cls: type, config: Config, paths: dict[str, str],
              values: dict[str, str]) -> Any:
    if config.name in values:
        return config.read(values[config.name], where="--config-value")
    if config.name in paths:
        return config.read(_read_file(paths[config.name], config.name, "configuration"),
                           where=paths[config.name])
    if config.default_path is not None:
        path = config.default_path
        if callable(path):
            path = path(_context(flow_cls, config))
        return config.read(_read_file(path, config.name, "default configuration"),
                           where=str(path))
    default = config.default
    if callable(default):
        default = default(_context(flow_cls, config))
    if default is None:
        if config.required:
            raise ConfigError(f"missing configuration for '{config.name}'")
        return None
    if isinstance(default, Mapping):
        return _to_dict(default)
    return config.read(str(default), where="its default_value")


def _read_file(path: Any, name: str, what: str) -> str:
    try:
        with open(os.path.expanduser(str(path)), encoding="utf-8") as f:
            return f.read()
    except OSError:
        raise ConfigError(f"{what} file '{path}' could not be read for '{name}'") from None


def _from_env(variable: str) -> dict[str, str]:
    text = os.environ.get(variable)
    if not text:
        return {}
    try:
        loaded = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"${variable} must be a JSON object of config names to "
                          f"{'paths' if variable == ENV_PATHS else 'values'}: {exc}.") from None
    return pairs(loaded, variable)


def _context(flow_cls: type, config: Config) -> Any:
    from types import SimpleNamespace

    from .current import username
    return SimpleNamespace(flow_name=flow_cls.__name__, user_name=username(),
                           parameter_name=config.name, configs=None)


# -- the values, once known ----------------------------------------------------------


def set_configs(flow_cls: type, loaded: dict[str, Any]) -> None:
    """Make ``loaded`` (by attribute) the flow's configs: class-body expressions evaluate
    against them from now on. :func:`daskflow.steps.apply_configs` also builds the
    steps' decorators that waited for them: call that one."""
    type.__setattr__(flow_cls, "_df_config_values", dict(loaded))


def config_scope(flow_cls: type) -> dict[str, Any]:
    """The names a config expression sees: each config by attribute and by name."""
    values = flow_cls.__dict__.get("_df_config_values")
    if values is None:
        if flow_configs(flow_cls):
            raise ConfigError(f"{flow_cls.__name__}'s configs are not known yet: they are "
                              f"read when a run starts (--config / --config-value).")
        values = {}
    configs = flow_configs(flow_cls)
    scope: dict[str, Any] = {}
    for attr, value in values.items():
        shown = value if configs[attr].plain or value is None else ConfigValue(value)
        scope[attr] = scope[configs[attr].name] = shown
    return scope


def configs_known(flow_cls: type) -> bool:
    """Whether the flow's config expressions can be evaluated now."""
    return "_df_config_values" in flow_cls.__dict__ or not flow_configs(flow_cls)


def is_delayed(value: Any) -> bool:
    """Whether ``value`` holds a config expression anywhere (nested in dicts and lists),
    or is the key ``**cfg`` puts in a decorator's keywords."""
    if isinstance(value, str):
        return value.startswith(UNPACK)
    if isinstance(value, (DelayEvaluator, Config)):
        return True
    if isinstance(value, Mapping):
        return any(is_delayed(k) or is_delayed(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return any(is_delayed(v) for v in value)
    return False


def resolve_delayed(value: Any, flow_cls: type) -> Any:
    """``value`` with every config expression in it evaluated (plain dicts for values)."""
    if not is_delayed(value):
        return value
    return _resolve(value, config_scope(flow_cls))


def _resolve(value: Any, scope: dict[str, Any]) -> Any:
    if isinstance(value, Config):
        value = DelayEvaluator(value.name)
    if isinstance(value, DelayEvaluator):
        result = value.evaluate(scope)
        return _to_dict(result) if isinstance(result, ConfigValue) else result
    if isinstance(value, Mapping):
        return {_resolve(k, scope): _resolve(v, scope) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return type(value)(_resolve(v, scope) for v in value)
    return value


def resolve_keywords(kwargs: dict[str, Any], flow_cls: type) -> dict[str, Any]:
    """A decorator's keywords with ``**cfg`` unpacked and expressions evaluated."""
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if isinstance(key, str) and key.startswith(UNPACK):
            unpacked = resolve_delayed(value, flow_cls)
            if not isinstance(unpacked, Mapping):
                raise ConfigError(f"**{value.text()} in a decorator must be a mapping of "
                                  f"its options, not a {type(unpacked).__name__}.")
            out.update(unpacked)
        else:
            out[key] = resolve_delayed(value, flow_cls)
    return out


resolve_config_defaults_with(resolve_delayed)  # how parameters resolves a config default
