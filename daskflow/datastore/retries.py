"""Retries of the datastore's reads and writes on an object store: one stated policy.

An object store throttles (S3 answers ``503 SlowDown`` to a burst), drops connections and
cuts answers short; each is worth another try after a wait.  Three layers retry, the
innermost first, each with its own settings under ``daskflow.datastore``:

1. botocore, each HTTP request (S3): ``s3.retry-mode`` (``standard``: exponential
   backoff with jitter, up to 20 s) and ``s3.max-attempts`` tries, the first included;
   ``s3.connect-timeout`` and ``s3.read-timeout`` bound a store that does not answer.
2. s3fs, each call including the reading of its body (which botocore does not retry):
   ``s3.retries`` tries.
3. daskflow, each operation of the bytes layer (``files.py``: a write, a read, a listing),
   on any fsspec store: ``retry.attempts`` tries, waiting a random time up to
   ``retry.backoff`` x 2^n (at most ``retry.max-backoff``) before try n+1.  An
   operation whose tries are spent raises :class:`DatastoreUnavailable`, naming the
   store and its last error: the run ends with that line, and ``resume`` continues
   from what was stored.

Only errors that may pass are retried (:func:`is_transient`); a missing file, a refused
permission or a full disk fail at once.

>>> policy = RetryPolicy.configured()                            # doctest: +SKIP
>>> policy.call(fs.cat_file, path, store="s3://bucket/prefix", what="reading")
"""

from __future__ import annotations

import errno
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from dask.utils import parse_timedelta

from .. import config
from ..exceptions import ConfigurationError, DatastoreUnavailable

T = TypeVar("T")

#: errno values of a connection or a service that may come back
_TRANSIENT_ERRNO = {errno.EBUSY, errno.EAGAIN, errno.ETIMEDOUT, errno.ECONNRESET,
                    errno.ECONNREFUSED, errno.ECONNABORTED, errno.EPIPE, errno.EHOSTUNREACH,
                    errno.ENETUNREACH, errno.ENETDOWN, errno.EREMOTEIO}
#: exception classes (by name, anywhere in the class's MRO) of botocore, aiohttp and fsspec
#: that say the connection or the answer failed, not the request
_TRANSIENT_CLASSES = {"HTTPClientError", "EndpointConnectionError", "ConnectionClosedError",
                      "ReadTimeoutError", "ConnectTimeoutError", "ResponseStreamingError",
                      "IncompleteReadError", "ClientPayloadError", "ServerDisconnectedError",
                      "ClientConnectionError", "ClientOSError", "FSTimeoutError",
                      "ProtocolError", "IncompleteRead"}
#: error codes of an S3 ClientError that are worth another try
_TRANSIENT_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout",
                    "InternalError", "ServiceUnavailable", "RequestLimitExceeded",
                    "500", "502", "503", "504"}


class ContentMismatch(OSError):
    """Bytes read from an object store do not hash to the blob's name: read again, and
    if they never do, the blob is corrupt (raised as it is, not as the store being down)."""


_PERMANENT = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
              PermissionError)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (from fsspec, s3fs, botocore, aiohttp) may pass on another try."""
    if isinstance(exc, (DatastoreUnavailable, *_PERMANENT)):
        return False
    if isinstance(exc, (ConnectionError, TimeoutError, ContentMismatch)):
        return True
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNO:
        return True
    if any(cls.__name__ in _TRANSIENT_CLASSES for cls in type(exc).__mro__):
        return True
    code = getattr(exc, "response", {}).get("Error", {}).get("Code") \
        if isinstance(getattr(exc, "response", None), dict) else None
    return code in _TRANSIENT_CODES


@dataclass(frozen=True)
class RetryPolicy:
    """daskflow's own tries of one datastore operation (``daskflow.datastore.retry``)."""

    attempts: int
    backoff: float
    max_backoff: float

    @classmethod
    def configured(cls) -> RetryPolicy:
        try:
            policy = cls(int(_setting("retry.attempts")),
                         parse_timedelta(_setting("retry.backoff"), "seconds"),
                         parse_timedelta(_setting("retry.max-backoff"), "seconds"))
        except (TypeError, ValueError, KeyError) as exc:
            raise ConfigurationError(
                f"daskflow.datastore.retry is {config.get('datastore.retry')!r}: give "
                f"attempts (a whole number >= 1), backoff and max-backoff (durations such "
                f"as '1s').") from exc
        if policy.attempts < 1:
            raise ConfigurationError(
                f"daskflow.datastore.retry.attempts is {policy.attempts}: give 1 or more "
                f"(1: no retry of daskflow's own).")
        return policy

    def wait(self, tried: int) -> float:
        """Seconds to wait after the ``tried``-th failed try: full jitter."""
        return random.uniform(0, min(self.max_backoff, self.backoff * 2 ** (tried - 1)))

    def call(self, fn: Callable[..., T], *args: Any, store: str, what: str) -> T:
        """``fn(*args)``, tried again after a transient error until the tries are spent;
        then :class:`DatastoreUnavailable` (``what``: "writing <path>", for the message)."""
        started = time.monotonic()
        for tried in range(1, self.attempts + 1):
            try:
                return fn(*args)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                if tried == self.attempts:
                    if isinstance(exc, ContentMismatch):
                        raise
                    raise unavailable(store, exc, what, tried,
                                      time.monotonic() - started) from exc
            time.sleep(self.wait(tried))
        raise AssertionError("unreachable")


def unavailable(store: str, exc: BaseException, what: str, tries: int,
                seconds: float) -> DatastoreUnavailable:
    """The one line for a store whose tries are spent."""
    last = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    last = " ".join(last.split())[:300]
    return DatastoreUnavailable(
        f"the datastore {store} stopped answering while {what}: {last} "
        f"({tries} {'try' if tries == 1 else 'tries'} over {seconds:.0f} s, each after "
        f"botocore's and s3fs's own; daskflow.datastore.retry).",
        store=store, last_error=last)


def s3_options() -> tuple[dict[str, Any], int]:
    """s3fs's keyword arguments (botocore's retries and timeouts) and s3fs's own number
    of tries of a call, from ``daskflow.datastore.s3`` (s3fs takes the second as an
    attribute of the filesystem, not as an argument)."""
    try:
        return {"config_kwargs": {
            "retries": {"mode": str(_setting("s3.retry-mode")),
                        "total_max_attempts": int(_setting("s3.max-attempts"))},
            "connect_timeout": parse_timedelta(_setting("s3.connect-timeout"), "seconds"),
            "read_timeout": parse_timedelta(_setting("s3.read-timeout"), "seconds")}}, \
            int(_setting("s3.retries"))
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigurationError(
            f"daskflow.datastore.s3 is {config.get('datastore.s3')!r}: give retry-mode "
            f"(legacy, standard or adaptive), max-attempts and retries (whole numbers), "
            f"connect-timeout and read-timeout (durations).") from exc


def _setting(key: str) -> Any:
    return config.get(f"datastore.{key}")
