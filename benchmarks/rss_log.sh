#!/bin/bash
# Resident memory of a long run every 60 s, for its health check: one line per sample,
# "unix_time rss_kib step" (the trainer and its child processes; the step from the run's metrics).
#   nohup bash benchmarks/rss_log.sh PID RUN_DIR LOG &
pid=$1 run=$2 log=$3
while kill -0 "$pid" 2>/dev/null; do
  rss=$(ps -o rss= --ppid "$pid" -p "$pid" | awk '{s += $1} END {print s}')
  step=$(tail -n 1 "$run/metrics.jsonl" 2>/dev/null | sed -n 's/^{"step": \([0-9]*\).*/\1/p')
  echo "$(date +%s) $rss ${step:-0}" >> "$log"
  sleep 60
done
