#!/bin/bash
# Samples a process's memory (/proc/PID/status) every 20 ms until it exits (or the file STOP exists)
# and prints, for the
# sample where VmRSS was highest, what it was made of: anonymous memory (heaps, arrays, page-locked
# buffers), file-backed pages (mapped libraries) and shared memory.
#   bash tools/gpu/rss-sampler.sh PID [label] [STOP]
pid=${1:?usage: rss-sampler.sh PID [label] [STOP]}; label=${2:-process $1}; stop=${3:-}
peak=0; at=""
while [ -r "/proc/$pid/status" ] && { [ -z "$stop" ] || [ ! -e "$stop" ]; }; do
  s=$(grep -E '^(VmRSS|RssAnon|RssFile|RssShmem):' "/proc/$pid/status" 2>/dev/null | tr -s ' \t' ' ')
  rss=$(echo "$s" | awk '/VmRSS/ {print $2}')
  if [ -n "$rss" ] && [ "$rss" -gt "$peak" ]; then peak=$rss; at=$s; fi
  sleep 0.02
done
echo "$label: highest VmRSS sampled $((peak / 1024)) MiB; then $(echo "$at" | awk '{printf "%s%s %d MiB", (NR > 1 ? ", " : ""), $1, $2 / 1024}')"
