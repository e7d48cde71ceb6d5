"""Runner on a flow file and parallel_map at the top level of a script, unguarded."""
import sys

from daskflow import Runner, parallel_map

print("TOP LEVEL RAN")
run = Runner(sys.argv[1], quiet=True).run(alpha=2.0)
print("FLOW", run.data.summary["scaled"])
print("MAP", parallel_map(lambda x: x + 1, [1, 2, 3]))
