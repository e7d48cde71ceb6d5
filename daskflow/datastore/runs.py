"""Run records: a flow's runs, each with its record and the files kept with it.

A run id is claimed by creating its record exclusively (``_run.json``, empty at
first), so two runs started at the same microsecond get different ids.  The
record is rewritten whole as the run goes (status, clusters, failure), readable
by its owner only: it holds the run's scheduler and dashboard addresses.  The
run report (``_report.html``) is kept beside it.

>>> runs = RunRecords(files, layout, "HelloFlow")                # doctest: +SKIP
>>> run_id = runs.new_id(); runs.write(run_id, {"status": "running"})
>>> runs.read(run_id)["status"]
'running'
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

from ..exceptions import DataNotFoundError
from .files import FsspecFiles, LocalFiles
from .layout import Layout
from .names import is_id


class RunRecords:
    """The runs of one flow."""

    def __init__(self, files: LocalFiles | FsspecFiles, layout: Layout, flow_name: str) -> None:
        self.files = files
        self.layout = layout
        self.flow_name = flow_name

    def flow_exists(self) -> bool:
        """True once anything of this flow is stored (by this process or another: a
        listing this process cached earlier is asked again)."""
        self.files.refresh(self.layout.flow)
        return self.files.exists(self.layout.flow)

    def new_id(self) -> str:
        """A fresh, time-ordered run id, unique even for runs started at the same moment."""
        while True:
            run_id = str(time.time_ns() // 1000)
            # a claim of its own: two drivers claiming one id at once write different bytes
            claim = json.dumps({"claim": uuid.uuid4().hex}).encode()
            if self.files.create_exclusive(self.layout.run_record(run_id), claim):
                return run_id

    def write(self, run_id: str, record: dict[str, Any]) -> None:
        # private: it holds the run's scheduler and dashboard addresses
        self.files.write_json(self.layout.run_record(run_id), record, private=True)

    def read(self, run_id: str) -> dict[str, Any]:
        try:
            return self.files.read_json(self.layout.run_record(run_id))
        except FileNotFoundError as exc:
            raise DataNotFoundError(
                f"Run '{self.flow_name}/{run_id}' does not exist in {self.layout.flow}.") \
                from exc

    def ids(self) -> list[str]:
        """The ids of the flow's runs (a stray file beside them is skipped), those other
        processes wrote since this one last looked included."""
        self.files.refresh(self.layout.flow)
        return [name for name in self.files.listdir(self.layout.flow) if is_id(name)]

    # -- where a run's files are, for pages that link to them --------------------------

    def file_location(self, run_id: str, relative: str) -> str:
        """A file a task's record names relative to the run's folder (its performance
        report), as a local path or a URL; an absolute path or URL is returned as it is."""
        if "://" in relative or os.path.isabs(relative):
            return relative
        return self.files.url(self.layout.in_run(run_id, relative))

    # -- the run report kept with the run -------------------------------------------------

    def report_location(self, run_id: str) -> str:
        """Where the run's report is kept (a local path, or a URL)."""
        return self.files.url(self.layout.report(run_id))

    def stored_report(self, run_id: str) -> str | None:
        """:meth:`report_location` if a report was written there, else None."""
        path = self.layout.report(run_id)
        return self.files.url(path) if self.files.exists(path) else None

    def write_report(self, run_id: str, html: str) -> str:
        """Keep the run's report with it (atomically); return its location."""
        self.files.write(self.layout.report(run_id), html.encode("utf-8"))
        return self.report_location(run_id)

    # -- pages of several runs: the flow's index, two runs side by side ----------------

    def index_location(self) -> str:
        return self.files.url(self.layout.index())

    def write_index(self, html: str) -> str:
        """Keep the page of the flow's latest runs in the flow's folder; its location."""
        self.files.write(self.layout.index(), html.encode("utf-8"))
        return self.index_location()

    def comparison_location(self, run_a: str, run_b: str) -> str:
        return self.files.url(self.layout.comparison(run_a, run_b))

    def write_comparison(self, run_a: str, run_b: str, html: str) -> str:
        """Keep the page comparing two runs in the flow's folder; its location."""
        self.files.write(self.layout.comparison(run_a, run_b), html.encode("utf-8"))
        return self.comparison_location(run_a, run_b)
