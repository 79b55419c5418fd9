<#
.SYNOPSIS
    Runs the Pester tests against a built module and writes the counts as JSON (build.ps1 Test calls it in a child pwsh).
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $ResultPath,
    [string] $PesterVersion = '5.7.1'
)
$ErrorActionPreference = 'Stop'
$packages = (dotnet nuget locals global-packages --list) -replace '^global-packages:\s*', ''
$pester = Join-Path $packages.Trim() "pester/$PesterVersion/tools/Pester.psd1"
if (-not (Test-Path $pester)) { throw "Pester $PesterVersion not found at $pester; run: dotnet restore tests/tools" }
Import-Module $pester -Force

# the tests read these; each test file makes its own profile store, the model cache is shared
$env:HETEROBATCH_TEST_MODULE = (Resolve-Path $ModulePath).Path
$env:HETEROBATCH_CACHE = Join-Path ([System.IO.Path]::GetTempPath()) 'heterobatch-pester-cache'

$config = New-PesterConfiguration
$config.Run.Path = $PSScriptRoot
$config.Run.PassThru = $true
$config.Output.Verbosity = 'Detailed'
$result = Invoke-Pester -Configuration $config
@{
    Passed  = $result.PassedCount
    Failed  = $result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount
    Skipped = $result.SkippedCount
} | ConvertTo-Json | Set-Content -Path $ResultPath
