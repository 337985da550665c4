#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine, for automated tests: a private munged, slurmctld
# and slurmd, all running as root. Everything (slurm.conf, munge key, socket and log, state, spool,
# pid files, daemon logs) lives in DIR, which is created if needed; nothing under /etc is written.
#
#   scripts/slurm/start.sh DIR
#
# The node is this host (`hostname -s`) with `nproc` CPUs and a bit less memory than /proc/meminfo
# reports, in one partition "debug". slurmctld listens on $DALES_SLURM_PORT (default 16817) and slurmd
# on the next port, so clusters in different directories can run side by side with different ports.
#
# On success prints exactly one line, SLURM_CONF=DIR/slurm.conf (absolute path). Every Slurm command
# (sbatch, squeue, scancel, ...) needs that variable, e.g.:  export "$(scripts/slurm/start.sh /tmp/c)"
# The state directory is kept across restarts, so use a fresh DIR for a clean cluster.
# If the cluster of DIR is still running it is stopped first. On any failure the reason and the end
# of the relevant log go to stderr, whatever was started is stopped again, and the exit status is 1.
# Needs the Debian packages slurm-wlm and munge. Stop the cluster with scripts/slurm/stop.sh DIR.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PATH=$PATH:/usr/sbin:/sbin
started=

fail() { # fail REASON [LOG_FILE...]: report, stop what we started, exit 1
  set +e
  echo "slurm start.sh: $1" >&2
  shift
  local f
  for f in "$@"; do
    if [ -s "$f" ]; then
      echo "--- last 20 lines of $f ---" >&2
      tail -n 20 "$f" >&2
    fi
  done
  if [ -n "$started" ]; then
    echo "slurm start.sh: stopping the daemons started so far" >&2
    "$here/stop.sh" "$dir" >&2
  fi
  exit 1
}
trap 'fail "unexpected error at line $LINENO: $BASH_COMMAND"' ERR

running() { # running PID_FILE NAME: the pid in PID_FILE is a live (non-zombie) process called NAME
  local pid state
  [ -f "$1" ] && read -r pid <"$1" 2>/dev/null || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
for b in munged mungekey munge unmunge slurmctld slurmd sinfo scontrol squeue scancel; do
  command -v "$b" >/dev/null ||
    fail "'$b' not found; install the packages: apt-get install slurm-wlm munge"
done
port=${DALES_SLURM_PORT:-16817}
if ! [[ $port =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65534 ]; then
  fail "DALES_SLURM_PORT must be a port number below 65535, not '$port'"
fi
slurmd_port=$((port + 1))

mkdir -p "$1" || fail "cannot create directory '$1'"
dir=$(cd "$1" && pwd)
conf=$dir/slurm.conf
export SLURM_CONF=$conf

# A cluster from an earlier start.sh on this directory: stop it first.
if running "$dir/slurmctld.pid" slurmctld || running "$dir/slurmd.pid" slurmd ||
   running "$dir/munge/munged.pid" munged; then
  echo "slurm start.sh: a cluster is still running in $dir, stopping it first" >&2
  "$here/stop.sh" "$dir" >&2 || fail "could not stop the cluster still running in $dir"
fi

for p in "$port" "$slurmd_port"; do
  if port_in_use "$p"; then
    fail "port $p is already in use (another cluster? choose other ports with DALES_SLURM_PORT)"
  fi
done

host=$(hostname -s)
cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
mem_mib=$(awk '/^MemTotal:/ { print int($2 / 1024 * 0.95) }' /proc/meminfo)
if [ -z "$host" ] || ! [[ $cpus =~ ^[1-9][0-9]*$ ]] || ! [[ $mem_mib =~ ^[1-9][0-9]*$ ]]; then
  fail "cannot read hostname ('$host'), CPU count ('$cpus') or memory ('$mem_mib' MiB)"
fi

mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/munge"
chmod 711 "$dir/munge" # munged wants others to have execute permission on its socket's directory
cat >"$conf" <<CONF
# One-node test cluster written by scripts/slurm/start.sh; all paths are in $dir.
ClusterName=dales
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
SlurmctldPort=$port
SlurmdPort=$slurmd_port
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/slurmd
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus Sockets=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$mem_mib State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

# munged with a private root-owned key (the packaged /etc/munge/munge.key belongs to user munge,
# which munged running as root refuses).
key=$dir/munge/munge.key
sock=$dir/munge/munge.socket
if [ ! -f "$key" ]; then
  mungekey --create --keyfile="$key" >"$dir/log/mungekey.out" 2>&1 ||
    fail "mungekey could not create $key" "$dir/log/mungekey.out"
fi
started=1
munged --socket="$sock" --key-file="$key" --pid-file="$dir/munge/munged.pid" \
  --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" \
  </dev/null >"$dir/log/munged.out" 2>&1 ||
  fail "munged did not start" "$dir/log/munged.out" "$dir/munge/munged.log"
for _ in $(seq 50); do
  munge -S "$sock" -n 2>/dev/null | unmunge -S "$sock" >/dev/null 2>&1 && break
  sleep 0.1
done
munge -S "$sock" -n 2>"$dir/log/munge-check.out" | unmunge -S "$sock" >>"$dir/log/munge-check.out" 2>&1 ||
  fail "munge does not work (munge -n | unmunge failed)" "$dir/log/munge-check.out" "$dir/munge/munged.log"

slurmctld -f "$conf" </dev/null >"$dir/log/slurmctld.out" 2>&1 ||
  fail "slurmctld did not start" "$dir/log/slurmctld.out" "$dir/log/slurmctld.log"
slurmd -f "$conf" </dev/null >"$dir/log/slurmd.out" 2>&1 ||
  fail "slurmd did not start" "$dir/log/slurmd.out" "$dir/log/slurmd.log"

# Wait (at most 30 s) for the node to be idle; fail early if a daemon dies.
deadline=$((SECONDS + 30))
state=
while :; do
  for d in slurmctld slurmd; do
    if [ -f "$dir/$d.pid" ] && ! running "$dir/$d.pid" "$d"; then
      fail "$d exited during startup" "$dir/log/$d.out" "$dir/log/$d.log"
    fi
  done
  state=$(timeout 5 sinfo -h -n "$host" -o %T 2>/dev/null || true)
  if [ "$state" = idle ] && running "$dir/slurmctld.pid" slurmctld && running "$dir/slurmd.pid" slurmd; then
    break
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    reason=$(timeout 5 sinfo -h -n "$host" -o '%T: %E' 2>&1 || true)
    fail "node $host did not become idle within 30 s (sinfo: '${reason:-no answer}')" \
      "$dir/log/slurmctld.log" "$dir/log/slurmd.log"
  fi
  sleep 0.1
done

trap - ERR
echo "SLURM_CONF=$conf"
