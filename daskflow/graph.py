"""The flow's static graph, read from the source of each step's ``self.next`` call.

Nothing runs to build it, so ``show`` and ``check`` work on any flow and a
malformed flow fails before a task starts, naming the step and line.
"""

from __future__ import annotations

import ast
import inspect
import os
import textwrap
from dataclasses import dataclass, field

from .exceptions import FlowDefinitionError, did_you_mean

# What a step does after its body: go on to one step, fan out to several
# (branch), fan out over a list (foreach), pick one (switch), or stop (end).
LINEAR, SPLIT, FOREACH, SWITCH, END = "linear", "split", "foreach", "switch", "end"


@dataclass
class StepNode:
    """One step of the flow as its source declares it."""

    name: str
    lineno: int
    file: str
    doc: str = ""
    next_lineno: int | None = None   # the line of its self.next() call
    is_join: bool = False
    transition: str = LINEAR
    out_funcs: list[str] = field(default_factory=list)
    foreach_var: str | None = None
    parallel: bool = False           # self.next(..., num_parallel=N): a gang of N tasks
    condition_var: str | None = None
    switch_cases: dict[str, str] = field(default_factory=dict)
    decorators: list[str] = field(default_factory=list)
    # Filled in by FlowGraph's analysis.
    recursive: bool = False               # a switch that may choose its own step again
    in_funcs: list[str] = field(default_factory=list)
    split_parents: tuple[str, ...] = ()   # open splits around this step, outermost first
    matching_split: str | None = None     # for a join: the split or foreach it closes


