# Jobs over files as users run them: a folder in, predictions and a CSV out, memory bounded, resumed after kill -9 and Ctrl+C.
BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    Import-Module $env:HETEROBATCH_TEST_MODULE -Force
    $script:store = New-TestStore

    $script:units = Get-ComputeUnit -CpuGroup 2
    # Even plans: the same shares in every process, so that a resumed job's files can equal an uninterrupted one's byte for byte
    $script:plan = $units | Invoke-Profile -Model tinynet-224 -BatchSize 1, 8 -SecondsPerSize 0.05 -NoStore | Get-BatchPlan -BatchSize 16 -Algorithm Even
    $script:planJson = Join-Path $TestDrive 'plan.json'
    $plan | ConvertTo-Json -Depth 10 | Set-Content $planJson
    $script:folder = New-JpegFolder (Join-Path $TestDrive 'photos') 600
}

Describe 'A job over a folder' {
    It 'streams 3,000 files through a 224×224 model under a 700 MiB memory limit, into a CSV' {
        # held in memory at once, these inputs alone would take 3,000 × 602 KB = 1.8 GB
        $big = New-JpegFolder (Join-Path $TestDrive 'many') 3000
        $csv = Join-Path $TestDrive 'many.csv'
        $script = @"
Import-Module '$env:HETEROBATCH_TEST_MODULE'
`$plan = Get-Content -Raw '$planJson' | ConvertFrom-Json
Invoke-PartitionedInference -Plan `$plan -InputPath '$big' -InformationVariable job | Export-Csv '$csv'
'samples {0} peak {1}' -f `$job.MessageData.SamplesRun, `$job.MessageData.PeakResidentBytes
"@
        $r = Invoke-ChildPwshLimited $script (700MB)
        $r.OomKilled | Should -BeFalse
        $r.ExitCode | Should -Be 0 -Because $r.Stderr
        $r.Stdout | Should -Match 'samples 3000 peak \d+'
        [long]($r.Stdout -replace '(?s).*samples 3000 peak (\d+).*', '$1') | Should -BeLessThan 700MB
        $rows = Import-Csv $csv
        $rows.Count | Should -Be 3000
        $rows[2999].Input | Should -Be 'img02999.jpg'
        $rows[0].TopClasses | Should -Match '^\d+( \d+){4}$'
        ($rows | Where-Object { $_.PSObject.Properties.Value -match '^System\.' }) | Should -BeNullOrEmpty
        Remove-Item $big -Recurse
    }

    It 'goes on after kill -9 and ends with the files an uninterrupted run writes, running only the rest' {
        $whole = Join-Path $TestDrive 'whole'
        $plan | Invoke-PartitionedInference -InputPath $folder -OutputPath $whole | Out-Null

        $killed = Join-Path $TestDrive 'killed'
        $exe = (Get-Process -Id $PID).Path
        $prefix = @(if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { Join-Path $PSHOME 'pwsh.dll' })
        $script = "Import-Module '$env:HETEROBATCH_TEST_MODULE'; `$plan = Get-Content -Raw '$planJson' | ConvertFrom-Json; Invoke-PartitionedInference -Plan `$plan -InputPath '$folder' -OutputPath '$killed' -DecodeThreads 1 | Out-Null"
        $child = Start-Process $exe -ArgumentList (@($prefix) + @('-NoProfile', '-NonInteractive', '-Command', $script)) -PassThru
        $state = Join-Path $killed 'job.json'
        $clock = [Diagnostics.Stopwatch]::StartNew()
        $done = 0
        while ($clock.Elapsed.TotalSeconds -lt 60 -and -not $child.HasExited) {
            if (Test-Path $state) { $done = (Get-Content -Raw $state | ConvertFrom-Json).SamplesDone }
            if ($done -ge 64) { break }
            Start-Sleep -Milliseconds 20
        }
        $child.Kill()   # SIGKILL: no handler runs
        $child.WaitForExit()
        $done | Should -BeGreaterOrEqual 64
        $at = (Get-Content -Raw $state | ConvertFrom-Json).SamplesDone
        $at | Should -BeLessThan 600 -Because 'the job was killed before its end'
        Test-Path (Join-Path $killed 'predictions.csv') | Should -BeFalse
        Test-Path (Join-Path $killed 'predictions.csv.partial') | Should -BeTrue

        $rest = $plan | Invoke-PartitionedInference -InputPath $folder -OutputPath $killed -Resume -InformationVariable job
        $job.MessageData.SamplesResumed | Should -Be $at
        $job.MessageData.SamplesRun | Should -Be (600 - $at)
        # every row of the job, once and in order: those already in the folder first, then the new ones
        $rest.Count | Should -Be 600
        ($rest.Index) | Should -Be (0..599)
        foreach ($name in 'logits.npy', 'predictions.csv', 'inputs.txt') {
            (Get-FileHash (Join-Path $killed $name)).Hash | Should -Be (Get-FileHash (Join-Path $whole $name)).Hash -Because $name
        }
        Get-ChildItem $killed -Filter '*.partial' | Should -BeNullOrEmpty
    }

    It 'leaves no half-written file after Ctrl+C, and resumes from there' {
        $many = New-JpegFolder (Join-Path $TestDrive 'many-stopped') 4000
        $out = Join-Path $TestDrive 'stopped'
        # stopped once its first block is committed (job.json counts it), wherever the machine's speed puts that
        $state = Join-Path $out 'job.json'
        $stop = Stop-CommandWhen Invoke-PartitionedInference @{ Plan = $plan; InputPath = $many; OutputPath = $out; DecodeThreads = 1 } {
            (Test-Path $state) -and ((Get-Content -Raw $state -ErrorAction Ignore | ConvertFrom-Json -ErrorAction Ignore).SamplesDone -gt 0)
        }
        $stop.Completed | Should -BeTrue
        $stop.State | Should -Be 'Stopped'
        $stop.StopSeconds | Should -BeLessThan 3
        Test-Path (Join-Path $out 'logits.npy') | Should -BeFalse
        Test-Path (Join-Path $out 'predictions.csv') | Should -BeFalse
        $at = (Get-Content -Raw (Join-Path $out 'job.json') | ConvertFrom-Json).SamplesDone
        $at | Should -BeLessThan 4000
        # the predictions file holds at least the samples done (rows past them, of a block not yet counted, are cut on resume)
        @(Get-Content (Join-Path $out 'predictions.csv.partial')).Count | Should -BeGreaterOrEqual ($at + 1)
        $plan | Invoke-PartitionedInference -InputPath $many -OutputPath $out -Resume -InformationVariable job | Out-Null
        $job.MessageData.SamplesRun | Should -Be (4000 - $at)
        $rows = Import-Csv (Join-Path $out 'predictions.csv')
        $rows.Count | Should -Be 4000
        ($rows.index | ForEach-Object { [int]$_ }) | Should -Be (0..3999)
        Get-ChildItem $out -Filter '*.partial' | Should -BeNullOrEmpty
        Remove-Item $many -Recurse
    }

    It 'says where the time went' {
        $null = $plan | Invoke-PartitionedInference -InputPath $folder -InformationVariable job
        $s = $job.MessageData
        $s.Stages.DecodeMs | Should -BeGreaterThan 0
        $s.Stages.InferMs | Should -BeGreaterThan 0
        $s.ImagesPerSecond | Should -BeGreaterThan 0
        $s.DecodeThreads | Should -BeIn @(1..[Environment]::ProcessorCount) -Because 'two CPU units take both cores of this plan: one decoder, and more while the units wait for input'
        $s.Preprocessing | Should -Match 'CenterCrop'
    }
}
