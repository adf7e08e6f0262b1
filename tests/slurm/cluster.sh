#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for the cluster-profile test.
#   cluster.sh start STATE_DIR   install (Debian slurm-wlm + munge) if missing, write slurm.conf (one
#                                node with two stand-in GPUs; partitions main (default), cpu and gpu)
#                                and gres.conf, start munged, slurmctld, slurmd; wait until the node is idle
#   cluster.sh stop STATE_DIR    stop every daemon started from STATE_DIR, restore /etc/slurm/slurm.conf
# Exit status 3 means "cannot be done on this machine" (not root, no apt, install failed): the test skips.
# Status is read with squeue (MinJobAge keeps finished jobs visible for an hour); every finished job
# is recorded by jobcomp/filetxt in STATE_DIR/jobcomp.txt, which the test reads.
set -euo pipefail
cmd=${1:?start|stop}
state=$(realpath -m "${2:?state dir}")
conf=/etc/slurm/slurm.conf
gres=/etc/slurm/gres.conf

running() {  # live (not zombie) processes of these names on this machine, e.g. running slurmctld slurmd
  ps -eo stat=,comm= | awk -v names=" $* " 'BEGIN { found = 1 } $1 !~ /^Z/ && index(names, " " $2 " ") { found = 0 } END { exit found }'
}

stop() {
  # The pids first: slurmd removes its pid file as soon as it is asked to stop, and may then hang
  # (e.g. when it never reached the controller), so it gets SIGKILL by the pid read here.
  pids=""
  for pidfile in "$state"/slurmd.pid "$state"/slurmctld.pid "$state"/munged.pid; do
    [ -f "$pidfile" ] && pids="$pids $(cat "$pidfile")"
  done
  [ -n "$pids" ] && kill $pids 2>/dev/null || true
  for _ in $(seq 20); do
    alive=""
    for pid in $pids; do
      [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && alive="$alive $pid"
    done
    [ -z "$alive" ] && break
    sleep 0.5
  done
  [ -n "$alive" ] && kill -9 $alive 2>/dev/null || true
  if [ -f "$state/slurm.conf.orig" ]; then mv "$state/slurm.conf.orig" "$conf"; elif [ -f "$state/conf.ours" ]; then rm -f "$conf"; fi
  if [ -f "$state/gres.conf.orig" ]; then mv "$state/gres.conf.orig" "$gres"; elif [ -f "$state/conf.ours" ]; then rm -f "$gres"; fi
  rm -f "$state/conf.ours"
}

if [ "$cmd" = stop ]; then stop; exit 0; fi

[ "$(id -u)" = 0 ] || { echo "needs root to install and run the SLURM daemons" >&2; exit 3; }
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  command -v apt-get >/dev/null || { echo "no apt-get: cannot install slurm-wlm and munge" >&2; exit 3; }
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge) >"$state.apt.log" 2>&1 \
    || { echo "apt-get install slurm-wlm munge failed (see $state.apt.log)" >&2; exit 3; }
fi

if running slurmctld slurmd; then
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
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:2 State=UNKNOWN
PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=cpu Nodes=localhost MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=localhost MaxTime=INFINITE State=UP
CONF
# Two stand-in GPUs (any character device will do: SLURM only hands out their indices), so that jobs
# can ask for --gpus and land in the gpu partition; the test's jobs train on the CPU (device: cpu).
[ -f "$gres" ] && [ ! -f "$state/gres.conf.orig" ] && cp "$gres" "$state/gres.conf.orig"
printf 'NodeName=localhost Name=gpu File=/dev/null\nNodeName=localhost Name=gpu File=/dev/zero\n' > "$gres"
touch "$state/conf.ours"

# munge: its own socket and pid under the state dir; the key from the package
key=/etc/munge/munge.key
[ -f "$key" ] || { mungekey --create --keyfile "$key" 2>/dev/null || dd if=/dev/urandom bs=1 count=1024 of="$key" 2>/dev/null; chmod 400 "$key"; }
mkdir -p /run/munge
munged --force --pid-file "$state/munged.pid" --log-file "$state/log/munged.log"
slurmctld
slurmd -N localhost
for _ in $(seq 60); do
  if ! running slurmctld; then
    echo "slurmctld exited: $(grep -h 'fatal' "$state/log/slurmctld.log" | tail -1)" >&2; stop; exit 3
  fi
  if timeout 10 sinfo -h -N -o "%T" 2>/dev/null | grep -qE "^idle"; then
    echo "SLURM cluster up: $(sinfo -h -o '%P %D %c %m')"; exit 0
  fi
  sleep 1
done
echo "the SLURM node did not become idle; logs in $state/log" >&2
sinfo -N -l >&2 || true
stop
exit 3
