"""merge_artifacts rules; `mode` picks which rule the join exercises."""
from daskflow import FlowSpec, Parameter, step


class MergeFlow(FlowSpec):
    mode = Parameter("mode", default="ok", help="ok | conflict | both | missing_include")

    @step
    def start(self):
        self.common = "same"
        self.next(self.a, self.b)

    @step
    def a(self):
        self.diff = 1
        self.only_a = "from a"
        self.next(self.join)

    @step
    def b(self):
        self.diff = 2
        self.next(self.join)

    @step
    def join(self, inputs):
        if self.mode == "ok":
            self.diff = "set on self first"
            self.merge_artifacts(inputs)
        elif self.mode == "conflict":
            try:
                self.merge_artifacts(inputs)
            except Exception as exc:
                self.merge_error = f"{type(exc).__name__}: {exc}"
                self.common_after_failed_merge = hasattr(self, "common")
                self.merge_artifacts(inputs, exclude=["diff"])
        elif self.mode == "both":
            self.merge_artifacts(inputs, include=["common"], exclude=["diff"])
        elif self.mode == "missing_include":
            self.merge_artifacts(inputs, include=["nope"])
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    MergeFlow()
