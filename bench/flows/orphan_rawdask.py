"""The raw-Dask peer of orphan_daskflow.py: a cluster opened directly, noted, held."""
import json
import os
import sys
import time

from distributed import Client, LocalCluster

if __name__ == "__main__":
    backend = sys.argv[1]
    if backend == "slurm":
        from dask_jobqueue import SLURMCluster
        cluster = SLURMCluster(cores=1, memory="400MiB", processes=1, job_name="rawdask-orphan",
                               scheduler_options={"dashboard_address": ":0"},
                               log_directory="slurm-logs")
        cluster.scale(2)
    else:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="400MiB",
                               dashboard_address=":0")
    client = Client(cluster)
    client.wait_for_workers(2)
    pids = sorted(client.run(os.getpid).values())
    jobs = sorted(str(j) for j in client.run(lambda: os.environ.get("SLURM_JOB_ID")).values())
    with open("holding.json.tmp", "w") as f:
        json.dump({"pids": pids, "jobs": jobs}, f)
    os.replace("holding.json.tmp", "holding.json")
    time.sleep(600)