class FlowGraph:
    """Steps of a flow and their transitions, validated.

    >>> graph = FlowGraph.from_class(HelloFlow)            # doctest: +SKIP
    >>> graph["start"].out_funcs
    ['hello']
    """

    def __init__(self, flow_name: str, nodes: dict[str, StepNode], file: str) -> None:
        self.flow_name = flow_name
        self.nodes = nodes
        self.file = file
        self._validate()

    def __getitem__(self, name: str) -> StepNode:
        return self.nodes[name]

    def __iter__(self):
        return iter(self.sorted_nodes())

    def __contains__(self, name: str) -> bool:
        return name in self.nodes

    def is_gang(self, name: str) -> bool:
        """Whether step ``name`` runs as a ``num_parallel`` gang (a parent asked for one)."""
        return any(self.nodes[p].parallel for p in self.nodes[name].in_funcs)

    def forward(self, name: str) -> list[str]:
        """The steps ``name`` goes on to, without a switch's way back to itself."""
        return [n for n in self.nodes[name].out_funcs if n != name]

    @classmethod
    def from_class(cls, flow_cls: type) -> FlowGraph:
        nodes: dict[str, StepNode] = {}
        main_file = "<unknown>"
        for klass in reversed(flow_cls.__mro__):
            step_funcs = {n: f for n, f in vars(klass).items()
                          if callable(f) and getattr(f, "is_step", False)}
            if not step_funcs:
                continue
            file, class_def, offset = _class_source(klass)
            main_file = file
            defs = {d.name: d for d in class_def.body if isinstance(d, ast.FunctionDef)}
            for name, func in step_funcs.items():
                node_def = defs.get(name)
                if node_def is None:
                    raise FlowDefinitionError(
                        f"Cannot find the source of step '{name}'.", step=name, file=file)
                nodes[name] = _parse_step(name, func, node_def, file, offset)
        return cls(flow_cls.__name__, nodes, main_file)

    # -- analysis ---------------------------------------------------------------

    def _error(self, message: str, step: str | None = None,
               at_next: bool = False) -> FlowDefinitionError:
        node = self.nodes.get(step) if step else None
        lineno = None
        if node is not None:
            lineno = node.next_lineno if at_next and node.next_lineno else node.lineno
        return FlowDefinitionError(message, step=step, file=self.file, lineno=lineno)

    def _validate(self) -> None:
        for required in ("start", "end"):
            if required not in self.nodes:
                raise self._error(
                    f"Flow {self.flow_name} has no '{required}' step: every flow needs a "
                    f"@step named '{required}'.")
        if self.nodes["end"].out_funcs:
            raise self._error("The 'end' step must not call self.next().", "end")
        for node in self.nodes.values():
            if node.name != "end" and node.transition == END:
                raise self._error(
                    f"Step '{node.name}' does not call self.next(): every step but 'end' "
                    f"must end with self.next(self.<following step>).", node.name)
            for target in node.out_funcs:
                if target not in self.nodes:
                    raise self._error(
                        f"Step '{node.name}' goes to '{target}', which is not a step of "
                        f"{self.flow_name}.{did_you_mean(target, self.nodes)}", node.name,
                        at_next=True)
                if target == node.name:
                    self._check_recursive(node)
                    continue
                self.nodes[target].in_funcs.append(node.name)
        if self.nodes["start"].in_funcs:
            raise self._error("No step may go back to 'start'.", self.nodes["start"].in_funcs[0])
        if self.nodes["start"].is_join:
            raise self._error("The 'start' step cannot be a join (it takes no inputs).", "start")
        self._check_cycles()
        reached = {"start"}
        todo = ["start"]
        while todo:
            for nxt in self.nodes[todo.pop()].out_funcs:
                if nxt not in reached:
                    reached.add(nxt)
                    todo.append(nxt)
        for node in self.nodes.values():
            if node.name not in reached:
                raise self._error(
                    f"Step '{node.name}' is never reached from 'start'; remove it or "
                    f"add it to a self.next(...) call.", node.name)
        self._assign_splits()

    def _check_recursive(self, node: StepNode) -> None:
        """A step that goes back to itself: only a switch may (Metaflow's recursive
        switch), and not a join, whose inputs would never all come again."""
        if node.name == "start":
            raise self._error("No step may go back to 'start'.", "start", at_next=True)
        if node.transition != SWITCH:
            raise self._error(
                f"Step '{node.name}' goes to itself; only a switch may loop, e.g. "
                f"self.next({{\"again\": self.{node.name}, \"done\": self.end}}, "
                f"condition=\"state\").", node.name, at_next=True)
        if node.is_join:
            raise self._error(
                f"Step '{node.name}' is a join and chooses with condition=, which may go "
                f"back to itself; a join cannot loop. Loop in a step after the join.",
                node.name, at_next=True)
        node.recursive = True

    def _check_cycles(self) -> None:
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done

        def visit(name: str, path: list[str]) -> None:
            state[name] = 1
            for nxt in self.forward(name):
                if state.get(nxt) == 1:
                    loop = " -> ".join(path[path.index(nxt):] + [name, nxt]) \
                        if nxt in path else f"{name} -> {nxt}"
                    raise self._error(
                        f"The flow has a cycle ({loop}); steps must form a graph that "
                        f"always moves towards 'end'. Only a switch may go back, and only "
                        f"to its own step (self.next({{\"again\": self.{name}, ...}}, "
                        f"condition=...)).", name, at_next=True)
                if state.get(nxt) is None:
                    visit(nxt, path + [name])
            state[name] = 2

        visit("start", [])

    def _assign_splits(self) -> None:
        """Give each step the stack of splits open around it and match joins to splits."""
        arrivals: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        order = self._topological()
        stacks: dict[str, tuple[str, ...]] = {}
        for name in order:
            node = self.nodes[name]
            if name == "start":
                inside: tuple[str, ...] = ()
            else:
                inside = self._stack_on_entry(node, arrivals.get(name, []))
            node.split_parents = inside
            stacks[name] = inside
            # a switch with one way on (a loop's exit) opens no paths to bring together
            opens = node.transition in (SPLIT, FOREACH) or \
                (node.transition == SWITCH and len(self.forward(name)) > 1)
            leaving = inside + (name,) if opens else inside
            for nxt in self.forward(name):
                arrivals.setdefault(nxt, []).append((name, leaving))
        end = self.nodes["end"]
        if end.split_parents:
            opened = end.split_parents[-1]
            raise self._error(
                f"Step '{opened}' splits the flow but its branches are never joined: add a "
                f"join step (def join(self, inputs)) before 'end'.", opened)

    def _stack_on_entry(self, node: StepNode,
                        arrived: list[tuple[str, tuple[str, ...]]]) -> tuple[str, ...]:
        def strip_switches(stack: tuple[str, ...]) -> tuple[str, ...]:
            while stack and self.nodes[stack[-1]].transition == SWITCH:
                stack = stack[:-1]
            return stack

        if node.is_join:
            for source, _ in arrived:
                if self.nodes[source].transition == SWITCH:
                    # Metaflow's check refuses it too; refusing it here keeps a flow that
                    # passes `check` runnable on both.
                    raise self._error(
                        f"Step '{source}' chooses with condition= and one of its choices "
                        f"goes straight to the join '{node.name}'; a conditional path cannot "
                        f"lead directly to a join. Add a plain step on that path before "
                        f"'{node.name}'.", source, at_next=True)
            tops = {strip_switches(stack) for _, stack in arrived}
            if len(tops) != 1 or not next(iter(tops)):
                raise self._error(
                    f"Step '{node.name}' takes inputs (a join) but does not close a branch "
                    f"or foreach: its incoming steps {sorted(node.in_funcs)} are not the "
                    f"branches of one split. Remove the 'inputs' argument or fix the "
                    f"self.next() calls.", node.name)
            stack = next(iter(tops))
            split = self.nodes[stack[-1]]
            # A foreach join may be reached from several steps: their stacks agree once
            # switches are stripped, so a switch chose between them and each split of
            # the foreach still arrives exactly once.
            node.matching_split = split.name
            return stack[:-1]
        if len(arrived) == 1:
            return arrived[0][1]
        stacks = {stack for _, stack in arrived}
        if all(stack and self.nodes[stack[-1]].transition == SWITCH for stack in stacks):
            stripped = {strip_switches(stack) for stack in stacks}
            if len(stripped) == 1:
                return next(iter(stripped))
        sources = sorted(src for src, _ in arrived)
        opened = [stack[-1] for stack in stacks if stack]
        if node.name == "end" and opened:
            split = opened[0]
            raise self._error(
                f"Step '{split}' splits the flow into {', '.join(self.nodes[split].out_funcs)}"
                f", but the branches are never joined: they reach 'end' directly. Add a join "
                f"step (def join(self, inputs)) before 'end'.", split)
        raise self._error(
            f"Step '{node.name}' is reached from several branches ({', '.join(sources)}) but "
            f"is not a join: define it as def {node.name}(self, inputs) to merge them.",
            node.name)

    def _topological(self) -> list[str]:
        indegree = {n: 0 for n in self.nodes}
        for node in self.nodes.values():
            for nxt in self.forward(node.name):
                indegree[nxt] += 1
        ready = [n for n, d in indegree.items() if d == 0 and n == "start"]
        order: list[str] = []
        while ready:
            name = ready.pop(0)
            order.append(name)
            for nxt in self.forward(name):
                indegree[nxt] -= 1
                if indegree[nxt] == 0:
                    ready.append(nxt)
        return order

    # -- queries ------------------------------------------------------------------

    def sorted_nodes(self) -> list[StepNode]:
        """Steps in the order a reader follows them: start first, end last."""
        order = self._topological()
        return [self.nodes[n] for n in order]

    def foreach_depth(self, name: str) -> int:
        return sum(1 for s in self.nodes[name].split_parents
                   if self.nodes[s].transition == FOREACH)


