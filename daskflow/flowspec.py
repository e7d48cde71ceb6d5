"""The user's flow class: ``FlowSpec`` and ``@step``, with Metaflow's meaning.

A flow is a class of ``@step`` methods joined by ``self.next(...)``.  Values
assigned to ``self`` in a step are artifacts: stored when the step ends and
carried along the graph to the steps that follow.
"""

from __future__ import annotations

from collections.abc import Callable
from types import FunctionType, MethodType, ModuleType
from typing import TYPE_CHECKING, Any

from .exceptions import (
    MergeArtifactsError,
    ReservedNameError,
    UnhandledTransitionError,
    did_you_mean,
)
from .graph import FlowGraph, StepNode
from .inputs import ArtifactSource, ForeachFrame, ForeachStackFrame, Inputs, frame_text
from .parameters import Parameter, flow_parameters
from .tracebacks import DYNAMIC_CODE

if TYPE_CHECKING:
    from .datastore import ArtifactRef, ArtifactStore


def step(func: Callable) -> Callable:
    """Mark a method of a :class:`FlowSpec` as a step.

    >>> class Hello(FlowSpec):                              # doctest: +SKIP
    ...     @step
    ...     def start(self):
    ...         self.greeting = "hi"
    ...         self.next(self.end)
    """
    func.is_step = True  # type: ignore[attr-defined]
    if not hasattr(func, "decorators"):
        func.decorators = []  # type: ignore[attr-defined]
    return func


# Class attributes Metaflow never treats as constants (its FlowSpec._NON_PARAMETERS).
_NOT_CONSTANTS = {"cmd", "foreach_stack", "index", "input", "script_name", "name"}


def flow_constants(flow_cls: type) -> tuple[str, ...]:
    """Names of the class-level constants of a flow (``MAX = 10``), sorted.

    Metaflow's rule: every public class attribute that is not a Parameter, method,
    function, property or class.  Descriptors and modules are left out too: they are
    not values (Metaflow fails to store a module).
    """
    cached = flow_cls.__dict__.get("_df_constants")
    if cached is not None:
        return cached
    params = flow_parameters(flow_cls)
    names = []
    for attr in dir(flow_cls):
        if attr.startswith("_") or attr in _NOT_CONSTANTS or attr in params:
            continue
        value = getattr(flow_cls, attr)
        if isinstance(value, (MethodType, FunctionType, property, type, ModuleType,
                              Parameter)) or hasattr(type(value), "__get__"):
            continue
        names.append(attr)
    type.__setattr__(flow_cls, "_df_constants", tuple(names))
    return flow_cls.__dict__["_df_constants"]


#: what a step cannot assign because daskflow gives it (FlowSpec's public names)
_RESERVED = {
    "index": "the foreach split's index", "input": "the foreach split's item",
    "foreach_stack": "the open foreach splits", "next": "a method of FlowSpec",
    "merge_artifacts": "a method of FlowSpec", "run": "a method of FlowSpec",
    "delayed": "a method of FlowSpec",
}


def _reserved_message(flow: Any, name: str) -> str:
    """Where (file:line of the assignment, the step) and what to do instead."""
    import sys
    caller = sys._getframe(2)  # the step's line that assigned it
    node = flow.__dict__.get("_df_node")
    step = f"step '{node.name}'" if node is not None else "a step"
    file = caller.f_code.co_filename
    if file == DYNAMIC_CODE and node is not None:  # the flow file, pickled by value
        file = node.file
    return (f"{file}:{caller.f_lineno}: {step} assigns self.{name}, "
            f"which daskflow gives every step ({_RESERVED[name]}), so it cannot be an "
            f"artifact. Store the value under another name, e.g. self.{name}_value = ...")


