"""Output a step writes in awkward ways, and an exception whose __str__ raises."""
import os
import subprocess
import sys

from daskflow import FlowSpec, catch, retry, step


class BadStr(Exception):
    def __str__(self):
        raise RuntimeError("no str for you")


class AwkwardOutputFlow(FlowSpec):
    @step
    def start(self):
        print("bad \udcff name")                        # a lone surrogate (os.fsdecode)
        sys.stdout.buffer.write(b"bytes through buffer\n")
        sys.stdout.flush()
        os.write(1, b"straight to fd 1\n")
        os.write(2, b"straight to fd 2\n")
        subprocess.run(["echo", "from a subprocess"], check=True)
        self.next(self.odd, self.after)

    @retry(times=1)
    @catch(var="caught")
    @step
    def odd(self):
        raise BadStr()
        self.next(self.join)

    @step
    def after(self):
        print("the worker still takes tasks")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.caught_type = inputs.odd.caught.type
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    AwkwardOutputFlow()