def _class_source(klass: type) -> tuple[str, ast.ClassDef, int]:
    try:
        file = inspect.getsourcefile(klass) or "<unknown>"
        lines, start = inspect.getsourcelines(klass)
    except (OSError, TypeError) as exc:
        found = _cell_source(klass)  # a notebook cell: its methods know where they are
        if found is None:
            raise FlowDefinitionError(
                f"Cannot read the source of flow class {klass.__name__} ({exc}); daskflow "
                f"reads each step's self.next() from the source, so define the flow in a "
                f"file or notebook cell (a script piped to `python -` has no source: "
                f"use `python - < script.py`).") from exc
        return found
    tree = ast.parse(textwrap.dedent("".join(lines)))
    class_def = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    return file, class_def, max(start, 1) - 1


def _cell_source(klass: type) -> tuple[str, ast.ClassDef, int] | None:
    """The class in the source its methods were compiled from, as IPython keeps each cell
    in ``linecache`` (a class of ``__main__`` has no file ``inspect`` can read)."""
    import linecache

    for value in vars(klass).values():
        code = getattr(value, "__code__", None)
        if code is None:
            continue
        lines = linecache.getlines(code.co_filename) or _stdin_lines(code.co_filename)
        if not lines:
            continue
        try:
            tree = ast.parse("".join(lines))
        except SyntaxError:
            return None
        defs = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)
                and n.name == klass.__name__ and n.lineno <= code.co_firstlineno
                <= (n.end_lineno or n.lineno)]
        if defs:
            return code.co_filename, defs[-1], 0
    return None


