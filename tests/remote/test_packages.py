"""The worker side of a shared scheduler, in-process: code packages taking turns in one
process, sealed calls, at most N packages kept (``daskflow/remote/_packages.py``).

The packages here hold helper modules under fresh names only (no ``daskflow``), so the
test process's own modules are never moved aside.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import threading
import time
import types
import uuid

import cloudpickle
import pytest

from daskflow.remote import _packages
from daskflow.remote.calls import opened, opened_error, seal_call
from daskflow.remote.codepackage import _deterministic_tar_gz

pytestmark = pytest.mark.fast

HELPER = '''
import sys

VERSION = {version}


def version():
    return VERSION


def wait_at(gate):
    """Hold this package's turn until the test opens ``gate``."""
    gates = sys.modules["_daskflow_test_gates"]
    gates.entered.append((gate, VERSION))
    assert gates.events[gate].wait(20)
    return VERSION
'''


def by_name(module: str, function: str, *args):
    """What a task's function is: looked up by name where the call runs."""
    return getattr(importlib.import_module(module), function)(*args)


class Packages:
    """Archives of one helper module (and a package folder) in versions, in a temp folder."""

    def __init__(self, folder) -> None:
        self.folder = folder
        self.name = f"helpers_{uuid.uuid4().hex[:8]}"
        self.pkg = f"pkg_{uuid.uuid4().hex[:8]}"

    def version(self, version: int, limit: int = 10) -> tuple:
        data = _deterministic_tar_gz({
            f"{self.name}.py": HELPER.format(version=version).encode(),
            f"{self.pkg}/__init__.py": f"WHICH = {version}\n".encode()})
        sha = hashlib.sha256(data).hexdigest()
        url = self.folder / f"{sha}.tar.gz"
        url.write_bytes(data)
        return (sha, str(url), ("elsewhere", 0), limit, False)

    def call(self, package: tuple, function: str, *args):
        call, deps = seal_call(by_name, (self.name, function, *args), {})
        return opened(_packages.call_in_package(package, call, *deps))


@pytest.fixture
def packages(tmp_path, monkeypatch):
    """Fresh process state; packages unpacked under ``tmp_path``; all undone after."""
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    before = set(sys.path)
    made = Packages(tmp_path)
    yield made
    sys.modules.pop(_packages.ANCHOR, None)
    sys.path[:] = [p for p in sys.path if p in before]
    for name in [n for n in sys.modules if n.startswith((made.name, made.pkg))]:
        del sys.modules[name]


def unpacked(tmp_path) -> list[str]:
    return sorted(os.listdir(tmp_path / f"daskflow-{os.getuid()}-{os.getpid()}" /
                             _packages.FOLDER))


def test_each_call_imports_its_own_package_and_gets_it_back_later(packages):
    one, two = packages.version(1), packages.version(2)
    assert [packages.call(p, "version") for p in (one, two, one, two)] == [1, 2, 1, 2]
    module_of_two = sys.modules[packages.name]
    assert packages.call(one, "version") == 1
    assert sys.modules[packages.name] is not module_of_two   # one's own module, kept
    assert packages.call(two, "version") == 2
    assert sys.modules[packages.name] is module_of_two       # not imported again
    folders = [p for p in sys.path if _packages.FOLDER in p]
    assert folders == [os.path.dirname(module_of_two.__file__)]  # only the active one


def test_results_and_errors_cross_dask_sealed(packages):
    package = packages.version(1)
    call, _ = seal_call(by_name, (packages.name, "version"), {})
    sealed = _packages.call_in_package(package, call)
    assert sealed[0] == _packages.MARK and opened(sealed) == 1
    call, _ = seal_call(by_name, (packages.name, "no_such_function"), {})
    with pytest.raises(RuntimeError) as info:
        _packages.call_in_package(package, call)
    assert info.value.args[0] == _packages.MARK  # a builtin: unpickles without daskflow
    error = opened_error(info.value)
    assert isinstance(error, AttributeError) and "no_such_function" in str(error)


def test_at_most_max_packages_stay_least_recently_used_go(packages, tmp_path):
    versions = [packages.version(v, limit=2) for v in range(1, 5)]
    for package in versions:
        packages.call(package, "version")
    packages.call(versions[2], "version")
    kept = unpacked(tmp_path)
    assert kept == sorted(p[0] for p in versions[2:])
    state = sys.modules[_packages.ANCHOR]
    assert sorted(state.packages) == kept
    gone = {str(tmp_path / f"daskflow-{os.getuid()}-{os.getpid()}" / _packages.FOLDER / p[0])
            for p in versions[:2]}
    assert not gone & set(sys.path) and not gone & set(sys.path_importer_cache)
    # an evicted package comes back from the datastore when a task needs it again
    assert packages.call(versions[0], "version") == 1 and len(unpacked(tmp_path)) == 2


def test_turns_wait_for_the_running_package_and_keep_arrival_order(packages):
    gates = types.ModuleType("_daskflow_test_gates")
    gates.events = {name: threading.Event() for name in ("a", "b", "c")}
    gates.entered = []
    sys.modules[gates.__name__] = gates
    one, two = packages.version(1), packages.version(2)
    results: dict[str, int] = {}

    def task(name: str, package: tuple) -> None:
        results[name] = packages.call(package, "wait_at", name)

    threads = {"a": threading.Thread(target=task, args=("a", one))}
    threads["a"].start()
    _until(lambda: gates.entered == [("a", 1)])
    threads["b"] = threading.Thread(target=task, args=("b", two))  # waits for a
    threads["b"].start()
    _until(lambda: len(sys.modules[_packages.ANCHOR].queue) == 1)
    threads["c"] = threading.Thread(target=task, args=("c", one))  # behind b, though 1 runs
    threads["c"].start()
    _until(lambda: len(sys.modules[_packages.ANCHOR].queue) == 2)
    nested = one[:4] + (True,)   # called from inside a's task (a map in a step): no wait
    assert packages.call(nested, "version") == 1 and gates.entered == [("a", 1)]
    gates.events["a"].set()
    _until(lambda: len(gates.entered) == 2)
    assert gates.entered[1] == ("b", 2)                 # b's turn before c's
    gates.events["b"].set()
    gates.events["c"].set()
    for thread in threads.values():
        thread.join(20)
    assert results == {"a": 1, "b": 2, "c": 1}
    del sys.modules[gates.__name__]


def test_a_corrupt_package_is_refused(packages, tmp_path):
    package = packages.version(1)
    with open(package[1], "r+b") as f:
        f.seek(10)
        f.write(b"xx")
    call, _ = seal_call(by_name, (packages.name, "version"), {})
    with pytest.raises(RuntimeError, match=f"has sha256 .*, expected {package[0]}"):
        _packages.call_in_package(package, call)


def _until(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_the_package_functions_travel_by_value():
    """What a task names unpickles where daskflow is not installed: nothing of daskflow is
    looked up by reference in the entry Dask pickles, in its code or in the plugin."""
    import io
    import pickle

    from daskflow.remote.calls import _by_value

    class NoDaskflow(pickle.Unpickler):
        def find_class(self, module: str, name: str):
            assert not module.startswith("daskflow"), (module, name)
            return super().find_class(module, name)

    entry = _by_value(_packages.enter)
    for payload in (pickle.dumps(entry), entry.data,
                    cloudpickle.dumps(_packages.InstallPackages("v"))):
        NoDaskflow(io.BytesIO(payload)).load()
