#!/usr/bin/env bash
# eksir volatile evidence collection for one EKS node (containerd), run over SSM Run Command.
#
# Why it is written this way:
# - Only tools already on the node are used (crictl, ctr, nsenter, ss, ps, tar, sha256sum, aws, avml): nothing
#   is downloaded onto a suspect node. A missing tool is a line in the manifest, never a failure; where /proc
#   has the same facts (process list, per-namespace sockets) it is read directly instead.
# - Memory is captured only when a capture tool (avml) is already present and the disk has room for it.
# - Every artefact is hashed (SHA256SUMS inside the archive, a .sha256 beside every uploaded file) so eksir
#   can check what reached S3 is what was collected.
# - The body is one function called with stdin from /dev/null: when the script itself arrives on stdin
#   (`bash -s`), no tool can swallow the rest of it.
# - It exits 0 whenever it could write its manifest: an absent tool is a finding, not an error.
#
# Inputs (environment; eksir validates every value before it reaches this shell):
#   EKSIR_CASE_ID, EKSIR_INSTANCE_ID, EKSIR_CONTAINER_IDS (space separated), EKSIR_POD_UID,
#   EKSIR_BUCKET + EKSIR_PREFIX (upload target; empty = no upload, rely on SSM output), EKSIR_REGION,
#   EKSIR_WORK_ROOT (default /var/tmp), EKSIR_KEEP_LOCAL=1 (keep the staging dir after upload),
#   EKSIR_TOOL_TIMEOUT (seconds per command, default 300),
#   EKSIR_TOOL_DIRS (space separated directories searched after PATH, whose SSM value can be minimal; default the
#   usual system and EKS AMI directories; set it for a node image with another layout, or empty to use PATH only).

main() {
  set -u
  umask 077
  CASE_ID=${EKSIR_CASE_ID:-unknown}
  INSTANCE_ID=${EKSIR_INSTANCE_ID:-$(hostname 2>/dev/null || echo node)}
  CONTAINER_IDS=${EKSIR_CONTAINER_IDS:-}
  POD_UID=${EKSIR_POD_UID:-}
  BUCKET=${EKSIR_BUCKET:-}
  PREFIX=${EKSIR_PREFIX:-}
  REGION=${EKSIR_REGION:-}
  WORK_ROOT=${EKSIR_WORK_ROOT:-/var/tmp}
  TOOL_TIMEOUT=${EKSIR_TOOL_TIMEOUT:-300}
  STAMP=$(date -u +%Y%m%dT%H%M%SZ)
  BASE="volatile-${CASE_ID}-${INSTANCE_ID}-${STAMP}"
  STAGE="$WORK_ROOT/eksir-$BASE"
  WORK="$STAGE/files"
  MANIFEST="$WORK/manifest.tsv"
  if ! mkdir -p "$WORK"; then
    echo "eksir-volatile: cannot create $WORK" >&2
    return 2
  fi
  printf 'kind\tname\tstatus\tdetail\n' >"$MANIFEST"
  note meta started ok "case=$CASE_ID instance=$INSTANCE_ID at=$STAMP user=$(id -u 2>/dev/null)"

  probe_tools
  collect_host
  collect_netns_sockets
  collect_runtime
  for cid in $CONTAINER_IDS; do
    collect_container "$cid"
  done
  collect_memory
  finish
  return 0
}

note() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$MANIFEST"; }

find_tool() {
  local dir path
  if path=$(command -v "$1" 2>/dev/null); then
    echo "$path"
    return 0
  fi
  for dir in ${EKSIR_TOOL_DIRS-/usr/local/bin /usr/local/sbin /usr/bin /usr/sbin /bin /sbin /opt/bin /opt/cni/bin}; do
    if [ -x "$dir/$1" ]; then
      echo "$dir/$1"
      return 0
    fi
  done
  return 1
}

probe_tools() {
  local tool path
  for tool in crictl ctr nsenter ss ps tar gzip sha256sum find aws avml timeout; do
    if path=$(find_tool "$tool"); then
      note tool "$tool" ok "$path"
      eval "T_$tool=\$path"
    else
      note tool "$tool" absent "not on the node (nothing is downloaded)"
      eval "T_$tool="
    fi
  done
  CRICTL=("$T_crictl")
  for sock in /run/containerd/containerd.sock /var/run/containerd/containerd.sock; do
    if [ -S "$sock" ]; then
      CRICTL+=(--runtime-endpoint "unix://$sock")
      break
    fi
  done
}

