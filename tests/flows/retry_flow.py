"""A step that fails twice, then succeeds on its third attempt."""
from daskflow import FlowSpec, current, retry, step


class RetryFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.flaky)

    @retry(times=2, minutes_between_retries=0)
    @step
    def flaky(self):
        print(f"attempt {current.retry_count}")
        self.garbage = f"from attempt {current.retry_count}"
        if current.retry_count < 2:
            raise RuntimeError(f"flaky failure {current.retry_count}")
        self.attempt_that_worked = current.retry_count
        del self.garbage
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RetryFlow()
