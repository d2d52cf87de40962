#!/usr/bin/env bash
# A one-node SLURM cluster on localhost, for tests/e2e/test_slurm.py.
#
#   tests/slurm/setup_slurm.sh start   # install if missing, configure, start, wait until the node is idle
#   tests/slurm/setup_slurm.sh stop    # cancel jobs, stop only the daemons this script started
#   tests/slurm/setup_slurm.sh status  # what is running
#
# `start` installs Debian's slurmctld, slurmd, slurm-client and munge when they
# are missing (root only), writes /etc/slurm/slurm.conf and gres.conf (the
# jobstep plugin strips SLURM_CONF inside jobs, so the config must live at the
# default path), gives the node two stand-in GPUs (character devices made with
# mknod under the scratch folder) and starts munged, slurmctld and slurmd
# directly, without systemd. It is idempotent: daemons it started earlier are
# reused when the configuration is unchanged, and restarted otherwise.
#
# `stop` cancels the jobs on this cluster, kills the daemons whose pid files it
# wrote (nothing found by name) and removes the config files it wrote, so that
# later `snakemake` runs on this machine do not wait for a controller that is
# gone (the slurm plugin asks `scontrol` for the config when it is imported).
#
# Exit status: 0 ok; 77 this machine cannot run the cluster (not root, no
# apt-get, installation failed, fewer than 2 CPUs), with the reason on the last
# line of stderr; anything else is a real failure.
#
# Environment: CARMASK_SLURM_DIR (scratch folder: state, spool, logs, pid
# files; default /tmp/carmask-slurm).
#
# Partitions of the test cluster: debug (the default), cpu and gpu, all on the
# one node. The test sends CPU rules to `cpu` and GPU rules to `gpu` through the
# slurm profile's CARMASK_SLURM_PARTITION / CARMASK_SLURM_GPU_PARTITION, so a
# job landing in `debug` would show that the override did not work.
set -euo pipefail

D=${CARMASK_SLURM_DIR:-/tmp/carmask-slurm}
CONF=/etc/slurm/slurm.conf
GRES=/etc/slurm/gres.conf
MARK="# Written by carmask tests/slurm/setup_slurm.sh; removed by its 'stop'."
PACKAGES="slurmctld slurmd slurm-client munge"
export PATH="$PATH:/usr/sbin:/sbin"
NODE=$(hostname)

log() { echo "setup_slurm: $*" >&2; }
skip() {
    echo "SKIP: $*" >&2
    exit 77
}
die() {
    echo "ERROR: $*" >&2
    exit 1
}

# pid from a pid file, if that process is alive and is the named program.
alive_pid() { # name pidfile
    local name=$1 file=$2 pid
    [ -s "$file" ] || return 1
    pid=$(tr -dc '0-9' <"$file")
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
    # A killed daemon stays a zombie until its parent reaps it.
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
    echo "$pid"
}

stop_pid() { # name pidfile
    local name=$1 file=$2 pid i
    if pid=$(alive_pid "$name" "$file"); then
        log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 50); do
            alive_pid "$name" "$file" >/dev/null || break
            sleep 0.2
        done
        if alive_pid "$name" "$file" >/dev/null; then
            log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$file"
}

missing_tools() {
    local t out=""
    for t in slurmctld slurmd sbatch squeue sacct sinfo scontrol scancel munged mungekey munge unmunge; do
        command -v "$t" >/dev/null 2>&1 || out="$out $t"
    done
    echo "$out"
}

install_packages() {
    local missing policy=/usr/sbin/policy-rc.d created="" ok=1
    missing=$(missing_tools)
    [ -z "$missing" ] && return 0
    command -v apt-get >/dev/null 2>&1 || skip "SLURM is not installed (missing:$missing) and there is no apt-get"
    log "installing $PACKAGES (missing:$missing)"
    # Keep the packages' init scripts from starting daemons we do not track.
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        created=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    {
        timeout 300 apt-get update -qq &&
            timeout 600 apt-get install -y -qq --no-install-recommends $PACKAGES
    } >"$D/apt.log" 2>&1 || ok=0
    [ -n "$created" ] && rm -f "$policy"
    [ "$ok" = 1 ] || skip "apt-get install $PACKAGES failed: $(tail -n 1 "$D/apt.log")"
    missing=$(missing_tools)
    [ -z "$missing" ] || skip "after installing $PACKAGES these are still missing:$missing"
}

munge_works() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    if munge_works; then
        return 0 # ours from an earlier start, or the system's: either way usable
    fi
    local key=/etc/munge/munge.key i pid
    mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
    if [ ! -s "$key" ]; then
        log "creating the munge key"
        mungekey -c -k "$key"
    fi
    chown munge:munge "$key"
    chmod 400 "$key"
    rm -f /run/munge/munged.pid
    log "starting munged"
    runuser -u munge -- munged
    for i in $(seq 1 50); do
        munge_works && break
        sleep 0.1
    done
    munge_works || die "munged did not come up"
    pid=$(tr -dc '0-9' </run/munge/munged.pid 2>/dev/null || true)
    [ -n "$pid" ] && echo "$pid" >"$D/munged.pid"
}

