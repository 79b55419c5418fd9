# Inference servers as compute units, on loopback: a HeteroBatch server in a process of its own
# (Start-InferenceServer -Wait), this session as its client.
BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    Import-Module $env:HETEROBATCH_TEST_MODULE -Force
    $script:store = New-TestStore

    function Get-FreePort {
        $l = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0)
        $l.Start(); $port = $l.LocalEndpoint.Port; $l.Stop()
        $port
    }

    # a server process serving tinynet from its own CPU unit; returns the process once the server is ready
    function Start-ServerProcess([int] $Port, [string] $Protocol = 'Rest') {
        $exe = (Get-Process -Id $PID).Path
        $prefix = @(if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { Join-Path $PSHOME 'pwsh.dll' })
        $script = "Import-Module '$env:HETEROBATCH_TEST_MODULE'; Get-ComputeUnit | Invoke-Profile -Model tinynet -BatchSize 1, 4, 16 -SecondsPerSize 0.05 -NoStore | Get-BatchPlan -BatchSize 16 | Start-InferenceServer -Port $Port -Protocol $Protocol -Wait"
        $log = Join-Path ([IO.Path]::GetTempPath()) "hb-server-$Port.log"
        $process = Start-Process $exe -ArgumentList (@($prefix) + @('-NoProfile', '-NonInteractive', '-Command', $script)) -PassThru -RedirectStandardOutput $log -RedirectStandardError "$log.err"
        $clock = [Diagnostics.Stopwatch]::StartNew()
        while ($clock.Elapsed.TotalSeconds -lt 60) {
            if ($Protocol -eq 'Grpc') {
                if ((Get-ComputeUnit -Endpoint "grpc://127.0.0.1:$Port" -ListAvailable).Available) { return $process }
                Start-Sleep -Milliseconds 200
                continue
            }
            try { Invoke-RestMethod "http://127.0.0.1:$Port/v2/health/ready" -TimeoutSec 2 | Out-Null; return $process } catch { Start-Sleep -Milliseconds 100 }
        }
        $process.Kill()
        throw "the server on port $Port did not become ready"
    }

    # a 6,000-sample run split evenly with the remote unit, one sample a request (so that the run is
    # still going), whose server process is killed 2.5 s in: every sample has an output, as cpu0 alone computes it
    function Assert-KillMidRunLosesNothing($Remote, $ServerProcess) {
        $ones = @($local) + @($Remote) | Invoke-Profile -Model tinynet -BatchSize 1 -SecondsPerSize 0.05 -NoStore
        $plan = $ones | Get-BatchPlan -BatchSize 6000 -Algorithm Even
        $ps = [powershell]::Create()
        [void]$ps.AddScript({ param($m, $p) Import-Module $m; $p | Invoke-PartitionedInference -Seed 9 -WarningAction SilentlyContinue }).AddArgument($env:HETEROBATCH_TEST_MODULE).AddArgument($plan)
        $handle = $ps.BeginInvoke()
        Start-Sleep -Milliseconds 2500
        $ServerProcess.Kill()
        $r = $ps.EndInvoke($handle)[0]
        $ps.Dispose()
        $r.Complete | Should -BeTrue
        ($r.Units | Measure-Object Count -Sum).Sum | Should -Be 6000
        $lost = $r.Units | Where-Object UnitId -EQ 'remote0'
        $lost.Failed | Should -BeTrue
        $lost.Count | Should -BeLessThan 3000
        $alone = $ones[0] | Get-BatchPlan -BatchSize 6000 | Invoke-PartitionedInference -Seed 9
        $r.Outputs[0].AsFloats() | Should -Be $alone.Outputs[0].AsFloats()
    }

    $script:port = Get-FreePort
    $script:server = Start-ServerProcess $port
    $script:url = "http://127.0.0.1:$port"
    $script:local = Get-ComputeUnit -CpuGroup 1
}

