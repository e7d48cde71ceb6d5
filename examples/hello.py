"""The smallest daskflow flow: two steps and a message.

    python examples/hello.py run
"""
from daskflow import FlowSpec, Parameter, step


class HelloFlow(FlowSpec):
    """Say hello from a Dask worker."""

    name = Parameter("name", default="world", help="who to greet")

    @step
    def start(self):
        self.message = f"Hello, {self.name}!"
        self.next(self.end)

    @step
    def end(self):
        print(self.message)


if __name__ == "__main__":
    HelloFlow()
