#!/bin/bash
# GPU decoding beside PyTorch's nvJPEG pipelines (e2e2.py), in ONE call of the GPU machine:
#   source /tmp/hb/assemble.sh && bash tools/gpu/gpu-decode.sh <anchors-folder>
# The benchmark (gpudecode) makes N 500x375 JPEGs under the anchors' names in /tmp/e2e_imgs
# (where e2e2.py then finds and reuses them: both read the same files), decodes them with
# nvJPEG on each GPU straight into device memory and runs resnet-50's uint8-input form on them
# through IOBinding at each of PRECISIONS, on one GPU and on all of them; then e2e2.py runs.
# Writes under $OUT: gpu-decode.json, bench.log, anchor.log, e2e2.json, machine.txt.
# Getting it there, from the project root (pack.sh empties .xfer, so the anchors go in after):
#   dotnet publish src/HeteroBatch.Bench -c Release -r linux-x64 --self-contained -o out/device
#   bash ../shared/device/pack.sh out/device      # 5 parts for this build (243 MiB)
#   mkdir -p .xfer/anchors && cp ../shared/anchors/e2e2.py ../shared/anchors/e2e_gpu.py .xfer/anchors/
# then, on nvidia-h200-x2, the calls pack.sh prints, back to back; the last one carries
# [".xfer/5", ".xfer/anchors"] and runs:
#   mkdir -p /tmp/hb && cp -r .xfer/5/. /tmp/hb/ && source /tmp/hb/assemble.sh && bash tools/gpu/gpu-decode.sh .xfer/anchors
# Knobs: N (files, 8192), BATCH (256), PRECISIONS (Fp16,Tf32), REPEATS (2), ANCHOR=0 (bench only).
set -uo pipefail
anchors=$(cd "${1:?usage: gpu-decode.sh <folder holding e2e2.py and e2e_gpu.py>}" && pwd)
out=${OUT:-bench-results/gpu-decode}
mkdir -p "$out"
n=${N:-8192}
{ date -u; nvidia-smi -L; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; free -g | head -2; } > "$out/machine.txt" 2>&1
for lib in libnvjpeg.so.13 libnppig.so.13 libnppc.so.13 libcudart.so.13; do
  ls /usr/local/cuda-13.0/targets/x86_64-linux/lib/$lib >> "$out/machine.txt" 2>&1
done
timer=""; [ -x /usr/bin/time ] && timer="/usr/bin/time -v"
$timer "$HB_APP/HeteroBatch.Bench" gpudecode --models "${MODELS:-resnet-50}" --batches "${BATCH:-256}" --files "$n" \
  --image-folder /tmp/e2e_imgs --gpu-precisions "${PRECISIONS:-Fp16,Tf32}" --repeats "${REPEATS:-2}" --out "$out" \
  > >(tee "$out/bench.log") 2> "$out/stderr.log"
echo "bench exit $?" | tee -a "$out/bench.log"
[ "${ANCHOR:-1}" = 1 ] || exit 0
cd "$anchors" && N=$n OUT="$out" LEAD=${LEAD:-20} PYTHONUNBUFFERED=1 timeout ${ANCHOR_TIMEOUT:-300} python3 e2e2.py 2>&1 | tee "$out/anchor.log"
