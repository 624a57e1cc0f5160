#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine for tests (Debian 12's slurm-wlm 22.05 + munge).
# Idempotent: a second run only checks that the daemons run and the node is up (seconds); it
# restarts the Slurm daemons only when the generated config changed.
#
#   scripts/local_slurm.sh            install if missing, configure, start, wait for the node
#   scripts/local_slurm.sh --status   print the one-line status; non-zero if the node is not up
#   scripts/local_slurm.sh --stop     stop slurmd, slurmctld and munged cleanly
#
# Environment (all optional):
#   LOCAL_SLURM_CPUS  CPUs the node declares (default: nproc). Declaring more than the machine has
#                     lets an sbatch file with e.g. --cpus-per-task=12 run unmodified: the config
#                     sets SlurmdParameters=config_overrides, so slurmd trusts slurm.conf instead
#                     of draining the node, and task/none pins nothing (the CPUs are oversubscribed).
#   LOCAL_SLURM_GPUS  fake GPUs the node declares (default 8; 0 for none), backed by dummy device
#                     nodes, so --gpus-per-task=1 is accepted and scheduled unmodified; a job then
#                     sees CUDA_VISIBLE_DEVICES=<index> although there is no GPU.
#   LOCAL_SLURM_WAIT  seconds to wait for the node to come up (default 60).
#
# Runs as root in a container without systemd (PID 1 is not init): the daemons are started
# directly and daemonize themselves; pid files under /run tell whether they already run.
set -euo pipefail

log() { echo "[local_slurm] $*" >&2; }
die() { echo "[local_slurm] ERROR: $*" >&2; exit 1; }

ACTION=start
case "${1:-}" in
  "") ;;
  --stop) ACTION=stop ;;
  --status) ACTION=status ;;
  -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument '$1' (use --stop, --status or nothing)" ;;
esac
[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts daemons)"

NODE="$(hostname -s)"
CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"
GRES_CONF="$CONF_DIR/gres.conf"
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid
LOG_DIR=/var/log/slurm
WAIT_S="${LOCAL_SLURM_WAIT:-60}"