# run NAME CMD...: stdout into $WORK/NAME, stderr beside it (dropped when empty), outcome in the manifest.
run() {
  local name=$1 rc
  shift
  mkdir -p "$(dirname "$WORK/$name")"
  if [ -n "$T_timeout" ] && [ "$(type -t "$1")" != function ]; then
    "$T_timeout" "$TOOL_TIMEOUT" "$@" >"$WORK/$name" 2>"$WORK/$name.stderr"
  else
    "$@" >"$WORK/$name" 2>"$WORK/$name.stderr"
  fi
  rc=$?
  [ -s "$WORK/$name.stderr" ] || rm -f "$WORK/$name.stderr"
  if [ "$rc" -eq 0 ]; then
    note artifact "$name" ok "$*"
  else
    note artifact "$name" failed "exit $rc: $*"
  fi
  return "$rc"
}

# copy NAME FILE: a /proc (or other) file into the bundle.
copy() {
  mkdir -p "$(dirname "$WORK/$1")"
  if cat "$2" >"$WORK/$1" 2>/dev/null; then
    note artifact "$1" ok "$2"
  else
    note artifact "$1" failed "cannot read $2"
  fi
}

proc_table() {
  local p cmd
  printf 'pid\tppid\tuid\tstate\tpidns\tnetns\texe\tcmdline\n'
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ -r "/proc/$p/status" ] || continue
    cmd=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$p" \
      "$(awk '/^PPid:/ {pp = $2} /^Uid:/ {u = $2} /^State:/ {s = $2} END {printf "%s\t%s\t%s", pp, u, s}' \
        "/proc/$p/status" 2>/dev/null)" \
      "$(readlink "/proc/$p/ns/pid" 2>/dev/null)" "$(readlink "/proc/$p/ns/net" 2>/dev/null)" \
      "$(readlink "/proc/$p/exe" 2>/dev/null)" "$cmd"
  done
}

collect_host() {
  run host/date.txt date -u
  run host/uname.txt uname -a
  copy host/uptime.txt /proc/uptime
  copy host/mountinfo.txt /proc/self/mountinfo
  run host/proc-table.tsv proc_table
  if [ -n "$T_ps" ]; then
    run host/ps-forest.txt "$T_ps" -eo pid,ppid,uid,user,lstart,stat,args --forest \
      || run host/ps.txt "$T_ps" -ef
  fi
  if [ -n "$T_ss" ]; then
    run host/sockets.txt "$T_ss" -tanupe
  else
    proc_net host/proc-net "$$"
  fi
}

# proc_net DIR PID: the socket tables of PID's network namespace, straight from /proc (no tool needed).
proc_net() {
  local f
  for f in tcp tcp6 udp udp6 raw unix packet; do
    [ -r "/proc/$2/net/$f" ] && copy "$1/$f" "/proc/$2/net/$f"
  done
}

collect_netns_sockets() {
  local p ns seen=" "
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    ns=$(readlink "/proc/$p/ns/net" 2>/dev/null) || continue
    ns=${ns#net:[}
    ns=${ns%]}
    case "$seen" in *" $ns "*) continue ;; esac
    seen="$seen$ns "
    if [ -n "$T_nsenter" ] && [ -n "$T_ss" ] \
      && run "netns/$ns/sockets.txt" "$T_nsenter" -t "$p" -n "$T_ss" -tanupe; then
      :
    else
      proc_net "netns/$ns/proc-net" "$p"
    fi
    note netns "$ns" ok "pid $p"
  done
}

collect_runtime() {
  local sid more
  if [ -n "$T_crictl" ]; then
    run runtime/crictl-ps.json "${CRICTL[@]}" ps -a -o json
    run runtime/crictl-pods.json "${CRICTL[@]}" pods -o json
    if [ -n "$POD_UID" ]; then
      for sid in $("${CRICTL[@]}" pods --label "io.kubernetes.pod.uid=$POD_UID" -q 2>/dev/null); do
        run "runtime/pod-$sid-inspectp.json" "${CRICTL[@]}" inspectp "$sid"
      done
      more=$("${CRICTL[@]}" ps -a --label "io.kubernetes.pod.uid=$POD_UID" -q 2>/dev/null)
      for sid in $more; do
        case " $CONTAINER_IDS " in *" $sid "*) ;; *) CONTAINER_IDS="$CONTAINER_IDS $sid" ;; esac
      done
    fi
  else
    note runtime crictl absent "no CRI view of pods and containers"
  fi
  if [ -n "$T_ctr" ]; then
    run runtime/ctr-containers.txt "$T_ctr" -n k8s.io containers ls
    run runtime/ctr-tasks.txt "$T_ctr" -n k8s.io tasks ls
  else
    note runtime ctr absent "no containerd task view"
  fi
}

