#!/bin/sh
# stage.sh NAME CMD...: run one stage of `make test` and say how long it took.
#
# Why: a CI log should show where its minutes went (install, build, lint, type-check, tests) without anyone
# re-running it under `time`. Each finished stage prints one line and, when EKSIR_STAGE_LOG names a file, appends
# "NAME<TAB>SECONDS<TAB>ok|failed" to it so .ci/run can print a summary at the end. The command's exit code is
# passed through unchanged.
set -u
name=$1
shift
start=$(date +%s.%N)
echo "== stage $name: $*"
"$@"
rc=$?
seconds=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
outcome=ok
[ "$rc" -eq 0 ] || outcome=failed
echo "== stage $name: $outcome in ${seconds} s"
if [ -n "${EKSIR_STAGE_LOG:-}" ]; then
    printf '%s\t%s\t%s\n' "$name" "$seconds" "$outcome" >>"$EKSIR_STAGE_LOG"
fi
exit "$rc"
