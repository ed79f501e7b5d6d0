#!/usr/bin/env bash
# A real one-node Slurm cluster for the tests (and for trying the Slurm executor by hand):
#   scripts/slurm-test-cluster.sh install   Debian's slurm-wlm and munge, when they are missing (~15 s)
#   scripts/slurm-test-cluster.sh start     install, write the config, start munged, slurmctld, slurmd; wait for idle
#   scripts/slurm-test-cluster.sh stop      stop the daemons this script started
#   scripts/slurm-test-cluster.sh env       the SLURM_CONF line to export for sbatch / squeue
# Everything lives in $WORKBENCH_SLURM_DIR (default /tmp/wb-slurm): nothing is written to /etc/slurm, so a
# machine's own Slurm configuration is never touched. Runs as root (the daemons and the jobs), with
# proctrack/linuxproc and task/none (no cgroups needed in a container) and no accounting storage.
# Partitions: `debug` (default, all CPUs of the node) and `one` (at most one CPU in use on the node: a second
# one-CPU job waits with reason Resources).
set -euo pipefail

DIR=${WORKBENCH_SLURM_DIR:-/tmp/wb-slurm}
CONF=$DIR/slurm.conf
NODE=$(hostname -s)
CTLD_PORT=${WORKBENCH_SLURMCTLD_PORT:-6817}
SLURMD_PORT=${WORKBENCH_SLURMD_PORT:-6818}
WAIT_S=${WORKBENCH_SLURM_WAIT_S:-60}

log() { echo "slurm-test-cluster: $*" >&2; }

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
        && command -v sbatch >/dev/null; then
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        log "slurm-wlm and munge are missing and this is not root: cannot install them"; exit 3
    fi
    command -v apt-get >/dev/null || { log "slurm-wlm and munge are missing and there is no apt-get"; exit 3; }
    log "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq slurm-wlm munge >/dev/null; }
}

write_config() {
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/munge"
    # The node's CPUs as slurmd sees them; the config must not promise more.
    local cpus; cpus=$(nproc)
    cat >"$CONF" <<EOF
ClusterName=workbench-test
SlurmctldHost=$NODE
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
# Short timeouts: a test notices a dead slurmd in seconds, not minutes.
SlurmdTimeout=10
SlurmctldTimeout=10
InactiveLimit=0
KillWait=10
MinJobAge=300
SchedulerParameters=sched_interval=2
MessageTimeout=10
NodeName=$NODE CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=one Nodes=$NODE MaxCPUsPerNode=1 MaxTime=INFINITE State=UP
EOF
    : >"$DIR/cgroup.conf"
}

start_munge() {
    local socket=$DIR/munge/munge.socket
    if [ -S "$socket" ] && munge -n -S "$socket" 2>/dev/null | unmunge -S "$socket" >/dev/null 2>&1; then
        return 0
    fi
    [ -f /etc/munge/munge.key ] || { mkdir -p /etc/munge; dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null; }
    chmod 400 /etc/munge/munge.key
    # Its own socket under $DIR: the daemons are pointed at it with AuthInfo below.
    munged --force --socket="$socket" --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" \
        --seed-file="$DIR/munge/munged.seed"
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
    install
    write_config
    start_munge
    printf 'AuthInfo=socket=%s\n' "$DIR/munge/munge.socket" >>"$CONF"
    export SLURM_CONF=$CONF
    running "$DIR/slurmctld.pid" || slurmctld -f "$CONF" -i
    running "$DIR/slurmd.pid" || slurmd -f "$CONF"
    local waited=0
    while [ "$waited" -lt "$WAIT_S" ]; do
        local state; state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n 1 || true)
        case "$state" in
            idle|mixed|allocated) log "node $NODE is $state (SLURM_CONF=$CONF)"; echo "SLURM_CONF=$CONF"; return 0 ;;
            down*|drain*) scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 1; waited=$((waited + 1))
    done
    log "the node did not become idle within ${WAIT_S}s; last lines of the logs:"
    tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
    exit 4
}

stop_pid() {
    local pidfile=$1
    if running "$pidfile"; then
        local pid; pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

stop() {
    if [ -f "$CONF" ]; then
        SLURM_CONF=$CONF scancel --full --user=root >/dev/null 2>&1 || true
    fi
    stop_pid "$DIR/slurmd.pid"
    stop_pid "$DIR/slurmctld.pid"
    stop_pid "$DIR/munge/munged.pid"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    env) echo "SLURM_CONF=$CONF" ;;
    *) echo "usage: $0 install|start|stop|env" >&2; exit 2 ;;
esac
