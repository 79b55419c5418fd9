#!/bin/bash
# GPU machine side: the module's GPU suite (tools/gpu/Gpu.Tests.ps1) with the PowerShell, .NET and
# Pester that pack-module-suite.sh carried, after `source /tmp/hb/assemble.sh`. Writes the Pester
# output to $OUT/gpu-suite.log.
set -uo pipefail
out=${OUT:-/tmp}
export DOTNET_ROOT=$HB_APP/dotnet DOTNET_CLI_TELEMETRY_OPTOUT=1 POWERSHELL_TELEMETRY_OPTOUT=1
export HETEROBATCH_TEST_MODULE=$HB_APP/module/HeteroBatch.psd1
"$DOTNET_ROOT/dotnet" "$HB_APP/pwsh/pwsh.dll" -NoProfile -NonInteractive -Command "
  Import-Module '$HB_APP/pester/Pester.psd1'
  \$c = New-PesterConfiguration; \$c.Run.Path = '$(pwd)/tools/gpu/Gpu.Tests.ps1'; \$c.Output.Verbosity = 'Detailed'; \$c.Run.PassThru = \$true
  \$r = Invoke-Pester -Configuration \$c
  '{0} passed, {1} failed, {2} skipped' -f \$r.PassedCount, (\$r.FailedCount + \$r.FailedBlocksCount + \$r.FailedContainersCount), \$r.SkippedCount
" 2>&1 | tee "$out/gpu-suite.log"
