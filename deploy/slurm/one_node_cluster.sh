#!/usr/bin/env bash
# Starts a one-node Slurm cluster on this machine (controller and compute node on localhost),
# enough to run deploy/slurm's arrays for real: installs Debian's slurm-wlm pieces and munge if
# missing (needs root and apt), writes a minimal slurm.conf with this host's real CPU count
# and memory (as `slurmd -C` reports them), starts munged, slurmctld and slurmd without
# systemd, and waits until the node is idle. Idempotent: a cluster that already answers
# `sinfo` is left as it is. Stop it with `deploy/slurm/one_node_cluster.sh stop`.
set -euo pipefail
conf_dir=/etc/slurm
conf="$conf_dir/slurm.conf"
marker="# written by deda deploy/slurm/one_node_cluster.sh"
state=/var/spool/slurmctld
spool=/var/spool/slurmd
run=/run/slurm

die() {
  echo "one_node_cluster: $*" >&2
  exit 1
}

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop() {
  local f
  for f in "$run/slurmd.pid" "$run/slurmctld.pid"; do
    if pid_alive "$f"; then kill "$(cat "$f")"; fi
  done
  echo "one_node_cluster: slurmd and slurmctld stopped (munged left running)"
}

install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
    command -v sbatch >/dev/null && command -v munged >/dev/null; then
    return 0
  fi
  [ "$(id -u)" = 0 ] || die "slurm/munge are not installed and this is not root"
  command -v apt-get >/dev/null || die "slurm/munge are not installed and there is no apt-get"
  echo "one_node_cluster: installing slurmctld slurmd slurm-client munge (Debian slurm-wlm)"
  export DEBIAN_FRONTEND=noninteractive
  local pkgs=(slurmctld slurmd slurm-client munge)
  apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null ||
    { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null; } ||
    die "apt-get install ${pkgs[*]} failed"
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    return 0
  fi
  [ -s /etc/munge/munge.key ] || {
    if command -v mungekey >/dev/null; then mungekey --create --keyfile /etc/munge/munge.key; else
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
  }
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
  chmod 0400 /etc/munge/munge.key
  chmod 0755 /run/munge
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "munged does not answer (see /var/log/munge/munged.log)"
}

write_conf() {
  if [ -f "$conf" ] && ! grep -qF "$marker" "$conf"; then
    die "$conf exists and was not written by this script: not overwriting it"
  fi
  local host node
  host="$(hostname -s)"
  # The node's real CPUs, sockets, cores, threads and memory, as slurmd detects them.
  node="$(slurmd -C | grep '^NodeName=')" || die "slurmd -C failed"
  mkdir -p "$conf_dir" "$state" "$spool" "$run" /var/log/slurm
  cat >"$conf" <<CONF
$marker
ClusterName=deda-one-node
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job waits cred_expire seconds before it may start again (default 120).
AuthInfo=cred_expire=10
StateSaveLocation=$state
SlurmdSpoolDir=$spool
SlurmctldPidFile=$run/slurmctld.pid
SlurmdPidFile=$run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobRequeue=1
MinJobAge=3600
KillWait=5
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=deda Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  echo "one_node_cluster: wrote $conf for $node"
}

start_daemons() {
  pid_alive "$run/slurmctld.pid" || slurmctld
  pid_alive "$run/slurmd.pid" || slurmd
  local host s
  host="$(hostname -s)"
  for _ in $(seq 60); do
    s="$(sinfo -h -n "$host" -o %T 2>/dev/null || true)"
    case "$s" in
    idle* | mixed* | allocated*) echo "one_node_cluster: node $host is $s"; return 0 ;;
    down* | drain*) scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
    esac
    sleep 1
  done
  die "node $host did not become idle (state '${s:-none}'; see /var/log/slurm/)"
}

case "${1:-start}" in
stop) stop; exit 0 ;;
start) ;;
*) die "usage: one_node_cluster.sh [start|stop]" ;;
esac
if command -v sinfo >/dev/null && sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mixed|allocated'; then
  echo "one_node_cluster: a Slurm cluster already answers: $(sinfo -h -o '%P %D %T' | tr '\n' ' ')"
  exit 0
fi
install
start_munge
write_conf
start_daemons
