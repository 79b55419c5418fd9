#requires -Version 7.4
<#
.SYNOPSIS
    HeteroBatch's one entry point: Build, Test, Demo, Bench, Clean.
.DESCRIPTION
    Run from the repository root after `dotnet tool restore`:
        dotnet pwsh -NoProfile -File build.ps1 Demo   # the main job
        dotnet pwsh -NoProfile -File build.ps1 Test   # every test; prints "N passed, N failed"
    Build publishes the module into out/HeteroBatch (manifest, assemblies, natives, formats, help).
#>
[CmdletBinding()]
param(
    [Parameter(Position = 0)]
    [ValidateSet('Build', 'Test', 'Demo', 'Bench', 'Clean')]
    [string] $Task = 'Build',

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',

    # Demo: the model and batch size of the main job.
    [string] $Model = 'mobilenet',
    [ValidateRange(1, 100000)]
    [int] $BatchSize = 64,

    # Bench: a short smoke run instead of the full one.
    [switch] $Quick
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$env:NO_COLOR = '1'
$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'
$env:DOTNET_NOLOGO = '1'
$root = $PSScriptRoot
$out = Join-Path $root 'out'
$moduleDir = Join-Path $out 'HeteroBatch'

function Invoke-Native([string] $what, [scriptblock] $command) {
    & $command
    if ($LASTEXITCODE -ne 0) { throw "$what failed (exit code $LASTEXITCODE)" }
}

function Get-Version {
    $props = [xml](Get-Content -Raw (Join-Path $root 'Directory.Build.props'))
    return ($props.Project.PropertyGroup | Where-Object { $_['Version'] } | Select-Object -First 1).Version
}

function Invoke-Build {
    Write-Host "Building HeteroBatch ($Configuration) into $moduleDir"
    Invoke-Native 'dotnet publish' { dotnet publish (Join-Path $root 'src/HeteroBatch/HeteroBatch.csproj') -c $Configuration -o $moduleDir --nologo -v quiet }
    $version = Get-Version
    $manifest = Get-Content -Raw (Join-Path $root 'HeteroBatch.psd1')
    $manifest = $manifest -replace "ModuleVersion\s*=\s*'[^']*'", "ModuleVersion        = '$version'"
    Set-Content -Path (Join-Path $moduleDir 'HeteroBatch.psd1') -Value $manifest -NoNewline
    $help = Join-Path $moduleDir 'en-US'
    New-Item -ItemType Directory -Force $help | Out-Null
    Copy-Item (Join-Path $root 'en-US/*.txt') $help -Force
    Copy-Item (Join-Path $root 'LICENSE') $moduleDir -Force
    # MAML from the help source and the built cmdlets' own metadata, in a child pwsh
    Invoke-Native 'help generation' { dotnet pwsh -NoProfile -File (Join-Path $root 'en-US/New-MamlHelp.ps1') -ModulePath (Join-Path $moduleDir 'HeteroBatch.psd1') -Source (Join-Path $root 'en-US/HeteroBatch.help.psd1') -Destination (Join-Path $help 'HeteroBatch.dll-Help.xml') }
    # build leftovers that are not part of the module
    Get-ChildItem $moduleDir -Filter '*.pdb' | Remove-Item -Force
    Write-Host "Built HeteroBatch $version"
}

function Invoke-Test {
    Invoke-Build
    $passed = 0; $failed = 0; $skipped = 0

    Write-Host "`n== xunit: engine tests"
    $xunitLog = Join-Path $out 'xunit.log'
    dotnet test (Join-Path $root 'tests/HeteroBatch.Engine.Tests/HeteroBatch.Engine.Tests.csproj') -c $Configuration --nologo 2>&1 | Tee-Object -FilePath $xunitLog | Write-Host
    $summary = Select-String -Path $xunitLog -Pattern 'Failed:\s+(\d+), Passed:\s+(\d+), Skipped:\s+(\d+)' | Select-Object -Last 1
    if ($summary) {
        $failed += [int]$summary.Matches[0].Groups[1].Value
        $passed += [int]$summary.Matches[0].Groups[2].Value
        $skipped += [int]$summary.Matches[0].Groups[3].Value
    }
    elseif ($LASTEXITCODE -ne 0) { $failed++ ; Write-Host 'xunit did not run (build failure?)' }

    Write-Host "`n== Pester: the module as users drive it"
    Invoke-Native 'dotnet restore tests/tools' { dotnet restore (Join-Path $root 'tests/tools/tools.csproj') --nologo -v quiet }
    $pesterResult = Join-Path $out 'pester-result.json'
    Remove-Item $pesterResult -ErrorAction Ignore
    # a child pwsh, so the module under test loads into a clean process
    dotnet pwsh -NoProfile -File (Join-Path $root 'tests/Invoke-PesterRun.ps1') -ModulePath (Join-Path $moduleDir 'HeteroBatch.psd1') -ResultPath $pesterResult
    if (Test-Path $pesterResult) {
        $p = Get-Content -Raw $pesterResult | ConvertFrom-Json
        $passed += $p.Passed; $failed += $p.Failed; $skipped += $p.Skipped
    }
    else { $failed++; Write-Host 'Pester did not report a result' }

    $line = "$passed passed, $failed failed"
    if ($skipped) { $line += ", $skipped skipped" }
    Write-Host ''
    Write-Host $line
    if ($failed -gt 0) { exit 1 }
}

# The main job, as a user would type it: units, profile, plan, run. In a child pwsh so that the
# module loads into a fresh session.
$demo = @'
param($ModulePath, $Model, $BatchSize)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
Write-Host "`n> Get-ComputeUnit -CpuGroup Core"
$units = Get-ComputeUnit -CpuGroup Core
$units | Format-Table | Out-String -Width 160 | Write-Host
Write-Host "> `$profiles = `$units | Invoke-Profile -Model $Model -MaxBatchSize 16"
$profiles = $units | Invoke-Profile -Model $Model -MaxBatchSize 16
$profiles | Format-Table | Out-String -Width 160 | Write-Host
Write-Host "> `$profiles[0].Table"
$profiles[0].Table | Format-Table | Out-String -Width 160 | Write-Host
Write-Host "> `$plan = `$profiles | Get-BatchPlan -BatchSize $BatchSize"
$plan = $profiles | Get-BatchPlan -BatchSize $BatchSize
$plan | Format-Table | Out-String -Width 160 | Write-Host
$plan.Shards | Format-Table | Out-String -Width 160 | Write-Host
Write-Host "> `$result = `$plan | Invoke-PartitionedInference"
$result = $plan | Invoke-PartitionedInference
$result | Format-Table | Out-String -Width 160 | Write-Host
$result.Units | Format-Table | Out-String -Width 160 | Write-Host
Write-Host ("Top-1 classes of the first 10 samples (random weights): " + ($result.Top1[0..9] -join ', '))
# what earlier runs (this store's, a Demo before this one) did to the plan: Calibrated, CostsFrom, Note
Write-Host "`nCalibrated: $($plan.Calibrated); costs from $($plan.CostsFrom)$(if ($plan.Note) { "; $($plan.Note)" })"
Write-Host "`n> `$alone = `$profiles | Get-BatchPlan -BatchSize $BatchSize -Algorithm Single | Invoke-PartitionedInference"
$single = $profiles | Get-BatchPlan -BatchSize $BatchSize -Algorithm Single
$alone = $single | Invoke-PartitionedInference
$alone | Format-Table | Out-String -Width 160 | Write-Host
$speedup = if ($result.WallMs -gt 0) { $alone.WallMs / $result.WallMs } else { 0 }
Write-Host ("The plan ({0}) took {1:F1} ms, predicted {2:F1}; {3} alone took {4:F1} ms, predicted {5:F1}: measured speedup {6:F2}x, predicted {7:F2}x" -f
    $plan.Split, $result.WallMs, $result.PredictedMs, $single.BestSingleUnit, $alone.WallMs, $alone.PredictedMs, $speedup, $plan.PredictedSpeedup)
'@

function Invoke-Demo {
    Invoke-Build
    $script = Join-Path $out 'demo.ps1'
    Set-Content -Path $script -Value $demo
    dotnet pwsh -NoProfile -File $script -ModulePath (Join-Path $moduleDir 'HeteroBatch.psd1') -Model $Model -BatchSize $BatchSize
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}

function Invoke-Bench {
    Write-Host 'Building the benchmark'
    $benchDir = Join-Path $out 'bench'
    Invoke-Native 'dotnet publish bench' { dotnet publish (Join-Path $root 'src/HeteroBatch.Bench/HeteroBatch.Bench.csproj') -c Release -o $benchDir --nologo -v quiet }
    # this machine's CPU cores as units; the GPU machine's run is described in bench-reports/
    $benchArgs = @('--out', (Join-Path $root 'bench-results'), '--cpu-group', 'Core')
    $benchArgs += if ($Quick) { '--quick' } else { '--models', 'mobilenet,squeezenet_v1.1', '--batches', '100,256', '--repeats', '5', '--sweep', 'resnet-50' }
    & (Join-Path $benchDir 'HeteroBatch.Bench') @benchArgs
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}

switch ($Task) {
    'Build' { Invoke-Build }
    'Test' { Invoke-Test }
    'Demo' { Invoke-Demo }
    'Bench' { Invoke-Bench }
    'Clean' {
        Remove-Item -Recurse -Force $out -ErrorAction Ignore
        Get-ChildItem $root -Recurse -Directory -Include bin, obj | Remove-Item -Recurse -Force
        Write-Host 'Cleaned out/, bin/ and obj/'
    }
}
