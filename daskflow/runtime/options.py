"""The options of a run, declared once: ``RUN_OPTIONS``.

``python flow.py run --max-workers 4``, ``Runner(flow, max_workers=4)``, the command
line ``async_run`` starts and the options ``MyFlow.delayed`` carries to the worker
that runs the flow are all read from this one table (Metaflow derives its Runner
from its command line the same way), so an option is added or changed in one row.
:mod:`daskflow.cli` turns the rows into click options; this module imports no click.

>>> [o.flag for o in RUN_OPTIONS if o.place == "group"]
['--quiet', '--datastore-root', '--branch', '--production', '--config', '--config-value']
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from .. import config
from ..exceptions import RunOptionError, did_you_mean

Kind = Literal["int", "text", "path", "flag", "many", "pairs", "object"]


@dataclass(frozen=True)
class RunOption:
    """One option of a run: its keyword, its command-line flag and where it goes.

    ``kind`` says how the value is read: ``int`` (at least ``minimum``, at most
    ``maximum``), ``text``, ``path`` (a file), ``flag`` (a bool), ``many`` (a repeatable
    text option; a sequence in Python), ``pairs`` (a repeatable option of two words,
    ``--config NAME PATH``; a dict in Python), ``object`` (Python only). ``config`` is the key
    under ``daskflow`` that gives the value when none is given. ``place`` is where the
    flag goes on the command line: ``run`` (after ``run``/``resume``) or ``group``
    (before the command); None for an option Python alone takes. ``keyword``:
    ``Runner`` takes it; ``forward``: ``async_run`` passes it to the subprocess;
    ``delayed``: it travels with ``MyFlow.delayed``; ``project``: a command-line option
    only for a flow with ``@project``; ``configs``: only for a flow with a ``Config``.
    """

    name: str
    help: str
    kind: Kind = "text"
    default: Any = None
    flag: str | None = None
    place: Literal["run", "group"] | None = None
    config: str | None = None
    metavar: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    keyword: bool = True
    forward: bool = True
    delayed: bool = True
    project: bool = False
    configs: bool = False

    def default_text(self) -> str:
        """The default as help shows it: the setting's value and its key."""
        if self.config is None:
            return ""
        return f" (default: {config.get(self.config)}, daskflow.{self.config})"


RUN_OPTIONS: tuple[RunOption, ...] = (
    RunOption("max_workers", "At most this many tasks at once.", kind="int",
              flag="--max-workers", place="run", config="run.max-workers", minimum=1),
    RunOption("max_num_splits", "Refuse a foreach wider than this.", kind="int",
              flag="--max-num-splits", place="run", config="run.max-num-splits", minimum=1),
    RunOption("tags", "Tag the run (repeatable).", kind="many", default=(), flag="--tag",
              place="run", metavar="TAG"),
    RunOption("run_id_file", "Write the run id to this file when the run starts.",
              kind="path", flag="--run-id-file", place="run", forward=False, delayed=False),
    RunOption("scheduler_address",
              "Run on this existing Dask scheduler instead of a local cluster.",
              flag="--scheduler-address", place="run", metavar="tcp://HOST:PORT",
              delayed=False),  # a delayed run uses the cluster that computes it
    RunOption("share", "This run's weight among the runs sharing --scheduler-address: it "
                       "gets SHARE parts of the scheduler's threads where each other run gets "
                       "its own --share (1 by default).",
              kind="int", flag="--share", place="run", config="run.share", minimum=1),
    RunOption("cluster", "The run's default cluster backend: local, slurm, ... or a dotted "
                         "path to a Dask cluster class; steps with @resources get their own "
                         "cluster from it unless they name another.",
              flag="--cluster", place="run", config="cluster.backend", metavar="BACKEND"),
    RunOption("dashboard_port", "Serve the local cluster's Dask dashboard on this port of "
                                "127.0.0.1 (default: a free port; the link is printed at the "
                                "start).",
              kind="int", flag="--dashboard-port", place="run", minimum=0, maximum=65535,
              keyword=False, forward=False, delayed=False),  # the command line's process
    RunOption("with_decorators", "Add a decorator to every step: --with retry, "
                                 "--with 'retry:times=2,minutes_between_retries=0', "
                                 "--with \"environment:vars={'A': '1', 'B': '2'}\".",
              kind="many", default=(), flag="--with", place="run", metavar="DECORATOR"),
    RunOption("no_cache", "Run every @cache step again instead of reusing earlier results "
                          "(the tasks that run still record theirs for later runs).",
              kind="flag", default=False, flag="--no-cache", place="run"),
    RunOption("cache_from", "Reuse @cache results of this run only (default: of any run "
                            "of the flow).",
              flag="--cache-from", place="run", metavar="RUN_ID"),
    RunOption("quiet", "Print only task output and errors.", kind="flag", default=False,
              flag="--quiet", place="group"),
    RunOption("datastore_root", "Where runs are stored: a folder or an fsspec URL.",
              flag="--datastore-root", place="group", config="datastore.root", metavar="PATH_OR_URL"),
    RunOption("branch", "Run on the @project branch test.BRANCH (prod.BRANCH with "
                        "--production); default: user.<your name>.",
              flag="--branch", place="group", project=True),
    RunOption("production", "Run on the @project's production branch.", kind="flag",
              default=False, flag="--production", place="group", project=True),
    RunOption("config", "Read config NAME from the file PATH: --config NAME PATH "
                        "(repeatable; Metaflow's option).",
              kind="pairs", default=(), flag="--config", place="group", configs=True,
              metavar="NAME PATH"),
    RunOption("config_value", "Give config NAME as JSON text: --config-value NAME JSON "
                              "(repeatable; Metaflow's option).",
              kind="pairs", default=(), flag="--config-value", place="group", configs=True,
              metavar="NAME JSON"),
    # Python only: no flag
    RunOption("stream_output", "Echo each task's output as it comes.", kind="flag",
              config="output.stream-task-output", forward=False),
    RunOption("observer", "Receives the run's events (default: a live view on a terminal, "
                          "plain lines elsewhere; quiet=True keeps only the tasks' output).",
              kind="object", forward=False),
    RunOption("client", "Run on the cluster of this open distributed.Client, which stays "
                        "open (as scheduler_address does, without connecting again).",
              kind="object", forward=False, delayed=False),
)

