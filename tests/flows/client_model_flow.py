"""What the client's object model shows of a run: ``current.run`` / ``current.task``
inside a step, a task retried once (two attempts' metadata), and a foreach."""
from daskflow import FlowSpec, current, retry, step


class ClientModelFlow(FlowSpec):
    @step
    def start(self):
        self.seen_run = (repr(current.run), current.run.id, current.run.finished)
        self.seen_task = (repr(current.task), current.task.id, current.task.finished)
        self.items = [1, 2]
        self.next(self.each, foreach="items")

    @retry(times=1, minutes_between_retries=0)
    @step
    def each(self):
        if current.retry_count == 0 and self.input == 2:
            raise ValueError("the first attempt fails")
        self.value = self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = [i.value for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ClientModelFlow()
