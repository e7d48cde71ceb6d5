"""A flow's process ends when its command is done, whatever its daemon threads held."""

from __future__ import annotations

import logging
import weakref

import pytest

from daskflow.cli import _drop_logging_handler_list

pytestmark = pytest.mark.fast


class _Collected:
    """Something a weak reference points to, as logging's list points to handlers."""


def test_a_handler_collected_in_the_teardown_takes_no_logging_lock() -> None:
    # the teardown's collection of a handler must not wait for logging's lock, which a
    # daemon thread stopped by the teardown may hold for good
    handlers, acquire = logging._handlerList, logging._acquireLock
    taken = []
    try:
        _drop_logging_handler_list()
        assert logging._handlerList == [] and handlers  # logging's flush keeps its own
        logging._acquireLock = lambda: taken.append(True)
        logging._removeHandlerRef(weakref.ref(_Collected()))  # what collecting one calls
    finally:
        logging._handlerList, logging._acquireLock = handlers, acquire
    assert taken == []
