#!/usr/bin/env bash
# CPU image preprocessing per core, HeteroBatch against PIL + numpy, alternating in one call on one
# processor: C#, PIL, C#, PIL, ... on the same generated files (2,000 JPEGs of 500×375, and 8 of
# 4000×3000 with grain ±12 and ±3), for the report under bench-reports/.
#   tools/prep_compare.sh <HeteroBatch.Bench executable> <image folder> [rounds] [processor]
set -euo pipefail
bench=$1; folder=$2; rounds=${3:-3}; cpu=${4:-1}
py=/usr/bin/python3
here=$(cd "$(dirname "$0")" && pwd)
date -u
lscpu | grep -E '^(Model name|CPU\(s\))' || true
uptime
# make the files once (not timed)
"$bench" prep --image-folder "$folder" --files 2000 --large 8 --large-grain 12 >/dev/null
"$bench" prep --image-folder "$folder" --files 0 --large 8 --large-grain 3 >/dev/null
for r in $(seq 1 "$rounds"); do
  echo "== round $r $(date -u +%T) load: $(cut -d' ' -f1-3 /proc/loadavg)"
  taskset -c "$cpu" "$bench" prep --image-folder "$folder" --files 2000 --large 8 --large-grain 12 | grep -v '^made'
  taskset -c "$cpu" $py "$here/pil_preprocess.py" "$folder" --limit 2000
  taskset -c "$cpu" $py "$here/pil_preprocess.py" "$folder/large" --pattern '*.jpg' --label 4000x3000
  taskset -c "$cpu" $py "$here/pil_preprocess.py" "$folder/large" --pattern '*.jpg' --label 4000x3000 --draft --passes 3
  taskset -c "$cpu" "$bench" prep --image-folder "$folder" --files 0 --large 8 --large-grain 3 | grep -v '^made'
  taskset -c "$cpu" $py "$here/pil_preprocess.py" "$folder/large-grain3" --pattern '*.jpg' --label 4000x3000-grain3
  taskset -c "$cpu" $py "$here/pil_preprocess.py" "$folder/large-grain3" --pattern '*.jpg' --label 4000x3000-grain3 --draft --passes 3
done
echo "== agreement (not timed) $(date -u +%T)"
"$bench" prep --image-folder "$folder" --files 0 --large 8 --large-grain 12 --agreement | grep -E 'fast vs exact'
"$bench" prep --image-folder "$folder" --files 0 --large 8 --large-grain 3 --agreement | grep -E 'fast vs exact'
