"""The one <dynamic-code> traceback repair, for steps and for parallel_map."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from daskflow.tracebacks import format_user_traceback, restore_dynamic_code

_FLOW = textwrap.dedent("""\
    def helper(x):
        return 1 / x

    def body():
        value = 0
        return helper(value)
""")


def _by_value(tmp_path: Path) -> tuple[Path, Callable[[], Any]]:
    """``body`` of a flow-like file, after a trip through cloudpickle, as a worker has it."""
    path = tmp_path / "some_flow.py"
    path.write_text(_FLOW)
    spec = importlib.util.spec_from_file_location("some_flow_for_tracebacks", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        cloudpickle.register_pickle_by_value(module)
        body = cloudpickle.loads(cloudpickle.dumps(module.body))
    finally:
        cloudpickle.unregister_pickle_by_value(module)
        del sys.modules[spec.name]
    assert body.__code__.co_filename == "<dynamic-code>"
    return path, body


def _raised(func: Callable[[], Any]) -> BaseException:
    with pytest.raises(ZeroDivisionError) as info:
        func()
    return info.value


def test_the_flow_file_is_named_with_its_source_lines(tmp_path: Path) -> None:
    path, body = _by_value(tmp_path)
    text = format_user_traceback(_raised(body), str(path))
    assert "<dynamic-code>" not in text
    assert f'  File "{path}", line 6, in body\n    return helper(value)\n' in text
    assert f'  File "{path}", line 2, in helper\n    return 1 / x\n' in text
    assert text.endswith("ZeroDivisionError: division by zero\n")


def test_without_a_flow_file_the_frames_stay_dynamic(tmp_path: Path) -> None:
    _, body = _by_value(tmp_path)
    text = format_user_traceback(_raised(body))
    assert '  File "<dynamic-code>", line 6, in body\n' in text


def test_the_callers_frames_at_the_top_are_skipped(tmp_path: Path) -> None:
    _, body = _by_value(tmp_path)
    exc = _raised(body)
    assert "_raised" in format_user_traceback(exc)  # this file is not daskflow's runtime
    text = format_user_traceback(exc, skip=__file__)
    assert "_raised" not in text and text.count("File ") == 2  # body and helper
    assert format_user_traceback(exc, skip=[__file__, "<dynamic-code>"]).count("File ") == 1


def test_a_traceback_from_elsewhere_is_repaired_as_text(tmp_path: Path) -> None:
    path, _ = _by_value(tmp_path)
    text = ('Traceback (most recent call last):\n'
            '  File "<dynamic-code>", line 6, in body\n'
            '  File "/elsewhere/lib.py", line 9, in other\n'
            '    other()\n'
            '    |   File "<dynamic-code>", line 2, in helper\n'
            'ZeroDivisionError: division by zero\n')
    assert restore_dynamic_code(text, str(path)) == (
        'Traceback (most recent call last):\n'
        f'  File "{path}", line 6, in body\n'
        '    return helper(value)\n'
        '  File "/elsewhere/lib.py", line 9, in other\n'
        '    other()\n'
        f'    |   File "{path}", line 2, in helper\n'
        '    |     return 1 / x\n'
        'ZeroDivisionError: division by zero\n')
    missing = str(tmp_path / "gone.py")
    assert restore_dynamic_code(text, missing).count(f'File "{missing}"') == 2  # no source
    assert restore_dynamic_code("no frames\n", str(path)) == "no frames\n"