class FlowSpec(ArtifactSource):
    """Base class of a flow: subclass it and write ``@step`` methods.

    Running the file (``python flow.py run``) goes through the command line;
    ``MyFlow.run(alpha=0.5)`` runs it from a script or notebook and returns the
    :class:`~daskflow.client.Run`.

    >>> class HelloFlow(FlowSpec):                          # doctest: +SKIP
    ...     @step
    ...     def start(self):
    ...         self.message = "hello"
    ...         self.next(self.end)
    ...     @step
    ...     def end(self):
    ...         print(self.message)
    >>> if __name__ == "__main__":                          # doctest: +SKIP
    ...     HelloFlow()
    """

    # The flow class's entry points, MyFlow(), MyFlow.run(...) and MyFlow.delayed(...),
    # are the one place this layer reaches up, and only through cli: Metaflow's MyFlow()
    # hands the process to the command line, and run/delayed start a Runner the way the
    # command line does. They import it when called; nothing under runtime/ imports this
    # module (flow classes are known there by what they have), so no import circle closes.
    def __init__(self, use_cli: bool = True) -> None:
        if use_cli:
            from .cli import main
            main(type(self))

    # -- class-level views --------------------------------------------------------

    @classmethod
    def _flow_graph(cls) -> FlowGraph:
        cached = cls.__dict__.get("_df_graph_cache")
        if cached is None:
            from .configs import configs_known
            from .project import flow_project
            from .steps import check_step_decorators
            check_step_decorators(cls)  # a refused @decorator(...) option, with file:line
            if configs_known(cls):      # else when the run reads its configs
                flow_project(cls)       # a bad @project name
            cached = FlowGraph.from_class(cls)
            type.__setattr__(cls, "_df_graph_cache", cached)
        return cached

    @classmethod
    def _constant_names(cls) -> tuple[str, ...]:
        """The flow's class constants (for the runtime, which never imports this module)."""
        return flow_constants(cls)

    @classmethod
    def run(cls, **params: Any) -> Any:
        """Run this flow in-process with ``params`` and return its ``Run``.

        Run options go through :class:`daskflow.Runner` (max_workers, tags, ...).

        >>> run = HelloFlow.run(alpha=0.5)                   # doctest: +SKIP
        >>> run.successful
        True
        """
        from .cli import run_in_process
        return run_in_process(cls, params)

    @classmethod
    def delayed(cls, **params: Any) -> Any:
        """This flow's run as a ``dask.delayed`` value: computing it runs the flow on the
        cluster that computes it and gives its ``Run``.

        Parameters are checked now, as in :meth:`run` (one given as a delayed value
        when it is known). Run options go through ``Runner(cls, ...).delayed(...)``.

        >>> runs = dask.compute(*[TrainFlow.delayed(alpha=a) for a in (0.1, 0.5)])
        ... # doctest: +SKIP
        >>> [run.data.score for run in runs]                 # doctest: +SKIP
        """
        from .cli import delayed_run
        return delayed_run(cls, params)

    # -- running inside a task ----------------------------------------------------------

    @classmethod
    def _for_task(cls, store: ArtifactStore, run_id: str, node: StepNode,
                  refs: dict[str, ArtifactRef], params: dict[str, ArtifactRef],
                  frames: tuple[ForeachFrame, ...],
                  reads: set[str] | None = None) -> FlowSpec:
        """The flow object a task's body runs on; ``reads``: where a cached step notes
        the names it reads (:mod:`daskflow.inputs`)."""
        flow = cls.__new__(cls)
        state = flow.__dict__
        state["_df_store"] = store
        state["_df_run_id"] = run_id
        state["_df_node"] = node
        state["_df_refs"] = dict(refs)
        state["_df_params"] = params
        state["_df_param_values"] = {}
        state["_df_frames"] = frames
        state["_df_transition"] = None
        state["_df_reads"] = reads
        return flow

    @property
    def _current_step(self) -> str:
        """The name of the step running (Metaflow flows read it)."""
        return self._df_node.name

    @property
    def _foreach_stack(self) -> list[ForeachStackFrame]:
        """The open foreach splits around this task, outermost first (Metaflow's shape)."""
        self._note()
        graph = self._flow_graph()
        stack = []
        for frame in self._df_frames:
            node = graph[frame.step]
            stack.append(ForeachStackFrame(node.out_funcs[0], node.foreach_var or "",
                                           frame.num_splits, frame.index,
                                           frame_text(self._frame_item(frame))))
        return stack

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _RESERVED:
            raise ReservedNameError(_reserved_message(self, name))
        if name in flow_constants(type(self)):
            raise ReservedNameError(
                f"Flow level attributes and Parameters are not modifiable: '{name}' is a "
                f"class constant of flow {type(self).__name__}. Store the changed value "
                f"under another name (self.{name.lower()}_used = ...).")
        object.__setattr__(self, name, value)

    def _parameter_value(self, attr: str) -> Any:
        cache = self.__dict__.get("_df_param_values")
        if cache is None:
            raise AttributeError(f"Parameter '{attr}' has a value only while the flow runs.")
        reads = self.__dict__.get("_df_reads")
        if reads is not None:
            reads.add(f"p:{attr}")
        if attr not in cache:
            cache[attr] = self._df_store.get_artifact(self._df_params[attr], attr)
        return cache[attr]

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: an artifact from an earlier step.
        if name.startswith("_"):
            raise AttributeError(name)
        self._note(name)  # a cached step's key counts what it read, or found missing
        refs = self.__dict__.get("_df_refs")
        if name == "name" and (refs is None or name not in refs):  # (a parameter wins)
            return type(self).__name__  # Metaflow's FlowSpec.name, an artifact of every task
        if refs is None or name not in refs:
            node = self.__dict__.get("_df_node")
            where = f"step '{node.name}'" if node is not None else "this flow"
            hint = ""
            if node is not None and node.is_join:
                hint = (" A join starts with no artifacts: read them from inputs, or "
                        "call self.merge_artifacts(inputs) first.")
            known = list(refs or ())
            raise AttributeError(
                f"{where} has no artifact '{name}'.{did_you_mean(name, known)}{hint}")
        value = self._load(name)
        self.__dict__[name] = value
        return value

    def next(self, *steps: Any, foreach: str | None = None,
             condition: str | None = None, num_parallel: int | None = None) -> None:
        """Say which step(s) run after this one; call it once, at the end of the step.

        ``num_parallel=N`` runs the next step as a gang of N tasks at once, one per
        worker of a cluster of N workers (``current.parallel`` tells each its place).
        """
        node: StepNode = self._df_node
        if node.parallel:
            if isinstance(num_parallel, bool) or not isinstance(num_parallel, int) \
                    or num_parallel < 1:
                raise UnhandledTransitionError(
                    f"Step '{node.name}': num_parallel must be a whole number >= 1, got "
                    f"{num_parallel!r}.")
            self.__dict__["_df_num_parallel"] = num_parallel
        if self._df_transition is not None:
            raise UnhandledTransitionError(
                f"Step '{node.name}' called self.next() more than once.")
        if condition is not None:
            if len(steps) != 1 or not isinstance(steps[0], dict):
                raise UnhandledTransitionError(
                    f"Step '{node.name}': condition= needs one dict of steps.")
            called = {key: _step_name(value) for key, value in steps[0].items()}
            declared: Any = node.switch_cases
        else:
            called = [_step_name(s) for s in steps]
            declared = node.out_funcs
        if called != declared or foreach != node.foreach_var \
                or condition != node.condition_var:
            raise UnhandledTransitionError(
                f"Step '{node.name}' called self.next({called}, foreach={foreach!r}, "
                f"condition={condition!r}) but its source says self.next({declared}, "
                f"foreach={node.foreach_var!r}, condition={node.condition_var!r}). "
                f"A step's self.next() must not depend on run-time values; use condition=.")
        self._df_transition = called

    def merge_artifacts(self, inputs: Inputs, exclude: list[str] | None = None,
                        include: list[str] | None = None) -> None:
        """Copy onto self the artifacts the join's inputs agree on (Metaflow's rules).

        An artifact already set on self is kept; one whose value differs between
        inputs raises, unless set on self first or excluded.  On error nothing is set.
        """
        node: StepNode = self._df_node
        if not node.is_join:
            raise MergeArtifactsError(
                f"merge_artifacts is only allowed in a join step; '{node.name}' is not one.")
        if include and exclude:
            raise MergeArtifactsError(
                f"Step '{node.name}': pass include= or exclude= to merge_artifacts, not both.")
        excluded = set(exclude or ())
        wanted = set(include or ())
        params = set(self._df_params) | set(flow_constants(type(self)))
        versions: dict[str, dict[str, ArtifactRef]] = {}
        for view in inputs:
            for name, ref in view._df_refs.items():
                if name in params or name in excluded or (wanted and name not in wanted):
                    continue
                versions.setdefault(name, {})[ref.sha] = ref
        reads = self.__dict__.get("_df_reads")
        if reads is not None:  # what it merges depends on every input's refs of these
            reads.update(f"j:{name}" for name in versions)
        missing = sorted(wanted - set(versions))
        if missing:
            raise MergeArtifactsError(
                f"Step '{node.name}' cannot merge {missing}: no input has them.")
        merged: dict[str, ArtifactRef] = {}
        conflicts: list[str] = []
        for name, found in versions.items():
            if name in self.__dict__ or name in self._df_refs:
                continue  # already set on self: kept as it is
            if len(found) > 1:
                conflicts.append(name)
            else:
                merged[name] = next(iter(found.values()))
        if conflicts:
            raise MergeArtifactsError(
                f"Step '{node.name}' cannot merge artifacts whose values differ between "
                f"inputs: {sorted(conflicts)}. Set them on self before calling "
                f"merge_artifacts (self.<name> = ...), or pass exclude=[...].")
        self._df_refs.update(merged)

    def _df_artifacts(self) -> dict[str, Any]:
        """Values assigned in (or read into) this task, to be stored.

        Class constants are artifacts of every task, as in Metaflow: stored by the
        first task that lacks them (start, a join) and carried by reference after; so is
        ``name``, the flow's name (Metaflow's ``FlowSpec.name``), unless a step set it.
        """
        values = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        for name in flow_constants(type(self)):
            if name not in self._df_refs:
                values[name] = getattr(type(self), name)
        if "name" not in values and "name" not in self._df_refs \
                and "name" not in self._df_params:
            values["name"] = type(self).__name__
        return values


def _step_name(target: Any) -> str:
    name = getattr(target, "__name__", None)
    if name is None or not getattr(target, "is_step", False):
        raise UnhandledTransitionError(
            f"self.next() takes steps (self.<step>), got {target!r}.")
    return name