write_config() { # -> $D/slurm.conf.new, $D/gres.conf.new
    local cpus mem
    cpus=$(nproc)
    [ "$cpus" -ge 2 ] || skip "the e2e workflow needs 2 CPUs per job; this machine has $cpus"
    mem=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n 1)
    [ -n "$mem" ] || mem=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
    mem=$((mem * 9 / 10))
    mkdir -p "$D/state" "$D/spool" "$D/log"
    # One distinct character device per stand-in GPU (two File=/dev/null lines
    # are refused as duplicates; no File= at all leaves the node INVAL).
    local i
    for i in 0 1; do
        [ -c "$D/gpu$i" ] || {
            rm -f "$D/gpu$i"
            mknod "$D/gpu$i" c 1 3
        }
    done
    cat >"$D/slurm.conf.new" <<EOF
$MARK
ClusterName=carmasktest
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# Finished jobs must stay visible to squeue for >= 3x the plugin's
# slurm-init-seconds-before-status-checks, or it falls back to sacct.
MinJobAge=600
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
GresTypes=gpu
NodeName=$NODE CPUs=$cpus RealMemory=$mem Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=cpu Nodes=$NODE Default=NO MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$NODE Default=NO MaxTime=INFINITE State=UP
EOF
    cat >"$D/gres.conf.new" <<EOF
$MARK
NodeName=$NODE Name=gpu File=$D/gpu[0-1]
EOF
}

ours() { [ -f "$1" ] && head -n 1 "$1" | grep -qF "$MARK"; }

install_config() { # exit status 0 when the files changed, 1 when they were already in place
    local f
    if ours "$CONF" && cmp -s "$D/slurm.conf.new" "$CONF" && cmp -s "$D/gres.conf.new" "$GRES"; then
        return 1
    fi
    mkdir -p /etc/slurm
    for f in "$CONF" "$GRES"; do
        if [ -e "$f" ] && ! ours "$f" && [ ! -e "$f.carmask-backup" ]; then
            log "keeping the existing $f as $f.carmask-backup"
            cp -p "$f" "$f.carmask-backup"
        fi
    done
    cp "$D/slurm.conf.new" "$CONF"
    cp "$D/gres.conf.new" "$GRES"
    return 0
}

node_state() { timeout 5 sinfo -h -N -n "$NODE" -o %t 2>/dev/null | head -n 1 | tr -d '*~#!%$@^-' || true; }

wait_idle() {
    local i state=""
    for i in $(seq 1 60); do
        state=$(node_state)
        case "$state" in
        idle | mix | alloc) return 0 ;;
        down | drain | drng | inval | fail)
            timeout 5 scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
            ;;
        esac
        sleep 0.5
    done
    log "slurmctld log tail:"
    tail -n 20 "$D/log/slurmctld.log" >&2 || true
    log "slurmd log tail:"
    tail -n 20 "$D/log/slurmd.log" >&2 || true
    die "node $NODE did not become idle (last sinfo state: '${state:-none}')"
}

start() {
    [ "$(id -u)" = 0 ] || skip "not running as root: cannot install or start SLURM daemons"
    mkdir -p "$D"
    install_packages
    write_config
    local changed=0
    install_config && changed=1
    start_munge
    if [ "$changed" = 1 ]; then
        stop_pid slurmd "$D/slurmd.pid"
        stop_pid slurmctld "$D/slurmctld.pid"
    fi
    if ! alive_pid slurmctld "$D/slurmctld.pid" >/dev/null; then
        if timeout 5 scontrol ping >/dev/null 2>&1; then
            skip "another slurmctld (not started by this script) answers on this machine"
        fi
        log "starting slurmctld"
        (unset SLURM_CONF && slurmctld -c)
    fi
    if ! alive_pid slurmd "$D/slurmd.pid" >/dev/null; then
        log "starting slurmd"
        (unset SLURM_CONF && slurmd)
    fi
    wait_idle
    log "SLURM is up: node $NODE, partitions debug (default), cpu, gpu; scratch $D"
}

stop() {
    if alive_pid slurmctld "$D/slurmctld.pid" >/dev/null; then
        # Every job on this cluster is ours: it only exists for the tests.
        timeout 10 scancel --full --user="$(id -un)" >/dev/null 2>&1 || true
        local i
        for i in $(seq 1 25); do
            [ -z "$(timeout 5 squeue -h -t running,completing -o %i 2>/dev/null)" ] && break
            sleep 0.2
        done
    fi
    stop_pid slurmd "$D/slurmd.pid"
    stop_pid slurmctld "$D/slurmctld.pid"
    stop_pid munged "$D/munged.pid"
    local f
    for f in "$CONF" "$GRES"; do
        if ours "$f"; then
            rm -f "$f"
            [ -e "$f.carmask-backup" ] && mv "$f.carmask-backup" "$f"
        fi
    done
    log "stopped"
}

status() {
    local name pid
    for name in munged slurmctld slurmd; do
        if pid=$(alive_pid "$name" "$D/$name.pid"); then
            echo "$name: running (pid $pid, started by this script)"
        else
            echo "$name: not started by this script"
        fi
    done
    echo "node $NODE: $(node_state)"
}

case "${1:-start}" in
start) start ;;
stop | teardown) stop ;;
status) status ;;
*) die "usage: $0 start|stop|status" ;;
esac
