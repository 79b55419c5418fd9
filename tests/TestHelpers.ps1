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

# Starts a command in a PowerShell of its own with the module loaded, stops it as Ctrl+C does
# after a delay, and says how long stopping took and how the command ended.
function Stop-CommandAfter([string] $Command, [hashtable] $Parameters, [int] $Milliseconds) {
    $ps = [powershell]::Create()
    try {
        [void]$ps.AddCommand('Import-Module').AddArgument($env:HETEROBATCH_TEST_MODULE).AddStatement()
        [void]$ps.AddCommand($Command)
        foreach ($k in $Parameters.Keys) { [void]$ps.AddParameter($k, $Parameters[$k]) }
        $handle = $ps.BeginInvoke()
        Start-Sleep -Milliseconds $Milliseconds
        $clock = [Diagnostics.Stopwatch]::StartNew()
        $ps.Stop()
        $completed = $handle.AsyncWaitHandle.WaitOne(10000)
        # StopSeconds: from Ctrl+C until the command had ended
        [pscustomobject]@{ StopSeconds = $clock.Elapsed.TotalSeconds; Completed = $completed; State = $ps.InvocationStateInfo.State }
    }
    finally { $ps.Dispose() }
}
