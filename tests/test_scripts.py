"""Flows and parallel_map started at the top level of plain scripts: no ``__main__``
guard, or the script fed on stdin. Local workers never import the calling script."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import FLOWS, _env

SCRIPTS = FLOWS / "scripts"


def _check(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr
    assert proc.stdout.count("TOP LEVEL RAN") == 1  # no worker ran the script again
    return proc.stdout


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_unguarded_flow_script(workdir, how):
    script = SCRIPTS / "unguarded_flow.py"
    if how == "file":
        proc = subprocess.run([sys.executable, str(script)], cwd=workdir, env=_env(),
                              capture_output=True, text=True, timeout=240)
    else:
        with open(script) as stdin:
            proc = subprocess.run([sys.executable, "-"], stdin=stdin, cwd=workdir,
                                  env=_env(), capture_output=True, text=True, timeout=240)
    out = _check(proc)
    assert "FLOW [2.0, 4.0, 6.0]" in out
    assert "MAP [0, 10, 20, 30, 40]" in out


def test_unguarded_runner_script(workdir):
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "unguarded_runner.py"), str(FLOWS / "linear_params.py")],
        cwd=workdir, env=_env(), capture_output=True, text=True, timeout=240)
    out = _check(proc)
    assert "FLOW [2.0, 4.0, 6.0]" in out
    assert "MAP [2, 3, 4]" in out


def test_a_forkserver_pool_beside_daskflow_still_finds_main(workdir):
    """multiprocessing's forkserver Pool shares daskflow's fork server: its workers
    load the caller's script (guarded) when they look up a function of it by name."""
    script = workdir / "pool_after_map.py"
    script.write_text(
        "import multiprocessing\nfrom daskflow import parallel_map\n\n"
        "def square(x):\n    return x * x\n\n"
        "if __name__ == '__main__':\n"
        "    print('TOP LEVEL RAN')\n"
        "    print('MAP', parallel_map(square, range(4)))\n"
        "    with multiprocessing.get_context('forkserver').Pool(2) as pool:\n"
        "        print('POOL', pool.map(square, range(4)))\n")
    proc = subprocess.run([sys.executable, str(script)], cwd=workdir, env=_env(),
                          capture_output=True, text=True, timeout=240)
    out = _check(proc)
    assert "MAP [0, 1, 4, 9]" in out and "POOL [0, 1, 4, 9]" in out


EXIT_PROBE = """
import atexit, gc, runpy, sys

# registered before daskflow's command line registers its own: runs after them
atexit.register(lambda: print("LEFT TO COLLECT", len(gc.get_objects())))
sys.argv = [sys.argv[1], "run", "--n", "20"]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_the_teardown_of_a_command_has_nothing_left_to_collect(workdir):
    """What the command made lives until the process ends: its teardown's last collection
    would only walk it all to free memory the process gives back whole (0.2 s once an
    object store's client is loaded), so it is frozen at exit."""
    proc = subprocess.run([sys.executable, "-c", EXIT_PROBE, str(FLOWS / "foreach.py")],
                          cwd=workdir, env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [left] = [int(line.split()[-1]) for line in proc.stdout.splitlines()
              if line.startswith("LEFT TO COLLECT")]
    assert left < 1000