def _stdin_lines(filename: str) -> list[str]:
    """The script of ``python - < script.py``: stdin is then that file, read again from
    its start (a pipe cannot be), and kept in ``linecache`` for tracebacks too."""
    import linecache
    import stat

    if filename != "<stdin>":
        return []
    try:
        info = os.fstat(0)
        if not stat.S_ISREG(info.st_mode):
            return []
        text = os.pread(0, info.st_size, 0).decode()
    except (OSError, UnicodeDecodeError):
        return []
    lines = text.splitlines(keepends=True)
    linecache.cache[filename] = (len(text), None, lines, filename)
    return lines


def _parse_step(name: str, func, node_def: ast.FunctionDef, file: str, offset: int) -> StepNode:
    lineno = node_def.lineno + offset
    args = [a.arg for a in node_def.args.args]
    node = StepNode(name=name, lineno=lineno, file=file,
                    doc=inspect.getdoc(func) or "", is_join=len(args) >= 2,
                    decorators=[repr(d) for d in getattr(func, "decorators", [])])
    if len(args) > 2:
        raise FlowDefinitionError(
            f"Step '{name}' takes {len(args)} arguments; a step takes only self, "
            f"or self and inputs for a join.", step=name, file=file, lineno=lineno)
    yielded = _own_yield(node_def)
    if yielded is not None:
        word = "yield from" if isinstance(yielded, ast.YieldFrom) else "yield"
        raise FlowDefinitionError(
            f"Step '{name}' contains {word}, which makes it a generator: calling it would "
            f"not run its body. A step "
            f"returns nothing; keep values with self.<name> = ..., or move the generator "
            f"into a helper function that the step calls.", step=name, file=file,
            lineno=yielded.lineno + offset)
    calls = [c for c in ast.walk(node_def) if isinstance(c, ast.Call)
             and isinstance(c.func, ast.Attribute) and c.func.attr == "next"
             and isinstance(c.func.value, ast.Name) and c.func.value.id == "self"]
    if not calls:
        node.transition = END
        return node
    if len(calls) > 1:
        raise FlowDefinitionError(
            f"Step '{name}' calls self.next() {len(calls)} times; call it once, at the end "
            f"(use condition= to choose between steps at run time).",
            step=name, file=file, lineno=calls[1].lineno + offset)
    call = calls[0]
    node.next_lineno = call.lineno + offset
    where = {"step": name, "file": file, "lineno": node.next_lineno}
    kwargs = _next_keywords(call, name, where)
    if "condition" in kwargs:
        if len(call.args) != 1 or not isinstance(call.args[0], ast.Dict):
            raise FlowDefinitionError(
                f"Step '{name}': condition= needs one dict of choices, e.g. "
                f"self.next({{\"a\": self.a, \"b\": self.b}}, condition=\"choice\").", **where)
        for key, value in zip(call.args[0].keys, call.args[0].values):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                raise FlowDefinitionError(
                    f"Step '{name}': the keys of a condition dict must be strings.", **where)
            node.switch_cases[key.value] = _target_name(value, name, where)
        node.transition = SWITCH
        node.condition_var = kwargs["condition"]
        node.out_funcs = list(dict.fromkeys(node.switch_cases.values()))
        return node
    if not call.args:
        raise FlowDefinitionError(
            f"Step '{name}': self.next() needs at least one step, e.g. self.next(self.end).",
            **where)
    node.out_funcs = [_target_name(arg, name, where) for arg in call.args]
    if "foreach" in kwargs or "num_parallel" in kwargs:
        kind = "foreach=" if "foreach" in kwargs else "num_parallel="
        if len(node.out_funcs) != 1 or len(kwargs) > 1:
            raise FlowDefinitionError(
                f"Step '{name}': {kind} fans out to exactly one step (and goes with no "
                f"other foreach=, condition= or num_parallel=).", **where)
        node.transition = FOREACH
        node.foreach_var = kwargs.get("foreach")
        node.parallel = "num_parallel" in kwargs
    elif len(node.out_funcs) > 1:
        node.transition = SPLIT
    return node


