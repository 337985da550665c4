#!/usr/bin/env bash
# Stop the one-node SLURM cluster that scripts/slurm/start.sh started in DIR: cancel its jobs, shut
# down slurmctld and slurmd (killing them if they are still alive after 10 s), then stop its munged.
#
#   scripts/slurm/stop.sh DIR
#
# Exits 0 when everything is stopped, including when nothing was running; exits 1 only if a daemon
# survives SIGKILL.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
[ -d "$1" ] || exit 0
dir=$(cd "$1" && pwd)
export SLURM_CONF=$dir/slurm.conf
PATH=$PATH:/usr/sbin:/sbin

pid_in() { # pid_in PID_FILE: the number in PID_FILE, or nothing
  local pid=
  if [ -f "$1" ]; then read -r pid <"$1" 2>/dev/null || true; fi
  if [[ $pid =~ ^[0-9]+$ ]]; then echo "$pid"; fi
}

alive() { # alive PID NAME: PID is a live (non-zombie) process called NAME
  local state
  [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] || return 1
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

wait_gone() { # wait_gone SECONDS PID NAME [PID NAME...]: until none is alive or time is up
  local deadline=$((SECONDS + $1)) any i
  shift
  local args=("$@")
  while :; do
    any=
    for ((i = 0; i < ${#args[@]}; i += 2)); do
      if alive "${args[i]}" "${args[i + 1]}"; then any=1; fi
    done
    [ -z "$any" ] && return 0
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}

# Read the pids first: the daemons delete their pid files when they exit.
ctld=$(pid_in "$dir/slurmctld.pid")
slurmd=$(pid_in "$dir/slurmd.pid")
munged=$(pid_in "$dir/munge/munged.pid")

steps() { # the live slurmstepd processes of this cluster (they inherit SLURM_CONF from slurmd)
  local f pid comm
  for f in /proc/[0-9]*/comm; do
    comm=
    read -r comm <"$f" 2>/dev/null || true
    [ "$comm" = slurmstepd ] || continue
    pid=${f#/proc/}
    pid=${pid%/comm}
    if grep -qzxF "SLURM_CONF=$SLURM_CONF" "/proc/$pid/environ" 2>/dev/null && alive "$pid" slurmstepd; then
      echo "$pid"
    fi
  done
}

if alive "$ctld" slurmctld; then
  # Kill the running jobs and drop the queued ones, so that no job outlives the cluster
  # (slurmd leaves running jobs alone when it shuts down) or comes back on a restart.
  job_ids=$(timeout 5 squeue -h -o %A 2>/dev/null | sort -u || true)
  if [ -n "$job_ids" ]; then
    # shellcheck disable=SC2086 # one job id per word
    timeout 5 scancel --full --signal=KILL $job_ids >/dev/null 2>&1 || true
    # shellcheck disable=SC2086
    timeout 5 scancel $job_ids >/dev/null 2>&1 || true
    # Wait (at most 10 s) until the jobs are gone from the queue: a shutdown while a job is still
    # completing can keep slurmd from exiting. Killed jobs usually take about 4 s.
    deadline=$((SECONDS + 10))
    while [ -n "$(timeout 5 squeue -h -o %A 2>/dev/null || true)" ] && [ "$SECONDS" -lt "$deadline" ]; do
      sleep 0.1
    done
  fi
  timeout 10 scontrol shutdown >/dev/null 2>&1 || true
elif alive "$slurmd" slurmd; then
  kill -TERM "$slurmd" 2>/dev/null || true
fi

if ! wait_gone 10 "$ctld" slurmctld "$slurmd" slurmd; then
  echo "slurm stop.sh: slurmctld/slurmd still alive after 10 s, killing them" >&2
  for p in "$ctld" "$slurmd"; do
    if [ -n "$p" ]; then kill -KILL "$p" 2>/dev/null || true; fi
  done
fi

# Job steps left over if the jobs could not be cancelled in time.
for p in $(steps); do
  kill -KILL "$p" 2>/dev/null || true
done

if alive "$munged" munged; then
  kill -TERM "$munged" 2>/dev/null || true
  if ! wait_gone 5 "$munged" munged; then
    kill -KILL "$munged" 2>/dev/null || true
  fi
fi

if ! wait_gone 2 "$ctld" slurmctld "$slurmd" slurmd "$munged" munged; then
  echo "slurm stop.sh: could not stop the daemons of $dir (pids: $ctld $slurmd $munged)" >&2
  exit 1
fi
rm -f "$dir/slurmctld.pid" "$dir/slurmd.pid" "$dir/munge/munged.pid"
