#!/usr/bin/env bash
# run-suites: run make targets one after another, each timed, and end with
# one line per target and its wall time, then the total, so a suite that
# grows is seen the day it grows.  The first failing target stops the run;
# the table then shows what ran and names the one that failed.
#
#     c-tests/run-suites.sh NAME TARGET...     (make check, make check-fast)
#
# NAME heads the table ("make check").  Each TARGET runs as
# `$MAKE --no-print-directory TARGET` (MAKE from the calling make).
set -u
name=$1
shift
make_cmd=${MAKE:-make}

rows=()
total=0
failed=
for target in "$@"; do
    start=$(date +%s.%N)
    $make_cmd --no-print-directory "$target"
    rc=$?
    end=$(date +%s.%N)
    secs=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.0f", e - s }')
    total=$((total + secs))
    rows+=("$(printf '  %-22s %4d:%02d' "$target" $((secs / 60)) $((secs % 60)))")
    if [ "$rc" != 0 ]; then
        failed=$target
        break
    fi
done

echo
echo "$name: wall time per suite"
printf '%s\n' "${rows[@]}"
printf '  %-22s %4d:%02d\n' total $((total / 60)) $((total % 60))
if [ -n "$failed" ]; then
    echo "$name: FAILED in $failed"
    exit 1
fi
