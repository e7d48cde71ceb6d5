"""The command line of a flow file: ``python flow.py run | show | check | dump | logs``.

The only module that imports click.  It parses, calls the runtime or the
client, prints, and turns daskflow's exceptions into one-line messages and
exit codes (a traceback only with ``--debug``).  The run options are the rows of
:data:`~daskflow.runtime.options.RUN_OPTIONS`, made into click options here.  It also
holds the flow class's in-process entry points (``MyFlow.run``, ``MyFlow.delayed``), so
that the flow layer reaches up through this one module.
"""

from __future__ import annotations

import atexit
import gc as python_gc  # the name gc is the `gc` command here
import logging
import multiprocessing
import os
import shlex
import signal
import sys
import traceback
from dataclasses import replace
from itertools import islice
from typing import Any

import click

from .exceptions import DaskflowException, RunFailed
from .graph import FOREACH, SPLIT, SWITCH, FlowGraph, check_main_guard
from .parameters import Parameter, flow_parameters
from .project import has_project
from .runtime.options import RUN_OPTIONS, RunOption, option_named
from .runtime.process import command as command_process


#: The words that start a flow's command line, for the hints this module prints
#: (``python flow.py``, or ``daskflow run flow.py`` for a Metaflow file).
_COMMAND: list[str] = []


def main(flow_cls: type, argv: list[str] | None = None,
         command: list[str] | None = None) -> None:
    """Entry point behind ``MyFlow()``: run the command line and exit the process.

    ``command`` is how the user started it (default ``python <script>``).
    """
    if multiprocessing.parent_process() is not None:
        return  # a worker process importing the flow file: never start the flow there
    atexit.register(_drop_logging_handler_list)  # runs before logging's own flush
    atexit.register(python_gc.freeze)  # after the command's own exit callbacks: see below
    debug = "--debug" in (argv or sys.argv[1:]) or bool(os.environ.get("DASKFLOW_DEBUG"))
    _COMMAND[:] = command or ["python", sys.argv[0]]
    try:
        main_file = getattr(sys.modules.get("__main__"), "__file__", None)
        if main_file and os.path.abspath(main_file) == os.path.abspath(
                sys.modules[flow_cls.__module__].__file__ or ""):
            check_main_guard(main_file, flow_cls.__name__)
        graph = flow_cls._flow_graph()
        group = build_cli(flow_cls, graph)
        prog = " ".join([os.path.basename(_COMMAND[1]), *_COMMAND[2:]]) \
            if command is None else " ".join(command)
        # The process runs this one command, then exits: what it has imported lives as
        # long as it does, so the collector need not walk it again and again (dask's
        # and daskflow's modules made a small run's full collections cost 0.1-0.4 s);
        # the run freezes what it imports later (runtime/process.py).
        # Again at exit: the teardown's last collection would walk all the command made
        # (botocore's models and clients on an object store: 0.2 s), to free memory the
        # process is about to give back whole.
        with command_process():
            group.main(args=argv, prog_name=prog, standalone_mode=False)
    except click.exceptions.Abort as exc:  # click's wrapping of KeyboardInterrupt
        _interrupted(exc.__cause__)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        _interrupted(exc)
    except RunFailed as exc:
        _print_run_failure(exc, debug)
        sys.exit(1)
    except DaskflowException as exc:
        if debug:
            traceback.print_exc()
        click.secho(f"{exc.headline}: {exc}", fg="red", err=True)
        sys.exit(1)
    sys.exit(0)


def _drop_logging_handler_list() -> None:
    """Past exit's callbacks the interpreter's teardown collects logging's handlers, and
    each one collected takes logging's lock to leave logging's list of them.  A daemon
    thread (Dask's, a library's) that the teardown stopped while it held that lock left
    the process hung at its very end, its run long done (seen once with 20 runs at once
    on 2 cores).  Logging's own flush at exit keeps the list it was given; the name is
    rebound to an empty one, so that a handler collected later takes no lock."""
    logging._handlerList = []  # type: ignore[attr-defined]


def run_in_process(flow_cls: type, params: dict[str, Any]) -> Any:
    """``MyFlow.run(**params)``: ``run`` in this process with the default options,
    returning the ``Run`` and raising what ``Runner.run`` raises."""
    from .runtime import Runner
    return Runner(flow_cls).run(**params)


def delayed_run(flow_cls: type, params: dict[str, Any]) -> Any:
    """``MyFlow.delayed(**params)``: the run as a ``dask.delayed`` value."""
    from .runtime import Runner
    return Runner(flow_cls).delayed(**params)


def _interrupted(exc: BaseException | None) -> None:
    click.echo("Interrupted: running tasks were cancelled and the cluster closed; "
               "`resume` continues the run.", err=True)
    sys.exit(143 if str(exc) == f"signal {signal.SIGTERM}" else 130)


def _print_run_failure(exc: RunFailed, debug: bool) -> None:
    failure = exc.failure
    if failure is not None and failure.input_error and not debug:
        # daskflow refused what the step did; its message says where and what to do
        click.secho(str(exc), fg="red", err=True)
        return
    if failure is not None and failure.traceback_text:
        click.echo(failure.traceback_text.rstrip(), err=True)
    click.secho(str(exc), fg="red", err=True)
    if failure is not None:
        run_task = failure.pathspec.split("/", 1)[1]
        command = " ".join(shlex.quote(part) for part in
                           (*(_COMMAND or ["python", sys.argv[0]]), "logs", run_task))
        click.echo(f"See its output with: {command}", err=True)


