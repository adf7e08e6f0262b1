#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for the cluster-profile test.
#   cluster.sh start STATE_DIR   install (Debian slurm-wlm + munge) if missing, write slurm.conf, start
#                                munged, slurmctld, slurmd; wait until the node is idle
#   cluster.sh stop STATE_DIR    stop every daemon started from STATE_DIR, restore /etc/slurm/slurm.conf
# Exit status 3 means "cannot be done on this machine" (not root, no apt, install failed): the test skips.
# Status is read with squeue (MinJobAge keeps finished jobs visible for an hour); every finished job
# is recorded by jobcomp/filetxt in STATE_DIR/jobcomp.txt, which the test reads.
set -euo pipefail
cmd=${1:?start|stop}
state=$(realpath -m "${2:?state dir}")
conf=/etc/slurm/slurm.conf

stop() {
  for pidfile in "$state"/slurmd.pid "$state"/slurmctld.pid "$state"/munged.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  sleep 1
  for pidfile in "$state"/slurmd.pid "$state"/slurmctld.pid "$state"/munged.pid; do
    [ -f "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null || true
  done
  if [ -f "$state/slurm.conf.orig" ]; then mv "$state/slurm.conf.orig" "$conf"; elif [ -f "$state/conf.ours" ]; then rm -f "$conf"; fi
  rm -f "$state/conf.ours"
}

if [ "$cmd" = stop ]; then stop; exit 0; fi

[ "$(id -u)" = 0 ] || { echo "needs root to install and run the SLURM daemons" >&2; exit 3; }
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  command -v apt-get >/dev/null || { echo "no apt-get: cannot install slurm-wlm and munge" >&2; exit 3; }
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge) >"$state.apt.log" 2>&1 \
    || { echo "apt-get install slurm-wlm munge failed (see $state.apt.log)" >&2; exit 3; }
fi

if pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null; then
  echo "SLURM daemons are already running on this machine; stop them first (pkill slurmctld slurmd)" >&2; exit 3
fi
mkdir -p "$state"/{spool,slurmd,log,munge}
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
[ -f "$conf" ] && [ ! -f "$state/slurm.conf.orig" ] && cp "$conf" "$state/slurm.conf.orig"
mkdir -p /etc/slurm
cat > "$conf" <<CONF
ClusterName=deepaug-test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
StateSaveLocation=$state/spool
SlurmdSpoolDir=$state/slurmd
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
JobCompType=jobcomp/filetxt
JobCompLoc=$state/jobcomp.txt
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=3600
ReturnToService=2
SchedulerParameters=defer_batch
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
touch "$state/conf.ours"

# munge: its own socket and pid under the state dir; the key from the package
key=/etc/munge/munge.key
[ -f "$key" ] || { mungekey --create --keyfile "$key" 2>/dev/null || dd if=/dev/urandom bs=1 count=1024 of="$key" 2>/dev/null; chmod 400 "$key"; }
mkdir -p /run/munge
munged --force --pid-file "$state/munged.pid" --log-file "$state/log/munged.log"
slurmctld
slurmd -N localhost
for _ in $(seq 60); do
  if sinfo -h -N -o "%T" 2>/dev/null | grep -qE "^idle"; then echo "SLURM cluster up: $(sinfo -h -o '%P %D %c %m')"; exit 0; fi
  sleep 1
done
echo "the SLURM node did not become idle; logs in $state/log" >&2
sinfo -N -l >&2 || true
stop
exit 3