def _own_yield(func: ast.FunctionDef) -> ast.Yield | ast.YieldFrom | None:
    """The first ``yield`` of ``func`` itself, not of a function or lambda inside it."""
    todo: list[ast.AST] = list(func.body)
    found = []
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            found.append(node)
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                                 ast.ClassDef)):
            todo.extend(ast.iter_child_nodes(node))
    return min(found, key=lambda n: (n.lineno, n.col_offset)) if found else None


def _next_keywords(call: ast.Call, name: str, where: dict) -> dict[str, str]:
    """``foreach=`` and ``condition=`` (attribute names) and ``num_parallel=`` (any
    expression: its value is known at run time) of a ``self.next`` call."""
    kwargs = {}
    for kw in call.keywords:
        if kw.arg == "num_parallel":
            kwargs["num_parallel"] = ""
            continue
        if kw.arg not in ("foreach", "condition"):
            raise FlowDefinitionError(
                f"Step '{name}': self.next() got an unsupported argument '{kw.arg}' "
                f"(daskflow supports foreach=, condition= and num_parallel=).", **where)
        if not (isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str)):
            raise FlowDefinitionError(
                f"Step '{name}': {kw.arg}= must be the name of an attribute as a string, "
                f"e.g. {kw.arg}=\"items\".", **where)
        kwargs[kw.arg] = kw.value.value
    return kwargs


def _target_name(expr: ast.expr, step: str, where: dict) -> str:
    if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) \
            and expr.value.id == "self":
        return expr.attr
    raise FlowDefinitionError(
        f"Step '{step}': self.next() takes steps as self.<name>, got "
        f"'{ast.unparse(expr)}'.", **where)


def check_main_guard(file: str, class_name: str) -> None:
    """Raise :class:`MissingMainGuardError` if ``file`` starts the flow at import time.

    Dask's worker processes import the main script again; without the guard
    they would start the flow themselves.
    """
    from .exceptions import MissingMainGuardError

    try:
        with open(file) as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError):
        return
    for stmt in tree.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) \
                and isinstance(stmt.value.func, ast.Name) and stmt.value.func.id == class_name:
            raise MissingMainGuardError(
                f"{class_name}() is called at the top level of the file. Dask starts worker "
                f"processes that import this file again, and each would start the flow. "
                f"Put the call under a main guard:\n\n    if __name__ == \"__main__\":\n"
                f"        {class_name}()\n", file=file, lineno=stmt.lineno)
