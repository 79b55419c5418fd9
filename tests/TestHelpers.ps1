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

# A fresh profile store for one test file: this session's module uses it (Set-HeteroBatchOption:
# the module read the environment when it was imported), and so do child processes (the variable).
function New-TestStore {
    $dir = Join-Path ([System.IO.Path]::GetTempPath()) ("hb-store-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory $dir | Out-Null
    $env:HETEROBATCH_PROFILE_PATH = $dir
    if (Get-Command Set-HeteroBatchOption -ErrorAction Ignore) { Set-HeteroBatchOption -ProfilePath $dir }
    $dir
}

# Test only: the unit with this id fails (InjectedFailure) after $After sub-batches in every run of
# this session's module, until Clear-TestFailure. Sets the engine context's internal hook, which
# nothing in the module sets and no environment variable reaches.
function Set-TestFailure([string] $UnitId, [int] $After) {
    $context = [HeteroBatch.ModuleContext]::Current
    $hook = $context.GetType().GetProperty('InjectFailure', [System.Reflection.BindingFlags]'Instance,NonPublic')
    $hook.SetValue($context, [System.ValueTuple]::Create($UnitId, $After))
}

function Clear-TestFailure {
    $context = [HeteroBatch.ModuleContext]::Current
    $context.GetType().GetProperty('InjectFailure', [System.Reflection.BindingFlags]'Instance,NonPublic').SetValue($context, $null)
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

# Runs a script in a fresh pwsh whose memory is capped at $Bytes (a cgroup v1 memory group where
# this machine lets root make one; otherwise the .NET heap limit alone). Returns what
# Invoke-ChildPwsh returns, plus OomKilled: whether the kernel stopped it for memory.
function Invoke-ChildPwshLimited([string] $Script, [long] $Bytes) {
    $exe = (Get-Process -Id $PID).Path
    $prefix = @(if ([System.IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { Join-Path $PSHOME 'pwsh.dll' })
    $group = "/sys/fs/cgroup/memory/heterobatch-test-$([guid]::NewGuid().ToString('N'))"
    $useGroup = $false
    try { New-Item -ItemType Directory $group -ErrorAction Stop | Out-Null; Set-Content "$group/memory.limit_in_bytes" $Bytes -ErrorAction Stop; $useGroup = $true } catch { }
    $errFile = [System.IO.Path]::GetTempFileName()
    try {
        if ($useGroup) {
            $stdout = & /bin/sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh $group $exe @prefix -NoProfile -NonInteractive -Command $Script 2> $errFile
        }
        else {
            $env:DOTNET_GCHeapHardLimit = '{0:X}' -f $Bytes
            try { $stdout = & $exe @prefix -NoProfile -NonInteractive -Command $Script 2> $errFile }
            finally { Remove-Item Env:DOTNET_GCHeapHardLimit }
        }
        $code = $LASTEXITCODE
        $oom = $useGroup -and ((Get-Content "$group/memory.oom_control" -Raw) -match 'oom_kill [1-9]')
        [pscustomobject]@{ ExitCode = $code; Stdout = ($stdout -join "`n"); Stderr = (Get-Content -Raw $errFile); OomKilled = $oom; Limited = $useGroup }
    }
    finally {
        Remove-Item $errFile -ErrorAction Ignore
        if ($useGroup) { Start-Sleep -Milliseconds 200; & /bin/rmdir $group 2>$null }
    }
}

# Starts a command in a PowerShell of its own with the module loaded, stops it as Ctrl+C does as
# soon as $Until returns true (polled every 20 ms, for at most $TimeoutSeconds), and says how long
# stopping took and how the command ended. A stop tied to the command's own progress, not to a clock.
function Stop-CommandWhen([string] $Command, [hashtable] $Parameters, [scriptblock] $Until, [int] $TimeoutSeconds = 120) {
    $ps = [powershell]::Create()
    try {
        [void]$ps.AddCommand('Import-Module').AddArgument($env:HETEROBATCH_TEST_MODULE).AddStatement()
        [void]$ps.AddCommand($Command)
        foreach ($k in $Parameters.Keys) { [void]$ps.AddParameter($k, $Parameters[$k]) }
        $handle = $ps.BeginInvoke()
        $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
        while (-not $handle.IsCompleted -and -not (& $Until) -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 20 }
        $clock = [Diagnostics.Stopwatch]::StartNew()
        $ps.Stop()
        $completed = $handle.AsyncWaitHandle.WaitOne(10000)
        [pscustomobject]@{ StopSeconds = $clock.Elapsed.TotalSeconds; Completed = $completed; State = $ps.InvocationStateInfo.State }
    }
    finally { $ps.Dispose() }
}

# A folder of JPEGs: $Distinct noise images (so outputs differ; image k is $Size[0] + k*$Size[1] by
# $Size[2] + k*$Size[3] pixels, from a generator seeded with $Seed) copied under $Count names.
function New-JpegFolder([string] $Path, [int] $Count, [int] $Distinct = 6, [int] $Seed = 3, [int[]] $Size = (60, 11, 45, 7)) {
    [HeteroBatch.Engine.Runtime.NativeLibraries]::Register()
    New-Item -ItemType Directory $Path -Force | Out-Null
    $rng = [Random]::new($Seed)
    $bytes = for ($k = 0; $k -lt $Distinct; $k++) {
        $w = $Size[0] + $Size[1] * $k; $h = $Size[2] + $Size[3] * $k
        $px = [byte[]]::new($w * $h * 4); $rng.NextBytes($px)
        $bmp = [SkiaSharp.SKBitmap]::new([SkiaSharp.SKImageInfo]::new($w, $h, 'Rgba8888', 'Unpremul'))
        [Runtime.InteropServices.Marshal]::Copy($px, 0, $bmp.GetPixels(), $px.Length)
        $data = $bmp.Encode('Jpeg', 90)
        , $data.ToArray()
        $data.Dispose(); $bmp.Dispose()
    }
    for ($i = 0; $i -lt $Count; $i++) { [IO.File]::WriteAllBytes((Join-Path $Path ('img{0:D5}.jpg' -f $i)), $bytes[$i % $Distinct]) }
    $Path
}
