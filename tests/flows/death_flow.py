"""Task processes that die under @catch: split 1 of each inner foreach (nested in an outer
one) and the branch `side` end their process (`--how exit`: os._exit, `segv`: a
segmentation fault), while the other splits go on.  The splits go to a step before their
join, so that each runs in a Dask task of its own."""
import ctypes
import os
import time

from daskflow import FlowSpec, Parameter, catch, step


def die(how):
    if how == "segv":
        ctypes.string_at(0)  # reads address 0: SIGSEGV
    os._exit(3)


class DeathFlow(FlowSpec):
    how = Parameter("how", default="exit")

    @step
    def start(self):
        self.next(self.outer, self.side)

    @step
    def outer(self):
        self.groups = [0, 1]
        self.next(self.inner, foreach="groups")

    @step
    def inner(self):
        self.items = [0, 1, 2]
        self.next(self.work, foreach="items")

    @catch(var="error")
    @step
    def work(self):
        self.before = "set before"
        if self.input == 1:
            die(self.how)
        time.sleep(1)  # still running when its sibling dies
        self.value = 10 * self.input
        self.next(self.after)

    @step
    def after(self):
        self.next(self.join_inner)

    @step
    def join_inner(self, inputs):
        self.seen = [(i.index, i.error.type if i.error else None,
                      i.error.exception if i.error else None, getattr(i, "value", None))
                     for i in inputs]
        self.next(self.join_outer)

    @step
    def join_outer(self, inputs):
        self.seen = [s for i in inputs for s in i.seen]
        self.next(self.join)

    @catch(var="side_error")
    @step
    def side(self):
        die(self.how)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.seen = inputs.join_outer.seen
        self.side_error = (inputs.side.side_error.type, inputs.side.side_error.exception)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DeathFlow()
