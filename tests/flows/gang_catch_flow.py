"""@catch and @retry on a num_parallel gang: node 1 fails on every attempt (`--mode
raise`: an exception; `exit`: its process ends); @retry runs the whole gang once more,
then @catch lets the flow go on."""
import os

from daskflow import FlowSpec, Parameter, catch, current, parallel, retry, step


class GangCatchFlow(FlowSpec):
    mode = Parameter("mode", default="raise")

    @step
    def start(self):
        self.next(self.train, num_parallel=2)

    @catch(var="error")
    @retry(times=1, minutes_between_retries=0)
    @parallel
    @step
    def train(self):
        print(f"node {current.parallel.node_index} attempt {current.retry_count}")
        if current.parallel.node_index == 1:
            if self.mode == "exit":
                os._exit(5)
            raise ValueError("node 1 fails")
        self.node = current.parallel.node_index
        self.next(self.join)

    @step
    def join(self, inputs):
        self.errors = [i.error.type if i.error else None for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    GangCatchFlow()