# True when the pid file names a live process whose command is $2 (a stale pid file left by a
# killed container, or a pid reused by something else, must not count as "running"). A killed
# daemon can linger as a zombie (this container's PID 1 reaps orphans late), and kill -0 and
# /proc/PID/comm still answer for a zombie, so its state letter is checked too.
running() {
  local pidfile="$1" comm="$2" pid state
  [ -r "$pidfile" ] || return 1
  pid="$(cat "$pidfile" 2>/dev/null)"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 1
  state="$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)"
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# The node's state as sinfo long names ("idle", "mixed", "allocated", "down*", "drained", ...).
# "|| true": while slurmctld is not answering, sinfo fails, and under pipefail + set -e an
# assignment from it would end the script.
node_state() { sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n1 || true; }
node_up() { [[ "$(node_state)" =~ ^(idle|mixed|allocated|completing)$ ]]; }

status_line() {
  local state cpus gres
  state="$(node_state)"; state="${state:-unreachable}"
  cpus="$(sinfo -h -N -n "$NODE" -o '%c' 2>/dev/null | head -n1 || true)"
  gres="$(sinfo -h -N -n "$NODE" -o '%G' 2>/dev/null | head -n1 || true)"
  echo "slurm: node $NODE ${state} (cpus=${cpus:-?} gres=${gres:-?}); munged=$(running "$MUNGE_PID" munged && echo up || echo down) slurmctld=$(running "$CTLD_PID" slurmctld && echo up || echo down) slurmd=$(running "$SLURMD_PID" slurmd && echo up || echo down)"
}

# Wait (bounded) for a pid file's process to go away after it was asked to stop.
wait_gone() {
  local pidfile="$1" comm="$2" i
  for i in $(seq 1 40); do running "$pidfile" "$comm" || return 0; sleep 0.5; done
  return 1
}

stop_slurm_daemons() {
  # scontrol shutdown stops slurmctld and tells every slurmd to exit; fall back to SIGTERM by pid
  # file (never by name) if slurmctld is not answering.
  if running "$CTLD_PID" slurmctld; then scontrol shutdown >/dev/null 2>&1 || true; fi
  wait_gone "$CTLD_PID" slurmctld || kill -TERM "$(cat "$CTLD_PID")" 2>/dev/null || true
  wait_gone "$SLURMD_PID" slurmd || kill -TERM "$(cat "$SLURMD_PID")" 2>/dev/null || true
  wait_gone "$CTLD_PID" slurmctld || die "slurmctld (pid $(cat "$CTLD_PID")) did not stop"
  wait_gone "$SLURMD_PID" slurmd || die "slurmd (pid $(cat "$SLURMD_PID")) did not stop"
}

if [ "$ACTION" = stop ]; then
  command -v scontrol >/dev/null || { log "Slurm is not installed; nothing to stop"; exit 0; }
  # Jobs outlive the daemons (each step's slurmstepd keeps running and is recovered by the next
  # start), so a clean stop cancels them first and waits (bounded) for them to end.
  if running "$CTLD_PID" slurmctld; then
    jobs="$(squeue -h -o '%A' 2>/dev/null || true)"
    if [ -n "$jobs" ]; then
      log "cancelling jobs: $(echo $jobs)"
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      for _ in $(seq 1 60); do [ -z "$(squeue -h -o '%A' 2>/dev/null || true)" ] && break; sleep 0.5; done
    fi
  fi
  stop_slurm_daemons
  if running "$MUNGE_PID" munged; then
    munged --stop >/dev/null 2>&1 || kill -TERM "$(cat "$MUNGE_PID")" 2>/dev/null || true
    wait_gone "$MUNGE_PID" munged || die "munged did not stop"
  fi
  log "stopped (munged, slurmctld, slurmd; config and state under /etc/slurm, /var/spool kept)"
  exit 0
fi

if [ "$ACTION" = status ]; then
  command -v sinfo >/dev/null || die "Slurm is not installed (run $0)"
  status_line
  node_up
  exit
fi

# --- packages --------------------------------------------------------------------------------
# Only slurm-wlm's hard dependencies (slurmd, slurmctld, slurm-client); its Recommends pull in
# ~30 plugin and -dev packages that a test cluster does not need. libpmix2 is what Slurm's
# mpi/pmix plugin dlopens (no package dependency says so); see MpiDefault below.
missing=()
for p in slurm-wlm munge libpmix2; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  # Without a policy-rc.d (Docker images ship one, other containers may not), the packages'
  # postinst would start the daemons through /etc/init.d before slurm.conf exists and may fail
  # the install; a temporary one that denies every start keeps the daemons ours to start.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 0755 /usr/sbin/policy-rc.d
    own_policy=1; trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
  if [ "$own_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
fi

# --- munge -----------------------------------------------------------------------------------
# munged refuses to start unless its key and directories belong to the munge user and are not
# group/world writable; /run/munge is on tmpfs in most containers, so it is re-made every run.
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  log "creating /etc/munge/munge.key"
  mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
    || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! running "$MUNGE_PID" munged; then
  log "starting munged"
  rm -f "$MUNGE_PID"
  runuser -u munge -- /usr/sbin/munged || die "munged did not start (see /var/log/munge/munged.log)"
fi
munge -n 2>/dev/null | unmunge >/dev/null 2>&1 \
  || die "munge credentials do not round-trip (see /var/log/munge/munged.log)"

# --- slurm.conf ------------------------------------------------------------------------------
CPUS="${LOCAL_SLURM_CPUS:-$(nproc)}"
GPUS="${LOCAL_SLURM_GPUS:-8}"
MEM_MB=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 ))
[[ "$CPUS" =~ ^[1-9][0-9]*$ ]] || die "LOCAL_SLURM_CPUS must be a positive integer, not '$CPUS'"
[[ "$GPUS" =~ ^[0-9]+$ ]] || die "LOCAL_SLURM_GPUS must be a non-negative integer, not '$GPUS'"
if [ "$GPUS" -gt 0 ]; then GRES_NODE=" Gres=gpu:$GPUS"; else GRES_NODE=""; fi

