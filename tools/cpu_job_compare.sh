#!/usr/bin/env bash
# The CPU-only file job as a user runs it, this build against the project's first version's
# (commit 55ad0bf), interleaved in one call on the same files: old, new, old, new, ... each run in a
# fresh PowerShell process, for the report under bench-reports/cpu-job-vs-v1-2core/.
#
#   tools/cpu_job_compare.sh <v1 module .psd1> <new module .psd1> <HeteroBatch.Bench executable> <work folder> [rounds] [batch]
#
# The job: <files> (2,000) photo-like 500x375 JPEGs (made once by the bench, as `bench files` and
# `bench prep` make them) through the built-in mobilenet on Get-ComputeUnit -CpuGroup Core's
# units (two single-core units on the 2-vCPU VM), each version profiled once, before the runs,
# into a profile store and a model cache of its own (Invoke-Profile as its README says), then:
#   $plan = Get-BatchPlan -Model mobilenet -BatchSize <batch>
#   $r = Get-ChildItem <images> -Filter *.jpg | Invoke-PartitionedInference -Plan $plan -OutputPath <fresh folder>
# Recorded per run: the command's wall time (a stopwatch around that one pipeline, as the user
# waits for it), the job's own images/s where it reports one, the PowerShell process's peak RSS
# (VmHWM, read in the process at its end) and /usr/bin/time -v's Maximum resident set size for
# the whole process, and the load average before the run (the VM is shared with other builds).
# Run from inside a worktree of the repository (`dotnet pwsh` is a local tool).
set -euo pipefail
v1=$(realpath "$1"); new=$(realpath "$2"); bench=$(realpath "$3"); work=$4; rounds=${5:-3}; batch=${6:-64}
files=${FILES:-2000}
mkdir -p "$work"; work=$(realpath "$work")
images=$work/images
date -u
lscpu | grep -E '^(Model name|CPU\(s\))' || true
grep MemTotal /proc/meminfo
uptime
echo "v1 module: $v1"; echo "new module: $new"; echo "files: $files, plan batch: $batch, rounds: $rounds"

# the files, once (not timed): the bench's 500x375 generator (hard links to 32 distinct images)
"$bench" prep --image-folder "$images" --files "$files" --large 0 | grep -E '^prep' || true
echo "images: $(find "$images" -maxdepth 1 -name '*.jpg' | wc -l) jpg files, $(du -sL "$images" --apparent-size | cut -f1) KB apparent"

ps1=$work/job.ps1
cat > "$ps1" <<'EOF'
param([string] $Module, [string] $Images, [string] $Out, [int] $Batch, [string] $Label)
$ErrorActionPreference = 'Stop'
Import-Module $Module
$plan = Get-BatchPlan -Model mobilenet -BatchSize $Batch
"plan: $(($plan.Shards | ForEach-Object { "$($_.UnitId):$($_.Count) (sub-batch $($_.SubBatchSize))" }) -join ' + ')"
$sw = [Diagnostics.Stopwatch]::StartNew()
$r = Get-ChildItem $Images -Filter *.jpg | Invoke-PartitionedInference -Plan $plan -OutputPath $Out -InformationVariable job
$sw.Stop()
$hwm = ((Get-Content /proc/self/status) -match '^VmHWM') -replace '\D', ''
$rate = ''
if ($job.Count -gt 0) {
    $s = $job[-1].MessageData
    $s | Format-List Model, Samples, SamplesRun, SamplesFailed, SetupMs, WallMs, ImagesPerSecond, BlockSize, Blocks, DecodeThreads, Preprocessing, Stages, Note, PeakResidentBytes | Out-String -Width 200
    $rate = '{0:F1}' -f $s.ImagesPerSecond
} else {
    # the first version: decodes every file first, then runs; its WallMs and images/s are the inference alone
    $res = @($r)[-1]
    "v1 result: BatchSize $($res.BatchSize), WallMs $('{0:F1}' -f $res.WallMs), WarmupMs $('{0:F1}' -f $res.WarmupMs), ImagesPerSecond (inference only) $('{0:F1}' -f $res.ImagesPerSecond)"
    $res.Units | Format-Table UnitId, Count, SubBatches, Ms, PredictedMs | Out-String -Width 200
    $rate = 'n/a'
}
"outputs: $((Get-ChildItem $Out | ForEach-Object { "$($_.Name) $($_.Length)" }) -join ', ')"
"RESULT $Label job_s=$('{0:F3}' -f $sw.Elapsed.TotalSeconds) job_images_per_s=$rate vmhwm_kb=$hwm"
EOF

for v in v1 new; do
  mkdir -p "$work/store-$v" "$work/cache-$v"
done
profile() {
  local v=$1 mod=$2
  echo "== profile $v $(date -u +%T) load: $(cut -d' ' -f1-3 /proc/loadavg)"
  HETEROBATCH_PROFILE_PATH=$work/store-$v HETEROBATCH_CACHE=$work/cache-$v \
    dotnet pwsh -NoProfile -c "Import-Module '$mod'; Get-ComputeUnit -CpuGroup Core | Invoke-Profile -Model mobilenet -MaxBatchSize $batch | Format-Table UnitId, Model, MaxBatchSize, BestImagesPerSecond | Out-String -Width 200"
}
if [ ! -f "$work/profiled" ]; then
  profile v1 "$v1"; profile new "$new"; touch "$work/profiled"
fi

run() {
  local v=$1 mod=$2 r=$3 out=$work/out-$1-$3
  rm -rf "$out"
  echo "== round $r $v $(date -u +%T) load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  HETEROBATCH_PROFILE_PATH=$work/store-$v HETEROBATCH_CACHE=$work/cache-$v \
    /usr/bin/time -v -o "$work/time-$v-$r.txt" dotnet pwsh -NoProfile -File "$ps1" -Module "$mod" -Images "$images" -Out "$out" -Batch "$batch" -Label "$v round=$r"
  echo "time -v: $(grep -E 'Elapsed \(wall|Maximum resident|User time|System time|Percent of CPU' "$work/time-$v-$r.txt" | sed 's/^\s*//' | tr '\n' ';')"
  rm -rf "$out"
}
for r in $(seq 1 "$rounds"); do
  run v1 "$v1" "$r"
  run new "$new" "$r"
done
echo "== done $(date -u +%T) load: $(cut -d' ' -f1-3 /proc/loadavg)"
