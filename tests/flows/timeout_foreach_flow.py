"""@timeout inside a nested foreach, under @retry and @catch: split 1 of each inner foreach
hangs on every attempt; the timeout stops it, @retry runs it once more, and @catch keeps
Metaflow's TimeoutException while its siblings finish."""
import time

from daskflow import FlowSpec, catch, current, retry, step, timeout


class TimeoutForeachFlow(FlowSpec):
    @step
    def start(self):
        self.groups = [0, 1]
        self.next(self.inner, foreach="groups")

    @step
    def inner(self):
        self.items = [0, 1, 2]
        self.next(self.work, foreach="items")

    @catch(var="error")
    @retry(times=1, minutes_between_retries=0)
    @timeout(seconds=2)
    @step
    def work(self):
        print(f"attempt {current.retry_count}")
        if self.input == 1:
            time.sleep(600)
        self.value = 10 * self.input
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
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TimeoutForeachFlow()
