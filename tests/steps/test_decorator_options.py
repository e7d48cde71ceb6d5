"""A step decorator's options: checked where they are written, and ``--with`` text read
as Metaflow reads it. In this process: nothing runs."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from daskflow.steps import StepDecorator, StepDecoratorError, parse_decospec, retry, timeout
from daskflow.steps import base as steps_base
from daskflow.steps.base import decorators_for

pytestmark = pytest.mark.fast


class Label(StepDecorator):
    name = "label"

    @dataclass
    class Options:
        text: str = "none"
        times: int = 1

    def validate(self) -> None:
        if not isinstance(self.options.times, int) or self.options.times < 1:
            raise StepDecoratorError(f"@label(times={self.options.times!r}) must be >= 1.")


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setattr(steps_base, "_registered", {})
    steps_base.register_step_decorator(Label)


def test_options_of_a_decorator_of_your_own_are_checked_as_written() -> None:
    label = Label.decorator()
    assert label(text="x").options == Label.Options(text="x", times=1)
    with pytest.raises(StepDecoratorError,
                       match=r"^@label got an unknown argument 'txt'. Did you mean 'text'\? "
                             r"Allowed: text, times.$"):
        label(txt="x")
    with pytest.raises(StepDecoratorError, match=r"^@label\(times=0\) must be >= 1.$"):
        label(times=0)
    with pytest.raises(StepDecoratorError, match="takes keyword arguments only"):
        label("not a step")


def test_with_finds_a_registered_decorator_and_reads_its_values(registered) -> None:
    deco = parse_decospec("label:text=a b,times=3")
    assert isinstance(deco, Label) and deco.options == Label.Options(text="a b", times=3)
    with pytest.raises(StepDecoratorError, match="exists already; pass clobber=True"):
        steps_base.register_step_decorator(Label)
    with pytest.raises(StepDecoratorError, match=r"^--with 'label:times=0': @label\(times=0\)"):
        parse_decospec("label:times=0")


@pytest.mark.parametrize("spec, expected", [
    ("retry", {"times": 3}),                                         # bare: the defaults
    ("timeout:minutes=5", {"minutes": 5}),
    ("timeout:seconds=1.5", {"seconds": 1.5}),                         # JSON numbers
    ("catch:var=err", {"var": "err"}),                                 # else plain text
    ("catch:print_exception=false", {"print_exception": False}),       # JSON's false
    ("catch:print_exception=False", {"print_exception": False}),       # Python's False
    ("environment:vars={'A': 'x=y,z', 'B': '2'}", {"vars": {"A": "x=y,z", "B": "2"}}),
    ('environment:vars={"A": "1"}, secrets=["TOKEN"]',
     {"vars": {"A": "1"}, "secrets": ["TOKEN"]}),  # split before ' name='
])
def test_with_values_are_split_before_each_name_and_read_as_literals(spec, expected) -> None:
    options = parse_decospec(spec).options
    for key, value in expected.items():
        assert getattr(options, key) == value, key


@pytest.mark.parametrize("spec, message", [
    ("retyr", r"^--with 'retyr': unknown decorator 'retyr'. Did you mean 'retry'\? Known: "),
    ("retry:times", r"^--with 'retry:times': expected key=value after ':', got 'times'.$"),
    ("retry:=2", r"expected key=value after ':', got '=2'"),
    ("retry:tims=2", r"^--with 'retry:tims=2': @retry got an unknown argument 'tims'. "
                     r"Did you mean 'times'\?"),
])
def test_bad_with_text_is_one_line_saying_what_to_write(spec, message) -> None:
    with pytest.raises(StepDecoratorError, match=message) as refused:
        parse_decospec(spec)
    assert "\n" not in str(refused.value)


def test_a_decorator_written_on_the_step_wins_over_the_same_one_from_with() -> None:
    @retry(times=1)
    @timeout(minutes=2)
    def step_body(self):
        pass

    extra = [parse_decospec("retry:times=5"), parse_decospec("catch")]
    decorators = decorators_for(step_body, extra)
    assert [d.name for d in decorators] == ["timeout", "retry", "catch"]
    assert next(d for d in decorators if d.name == "retry").options.times == 1
