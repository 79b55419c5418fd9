#!/bin/bash
# Which CUDA provider options make a GPU unit faster at one precision, run on the GPU machine
# after `source /tmp/hb/assemble.sh`, from the project root:
#   PRECISION=Fp16 bash tools/gpu/cuda-options.sh <anchors-folder>
# Each option set (one line of OPTION_SETS, passed through HETEROBATCH_CUDA_OPTIONS) runs the
# precision benchmark's NHWC variant, then PyTorch's anchor at the same precision, same call.
set -uo pipefail
anchors=${1:?usage: cuda-options.sh <folder holding precision_gpu.py>}
out=${OUT:-bench-results/gpu}
precision=${PRECISION:-Fp16}
mkdir -p "$out"
OPTION_SETS=${OPTION_SETS:-"
-
fuse_conv_bias=1
cudnn_conv_algo_search=EXHAUSTIVE
cudnn_conv_algo_search=EXHAUSTIVE;fuse_conv_bias=1
"}
i=0
while IFS= read -r set; do
  [ -z "$set" ] && continue
  i=$((i+1)); [ "$set" = "-" ] && set=""
  echo "== option set $i: ${set:-(the defaults)}" | tee -a "$out/bench.log"
  HETEROBATCH_CUDA_OPTIONS="$set" "$HB_APP/HeteroBatch.Bench" precision --models "${MODELS:-resnet-50,vgg-16}" --batches "${BATCHES:-100,1000}" \
    --repeats 10 --gpus 1 --variants "$precision:nhwc" --out "$out/set$i" 2>>/tmp/hb-stderr.log | tee -a "$out/bench.log"
done <<< "$OPTION_SETS"
cd "$anchors" && PYTHONUNBUFFERED=1 python3 - "$out" "${precision,,}" <<'PY'
import json, sys, os
import torch, precision_gpu as p
out, prec = sys.argv[1], sys.argv[2]
rows = []
for m in os.environ.get("MODELS", "resnet-50,vgg-16").split(","):
    for b in [int(x) for x in os.environ.get("BATCHES", "100,1000").split(",")]:
        r = p.run(m, b, prec); r.update(model=m, batch=b, precision=prec); rows.append(r)
        print(json.dumps(r), flush=True)
json.dump({"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "rows": rows}, open(f"{out}/anchor.json", "w"), indent=1)
PY
