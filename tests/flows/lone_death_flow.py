"""A step that runs alone (no foreach around it) whose process dies in its attempt 0:
@retry runs it again as attempt 1, whoever runs it again (the driver, or a scheduler
daskflow did not start, by itself).  `fragile` records which process ran each attempt."""
import os
import signal

from daskflow import FlowSpec, current, retry, step


class LoneDeathFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.fragile)

    @retry(times=1, minutes_between_retries=0)
    @step
    def fragile(self):
        if current.retry_count == 0:
            print(f"attempt 0 in process {os.getpid()} dies", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        self.pid = os.getpid()
        self.attempt_that_worked = current.retry_count
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    LoneDeathFlow()
