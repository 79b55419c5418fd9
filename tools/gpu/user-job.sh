#!/bin/bash
# GPU machine side: the file job as a user runs it, each step in a fresh PowerShell process (after
# `source /tmp/hb/assemble.sh` of pack-module-suite.sh's parts): the GPUs are profiled into a store
# by one process; another plans from that store and runs the job over the JPEG folder with
# -OutputPath, and reports the job's summary and its own peak RSS (/proc VmHWM: libraries, sessions
# and the job together). Both GPUs, then gpu0 alone.
# MEMORY=1 also samples each job process's memory (tools/gpu/rss-sampler.sh: what its highest RSS
# was made of) and prints its largest mappings after the job (tools/gpu/smaps-top.ps1).
#   OUT=... bash tools/gpu/user-job.sh /tmp/e2e_imgs
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
folder=${1:?usage: user-job.sh <folder of JPEGs>}
out=${OUT:-/tmp}; precision=${PRECISION:-Tf32}; batch=${BATCH:-1024}; model=${MODEL:-resnet-50}; kind=${KIND:-Gpu}
store=$(mktemp -d /tmp/hb-user-store.XXXX)
export DOTNET_ROOT=$HB_APP/dotnet DOTNET_CLI_TELEMETRY_OPTOUT=1 POWERSHELL_TELEMETRY_OPTOUT=1
ps() { "$DOTNET_ROOT/dotnet" "$HB_APP/pwsh/pwsh.dll" -NoProfile -NonInteractive -Command "Import-Module '$HB_APP/module/HeteroBatch.psd1'; $1"; }
ps "Get-ComputeUnit -Precision $precision | Where-Object Kind -EQ $kind |
    Invoke-Profile -Model $model -BatchSize ${PROFILE_SIZES:-64, 128, 256, 512} -SecondsPerSize 0.3 -ProfilePath '$store' |
    Format-Table Unit, Precision, Table -AutoSize | Out-String -Width 200" 2>&1 | tee "$out/user-profile.log"
for units in ${SETS:-gpu0,gpu1 gpu0}; do
  for decode in ${DECODES:-Auto Cpu}; do
    [ "${units#*,}" = "$units" ] && [ "$decode" = Cpu ] && continue # one unit: GPU decoding only
    marks=$(mktemp -d /tmp/hb-user-marks.XXXX) # the job's process id, then a mark that the job ended (the sampler stops before the diagnostics)
    if [ "${MEMORY:-0}" = 1 ]; then
      ( while [ ! -s "$marks/pid" ]; do sleep 0.05; done
        bash "$here/rss-sampler.sh" "$(cat "$marks/pid")" "units $units, decode $decode" "$marks/done" >> "$out/user-job.log" ) &
    fi
    ps "Set-Content '$marks/pid' \$PID
      \$plan = Get-BatchPlan -ProfilePath '$store' -Model $model -BatchSize $batch -Unit $(echo $units | sed "s/\([a-z0-9]*\)/'\1'/g")
      \$sw = [Diagnostics.Stopwatch]::StartNew()
      \$n = (Get-ChildItem '$folder' -Filter *.jpg | Invoke-PartitionedInference -Plan \$plan -DecodeOn $decode -OutputPath '$store/job-$units-$decode' -Force -InformationVariable job | Measure-Object).Count
      \$s = \$job.MessageData
      'units $units, decode $decode: {0} rows in {1:F0} ms as the user waits; job {2:F1} images/s, blocks of {3}, set-up {4:F0} ms' -f \$n, \$sw.Elapsed.TotalMilliseconds, \$s.ImagesPerSecond, \$s.BlockSize, \$s.SetupMs
      'peak RSS of this process {0:F0} MiB (job summary {1:F0} MiB; {2:F0} MiB after the job set-up, of which block buffers {3:F0} MiB)' -f (((Get-Content /proc/self/status | Select-String 'VmHWM') -replace '\\D', '' -as [double]) / 1024), (\$s.PeakResidentBytes / 1MB), (\$s.ResidentAfterSetupBytes / 1MB), (\$s.BlockBufferBytes / 1MB)
      if (\$s.FedInputs) { 'units fed by CPU threads take: ' + \$s.FedInputs }
      \$s.Note; \$s.UnitDecoding; \$s.StageRates
      Set-Content '$marks/done' 1
      if ('${MEMORY:-0}' -eq '1') { Start-Sleep -Milliseconds 200; \$env:MEMORY_TOP = 20; . '$here/smaps-top.ps1' }" 2>&1 | tee -a "$out/user-job.log"
    wait
    rm -rf "$marks"
  done
done
rm -rf "$store"
