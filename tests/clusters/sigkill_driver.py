"""A driver that opens a cluster, says what it started, and waits to be SIGKILLed.

Usage: python sigkill_driver.py BACKEND OPTIONS_JSON REQUEST_JSON CONFIG_JSON
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    import dask.config
    from distributed import Client

    from daskflow.clusters import ResourceRequest, get_backend

    name, options, request, settings = sys.argv[1], *map(json.loads, sys.argv[2:5])
    dask.config.set(settings)
    backend = get_backend(name, **options)
    with backend.open(ResourceRequest(**request)) as cluster, Client(cluster) as client:
        print(json.dumps({"pids": sorted(client.run(os.getpid).values()),
                          "job_name": getattr(cluster, "job_name", None)}), flush=True)
        time.sleep(600)


if __name__ == "__main__":
    main()
