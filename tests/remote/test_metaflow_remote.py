"""A Metaflow flow file, unchanged, on stock-Dask workers: no daskflow and no Metaflow
there, an empty working directory, the datastore on moto's S3. The run's code package
brings daskflow, and with it the `metaflow` alias its tasks import."""

from __future__ import annotations

import os
import subprocess
import sys

from daskflow import Flow, namespace

FLOW = '''
from metaflow import FlowSpec, step


class RemoteMfFlow(FlowSpec):
    @step
    def start(self):
        self.items = [1, 2]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        import os

        import metaflow
        from metaflow import current
        self.seen = (current.step_name, metaflow.__spec__.origin, os.getcwd())
        self.value = self.input * 10
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = sorted(i.value for i in inputs)
        self.seen = sorted({i.seen for i in inputs})
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RemoteMfFlow()
'''


def test_a_metaflow_file_runs_on_stock_workers(stock_cluster, s3_root, tmp_path):
    flow = tmp_path / "remote_mf.py"
    flow.write_text(FLOW)
    result = subprocess.run(
        [sys.executable, "-m", "daskflow", "run", str(flow), "--datastore-root", s3_root,
         "run", "--scheduler-address", stock_cluster.address],
        cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"}, capture_output=True,
        text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    namespace(None)
    run = Flow("RemoteMfFlow", _root=s3_root).latest_run
    assert run.data.values == [10, 20]
    (step, origin, cwd), = run["join"].task.data.seen
    assert (step, origin) == ("work", "daskflow")
    assert cwd != str(tmp_path)  # the stock workers' own empty folder