container_pid() {
  local pid=""
  if [ -s "$WORK/container-$1/crictl-inspect.json" ]; then
    pid=$(sed -n 's/^ *"pid": *\([0-9][0-9]*\).*/\1/p' "$WORK/container-$1/crictl-inspect.json" | head -n 1)
  fi
  if [ -z "$pid" ] && [ -s "$WORK/runtime/ctr-tasks.txt" ]; then
    pid=$(awk -v id="$1" 'index($1, id) == 1 {print $2; exit}' "$WORK/runtime/ctr-tasks.txt")
  fi
  echo "$pid"
}

collect_container() {
  local cid=$1 dir="container-$1" pid
  if [ -n "$T_crictl" ]; then
    run "$dir/crictl-inspect.json" "${CRICTL[@]}" inspect "$cid"
    run "$dir/crictl-logs.txt" "${CRICTL[@]}" logs "$cid"
  fi
  if [ -n "$T_ctr" ]; then
    run "$dir/ctr-info.json" "$T_ctr" -n k8s.io containers info "$cid"
    run "$dir/ctr-tasks-ps.txt" "$T_ctr" -n k8s.io tasks ps "$cid"
  fi
  pid=$(container_pid "$cid")
  if [ -z "$pid" ] || [ ! -d "/proc/$pid" ]; then
    note container "$cid" failed "no running process found (container exited, or neither crictl nor ctr on the node)"
    return 0
  fi
  note container "$cid" ok "pid $pid"
  collect_processes "$dir" "$pid"
  if [ -n "$T_nsenter" ] && [ -n "$T_ss" ] && run "$dir/sockets.txt" "$T_nsenter" -t "$pid" -n "$T_ss" -tanupe; then
    :
  else
    proc_net "$dir/proc-net" "$pid"
  fi
  copy "$dir/mountinfo.txt" "/proc/$pid/mountinfo"
  collect_upperdir "$dir" "$pid"
}

# Every process in the container's PID namespace: status, command line, open files, and any deleted binary.
collect_processes() {
  local dir=$1 target p exe
  target=$(readlink "/proc/$2/ns/pid" 2>/dev/null)
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$(readlink "/proc/$p/ns/pid" 2>/dev/null)" = "$target" ] || continue
    mkdir -p "$WORK/$dir/proc/$p"
    cat "/proc/$p/status" >"$WORK/$dir/proc/$p/status" 2>/dev/null
    tr '\0' ' ' <"/proc/$p/cmdline" >"$WORK/$dir/proc/$p/cmdline" 2>/dev/null
    tr '\0' '\n' <"/proc/$p/environ" >"$WORK/$dir/proc/$p/environ" 2>/dev/null
    cat "/proc/$p/cgroup" >"$WORK/$dir/proc/$p/cgroup" 2>/dev/null
    ls -l "/proc/$p/fd" >"$WORK/$dir/proc/$p/fd.txt" 2>/dev/null
    exe=$(readlink "/proc/$p/exe" 2>/dev/null)
    echo "$exe" >"$WORK/$dir/proc/$p/exe-path"
    case "$exe" in
      *" (deleted)") cat "/proc/$p/exe" >"$WORK/$dir/proc/$p/deleted-exe" 2>/dev/null ;;
    esac
  done
  note artifact "$dir/proc" ok "processes in pid namespace $target"
}

collect_upperdir() {
  local dir=$1 upper
  upper=$(awk '$5 == "/" { for (i = 1; i <= NF; i++) if ($i ~ /upperdir=/) print $i }' "/proc/$2/mountinfo" 2>/dev/null \
    | sed -n 's/.*upperdir=\([^,]*\).*/\1/p' | head -n 1)
  if [ -z "$upper" ]; then
    note upperdir "$dir" absent "root filesystem is not an overlay with an upperdir"
    return 0
  fi
  if [ ! -d "$upper" ]; then
    note upperdir "$dir" failed "upperdir $upper is not visible from here"
    return 0
  fi
  if [ -n "$T_find" ]; then
    run "$dir/upperdir-listing.txt" "$T_find" "$upper" -xdev -printf '%M %u %g %s %TY-%Tm-%TdT%TT %p\n'
  fi
  if [ -n "$T_tar" ]; then
    run "$dir/upperdir.tar.gz" "$T_tar" -C "$upper" -czf - .
  else
    note upperdir "$dir" absent "tar not on the node: writable layer listed, not archived"
  fi
}