AfterAll {
    if ($server -and -not $server.HasExited) { $server.Kill(); $server.WaitForExit() }
    Get-InferenceServer | Stop-InferenceServer
}

Describe 'A remote unit' {
    It 'is listed by its address, profiled, and split with the local CPU; the outputs equal a local run' {
        $remote = Get-ComputeUnit -Endpoint $url
        $remote.Id | Should -Be 'remote0'
        $remote.Kind | Should -Be 'Remote'
        $remote.Endpoint | Should -Be "$url/"
        $profiles = @($local) + @($remote) | Invoke-Profile -Model tinynet -BatchSize 1, 4, 16 -SecondsPerSize 0.05 -NoStore
        $profiles.Count | Should -Be 2
        $plan = $profiles | Get-BatchPlan -BatchSize 48 -Algorithm Even
        $split = $plan | Invoke-PartitionedInference -Seed 7
        ($split.Units | Where-Object UnitId -EQ 'remote0').Count | Should -Be 24
        $alone = $profiles[0] | Get-BatchPlan -BatchSize 48 | Invoke-PartitionedInference -Seed 7
        $split.Outputs[0].AsFloats() | Should -Be $alone.Outputs[0].AsFloats()
    }

    It 'is asked about -Model at discovery: a model its server does not serve makes it unavailable, with the ErrorId that said so' {
        $before = (Invoke-RestMethod "$url/v2/models/tinynet/stats").model_stats[0].execution_count
        $ready = Get-ComputeUnit -Endpoint $url -Model tinynet
        $ready.Available | Should -BeTrue
        # the probe ran one request of one sample (the statistics extension counts it)
        (Invoke-RestMethod "$url/v2/models/tinynet/stats").model_stats[0].execution_count | Should -Be ($before + 1)
        { Get-ComputeUnit -Endpoint $url -Model resnet-50 -ErrorAction Stop } | Should -Throw -ErrorId 'RemoteModelNotFound,HeteroBatch.Commands.GetComputeUnitCommand'
        Get-ComputeUnit -Endpoint $url -Model resnet-50 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $listed = Get-ComputeUnit -Endpoint $url -Model resnet-50 -ListAvailable
        $listed.Available | Should -BeFalse
        $listed.Reason | Should -Match "cannot run 'resnet-50'"
    }

    It 'takes the bearer token its server requires as -Token or -Credential, keeps it with the unit, and never shows it' {
        $p = Get-FreePort
        $s = $local | Invoke-Profile -Model tinynet -BatchSize 1, 4 -SecondsPerSize 0.05 -NoStore | Get-BatchPlan -BatchSize 4 | Start-InferenceServer -Port $p -Token 'p4ss-w0rd'
        try {
            $secret = ConvertTo-SecureString 'p4ss-w0rd' -AsPlainText -Force
            $unit = Get-ComputeUnit -Endpoint "http://127.0.0.1:$p" -Token $secret
            "$($unit.Token)" | Should -Be '********'
            ($unit | Format-List * | Out-String) + ($unit | ConvertTo-Json -Depth 4) | Should -Not -Match 'p4ss'
            ($unit | Invoke-Profile -Model tinynet -BatchSize 1 -SecondsPerSize 0.02 -NoStore).Table.Count | Should -Be 1
            $byCredential = Get-ComputeUnit -Endpoint "http://127.0.0.1:$p" -Credential ([pscredential]::new('anyone', $secret))
            ($byCredential | Invoke-Profile -Model tinynet -BatchSize 1 -SecondsPerSize 0.02 -NoStore).Table.Count | Should -Be 1
            # the same server without a token: refused, though a unit with one was served just before
            $without = Get-ComputeUnit -Endpoint "http://127.0.0.1:$p"
            $without | Invoke-Profile -Model tinynet -BatchSize 1 -SecondsPerSize 0.02 -NoStore -ErrorAction SilentlyContinue -ErrorVariable ev -WarningAction SilentlyContinue | Out-Null
            "$ev" | Should -Match 'RemoteUnauthorized|401'
            { Get-ComputeUnit -Token $secret } | Should -Throw -ErrorId 'TokenWithoutEndpoint,HeteroBatch.Commands.GetComputeUnitCommand'
            { Get-ComputeUnit -Endpoint "http://127.0.0.1:$p" -Token $secret -Credential ([pscredential]::new('anyone', $secret)) } | Should -Throw -ErrorId 'TokenConflict,HeteroBatch.Commands.GetComputeUnitCommand'
        }
        finally { $s | Stop-InferenceServer }
    }

    It 'is sent a file job''s images as files where its server serves the encoded form, with a corrupt file a failed sample; the outputs equal a job decoded here' {
        $folder = New-JpegFolder (Join-Path $TestDrive 'encoded') 20
        [IO.File]::WriteAllBytes((Join-Path $folder 'img00007.jpg'), [byte[]](0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3))
        (Invoke-RestMethod "$url/v2/models/tinynet_encoded").inputs[0].datatype | Should -Be 'BYTES'
        # the rule's name, given as -EncodedModel too (a Triton ensemble's would be any name); kept with the unit
        $remote = Get-ComputeUnit -Endpoint $url -EncodedModel tinynet_encoded
        $remote.EncodedModel | Should -Be 'tinynet_encoded'
        { Get-ComputeUnit -EncodedModel tinynet_encoded } | Should -Throw -ErrorId 'EncodedModelWithoutEndpoint,HeteroBatch.Commands.GetComputeUnitCommand'
        $profiles = @($local) + @($remote) | Invoke-Profile -Model tinynet -BatchSize 1, 4, 16 -SecondsPerSize 0.05 -NoStore
        $split = $profiles | Get-BatchPlan -BatchSize 10 -Algorithm Even
        $split | Invoke-PartitionedInference -InputPath $folder -OutputPath (Join-Path $TestDrive 'split') -DecodeThreads 1 -InformationVariable job -ErrorAction SilentlyContinue -ErrorVariable bad | Out-Null
        $bad | Should -HaveCount 1
        $bad[0].FullyQualifiedErrorId | Should -Match '^ImageUnreadable,'
        $bad[0].Exception.Message | Should -Match 'img00007\.jpg'
        $s = $job.MessageData
        $s.UnitDecoding | Should -HaveCount 1
        $s.UnitDecoding[0] | Should -Match '^remote0 decoded \d+ images itself'
        $s.SamplesFailed | Should -Be 1
        $alone = $profiles[0] | Get-BatchPlan -BatchSize 10
        $alone | Invoke-PartitionedInference -InputPath $folder -OutputPath (Join-Path $TestDrive 'alone') -DecodeThreads 1 -ErrorAction SilentlyContinue | Out-Null
        $a = Import-Csv (Join-Path $TestDrive 'alone/predictions.csv')
        $b = Import-Csv (Join-Path $TestDrive 'split/predictions.csv')
        ($b | Where-Object { $_.error }).input | Should -Be 'img00007.jpg'
        $b.class | Should -Be $a.class
        $b.score | Should -Be $a.score
    }

    It 'loses no sample when its server process is killed mid-run' {
        $port2 = Get-FreePort
        $doomed = Start-ServerProcess $port2
        try {
            Assert-KillMidRunLosesNothing (Get-ComputeUnit -Endpoint "http://127.0.0.1:$port2") $doomed
        }
        finally { if (-not $doomed.HasExited) { $doomed.Kill() } }
    }

    It 'is a non-terminating RemoteUnavailable error when its server does not answer' {
        $gone = "http://127.0.0.1:$(Get-FreePort)"
        Get-ComputeUnit -Endpoint $gone -ErrorVariable errs -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'RemoteUnavailable,*'
        (Get-ComputeUnit -Endpoint $gone -ListAvailable).Available | Should -BeFalse
        { Get-ComputeUnit -Endpoint 'ftp://example/' } | Should -Throw -ErrorId 'EndpointInvalid,*'
    }

    It 'refuses malformed endpoints and credentials in them with EndpointInvalid and the reason, never repeating a password' {
        foreach ($case in @(@('grpc://', 'no host'), @('http://', 'no host'), @('http://:0', "port '0'"), @('grpc://127.0.0.1:99999', "port '99999'"))) {
            $e = { Get-ComputeUnit -Endpoint $case[0] } | Should -Throw -ErrorId 'EndpointInvalid,*' -PassThru
            $e.Exception.Message | Should -BeLike "*$($case[1])*"
        }
        $e = { Get-ComputeUnit -Endpoint 'http://alice:hunter2@127.0.0.1:8000/' } | Should -Throw -ErrorId 'EndpointInvalid,*' -PassThru
        $e.Exception.Message | Should -Not -BeLike '*hunter2*'
        "$($e.TargetObject)" | Should -Not -BeLike '*hunter2*'
    }

    It 'speaks gRPC to a server process started with -Protocol Grpc: split with the local CPU, outputs equal a local run, and a kill mid-run loses no sample' {
        $grpcPort = Get-FreePort
        $grpcServer = Start-ServerProcess $grpcPort -Protocol Grpc
        try {
            $remote = Get-ComputeUnit -Endpoint "grpc://127.0.0.1:$grpcPort"
            $remote.Endpoint | Should -Be "grpc://127.0.0.1:$grpcPort/"
            $remote.Name | Should -BeLike 'heterobatch*'
            $profiles = @($local) + @($remote) | Invoke-Profile -Model tinynet -BatchSize 1, 4, 16 -SecondsPerSize 0.05 -NoStore
            $split = $profiles | Get-BatchPlan -BatchSize 48 -Algorithm Even | Invoke-PartitionedInference -Seed 7
            ($split.Units | Where-Object UnitId -EQ 'remote0').Count | Should -Be 24
            $alone = $profiles[0] | Get-BatchPlan -BatchSize 48 | Invoke-PartitionedInference -Seed 7
            $split.Outputs[0].AsFloats() | Should -Be $alone.Outputs[0].AsFloats()

            Assert-KillMidRunLosesNothing $remote $grpcServer
        }
        finally { if (-not $grpcServer.HasExited) { $grpcServer.Kill() } }
    }

    It 'speaks gRPC at a grpc:// address, and says so when nothing answers there' {
        $gone = "grpc://127.0.0.1:$(Get-FreePort)"
        Get-ComputeUnit -Endpoint $gone -ErrorVariable errs -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'RemoteUnavailable,*'
        $unit = Get-ComputeUnit -Endpoint $gone -ListAvailable
        $unit.Available | Should -BeFalse
        $unit.Reason | Should -BeLike '*no answer over gRPC*'
    }
}

