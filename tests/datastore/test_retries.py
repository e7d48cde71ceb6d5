"""The datastore's retry policy (datastore/retries.py): what is retried, how long it waits,
what it says when the tries are spent; and the bytes layer on an object store using it."""

from __future__ import annotations

import errno
import hashlib
import uuid

import dask.config
import pytest

from daskflow.datastore import ArtifactStore
from daskflow.datastore.files import files_for
from daskflow.datastore.retries import (
    ContentMismatch,
    RetryPolicy,
    is_transient,
    s3_options,
)
from daskflow.exceptions import ConfigurationError, DatastoreUnavailable

pytestmark = pytest.mark.fast


class _Named(Exception):
    pass


def _named(name: str) -> Exception:
    """An exception whose class has ``name`` (botocore's and aiohttp's, without them)."""
    return type(name, (_Named,), {})("boom")


class _ClientError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code}}


@pytest.mark.parametrize("exc", [
    OSError(errno.EBUSY, "SlowDown"), ConnectionResetError(), TimeoutError(),
    _named("EndpointConnectionError"), _named("ClientPayloadError"),
    _named("ResponseStreamingError"), _ClientError("SlowDown"), _ClientError("503"),
    ContentMismatch("cut short")])
def test_what_may_pass_is_retried(exc):
    assert is_transient(exc)


@pytest.mark.parametrize("exc", [
    FileNotFoundError("gone"), PermissionError("no"), OSError(errno.ENOSPC, "full"),
    ValueError("bad"), _ClientError("AccessDenied"),
    DatastoreUnavailable("already given up", "s3://b/p", "x")])
def test_what_will_not_pass_fails_at_once(exc):
    assert not is_transient(exc)


def _failing(times: int, exc: BaseException):
    calls = []

    def fn():
        calls.append(1)
        if len(calls) <= times:
            raise exc
        return "done"
    return fn, calls


def test_a_transient_error_is_tried_again_then_passes(monkeypatch):
    waits = []
    monkeypatch.setattr("daskflow.datastore.retries.time.sleep", waits.append)
    policy = RetryPolicy(attempts=4, backoff=1.0, max_backoff=3.0)
    fn, calls = _failing(3, ConnectionResetError("reset"))
    assert policy.call(fn, store="s3://b/p", what="reading x") == "done"
    assert len(calls) == 4 and len(waits) == 3
    assert all(0 <= w <= bound for w, bound in zip(waits, [1.0, 2.0, 3.0]))  # capped


def test_spent_tries_name_the_store_and_the_last_error(monkeypatch):
    monkeypatch.setattr("daskflow.datastore.retries.time.sleep", lambda s: None)
    fn, calls = _failing(10, _named("EndpointConnectionError"))
    with pytest.raises(DatastoreUnavailable) as info:
        RetryPolicy(3, 0.1, 1.0).call(fn, store="s3://b/p", what="writing b/p/F/1/_run.json")
    assert len(calls) == 3
    message = str(info.value)
    assert message.startswith("the datastore s3://b/p stopped answering while writing "
                              "b/p/F/1/_run.json: EndpointConnectionError: boom (3 tries over ")
    assert info.value.store == "s3://b/p" and "boom" in info.value.last_error


def test_other_errors_and_a_content_that_never_matches_are_raised_as_they_are(monkeypatch):
    monkeypatch.setattr("daskflow.datastore.retries.time.sleep", lambda s: None)
    fn, calls = _failing(10, FileNotFoundError("missing"))
    with pytest.raises(FileNotFoundError):
        RetryPolicy(3, 0.1, 1.0).call(fn, store="s", what="reading")
    assert len(calls) == 1
    fn, calls = _failing(10, ContentMismatch("never whole"))
    with pytest.raises(ContentMismatch):
        RetryPolicy(3, 0.1, 1.0).call(fn, store="s", what="reading")
    assert len(calls) == 3


def test_the_policy_is_a_setting():
    assert RetryPolicy.configured() == RetryPolicy(5, 1.0, 30.0)
    options, retries = s3_options()
    assert retries == 3 and options["config_kwargs"]["retries"] == {
        "mode": "standard", "total_max_attempts": 3}
    with dask.config.set({"daskflow.datastore.retry.attempts": 0}):
        with pytest.raises(ConfigurationError, match="attempts is 0"):
            RetryPolicy.configured()
    with dask.config.set({"daskflow.datastore.s3.read-timeout": "soon"}):
        with pytest.raises(ConfigurationError, match="daskflow.datastore.s3 is"):
            s3_options()


class _FlakyMemory:
    """A memory filesystem whose reads fail ``fail`` times, then cut the bytes short
    ``cut`` times, as a network does (a stand-in for the wire, not for daskflow)."""

    def __init__(self, fs, fail: int = 0, cut: int = 0) -> None:
        self._fs, self.fail, self.cut = fs, fail, cut

    def cat_file(self, path):
        if self.fail:
            self.fail -= 1
            raise ConnectionResetError("reset by peer")
        data = self._fs.cat_file(path)
        if self.cut:
            self.cut -= 1
            return data[: len(data) // 2]
        return data

    def __getattr__(self, name):
        return getattr(self._fs, name)


def test_an_object_store_read_is_retried_and_checked_against_its_hash(monkeypatch):
    monkeypatch.setattr("daskflow.datastore.retries.time.sleep", lambda s: None)
    store = ArtifactStore(f"memory://df-{uuid.uuid4().hex}", "SomeFlow")
    ref = store.put_artifact({"x": list(range(1000))}, "x")
    real = store.files.fs
    store.files.fs = _FlakyMemory(real, fail=2, cut=2)
    assert store.get_artifact(ref, "x") == {"x": list(range(1000))}
    assert hashlib.sha1(real.cat_file(store.blobs.path(ref.sha))).hexdigest() == ref.sha


def test_a_store_down_fails_one_operation_in_full_then_the_next_ones_fast(monkeypatch):
    waits = []
    monkeypatch.setattr("daskflow.datastore.retries.time.sleep", waits.append)
    files = files_for(f"memory://df-{uuid.uuid4().hex}")
    files.fs = _FlakyMemory(files.fs, fail=100)
    for _ in range(2):
        with pytest.raises(DatastoreUnavailable, match="stopped answering while reading"):
            files.read(f"{files.base}/x")
    assert len(waits) == 5 - 1  # the first in full; the second tried once
    files.fs.fail = 0
    files.fs.pipe_file(f"{files.base}/x", b"back")
    assert files.read(f"{files.base}/x") == b"back" and not files.down
