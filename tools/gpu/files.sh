#!/bin/bash
# Files → results on the GPU machine, beside PyTorch's pipelines (e2e_gpu.py) in the same call:
#   source /tmp/hb/assemble.sh && bash tools/gpu/files.sh <anchors-folder>
# HeteroBatch streams N generated 500×375 JPEGs through resnet-50 on the first GPU (no CPU
# inference unit: the cores decode) at each of PRECISIONS, then the anchor runs on the same host.
set -uo pipefail
anchors=${1:?usage: files.sh <folder holding e2e_gpu.py>}
out=${OUT:-bench-results/gpu-files}
mkdir -p "$out"
n=${N:-4096}
for p in ${PRECISIONS:-Fp16 Tf32}; do
  "$HB_APP/HeteroBatch.Bench" files --models "${MODELS:-resnet-50}" --batches "${BATCHES:-256}" --files "$n" --no-cpu --gpus 1 \
    --precision "$p" --seconds-per-size 0.5 --out "$out/$p" ${DECODE_THREADS:+--decode-threads "$DECODE_THREADS"} 2>> "$out/stderr.log" | tee -a "$out/bench.log"
done
cd "$anchors" && N=$n OUT="$out" PYTHONUNBUFFERED=1 timeout ${ANCHOR_TIMEOUT:-240} python3 e2e_gpu.py | tee -a "$out/anchor.log"
