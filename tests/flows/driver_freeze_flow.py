"""A flow whose driver tells what each of its collector's freezes came after.

Run as a script, this file runs only in the driver (the fork server imports what it
imports, never the file; a forked worker never runs it): it wraps ``gc.freeze`` there
and prints, as the process ends, one word per freeze: ``run`` or ``outside`` (called
from the run, or before or after it), then those of distributed and s3fs imported by
then.
"""
import atexit
import gc
import os
import sys
import traceback

from daskflow import FlowSpec, step

_freeze = gc.freeze
_seen = []


def _recording_freeze():
    runner = os.path.join("runtime", "runner.py")
    where = "run" if any(f.filename.endswith(runner) for f in traceback.extract_stack()) \
        else "outside"
    modules = [name for name in ("distributed", "s3fs") if name in sys.modules]
    _seen.append("+".join([where, *modules]))
    _freeze()


class DriverFreezeFlow(FlowSpec):
    @step
    def start(self):
        self.x = 1
        self.next(self.end)

    @step
    def end(self):
        print("x =", self.x)


if __name__ == "__main__":  # not where a test imports the file to read its graph
    gc.freeze = _recording_freeze
    atexit.register(lambda: print("freezes: " + " ".join(_seen)))
    DriverFreezeFlow()