KEYWORDS: tuple[str, ...] = tuple(o.name for o in RUN_OPTIONS if o.keyword)


def runner_options(given: dict[str, Any]) -> dict[str, Any]:
    """Every keyword option of ``Runner``, ``given`` over the defaults; an unknown one
    is refused in one line that lists the allowed ones.

    >>> runner_options({"max_workers": 4})["tags"]
    ()
    """
    for name in given:
        if name not in KEYWORDS:
            raise RunOptionError(
                f"Runner() got an unknown option '{name}'.{did_you_mean(name, KEYWORDS)} "
                f"Allowed: {', '.join(KEYWORDS)}.")
    values = {}
    for option in RUN_OPTIONS:
        if option.keyword:
            value = given.get(option.name, option.default)
            values[option.name] = tuple(value) if option.kind == "many" else value
    return values


def checked_int(option_name: str, value: Any) -> int:
    """An ``int`` option's value, or its setting's when ``value`` is None, within bounds."""
    option = option_named(option_name)
    number = int(config.get(option.config, override_with=value) if option.config
                 else value)
    if (option.minimum is not None and number < option.minimum) or \
            (option.maximum is not None and number > option.maximum):
        bounds = f"at least {option.minimum}" if option.maximum is None else \
            f"from {option.minimum} to {option.maximum}"
        raise RunOptionError(f"{option.name} must be {bounds}, got {number}.")
    return number


def option_named(name: str) -> RunOption:
    for option in RUN_OPTIONS:
        if option.name == name:
            return option
    raise KeyError(name)


def command_line(values: dict[str, Any], place: str) -> list[str]:
    """The options in ``values`` that go to ``async_run``'s subprocess, at ``place``, as
    command-line words (``["--max-workers", "4", "--tag", "a"]``)."""
    words: list[str] = []
    for option in RUN_OPTIONS:
        if option.place != place or not option.forward or option.flag is None:
            continue
        value = values.get(option.name, option.default)
        if option.kind == "flag":
            words += [option.flag] if value else []
        elif option.kind == "many":
            words += [word for item in value for word in (option.flag, str(item))]
        elif option.kind == "pairs":
            from ..configs import pairs
            words += [word for name, text in pairs(value, option.flag).items()
                      for word in (option.flag, name, text)]
        elif value is not None:
            words += [option.flag, str(value)]
    return words


def delayed_options(values: dict[str, Any]) -> dict[str, Any]:
    """The options that travel with a ``dask.delayed`` run to the worker that runs it."""
    return {o.name: values[o.name] for o in RUN_OPTIONS if o.keyword and o.delayed}


def options_doc(options: Iterable[RunOption] = RUN_OPTIONS) -> str:
    """The numpydoc lines of the keyword options, for ``Runner``'s docstring."""
    lines = []
    for option in options:
        if not option.keyword:
            continue
        kind = {"int": "int", "text": "str", "path": "str", "flag": "bool",
                "many": "sequence of str", "pairs": "dict", "object": "object"}[option.kind]
        where = f" (``{option.flag}``)" if option.flag else ""
        default = f" Default: ``daskflow.{option.config}``." if option.config else ""
        lines.append(f"{option.name} : {kind}, optional")
        lines += textwrap.wrap(f"{option.help}{where}{default}", 80,
                               initial_indent="    ", subsequent_indent="    ")
    return "\n".join(lines)
