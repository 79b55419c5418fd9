# Shared by the Pester tests: dot-source in BeforeAll.

# Runs a script in a fresh pwsh process (as a user's new shell would); returns exit code, stdout and stderr.
function Invoke-ChildPwsh([string] $Script) {
    $exe = (Get-Process -Id $PID).Path
    $prefix = @(if ([System.IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { Join-Path $PSHOME 'pwsh.dll' })
    $errFile = [System.IO.Path]::GetTempFileName()
    $stdout = & $exe @prefix -NoProfile -NonInteractive -Command $Script 2> $errFile
    $code = $LASTEXITCODE
    $stderr = Get-Content -Raw $errFile
    Remove-Item $errFile
    [pscustomobject]@{ ExitCode = $code; Stdout = ($stdout -join "`n"); Stderr = $stderr }
}

# A fresh profile store for one test file.
function New-TestStore {
    $dir = Join-Path ([System.IO.Path]::GetTempPath()) ("hb-store-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory $dir | Out-Null
    $env:HETEROBATCH_PROFILE_PATH = $dir
    $dir
}
