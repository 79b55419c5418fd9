#!/bin/bash
# Plans calibrated by runs on every set of units of the GPU machine, after
# `source /tmp/hb/assemble.sh`, from the project root:
#   bash tools/gpu/calibrate.sh            (PRECISIONS, MODELS, BATCHES choose)
# Each unit alone, then every set of two or more units planned and run 4 times (profiles alone,
# then after 1, 2, 3 calibrating runs); the last round held against the best unit alone.
set -uo pipefail
out=${OUT:-bench-results/gpu}
for p in ${PRECISIONS:-Fp16 Fp32}; do
  mkdir -p "$out/calibration-${p,,}"
  "$HB_APP/HeteroBatch.Bench" calibrate --models "${MODELS:-resnet-50}" --batches "${BATCHES:-100,1000}" --cpu-group All \
    --precision "$p" --seconds-per-size 0.2 --max-cpu-batch 64 --repeats 3 --out "$out/calibration-${p,,}" 2>>/tmp/hb-stderr.log | tee "$out/calibration-${p,,}/bench.log"
done
