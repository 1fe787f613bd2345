#!/bin/sh
# The runs behind bench/RESULTS.md, one after the other, output teed to $OUT (default
# /tmp/qseal-e2e-results.txt). Usage: bench/e2e/run_results.sh [BUILD_DIR]
# Takes about 15 minutes on a 2-vCPU machine; run it on an otherwise idle machine.
set -eu
build=${1:-build}
out=${OUT:-/tmp/qseal-e2e-results.txt}
bin="$build/bench/e2e/e2e_bench"
{
  echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "# machine: nproc=$(nproc) cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "# load: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# commit: $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "\$ $bin -n 20000 ${PERF_DIR:+--perf-dir $PERF_DIR}"
  "$bin" -n 20000 ${PERF_DIR:+--perf-dir "$PERF_DIR"} 2>&1 || echo "# exit $?"
  echo "\$ $bin -n 3000 --key rsa3072 --shim-docs 1000"
  "$bin" -n 3000 --key rsa3072 --shim-docs 1000 2>&1 || echo "# exit $?"
  echo "\$ $bin -n 2000 --corpus mix --scenarios raw,api,watch,big --big-mib 1024"
  "$bin" -n 2000 --corpus mix --scenarios raw,api,watch,big --big-mib 1024 2>&1 || echo "# exit $?"
  echo "\$ $bin -n 10000 --scenarios raw,api,api_open"
  "$bin" -n 10000 --scenarios raw,api,api_open 2>&1 || echo "# exit $?"
  echo "\$ $bin --scenarios backlog --backlog-docs 1000000"
  "$bin" --scenarios backlog --backlog-docs 1000000 2>&1 || echo "# exit $?"
} | tee "$out"
