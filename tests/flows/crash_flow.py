"""Steps that fail in awkward ways; `mode` picks one."""
import ctypes
import os
import sys
import threading

from daskflow import FlowSpec, Parameter, step


class Unpicklable(Exception):
    def __init__(self):
        super().__init__("holds a lock")
        self.lock = threading.Lock()


class CrashFlow(FlowSpec):
    mode = Parameter("mode", default="exit")

    @step
    def start(self):
        self.next(self.crash)

    @step
    def crash(self):
        if self.mode == "exit":
            sys.exit(3)
        elif self.mode == "abort":
            print("printed before the crash", flush=True)
            os.write(2, b"written to fd 2 before the crash\n")
            os.abort()
        elif self.mode == "segfault":
            ctypes.string_at(0)  # reads address 0: SIGSEGV
        elif self.mode == "bad_exception":
            raise Unpicklable()
        elif self.mode == "bad_artifact":
            self.handle = threading.Lock()
        elif self.mode == "big_output":
            for i in range(200_000):
                print(f"line {i:07d} " + "x" * 40)
            self.printed = 200_000
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CrashFlow()