# Why each non-default line is there:
# - SlurmctldHost/NodeAddr pinned to 127.0.0.1: no DNS in the container, and nothing but loopback.
# - MpiDefault=pmix: Debian's Open MPI, started by a plain `srun prog` (the sweep array's srun
#   line has no --mpi), sees Slurm's variables, tries a direct launch and aborts in MPI_Init
#   ("OMPI was not built with SLURM's PMI support") unless srun runs a PMIx server for it;
#   pmi2 fails the same way. Non-MPI programs are unaffected.
# - SlurmUser=root: one user owns all state dirs, no ownership pitfalls for a throwaway cluster.
# - proctrack/linuxproc + task/none + jobacct_gather/none: nothing needs cgroups (this container
#   has no writable cgroup tree); linuxproc still finds a step's processes via /proc to kill them.
# - SelectTypeParameters=CR_CPU: schedule CPUs only (memory is not a consumable), so two
#   1-CPU tasks share the node and RealMemory is informational.
# - SlurmdParameters=config_overrides: slurmd reports what slurm.conf says instead of draining
#   the node when it declares more CPUs/memory than detected (see LOCAL_SLURM_CPUS).
# - GresTypes=gpu + fake-device gres.conf: --gpus-per-task=1 schedules without real GPUs.
# - ReturnToService=2: a node that went DOWN (slurmd restarted, container paused) comes back by
#   itself as soon as slurmd registers again.
# - AuthInfo=cred_expire=15: a requeued job (the array's exit-75 path) is held for the step
#   credential lifetime before it may start again, 120 s by default; 15 s keeps tests short.
# - EnforcePartLimits=ALL: a job that can never fit (e.g. --cpus-per-task=12 on 2 CPUs) is
#   rejected by sbatch at once instead of pending forever (Reason=PartitionConfig), which would
#   hang a test's `sbatch --wait`.
# - MinJobAge=5: sbatch --wait polls after 2 s and then backs off 2 -> 8 -> 32 s unless
#   MinJobAge/2 <= 2 s, so 5 keeps it polling every 2 s (a 5 s job returns after ~8 s, not ~42 s).
#   The price: finished jobs vanish from squeue/scontrol 5-65 s after they end, and there is no
#   accounting daemon, so sacct does not work either: read results from the output files.
NEW_CONF="# Generated by scripts/local_slurm.sh; rewritten when its inputs change.
ClusterName=palisade-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=15
CredType=cred/munge
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
EnforcePartLimits=ALL
SlurmdParameters=config_overrides
GresTypes=gpu
ReturnToService=2
MinJobAge=5
KillWait=5
InactiveLimit=0
MailProg=/bin/true
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB$GRES_NODE State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP"
# Slurm 22.05's slurmd drops a GPU gres that has no File= ("Removing file-less GPU"), and logs
# an error for a File= that is not a device node, so each fake GPU is a character device with
# /dev/null's numbers (1,3): harmless if opened. If mknod is not allowed, empty files still
# work (the count is kept) at the price of "not a valid character or block device" log lines.
FAKE_GPU_DIR=/var/spool/slurm-fakegpu
if [ "$GPUS" -gt 0 ]; then
  install -d -m 0755 "$FAKE_GPU_DIR"
  for i in $(seq 0 $(( GPUS - 1 ))); do
    [ -e "$FAKE_GPU_DIR/gpu$i" ] || mknod "$FAKE_GPU_DIR/gpu$i" c 1 3 2>/dev/null \
      || touch "$FAKE_GPU_DIR/gpu$i"
  done
  NEW_GRES="# Generated by scripts/local_slurm.sh: fake GPUs (/dev/null-like device nodes).
AutoDetect=off
NodeName=$NODE Name=gpu File=$FAKE_GPU_DIR/gpu[0-$(( GPUS - 1 ))]"
else
  NEW_GRES="# Generated by scripts/local_slurm.sh: no GPUs.
AutoDetect=off"
fi

changed=0
install -d -m 0755 "$CONF_DIR" "$LOG_DIR"
install -d -m 0755 /var/spool/slurmctld /var/spool/slurmd
if [ "$(cat "$CONF" 2>/dev/null)" != "$NEW_CONF" ]; then
  printf '%s\n' "$NEW_CONF" > "$CONF"; changed=1
fi
if [ "$(cat "$GRES_CONF" 2>/dev/null)" != "$NEW_GRES" ]; then
  printf '%s\n' "$NEW_GRES" > "$GRES_CONF"; changed=1
fi

# Node or GRES definitions only take effect on a daemon restart (scontrol reconfigure is not
# enough for them), so a changed config restarts both daemons; running jobs survive that (their
# slurmstepd keeps going and the new slurmctld recovers them), queued ones stay queued.
if [ "$changed" = 1 ] && { running "$CTLD_PID" slurmctld || running "$SLURMD_PID" slurmd; }; then
  log "config changed: restarting slurmctld and slurmd"
  stop_slurm_daemons
fi

# --- daemons ---------------------------------------------------------------------------------
fail_with_logs() {
  echo "[local_slurm] ERROR: $1" >&2
  for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log"; do
    [ -r "$f" ] && { echo "--- last lines of $f:" >&2; tail -n 15 "$f" >&2; }
  done
  exit 1
}
if ! running "$CTLD_PID" slurmctld; then
  log "starting slurmctld"
  rm -f "$CTLD_PID"
  slurmctld || fail_with_logs "slurmctld did not start"
fi
if ! running "$SLURMD_PID" slurmd; then
  log "starting slurmd"
  rm -f "$SLURMD_PID"
  # -N: the node name must match slurm.conf's NodeName even if gethostname() differs later.
  slurmd -N "$NODE" || fail_with_logs "slurmd did not start"
fi

# --- wait for the node -----------------------------------------------------------------------
deadline=$(( SECONDS + WAIT_S ))
resumed=0
until node_up; do
  state="$(node_state)"
  # A node drained by an earlier config (e.g. "Low CPUs") stays drained across restarts.
  if [ "$resumed" = 0 ] && [[ "$state" =~ ^(drained|draining|down)$ ]]; then
    scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true; resumed=1
  fi
  [ $SECONDS -lt $deadline ] || fail_with_logs "node $NODE not up after ${WAIT_S}s (state: ${state:-no answer from slurmctld})"
  sleep 1
done
status_line