collect_memory() {
  local need avail
  if [ -z "$T_avml" ]; then
    note memory avml absent "no memory capture tool on the node: memory not captured (nothing is downloaded)"
    return 0
  fi
  need=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
  avail=$(df -Pk "$WORK_ROOT" 2>/dev/null | awk 'NR == 2 {print $4}')
  if [ -n "$need" ] && [ -n "$avail" ] && [ "$avail" -le "$need" ]; then
    note memory avml skipped "only ${avail} KiB free in $WORK_ROOT for ${need} KiB of memory"
    return 0
  fi
  if "$T_avml" --compress "$STAGE/$BASE.memory.lime" >"$WORK/memory-avml.log" 2>&1; then
    note memory avml ok "$STAGE/$BASE.memory.lime (snappy-compressed LiME)"
  else
    note memory avml failed "avml exit $? (kernel lockdown blocks /dev/mem and may block /proc/kcore)"
    rm -f "$STAGE/$BASE.memory.lime"
  fi
}

sha_of() {
  if [ -n "$T_sha256sum" ]; then
    "$T_sha256sum" "$1" | awk '{print $1}'
  elif command -v openssl >/dev/null 2>&1; then
    openssl dgst -sha256 -r "$1" | awk '{print $1}'
  fi
}

upload() {
  local key="$PREFIX$(basename "$1")"
  if "$T_aws" s3 cp --only-show-errors ${REGION:+--region "$REGION"} "$1" "s3://$BUCKET/$key" </dev/null; then
    note upload "$(basename "$1")" ok "s3://$BUCKET/$key"
    return 0
  fi
  note upload "$(basename "$1")" failed "aws s3 cp to s3://$BUCKET/$key"
  return 1
}

finish() {
  local f digest uploaded=1
  (cd "$WORK" && find . -type f ! -name SHA256SUMS -print 2>/dev/null | sort | while read -r f; do
    printf '%s  %s\n' "$(sha_of "$f")" "${f#./}"
  done) >"$WORK/SHA256SUMS"
  if [ -n "$T_tar" ]; then
    (cd "$STAGE" && "$T_tar" -czf "$BASE.tar.gz" files) && note archive "$BASE.tar.gz" ok "$STAGE/$BASE.tar.gz"
  else
    note archive "$BASE.tar.gz" absent "tar not on the node: files stay in $WORK"
  fi
  if [ -z "$BUCKET" ]; then
    note upload all skipped "no bucket given: rely on the SSM command output"
    uploaded=0
  elif [ -z "$T_aws" ]; then
    note upload all absent "aws CLI not on the node: rely on the SSM command output"
    uploaded=0
  else
    for f in "$STAGE"/*; do
      [ -f "$f" ] || continue
      digest=$(sha_of "$f")
      [ -n "$digest" ] && printf '%s  %s\n' "$digest" "$(basename "$f")" >"$f.sha256"
      upload "$f" || uploaded=0
      [ -f "$f.sha256" ] && { upload "$f.sha256" || uploaded=0; }
    done
  fi
  cp "$MANIFEST" "$STAGE/$BASE.manifest.tsv"
  if [ "$uploaded" -eq 1 ]; then
    sha_of "$STAGE/$BASE.manifest.tsv" | awk -v n="$BASE.manifest.tsv" '{print $1 "  " n}' \
      >"$STAGE/$BASE.manifest.tsv.sha256"
    upload "$STAGE/$BASE.manifest.tsv" && upload "$STAGE/$BASE.manifest.tsv.sha256" || uploaded=0
  fi
  echo "eksir-base: $BASE"
  echo "eksir-stage: $STAGE"
  echo "eksir-uploaded: $uploaded"
  echo "eksir-archive-sha256: $( [ -f "$STAGE/$BASE.tar.gz" ] && sha_of "$STAGE/$BASE.tar.gz")"
  echo "----- manifest"
  cat "$STAGE/$BASE.manifest.tsv"
  echo "----- SHA256SUMS"
  cat "$WORK/SHA256SUMS"
  if [ "$uploaded" -eq 0 ]; then
    for f in host/proc-table.tsv host/sockets.txt; do
      [ -f "$WORK/$f" ] && { echo "----- $f"; head -c 200000 "$WORK/$f"; }
    done
    echo "eksir-kept-on-node: $STAGE"
  elif [ "${EKSIR_KEEP_LOCAL:-0}" != 1 ]; then
    rm -rf "$STAGE"
  fi
}

main "$@" </dev/null
