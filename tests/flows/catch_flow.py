"""@catch on a linear step, a branch step and a join: the flow goes on."""
from daskflow import FlowSpec, catch, retry, step


class CatchFlow(FlowSpec):
    @catch(var="start_error")
    @step
    def start(self):
        self.kept = "set before the failure"
        self.next(self.a, self.b)

    @retry(times=1, minutes_between_retries=0)
    @catch(var="a_error")
    @step
    def a(self):
        self.lost = "set by a failed attempt"
        raise KeyError("missing key in a")
        self.next(self.join)

    @step
    def b(self):
        self.b_value = 2
        self.next(self.join)

    @catch(var="join_error", print_exception=False)
    @step
    def join(self, inputs):
        self.a_error = inputs.a.a_error
        self.b_value = inputs.b.b_value
        1 / 0
        self.next(self.end)

    @step
    def end(self):
        self.summary = {"a_error": str(self.join_error)}


if __name__ == "__main__":
    CatchFlow()
