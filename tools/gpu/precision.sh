#!/bin/bash
# GPU precision benchmark, run on the GPU machine from the project root after the benchmark's
# self-contained build is assembled there (see README, "On the GPU machine"):
#   source /tmp/hb/assemble.sh && bash tools/gpu/precision.sh <anchors-folder>
# Each GPU unit alone at fp32, TF32 and fp16 (with and without NHWC; ALL_VARIANTS=1 adds pinned
# transfers; ORT_PROFILE=1 adds ONNX Runtime node profiles), then PyTorch's anchor at the same
# models, batches and precisions, in the same call on the same host. MODELS and BATCHES choose.
set -uo pipefail
anchors=${1:?usage: precision.sh <folder holding precision_gpu.py>}
out=${OUT:-bench-results/gpu}
mkdir -p "$out"
prof=/tmp/hb-ortprofile
"$HB_APP/HeteroBatch.Bench" precision --models "${MODELS:-resnet-50,vgg-16}" --batches "${BATCHES:-100,1000}" --repeats 10 --gpus 1 --out "$out" ${ORT_PROFILE:+--ort-profile "$prof"} ${ALL_VARIANTS:+--all-variants} 2> /tmp/hb-stderr.log | tee "$out/bench.log"
# which nodes ONNX Runtime placed off the GPU (verbose session logs of the profiled runs)
grep -iE "CPUExecutionProvider|not assigned|placed on" /tmp/hb-stderr.log | sed 's/^.*\] //' | sort | uniq -c | sort -rn | head -60 > "$out/placement.txt"
# where the first model's time goes, per op type and provider, in each profiled variant
[ -n "${ORT_PROFILE:-}" ] && python3 "$(dirname "$0")/ortprofile.py" "$prof" > "$out/ortprofile-summary.txt"
cd "$anchors" && PYTHONUNBUFFERED=1 python3 - "$out" <<'PY'
import json, sys, os
import torch, precision_gpu as p
out = sys.argv[1]
rows = []
for m in os.environ.get("MODELS", "resnet-50,vgg-16").split(","):
    for b in [int(x) for x in os.environ.get("BATCHES", "100,1000").split(",")]:
        for prec in ["fp32", "tf32", "fp16"]:
            r = p.run(m, b, prec)
            r.update(model=m, batch=b, precision=prec)
            if prec == "fp32":
                r["e2e_pageable_ms"] = p.run(m, b, prec, pinned=False)["e2e_ms"]
            rows.append(r)
            print(json.dumps(r), flush=True)
            json.dump({"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "rows": rows}, open(f"{out}/anchor.json", "w"), indent=1)
PY
