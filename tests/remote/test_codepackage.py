"""The code package: what goes in, that it is deterministic, the size limit, ``run.code``.

No cluster here: these build real archives from real folders and store them in a
real local datastore.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

import dask.config
import pytest

from daskflow.datastore import ArtifactStore
from daskflow.exceptions import ConfigurationError, DataNotFoundError
from daskflow.remote import CodePackageTooLargeError, build_code_package, run_code, store_code

FLOW = "from daskflow import FlowSpec, step\nfrom helpers import weight\n"


def make_project(root: Path) -> Path:
    """A flow folder: the flow, a helper module, a package, data and clutter."""
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "flow.py").write_text(FLOW)
    (root / "helpers.py").write_text("def weight(x):\n    return 2 * x\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "sub" / "model.py").write_text("SCALE = 3\n")
    (root / "data.csv").write_text("a,b\n1,2\n")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "helpers.cpython-311.pyc").write_bytes(b"\0" * 10)
    (root / ".venv" / "lib").mkdir(parents=True)
    (root / ".venv" / "lib" / "site.py").write_text("# not the project's\n")
    return root / "flow.py"


def test_ships_the_flow_folder_python_files_and_daskflow(tmp_path):
    archive = build_code_package(make_project(tmp_path))
    files = set(archive.files)
    assert {"flow.py", "helpers.py", "pkg/__init__.py", "pkg/sub/model.py", "INFO"} <= files
    assert not {"data.csv", "__pycache__/helpers.cpython-311.pyc", ".venv/lib/site.py"} & files
    assert {"daskflow/__init__.py", "daskflow/daskflow.yaml", "daskflow/remote/_on_cluster.py",
            "daskflow/report/assets/report.js"} <= files
    assert not any("__pycache__" in name for name in files)
    assert archive.script == "flow.py"
    assert archive.sha == hashlib.sha256(archive.data).hexdigest()


def test_the_same_content_gives_the_same_bytes(tmp_path):
    flow = make_project(tmp_path)
    first = build_code_package(flow)
    os.utime(tmp_path / "helpers.py", (1, 1))  # a touched file: same content, same package
    assert build_code_package(flow).data == first.data
    (tmp_path / "helpers.py").write_text("def weight(x):\n    return 3 * x\n")
    assert build_code_package(flow).sha != first.sha
    with tarfile.open(fileobj=__import__("io").BytesIO(first.data)) as tar:
        names = tar.getnames()
        assert names == sorted(names)
        assert {(m.mtime, m.uid, m.uname) for m in tar.getmembers()} == {(0, 0, "")}


def test_include_and_exclude_come_from_config(tmp_path):
    flow = make_project(tmp_path)
    with dask.config.set({"daskflow.code.include": ["*.py", "*.csv"],
                          "daskflow.code.exclude": [".*", "__pycache__", "pkg"]}):
        files = set(build_code_package(flow).files)
    assert "data.csv" in files and "helpers.py" in files
    assert not any(name.startswith("pkg/") for name in files)
    # the flow file is shipped whatever the patterns say
    assert "flow.py" in build_code_package(flow, include=["*.txt"]).files


@pytest.mark.parametrize("setting, value, message", [
    ("max-size", "20 parsecs", "daskflow.code.max-size must be a size such as '20MiB'"),
    ("include", [3], r"daskflow.code.include must be a list of glob patterns"),
])
def test_bad_settings_are_named(tmp_path, setting, value, message):
    flow = make_project(tmp_path)
    with dask.config.set({f"daskflow.code.{setting}": value}):
        with pytest.raises(ConfigurationError, match=message):
            build_code_package(flow)


def test_refused_past_the_size_limit_naming_size_limit_biggest_files_and_setting(tmp_path):
    flow = make_project(tmp_path)
    (tmp_path / "weights.py").write_text("W = [" + "0, " * 400_000 + "]\n")
    with pytest.raises(CodePackageTooLargeError) as info:
        build_code_package(flow, max_size="1MiB")
    message = str(info.value)
    assert "over the limit of 1.00 MiB" in message
    assert "weights.py (1.14 MiB)" in message
    assert "daskflow.code.max-size" in message and "daskflow.code.exclude" in message
    assert str(tmp_path) in message
    assert isinstance(info.value, ValueError)


def test_stored_once_per_content_and_read_back_as_run_code(tmp_path):
    archive = build_code_package(make_project(tmp_path / "project"))
    store = ArtifactStore(str(tmp_path / "store"), "RemoteFlow")
    record = store_code(archive, store)
    assert store_code(archive, store) == record
    stored = Path(store.flow_root) / "_code"
    assert os.listdir(stored) == [f"{archive.sha}.tar.gz"]

    code = run_code(store, {"code": record})
    assert code is not None and code.path == str(stored / f"{archive.sha}.tar.gz")
    assert code.info["script"] == "flow.py"
    assert code.flowspec == FLOW
    with code.tarball as tar:
        assert "helpers.py" in tar.getnames()
    folder = code.extract()
    try:
        assert (Path(folder.name) / "pkg" / "sub" / "model.py").read_text() == "SCALE = 3\n"
        assert (Path(folder.name) / "daskflow" / "flowspec.py").exists()
    finally:
        folder.cleanup()
    assert run_code(store, {}) is None


def test_a_missing_package_is_named(tmp_path):
    archive = build_code_package(make_project(tmp_path / "project"))
    store = ArtifactStore(str(tmp_path / "store"), "RemoteFlow")
    code = run_code(store, {"code": archive.record()})  # recorded, never written
    with pytest.raises(DataNotFoundError, match=f"{archive.sha}.tar.gz does not exist"):
        code.flowspec
