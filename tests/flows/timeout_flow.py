"""@timeout stops a hung attempt; @retry gives the step another go; @catch goes past."""
import os
import time

import psutil

from daskflow import FlowSpec, catch, current, retry, step, timeout


class TimeoutFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.slow, self.stuck)

    @retry(times=1, minutes_between_retries=0)
    @timeout(seconds=3)
    @step
    def slow(self):
        with open(f"slow-{current.retry_count}.pid", "w") as f:
            f.write(str(os.getpid()))
        if current.retry_count == 0:
            time.sleep(120)  # hangs: the timeout must stop it
        with open("slow-0.pid") as f:
            self.hung_process_alive = psutil.pid_exists(int(f.read()))
        self.finished_on_attempt = current.retry_count
        self.next(self.join)

    @catch(var="stuck_error")
    @timeout(seconds=2)
    @step
    def stuck(self):
        time.sleep(120)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.finished_on_attempt = inputs.slow.finished_on_attempt
        self.stuck_error = inputs.stuck.stuck_error
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TimeoutFlow()