def build_cli(flow_cls: type, graph: FlowGraph) -> click.Group:
    """The command line of ``flow_cls``: its options, then each family of commands."""
    params = flow_parameters(flow_cls)

    @click.group(help=(flow_cls.__doc__ or f"Flow {flow_cls.__name__}").strip(),
                 context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("--debug", is_flag=True, help="Show full tracebacks of daskflow errors.")
    @click.pass_context
    def cli(ctx: click.Context, debug: bool, **options: Any) -> None:
        # the run options given before the command, for run and resume
        ctx.obj = {"debug": debug, "root": options["datastore_root"], "options": options}
        if with_configs:
            _configs_for(flow_cls, ctx.invoked_subcommand, options)

    # as Metaflow: @project adds --branch and --production to the flow's command line,
    # and a Config --config and --config-value
    from .configs import flow_configs
    with_project, with_configs = has_project(flow_cls), bool(flow_configs(flow_cls))
    cli.params += [click.Option([o.flag, o.name], **_click_kwargs(o)) for o in RUN_OPTIONS
                   if o.place == "group" and (with_project or not o.project)
                   and (with_configs or not o.configs)]

    _add_run_commands(cli, flow_cls, params)
    _add_spin_command(cli, flow_cls)
    _add_graph_commands(cli, flow_cls, graph, params)
    _add_read_commands(cli, flow_cls)
    add_card_commands(cli, flow_cls)
    return cli


def _configs_for(flow_cls: type, command: str | None, options: dict[str, Any]) -> None:
    """Read the flow's configs before the command: show, check and run use them; resume
    and spin keep those of the run they start from (Runner reads them there)."""
    from .configs import ConfigError, load_configs
    from .steps import apply_configs
    if command in ("resume", "spin"):
        if options["config"] or options["config_value"]:
            raise ConfigError(f"Cannot specify --config or --config-value with '{command}': "
                              f"it keeps the configs of the run it starts from.")
        return
    apply_configs(flow_cls, load_configs(flow_cls, options["config"], options["config_value"]))


def _add_run_commands(cli: click.Group, flow_cls: type, params: dict[str, Any]) -> None:
    """``run`` (with the flow's parameters as options) and ``resume``."""
    @cli.command(help="Run the flow on a Dask cluster.")
    @run_options
    @click.pass_context
    def run(ctx: click.Context, **options: Any) -> None:
        values = {p.name: options.pop(_option_dest(p)) for p in params.values()}
        given = {name: value for name, value in values.items() if value is not None}
        _runner(flow_cls, ctx, options).run(**given)

    for param in params.values():
        run.params.append(_click_option(param))

    @cli.command(help="Rerun the latest run (or --origin-run-id) from the step that failed, "
                      "or from STEP, reusing everything finished before it.")
    @click.argument("step", required=False)
    @click.option("--origin-run-id", default=None, help="The run to resume (default: latest).")
    @click.option("--caught", is_flag=True,
                  help="Rerun the tasks whose failure @catch caught (and the steps after "
                       "them), even in a run that succeeded; clone the other splits.")
    @run_options
    @click.pass_context
    def resume(ctx: click.Context, step: str | None, origin_run_id: str | None, caught: bool,
               **options: Any) -> None:
        _runner(flow_cls, ctx, options).resume(step, origin_run_id, caught=caught)


def _add_spin_command(cli: click.Group, flow_cls: type) -> None:
    """``spin PATHSPEC``: one step of a past run again, here (Metaflow 2.19's ``spin``)."""
    @cli.command(help="Run one step of a past run again, in this process, on the inputs its "
                      "task had: PATHSPEC is STEP (latest run), RUN_ID/STEP, RUN_ID/STEP/"
                      "TASK_ID or FLOW/RUN_ID/STEP[/TASK_ID]. Nothing is recorded unless "
                      "--persist keeps it in the spin datastore.")
    @click.argument("pathspec")
    @click.option("--persist/--no-persist", default=False, show_default=True,
                  help="Keep the task and its artifacts in the spin datastore (the "
                       "datastore root + '_spin'), readable after inspect_spin().")
    @click.option("--artifacts-module", default=None, type=click.Path(dir_okay=False),
                  help="A Python file whose ARTIFACTS dict replaces inputs of those names.")
    @click.option("--skip-decorators/--no-skip-decorators", default=False, show_default=True,
                  help="Leave out the step's decorators (spin keeps only @environment, "
                       "@timeout, @card and @project otherwise).")
    @click.option("--run-id-file", default=None, type=click.Path(dir_okay=False),
                  help="Write the spin's run id to this file.")
    @click.pass_context
    def spin(ctx: click.Context, pathspec: str, persist: bool, artifacts_module: str | None,
             skip_decorators: bool, run_id_file: str | None) -> None:
        from .runtime.spin import spin_task
        result = spin_task(flow_cls, pathspec, root=ctx.obj["root"], persist=persist,
                           artifacts_module=artifacts_module, skip_decorators=skip_decorators)
        if run_id_file:
            with open(run_id_file, "w") as f:
                f.write(result.pathspec.split("/")[1])
        prefix = "[" + result.pathspec.split("/", 1)[1] + "] "
        for text, err in ((result.stdout, False), (result.stderr, True)):
            for line in text.splitlines():
                click.echo(prefix + line, err=err)
        if result.failure is not None:  # its traceback is in the stderr shown above
            from .runtime.spin import SpinError
            raise SpinError(f"Spin of {result.spun} failed: {result.failure.type_name}: "
                            f"{result.failure.message}")
        set_ = ", ".join(f"{k}={_short(v)}" for k, v in sorted(result.artifacts.items()))
        click.echo(f"Spun {result.spun} as {result.pathspec}: it set {set_ or 'nothing'}.")
        if result.root is not None:
            click.echo(f"Kept in {result.root}; read it with daskflow.runtime.spin."
                       f"inspect_spin() then Task('{result.pathspec}').")
        else:
            click.echo("Nothing was kept (--persist keeps it).")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _add_graph_commands(cli: click.Group, flow_cls: type, graph: FlowGraph,
                        params: dict[str, Any]) -> None:
    """``show``, ``report`` and ``check``: what the flow is, and what a run did."""
    @cli.command(help="Show the steps of the flow, how they connect and where they run: as "
                      "text, or as a page (html), an image (svg) or Graphviz (dot).")
    @click.option("--format", "fmt", type=click.Choice(["text", "json", "html", "svg", "dot"]),
                  default=None, help="Default: from --output's extension, else text.")
    @click.option("--output", "-o", default=None, type=click.Path(dir_okay=False),
                  help="Write to this file instead of printing.")
    @click.option("--cluster", "cluster", **_click_kwargs(option_named("cluster")))
    def show(fmt: str | None, output: str | None, cluster: str | None) -> None:
        from .report import graph_format_for, render_graph_as
        from .runtime.plan import placement_of, plan_steps
        fmt = fmt or graph_format_for(output)
        if fmt in ("text", "json"):
            placements = {name: placement_of(plan) for name, plan in
                          plan_steps(flow_cls, graph, (), cluster).items()}
        if fmt == "text":
            where = {step: _runs_on(graph, step, p) for step, p in placements.items()}
            text = render_graph(flow_cls, graph, where) + "\n"
        elif fmt == "json":
            import json
            text = json.dumps(graph_json(flow_cls, graph, placements), indent=2) + "\n"
        else:
            text = render_graph_as(graph, fmt, doc=(flow_cls.__doc__ or "").strip())
        if output is None:
            click.echo(text, nl=False)
            return
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
        click.echo(f"Wrote the graph of {flow_cls.__name__} ({fmt}) to {output}.")

    @cli.command(help="Write the run report of RUN_ID (default: your latest run): one "
                      "self-contained HTML page with the graph, a timeline of every task, "
                      "clusters, parameters, failures and performance reports. With "
                      "--compare, a page of two runs side by side; with --index, the page "
                      "of the flow's latest runs.")
    @click.argument("run_id", required=False)
    @click.option("--compare", nargs=2, default=None, metavar="RUN_A RUN_B",
                  help="Compare two runs: parameters, steps' times and worker-seconds, "
                       "artifacts whose values differ, files changed.")
    @click.option("--index", "index", is_flag=True,
                  help="Write the page of the flow's latest runs, linking their reports.")
    @click.option("--output", "-o", default=None, type=click.Path(dir_okay=False),
                  help="Where to write it (default: in the datastore, beside the runs: "
                       "_report.html in the run's folder, _index.html and _compare/ in "
                       "the flow's).")
    @click.option("--open", "open_it", is_flag=True, help="Open it in a web browser.")
    @click.pass_context
    def report(ctx: click.Context, run_id: str | None, compare: tuple[str, str] | None,
               index: bool, output: str | None, open_it: bool) -> None:
        from .report import find_run, write_comparison, write_run_index, write_run_report
        if (run_id is not None) + bool(compare) + index > 1:
            raise click.UsageError("Give a RUN_ID, --compare RUN_A RUN_B or --index: "
                                   "one of them.")
        if compare:
            runs = [find_run(flow_cls.__name__, r, ctx.obj["root"]) for r in compare]
            path = write_comparison(*runs, output, graph=graph)
            click.echo(f"Runs {compare[0]} and {compare[1]} of {flow_cls.__name__} side by "
                       f"side: {path}")
        elif index:
            from .client import Flow
            path = write_run_index(Flow(flow_cls.__name__, _root=ctx.obj["root"]), output)
            click.echo(f"Latest runs of {flow_cls.__name__}: {path}")
        else:
            run = find_run(flow_cls.__name__, run_id, ctx.obj["root"])
            path = write_run_report(run, output, graph=graph)
            click.echo(f"Run report of {run.pathspec}: {path}")
        if open_it:
            import pathlib
            import webbrowser
            webbrowser.open(path if "://" in path else pathlib.Path(path).resolve().as_uri())

    @cli.command(help="Check the flow for errors without running anything: the graph, "
                      "every decorator, and all that `run` refuses before it starts "
                      "(backends and sizes, the datastore, secrets).")
    @click.option("--cluster", default=None, metavar="BACKEND",
                  help="The run's default backend to check (as `run --cluster`).")
    @click.option("--with", "with_decorators", multiple=True, metavar="DECORATOR",
                  help="Check with this decorator on every step (as `run --with`).")
    @click.pass_context
    def check(ctx: click.Context, cluster: str | None,
              with_decorators: tuple[str, ...]) -> None:
        click.echo(f"Validating {flow_cls.__name__}: {len(graph.nodes)} steps, "
                   f"{len(params)} parameter(s).")
        _runner(flow_cls, ctx, {"quiet": True, "cluster": cluster,
                                "with_decorators": with_decorators}).check()
        click.echo("The graph looks good!")


def _add_read_commands(cli: click.Group, flow_cls: type) -> None:
    """``dump``, ``logs`` and ``tag``: what a run stored."""
    @cli.command(help="Print the artifacts of RUN_ID/STEP or RUN_ID/STEP/TASK_ID (of a "
                      f"step, the first {PAGE_SIZE} tasks: --page, --all for more).")
    @click.argument("pathspec")
    @click.option("--max-value-size", default=1000, show_default=True, type=int,
                  help="Show only values stored in fewer bytes than this (a DataFrame "
                       "shows its shape and first rows); 0: names and types only.")
    @_paged
    @click.pass_context
    def dump(ctx: click.Context, pathspec: str, max_value_size: int, page: int,
             page_size: int, show_all: bool) -> None:
        for task in _tasks(flow_cls, pathspec, ctx.obj["root"], page, page_size, show_all):
            click.secho(f"{task.pathspec}", bold=True)
            if not task.finished:
                click.echo("  (no artifacts: the task has not finished)")
            for artifact in task.artifacts:
                click.echo(f"  {artifact.id} ({artifact.type}): "
                           f"{_dump_value(artifact, max_value_size)}")

    @cli.command(help="Print the output of RUN_ID/STEP or RUN_ID/STEP/TASK_ID (of a step, "
                      f"the first {PAGE_SIZE} tasks: --page, --all for more).")
    @click.argument("pathspec")
    @click.option("--stdout/--no-stdout", "show_out", default=True)
    @click.option("--stderr/--no-stderr", "show_err", default=True)
    @click.option("--attempt", type=int, default=None,
                  help="Show this attempt instead of the latest.")
    @_paged
    @click.pass_context
    def logs(ctx: click.Context, pathspec: str, show_out: bool, show_err: bool,
             attempt: int | None, page: int, page_size: int, show_all: bool) -> None:
        from .client import Task
        tasks = _tasks(flow_cls, pathspec, ctx.obj["root"], page, page_size, show_all)
        for task in tasks:
            if attempt is not None:
                task = Task(task.pathspec, attempt=attempt, _namespace_check=False,
                            _store=task._store)
            out = task.stdout if show_out else ""
            err = task.stderr if show_err else ""
            if len(tasks) > 1:  # a foreach: say whose output follows
                index = f" (foreach item {task.index})" if task.index is not None else ""
                click.secho(f"--- {task.pathspec}{index} ---", bold=True)
            if task.cached:
                click.echo(f"(@cache reused this task: it did not run; its output and "
                           f"artifacts come from {task.origin_pathspec})", err=True)
            if len(tasks) > 1 and not out and not err:
                click.echo("(this task printed nothing)")
            if out:
                click.echo(out, nl=False)
            if err:
                click.echo(err, nl=False, err=True)
            said = _attempts_said(task)
            if said:
                click.secho(said, fg="yellow", err=True)
    _add_tag_commands(cli, flow_cls)


def _attempts_said(task: Any) -> str:
    """Why the attempt shown failed, and which earlier ones failed and why (the output of
    an attempt whose process died just stops): '' when none failed."""
    from .client import Task
    attempts = task.attempts
    shown = task.current_attempt
    parts = []
    cause = task.failure_cause
    if cause is not None:
        error = (task.record or {}).get("error") or {}
        detail = f": {error['message']}" if cause != "exception" and error.get("message") \
            else ""
        parts.append(f"attempt {shown} failed ({cause}){detail}")
    earlier = [(a, Task(task.pathspec, attempt=a, _store=task._store).failure_cause)
               for a in attempts if a < shown]
    earlier = [(a, c) for a, c in earlier if c]
    if earlier:
        listed = ", ".join(f"{a} ({c})" for a, c in earlier)
        parts.append(f"earlier failed attempts: {listed}; see them with --attempt N")
    return "".join(f"[{part}]\n" for part in parts).rstrip("\n")


def _add_tag_commands(cli: click.Group, flow_cls: type) -> None:
    """``tag add|remove|replace|list``, as Metaflow's ``tag`` command."""
    @cli.group(help="Add, remove, replace or list the user tags of a run (Metaflow's "
                    "`tag` command).")
    def tag() -> None:
        pass

    def _tag_command(name: str, help: str, nargs: int) -> Any:
        @click.option("--run-id", default=None,
                      help="The run (default: your latest run of this flow).")
        @click.pass_context
        def command(ctx: click.Context, run_id: str | None, tags: tuple[str, ...] = ()) -> None:
            from .report import find_run
            run = find_run(flow_cls.__name__, run_id, ctx.obj["root"])
            if name == "add":
                run.add_tags(tags)
            elif name == "remove":
                run.remove_tags(tags)
            elif name == "replace":
                run.replace_tag(*tags)
            click.echo(f"Run {run.pathspec}")
            click.echo(f"  user tags:   {', '.join(sorted(run.user_tags)) or '(none)'}")
            click.echo(f"  system tags: {', '.join(sorted(run.system_tags)) or '(none)'}")
        if nargs:
            command = click.argument("tags", nargs=nargs, required=True)(command)
        return tag.command(name=name, help=help)(command)

    _tag_command("add", "Add TAGS to the run.", -1)
    _tag_command("remove", "Remove TAGS from the run (user tags only).", -1)
    _tag_command("replace", "Replace the tag OLD with NEW on the run: replace OLD NEW.", 2)
    _tag_command("list", "List the run's user and system tags.", 0)


def run_options(func: Any) -> Any:
    """The options `run` and `resume` share (Metaflow's names), from ``RUN_OPTIONS``."""
    for option in reversed([o for o in RUN_OPTIONS if o.place == "run"]):
        func = click.option(option.flag, option.name, **_click_kwargs(option))(func)
    return func


def _click_kwargs(option: RunOption) -> dict[str, Any]:
    """A row of the run-option table as click's keyword arguments for its option."""
    kwargs: dict[str, Any] = {"default": option.default, "metavar": option.metavar,
                              "help": option.help + option.default_text()}
    if option.kind == "int":
        kwargs["type"] = click.IntRange(option.minimum, option.maximum)
    elif option.kind == "flag":
        kwargs["is_flag"] = True
    elif option.kind == "many":
        kwargs["multiple"] = True
    elif option.kind == "pairs":
        kwargs.update(nargs=2, multiple=True)
    elif option.kind == "path":
        kwargs["type"] = click.Path(dir_okay=False)
    return kwargs


def _runner(flow_cls: type, ctx: click.Context, options: dict[str, Any]) -> Any:
    from .runtime import Runner
    _stop_on_sigterm()
    given = {**ctx.obj["options"], **options}
    port = given.pop("dashboard_port", None)
    if port is not None:  # this process runs one command: set it for the process
        import dask.config
        dask.config.set({"daskflow.local.dashboard-address": f"127.0.0.1:{port}"})
    return Runner(flow_cls, **given)


def _stop_on_sigterm() -> None:
    """SIGTERM stops a run like Ctrl-C: tasks cancelled, clusters closed, run marked failed."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def _option_dest(param: Parameter) -> str:
    return "param_" + param.attr_name


def _click_option(param: Parameter) -> click.Option:
    default = f" [default: {param.default!r}]" if param.default is not None \
        and param.show_default else ""
    required = " [required]" if param.required else ""
    kwargs: dict[str, Any] = {}
    if param.type is bool:
        kwargs.update(is_flag=False, flag_value="true")
    return click.Option([f"--{param.name}", _option_dest(param)], default=None,
                        metavar=param.type_name.upper(),
                        help=f"{param.help or ''}{default}{required}".strip(), **kwargs)


def _dump_value(artifact: Any, max_value_size: int) -> str:
    """A value for ``dump``, loaded only when it is small (a frame: shape and head)."""
    if max_value_size <= 0:
        return f"{artifact.size} bytes"
    if artifact.format in ("parquet", "dask-parquet"):
        return _frame_preview(artifact)
    if artifact.size >= max_value_size:
        return (f"{artifact.size} bytes, not shown (over --max-value-size "
                f"{max_value_size}); read it with Task('{artifact.task.pathspec}')"
                f".data.{artifact.id}")
    text = repr(artifact.data)
    limit = max(max_value_size, 80)
    return text if len(text) <= limit else text[:limit] + "..."


def _frame_preview(artifact: Any) -> str:
    """Shape and first rows of a stored DataFrame, without loading all of it."""
    try:
        if artifact.format == "dask-parquet":
            frame = artifact.data  # lazy
            head = frame.head(5, npartitions=1)
            return (f"dask DataFrame, {frame.npartitions} partitions x {len(frame.columns)} "
                    f"columns\n{_indent(head.to_string())}")
        import pyarrow.parquet as pq
        with artifact.task._store.blobs.open(artifact.sha) as f:
            parquet = pq.ParquetFile(f)
            rows, cols = parquet.metadata.num_rows, len(parquet.schema_arrow.names)
            head = next(parquet.iter_batches(batch_size=5), None)
            text = head.to_pandas().to_string() if head is not None else "(no rows)"
        return f"{rows} rows x {cols} columns\n{_indent(text)}"
    except Exception as exc:  # noqa: BLE001  a preview must not stop the listing
        return f"{artifact.size} bytes ({artifact.format}; no preview: {exc})"


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines())


PAGE_SIZE = 20   # tasks of a step that dump and logs print unless asked for more


def _paged(func: Any) -> Any:
    """``--page``, ``--page-size`` and ``--all``: which of a step's tasks to print."""
    options = [
        click.option("--page", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Of a step's tasks, print this page (in task id order)."),
        click.option("--page-size", type=click.IntRange(min=1), default=PAGE_SIZE,
                     show_default=True, help="Tasks per page."),
        click.option("--all", "show_all", is_flag=True,
                     help="Print every task of the step, not a page of them.")]
    for option in reversed(options):
        func = option(func)
    return func


def _tasks(flow_cls: type, pathspec: str, root: str | None, page: int = 1,
           page_size: int = PAGE_SIZE, show_all: bool = False) -> list[Any]:
    """The tasks to print: one, or a page of a step's (a note on stderr says which of
    how many, and how to see the rest)."""
    from .client import Step, Task
    from .exceptions import DataNotFoundError
    parts = pathspec.strip("/").split("/")
    name = flow_cls.__name__
    if len(parts) == 2:
        step = Step(f"{name}/{pathspec}", _namespace_check=False, _root=root)
        spans = step._store.task_id_spans(step.run_id, step.id)
        total = sum(last - first + 1 for first, last in spans)
        if not total:
            raise DataNotFoundError(f"No tasks found for {name}/{pathspec}.")
        skip = 0 if show_all else (page - 1) * page_size
        ids = islice((i for first, last in spans for i in range(first, last + 1)),
                     skip, None if show_all else skip + page_size)
        tasks = [Task(f"{step.pathspec}/{i}", _namespace_check=False, _root=root,
                      _store=step._store) for i in ids]
        if len(tasks) < total:
            click.echo(_page_note(pathspec, skip, len(tasks), total, page, page_size), err=True)
        return tasks
    if len(parts) == 3:
        task = Task(f"{name}/{pathspec}", _namespace_check=False, _root=root)
        if not task.attempts:
            raise DataNotFoundError(f"Task {name}/{pathspec} does not exist.")
        return [task]
    raise click.BadParameter(f"expected RUN_ID/STEP or RUN_ID/STEP/TASK_ID, got '{pathspec}'")


def _page_note(pathspec: str, skip: int, shown: int, total: int, page: int,
               page_size: int) -> str:
    """What a page of a step's tasks is, and how to see the rest."""
    if not shown:
        return (f"{pathspec} has {total:,} tasks: page {page} ({page_size} tasks each) is "
                f"past the last. Use --page 1 to {-(-total // page_size)}, or --all.")
    rest = f"--page {page + 1} for the next {page_size}, " if skip + shown < total else ""
    return (f"Tasks {skip + 1:,} to {skip + shown:,} of {total:,} of {pathspec} (in task id "
            f"order): {rest}--all for every one.")


def add_card_commands(cli: click.Group, flow_cls: type) -> None:
    """``card view | get | list PATHSPEC``: the cards of a task, as Metaflow's ``card``."""
    where = ("PATHSPEC is RUN_ID/STEP/TASK_ID, RUN_ID/STEP (a step of one task) or STEP "
             "(in your latest run).")
    pick = [click.option("--id", "card_id", default=None, help="Only the card with this id."),
            click.option("--type", "card_type", default=None,
                         help="Only cards of this type (default, blank).")]

    def with_pick(func: Any) -> Any:
        for option in reversed(pick):
            func = option(func)
        return func

    @cli.group(help="Read the cards that @card steps made.")
    def card() -> None:
        pass

    @card.command(name="list", help="List the cards of a task. " + where)
    @click.argument("pathspec")
    @click.pass_context
    def list_cards(ctx: click.Context, pathspec: str) -> None:
        from .cards import get_cards
        for task in _card_tasks(flow_cls, pathspec, ctx.obj["root"]):
            for c in get_cards(task):
                click.echo(f"{task.pathspec}  id={c.id or '-'}  type={c.type}  {c.path}")

    @card.command(help="Print the HTML of a task's card, or save it to FILENAME. " + where)
    @click.argument("pathspec")
    @click.argument("filename", required=False, type=click.Path(dir_okay=False))
    @with_pick
    @click.pass_context
    def get(ctx: click.Context, pathspec: str, filename: str | None, card_id: str | None,
            card_type: str | None) -> None:
        found = _one_card(flow_cls, pathspec, ctx.obj["root"], card_id, card_type)
        if filename is None:
            click.echo(found.html, nl=False)
            return
        with open(filename, "w", encoding="utf-8") as f:
            f.write(found.html)
        click.echo(f"Wrote card {found.id or found.type} of {found._task.pathspec} to "
                   f"{filename}.", err=True)

    @card.command(help="Open a task's card in a web browser. " + where)
    @click.argument("pathspec")
    @with_pick
    @click.option("--output", "-o", default=None, type=click.Path(dir_okay=False),
                  help="Write the page here first (default: open it where it is stored).")
    @click.pass_context
    def view(ctx: click.Context, pathspec: str, card_id: str | None, card_type: str | None,
             output: str | None) -> None:
        import pathlib
        import tempfile
        import webbrowser
        found = _one_card(flow_cls, pathspec, ctx.obj["root"], card_id, card_type)
        path = found.path
        if output is not None or "://" in path:
            if output is None:
                output = tempfile.NamedTemporaryFile(suffix=".html", delete=False).name
            with open(output, "w", encoding="utf-8") as f:
                f.write(found.html)
            path = output
        click.echo(f"Card {found.id or found.type} of {found._task.pathspec}: {path}")
        webbrowser.open(pathlib.Path(path).resolve().as_uri())


def _card_tasks(flow_cls: type, pathspec: str, root: str | None) -> list[Any]:
    if "/" not in pathspec.strip("/"):  # STEP: in the latest run, as Metaflow reads it
        from .client import Flow
        from .exceptions import DataNotFoundError
        run = Flow(flow_cls.__name__, _root=root).latest_run
        if run is None:
            raise DataNotFoundError(f"{flow_cls.__name__} has no runs; run it first, or give "
                                    f"RUN_ID/STEP/TASK_ID.")
        pathspec = f"{run.id}/{pathspec.strip('/')}"
    return _tasks(flow_cls, pathspec, root)


def _one_card(flow_cls: type, pathspec: str, root: str | None, card_id: str | None,
              card_type: str | None) -> Any:
    from .cards import get_cards
    from .exceptions import DataNotFoundError
    tasks = _card_tasks(flow_cls, pathspec, root)
    if len(tasks) > 1:
        raise DataNotFoundError(
            f"{pathspec} has {len(tasks)} tasks; name one: RUN_ID/STEP/TASK_ID "
            f"(e.g. {tasks[0].pathspec.split('/', 1)[1]}).")
    cards = get_cards(tasks[0], id=card_id, type=card_type)
    if not len(cards):
        what = " ".join(f"{k}={v}" for k, v in (("id", card_id), ("type", card_type)) if v)
        others = ", ".join(c.id or c.type for c in get_cards(tasks[0])) or "none"
        raise DataNotFoundError(
            f"Task {tasks[0].pathspec} has no card{' with ' + what if what else ''} "
            f"(its cards: {others}). Add @card to the step, or pick one with --id.")
    if len(cards) > 1:
        ids = ", ".join(c.id or "-" for c in cards)
        click.echo(f"{len(cards)} cards match; showing the first "
                   f"({cards[0].id or cards[0].type}). Pick one with --id: {ids}.", err=True)
    return cards[0]


def _split_workers(graph: FlowGraph, step: str, placement: Any) -> int | None:
    """At most how many workers the step's own cluster asks for, when a foreach's splits
    decide it (None otherwise: the request says)."""
    from . import config
    from .runtime.plan import split_workers
    if placement is None or placement.per_split:
        return None
    return split_workers(graph, step, int(config.get("run.max-workers")))


def _runs_on(graph: FlowGraph, step: str, placement: Any) -> str | None:
    """``show``'s 'runs on' text of a step with its own cluster; None: the default one."""
    if placement is None:
        return None
    at_most = _split_workers(graph, step, placement)
    if at_most is None:
        return placement.describe()
    return (f"{placement.describe(workers=at_most)}; one worker per foreach split, at most "
            f"--max-workers ({at_most})")


def graph_json(flow_cls: type, graph: FlowGraph, placements: dict[str, Any]) -> dict[str, Any]:
    """What ``show --format json`` prints: each step, where it runs, what that exposes."""
    steps = {}
    for node in graph:
        placement = placements.get(node.name)
        at_most = _split_workers(graph, node.name, placement)
        steps[node.name] = {
            "decorators": list(node.decorators), "next": list(node.out_funcs),
            "transition": node.transition,
            "runs_on": None if placement is None else {
                "backend": placement.backend,
                "request": placement.request.describe() if at_most is None else
                replace(placement.request, workers=at_most).describe(),
                "workers_at_most": at_most or placement.request.workers,
                "description": _runs_on(graph, node.name, placement),
                "exposure": placement.exposure()}}
    return {"flow": flow_cls.__name__, "steps": steps}


def render_graph(flow_cls: type, graph: FlowGraph,
                 where: dict[str, str | None] | None = None) -> str:
    """The text ``show`` prints: each step, its docstring, decorators and transition."""
    lines = []
    if flow_cls.__doc__:
        lines += [flow_cls.__doc__.strip(), ""]
    for node in graph:
        title = f"Step {node.name}"
        if node.is_join:
            title += f"  (join of '{node.matching_split}')"
        lines.append(title)
        if node.decorators:
            lines.append("    " + " ".join(node.decorators))
        if where is not None:
            default = "the run's default cluster"
            lines.append(f"    runs on: {where.get(node.name) or default}")
        if node.doc:
            lines += ["    " + line for line in node.doc.splitlines()]
        if node.transition == FOREACH:
            lines.append(f"    => {node.out_funcs[0]}  " + (
                "(num_parallel: a gang of tasks at once)" if node.parallel else
                f"(foreach over self.{node.foreach_var})"))
        elif node.transition == SWITCH:
            cases = ", ".join(f"{k!r}: {v}" for k, v in node.switch_cases.items())
            lines.append(f"    => one of {{{cases}}}  (switch on self.{node.condition_var})")
        elif node.transition == SPLIT:
            lines.append(f"    => {', '.join(node.out_funcs)}  (branches run in parallel)")
        elif node.out_funcs:
            lines.append(f"    => {node.out_funcs[0]}")
        lines.append("")
    return "\n".join(lines).rstrip()


# -- the `daskflow` console command (also `python -m daskflow`) ---------------------------------
@click.group(name="daskflow", help="daskflow's own commands; a flow file has its own "
                                   "(python flow.py run | show | ...).")
def daskflow_command() -> None:
    pass


@daskflow_command.group(help="The clusters daskflow started that still run, on every "
                             "configured backend.")
def clusters() -> None:
    pass


_backend_option = click.option(
    "--backend", "backends", multiple=True, metavar="NAME",
    help="Ask only this backend (local, ssh, slurm, aws, kubernetes); repeatable. Default: "
         "daskflow.cluster.list-backends.")
_root_option = click.option(
    "--datastore-root", default=None,
    help="Where to read the runs' records (whether a run is alive); default: "
         "daskflow.datastore.root.")


@clusters.command(name="list", help="List live clusters: backend, name, run/step, age, "
                                    "workers, state, and whether their run is alive.")
@_backend_option
@_root_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
def list_clusters(backends: tuple[str, ...], datastore_root: str | None,
                  as_json: bool) -> None:
    from .clusters.inventory import as_rows, live_clusters
    found, notes = live_clusters(backends, datastore_root)
    if as_json:
        import json
        click.echo(json.dumps({"clusters": [c.as_json() for c in found], "notes": notes},
                              indent=2))
        return
    rows = as_rows(found)
    if rows:
        click.echo(_table(rows))
    else:
        click.echo("No live clusters.")
    for note in notes:
        click.echo(f"note: {note}", err=True)


@clusters.command(help="Close the clusters whose run has finished or whose driver is gone, "
                       "remove the temporary files that dead processes of daskflow left on "
                       "this machine (TLS credentials, output spools), and say what went.")
@_backend_option
@_root_option
@click.option("--dry-run", is_flag=True, help="Only say what would be closed.")
def gc(backends: tuple[str, ...], datastore_root: str | None, dry_run: bool) -> None:
    from .clusters.inventory import live_clusters
    found, notes = live_clusters(backends, datastore_root)
    for note in notes:
        click.echo(f"note: {note}", err=True)
    _close_dead_runs_clusters(found, dry_run)
    from .runtime.leftovers import sweep
    swept = sweep(dry_run=dry_run)
    for path in swept:
        click.echo(f"{'would remove' if dry_run else 'removed'} {path} (its process is gone)")


def _close_dead_runs_clusters(found: list[Any], dry_run: bool) -> None:
    """``gc``'s clusters: those whose run is not alive are closed."""
    from .clusters.inventory import end
    if not found:
        click.echo("No live clusters: nothing to close.")
        return
    closed = 0
    for cluster in found:
        what = (f"{cluster.backend} cluster {cluster.name} (run {cluster.labels.run or '-'}, "
                f"step {cluster.labels.step or '-'}; {cluster.why})")
        if cluster.run_alive is not False:
            click.echo(f"kept {what}")
            continue
        if dry_run:
            click.echo(f"would close {what}")
            closed += 1
            continue
        try:
            done = end(cluster)
        except Exception as exc:  # noqa: BLE001  the others are still closed
            click.secho(f"could not close {what}: {type(exc).__name__}: {exc}", fg="red",
                        err=True)
            continue
        closed += 1
        click.echo(f"closed {what}: {done}")
    click.echo(f"{closed} cluster(s) would be closed." if dry_run
               else f"{closed} cluster(s) closed.")


@daskflow_command.command(help="List the runs using the Dask scheduler at ADDRESS "
                                "(tcp://host:8786, tls://...): user, flow, run id, tasks in "
                                "flight and each one's share of its threads.")
@click.argument("address")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
def scheduler(address: str, as_json: bool) -> None:
    from .runtime.shares import runs_on
    from .runtime.preflight import connect_scheduler
    with connect_scheduler(address) as client:
        threads = sum(client.nthreads().values())
        runs = runs_on(client)
    if as_json:
        import json
        click.echo(json.dumps({"scheduler": address, "threads": threads, "runs": runs},
                              indent=2))
        return
    if not runs:
        click.echo(f"No daskflow run uses {address} ({threads} threads).")
        return
    click.echo(_table([{
        "USER": r["user"], "FLOW": r["flow"], "RUN": r["run_id"],
        "IN FLIGHT": str(r["in_flight"]), "SHARE": str(r["share"]),
        "THREADS": f"{r['threads']} of {threads} ({r['fraction']:.0%})", "HOST": r["host"]}
        for r in runs]))


def _table(rows: list[dict[str, str]]) -> str:
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


@daskflow_command.command(
    name="run", context_settings={"ignore_unknown_options": True,
                                  "allow_interspersed_args": False},
    help="Run a flow file's command line: `daskflow run FLOW.py ARGS...` is `python FLOW.py "
         "ARGS...` (run --alpha 1, resume, show, check, dump RUN/STEP, logs, card, spin), "
         "also for a file written for Metaflow, unchanged: its `metaflow` imports get "
         "daskflow's API (docs/metaflow.md).")
@click.argument("flow_file", type=click.Path(dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run_flow_file(flow_file: str, args: tuple[str, ...]) -> None:
    from .compat import install_metaflow_alias
    from .runtime.flowfile import load_flow
    install_metaflow_alias()  # whether it imports metaflow at its top or only in a step
    sys.argv = [flow_file, *args]  # what the file sees, as under `python FLOW.py ARGS`
    flow_cls = load_flow(flow_file)
    main(flow_cls, list(args), command=["daskflow", "run", flow_file])


def console_main(argv: list[str] | None = None) -> None:
    """``daskflow ...`` and ``python -m daskflow ...``: daskflow's errors as one line."""
    try:
        daskflow_command.main(args=argv, prog_name="daskflow", standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DaskflowException as exc:
        if os.environ.get("DASKFLOW_DEBUG"):
            traceback.print_exc()
        click.secho(f"{exc.headline}: {exc}", fg="red", err=True)
        sys.exit(1)
    sys.exit(0)