Describe 'The server' {
    It 'answers the protocol''s REST endpoints to any client' {
        (Invoke-RestMethod "$url/v2").extensions | Should -Contain 'binary_tensor_data'
        $meta = Invoke-RestMethod "$url/v2/models/tinynet"
        $meta.inputs[0].shape | Should -Be @(-1, 3, 32, 32)
        $body = @{ inputs = @(@{ name = 'input'; shape = @(1, 3, 32, 32); datatype = 'FP32'; data = @(1..3072 | ForEach-Object { 0.5 }) }) } | ConvertTo-Json -Depth 5 -Compress
        $answer = Invoke-RestMethod "$url/v2/models/tinynet/infer" -Method Post -Body $body -ContentType 'application/json'
        $answer.outputs[0].shape | Should -Be @(1, 10)
        $answer.outputs[0].data.Count | Should -Be 10
    }

    It 'runs in this session until stopped, lists itself, fits 80 columns, and asks for a token when given one' {
        $p = Get-FreePort
        $plan = $local | Invoke-Profile -Model tinynet -BatchSize 1, 4 -SecondsPerSize 0.05 -NoStore | Get-BatchPlan -BatchSize 4
        $s = $plan | Start-InferenceServer -Port $p -Token 'tok'
        $s.Running | Should -BeTrue
        (Get-InferenceServer).Id | Should -Contain $s.Id
        $PSStyle.OutputRendering = 'PlainText'
        (Get-InferenceServer | Format-Table | Out-String -Width 80) -split "`r?`n" | ForEach-Object { $_.TrimEnd().Length | Should -BeLessOrEqual 80 }
        Invoke-RestMethod "http://127.0.0.1:$p/v2/health/ready" | Out-Null
        { Invoke-RestMethod "http://127.0.0.1:$p/v2/models/tinynet" } | Should -Throw '*401*'
        (Invoke-RestMethod "http://127.0.0.1:$p/v2/models/tinynet" -Headers @{ Authorization = 'Bearer tok' }).name | Should -Be 'tinynet'
        { $plan | Start-InferenceServer -Port $p } | Should -Throw -ErrorId 'ServerStartFailed,*'
        $s | Stop-InferenceServer
        Get-InferenceServer | Where-Object Id -EQ $s.Id | Should -BeNullOrEmpty
        { Invoke-RestMethod "http://127.0.0.1:$p/v2/health/ready" -TimeoutSec 2 } | Should -Throw
        Get-InferenceServer -Id 999 -ErrorAction SilentlyContinue -ErrorVariable e | Out-Null
        $e[0].FullyQualifiedErrorId | Should -BeLike 'ServerNotFound,*'
    }

    It 'takes requests up to -MaxRequestBytes and holds fewer of them at once when they may be larger' {
        $p = Get-FreePort
        $plan = $local | Invoke-Profile -Model tinynet -BatchSize 1, 4 -SecondsPerSize 0.05 -NoStore | Get-BatchPlan -BatchSize 4
        # tinynet takes 12 KiB a sample: 2 samples fit in 64 KiB, 8 do not
        $s = $plan | Start-InferenceServer -Port $p -MaxRequestBytes 64KB
        try {
            ($s.MaxRequestBytes, $s.HandledAtOnce) | Should -Be @(65536, 8)
            $remote = Get-ComputeUnit -Endpoint "http://127.0.0.1:$p"
            $profile = $remote | Invoke-Profile -Model tinynet -BatchSize 2, 8 -SecondsPerSize 0.05 -NoStore -WarningAction SilentlyContinue
            $profile.Table.BatchSize | Should -Be @(2)
            $profile.FailedBatchSize | Should -Be 8
            $profile.FailureReason | Should -BeLike '*413*'
            (Get-InferenceServer | Where-Object Id -EQ $s.Id).Failures | Should -BeGreaterOrEqual 1
        }
        finally { $s | Stop-InferenceServer }
        $big = $plan | Start-InferenceServer -Port (Get-FreePort) -MaxRequestBytes 1GB
        try { $big.HandledAtOnce | Should -Be 4 } finally { $big | Stop-InferenceServer }
        { $plan | Start-InferenceServer -Port (Get-FreePort) -MaxRequestBytes 0 } | Should -Throw -ErrorId 'ParameterArgumentValidationError,*'
        { $plan | Start-InferenceServer -Port (Get-FreePort) -MaxRequestBytes 2GB } | Should -Throw -ErrorId 'ParameterArgumentValidationError,*'
    }

    It 'stops cleanly on Ctrl+C with -Wait' {
        $p = Get-FreePort
        $plan = $local | Invoke-Profile -Model tinynet -BatchSize 1 -SecondsPerSize 0.05 -NoStore | Get-BatchPlan -BatchSize 1
        $stop = Stop-CommandAfter Start-InferenceServer @{ Plan = $plan; Port = $p; Wait = $true } 3000
        $stop.Completed | Should -BeTrue
        $stop.StopSeconds | Should -BeLessThan 3
        { Invoke-RestMethod "http://127.0.0.1:$p/v2/health/ready" -TimeoutSec 2 } | Should -Throw
    }
}
