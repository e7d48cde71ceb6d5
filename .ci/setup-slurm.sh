#!/usr/bin/env bash
# Idempotent single-node SLURM (+munge) on Debian 12, no systemd, no cgroups.
# Usage: sudo bash .ci/setup-slurm.sh    (re-running is safe; exits non-zero if SLURM
# does not come up, so CI fails instead of skipping the SLURM tests)
#
# What the tests in tests/clusters/test_slurm.py rely on: one node "localhost" in
# the default partition "debug" with RealMemory=$SLURM_REALMEM_MB (20000), all
# cores, $SLURM_FAKE_GPUS (2) fake GPUs as GRES, and --mem enforced
# (JobAcctGatherParams=OverMemoryKill: a job over its --mem is killed, and
# slurmstepd says so in the job's stderr).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends munge slurmctld slurmd slurm-client
fi

MEM_MB=${SLURM_REALMEM_MB:-20000}
FAKE_GPUS=${SLURM_FAKE_GPUS:-2}   # fake GRES "gpu" (mknod char devs) so --gres=gpu:N can be scheduled/tested
NCPU=$(nproc)

# --- munge -------------------------------------------------------------
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
[ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none; }
chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged --force
  for i in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi

# --- slurm.conf ----------------------------------------------------------
install -d -o slurm -g slurm -m 0755 /var/spool/slurmctld /var/log/slurm /run/slurm
install -d -m 0755 /var/spool/slurmd
cat > /etc/slurm/slurm.conf <<EOF
ClusterName=localcluster
SlurmctldHost=localhost
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
GresTypes=gpu
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=5
NodeName=localhost NodeAddr=127.0.0.1 CPUs=${NCPU} RealMemory=${MEM_MB} Gres=gpu:${FAKE_GPUS} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=1000
EOF

# slurmd requires gres "gpu" files to be char devices; fake ones (nvidia major 195) are enough for scheduling
install -d /run/slurm/fakegpu
for i in $(seq 0 $((FAKE_GPUS-1))); do [ -c /run/slurm/fakegpu/nvidia$i ] || mknod /run/slurm/fakegpu/nvidia$i c 195 $i; done
cat > /etc/slurm/gres.conf <<EOF
AutoDetect=off
NodeName=localhost Name=gpu File=/run/slurm/fakegpu/nvidia[0-$((FAKE_GPUS-1))]
EOF

# --- daemons -------------------------------------------------------------
if ! timeout 5 scontrol ping 2>/dev/null | grep -q UP; then
  /usr/sbin/slurmctld            # daemonizes; runs as SlurmUser
fi
if ! pgrep -x slurmd >/dev/null; then
  /usr/sbin/slurmd -N localhost  # daemonizes; must run as root
fi

# wait (max ~30 s) until the node is idle; fail loudly otherwise
ok=
for i in $(seq 60); do
  st=$(timeout 5 sinfo -h -n localhost -o %t 2>/dev/null || true)
  case "$st" in idle*|mix*|alloc*) ok=1; break;; esac
  case "$st" in down*|drain*|inval*) scontrol update NodeName=localhost State=RESUME 2>/dev/null || true;; esac
  sleep 0.5
done
if [ -z "$ok" ]; then
  echo "SLURM did not come up" >&2; tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2; exit 1
fi
sinfo
