"""foreach over a Dask collection: one split per partition (or array band).

Each partition function appends "<first value> <pid> <step>" to $SEEN_LOG, so a test
can tell which task computed each partition (the step is ``current.step_name`` of the
thread that ran it: the split, or none for a worker writing an artifact).
"""
import os
import time

import numpy as np
import pandas as pd

from daskflow import FlowSpec, Parameter, Run, current, step


def _where() -> str:
    try:
        return str(current.step_name)
    except Exception:
        return "-"


def _seen(part):
    """Pass a partition through, noting where it was computed."""
    first = part.iloc[0, 0] if isinstance(part, pd.DataFrame) else \
        np.asarray(part).ravel()[0] if len(part) else "empty"
    with open(os.environ["SEEN_LOG"], "a") as log:
        log.write(f"{first} {os.getpid()} {_where()}\n")
    return part


def _seen_bag(items):
    return _seen(list(items))


def _after_the_other_splits(num_splits):
    """Wait (at most a minute) until every other split of this foreach has finished, so
    the failing split fails last and a resume clones the same splits on a busy machine
    (a failure cancels the splits still queued or running)."""
    deadline = time.time() + 60
    while time.time() < deadline:
        tasks = Run(f"{current.flow_name}/{current.run_id}")[current.step_name]
        if sum(1 for task in tasks if task.finished) >= num_splits - 1:
            return
        time.sleep(0.1)


def _flat(value):
    if isinstance(value, (pd.DataFrame, pd.Series)):
        return [int(x) for x in np.asarray(value).ravel()]
    return [int(x) for x in np.asarray(value).ravel()]


class CollectionForeachFlow(FlowSpec):
    kind = Parameter("kind", default="bag", help="bag | array | array2d | frame | series | "
                                                  "dataset | parts")
    fail = Parameter("fail", default=-1, help="the split that fails unless $NO_FAIL is set")

    @step
    def start(self):
        import dask.array as da
        import dask.bag as db
        import dask.dataframe as dd

        frame = pd.DataFrame({"x": np.arange(20), "y": np.arange(20) * 10})
        if self.kind == "bag":
            self.events = db.from_sequence(range(10), npartitions=4).map_partitions(_seen_bag)
        elif self.kind == "array":
            self.events = da.arange(20, chunks=6).map_blocks(_seen, dtype=int,
                                                              meta=np.array((), dtype=int))
        elif self.kind == "array2d":
            self.events = da.arange(40).reshape(10, 4).rechunk((4, 2)).map_blocks(
                _seen, dtype=int, meta=np.array((), dtype=int).reshape(0, 0))
        elif self.kind in ("frame", "series"):
            events = dd.from_pandas(frame, npartitions=4).map_partitions(_seen, meta=frame.iloc[:0])
            self.events = events if self.kind == "frame" else events["x"].rename("xs")
        else:
            from daskflow.collections import partitions, read_dataset
            os.makedirs("data", exist_ok=True)
            for i in range(3):
                frame.iloc[i * 7:(i + 1) * 7].to_parquet(f"data/part.{i}.parquet")
            self.events = read_dataset("data/")
            if self.kind == "parts":
                self.events = partitions(self.events)
        self.next(self.per_part, foreach="events")

    @step
    def per_part(self):
        if self.index == self.fail and not os.environ.get("NO_FAIL"):
            _after_the_other_splits(self.foreach_stack()[-1][1])
            raise RuntimeError(f"split {self.index} fails on purpose")
        part = self.input
        if self.kind == "parts":
            from daskflow.collections import load_partition
            part = load_partition(part)
        self.part_type = type(part).__name__
        self.values = _flat(part)
        self.shape = list(np.shape(part))
        self.stack = [(i, n) for i, n, _ in self.foreach_stack()]
        self.stack_text = self._foreach_stack[0].value
        self.pid = os.getpid()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.parts = [i.values for i in sorted(inputs, key=lambda i: i.index)]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CollectionForeachFlow()
