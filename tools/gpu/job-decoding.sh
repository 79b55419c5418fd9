#!/bin/bash
# The file job (the engine's FileJob, as Invoke-PartitionedInference -InputPath runs it, through the
# bench's `files` mode) on 8,192 photo-like JPEGs, decoding on the GPUs (-DecodeOn Auto) and on CPU
# threads only (Cpu), beside e2e2.py on the same files, in ONE call of the GPU machine:
#   source /tmp/hb/assemble.sh && bash tools/gpu/job-decoding.sh <anchors-folder>
# (publish and pack as tools/gpu/gpu-decode.sh says). Writes under $OUT: whole/, gpu1/ (files.json,
# bench.log each), anchor.log, e2e2.json, machine.txt.
set -uo pipefail
anchors=$(cd "${1:?usage: job-decoding.sh <folder holding e2e2.py>}" && pwd)
out=${OUT:-bench-results/job-decoding}
n=${N:-8192}
mkdir -p "$out"
{ date -u; nvidia-smi -L; nproc; } > "$out/machine.txt" 2>&1
common=(files --models resnet-50 --files "$n" --image-folder /tmp/e2e_imgs --anchor-images --batches "${BATCH:-1024}"
        --seconds-per-size "${SECONDS_PER_SIZE:-0.3}" --max-cpu-batch 32 --repeats 1 --precision "${PRECISION:-Tf32}")
# both GPUs (WHOLE=1: with the CPU as one more unit), decoding on the GPUs, then (DECODE_ON) on CPU threads only
cpu=(--no-cpu); [ "${WHOLE:-0}" = 1 ] && cpu=(--cpu-group All)
timeout "${WHOLE_TIMEOUT:-260}" "$HB_APP/HeteroBatch.Bench" "${common[@]}" "${cpu[@]}" --decode-on "${DECODE_ON:-auto,cpu}" --out "$out/whole" 2>&1 | tee "$out/whole.log" | grep -v "^\s*$" | tail -25
# one GPU alone, decoding on it (GPU1=0 leaves it out)
[ "${GPU1:-1}" = 1 ] && timeout "${GPU1_TIMEOUT:-150}" "$HB_APP/HeteroBatch.Bench" "${common[@]}" --no-cpu --gpus 1 --decode-on auto --out "$out/gpu1" 2>&1 | tee "$out/gpu1.log" | grep -v "^\s*$" | tail -12
[ "${ANCHOR:-1}" = 1 ] || exit 0
cd "$anchors" && N=$n OUT="$out" PYTHONUNBUFFERED=1 timeout "${ANCHOR_TIMEOUT:-150}" python3 e2e2.py 2>&1 | tee "$out/anchor.log" | tail -5
