# A job cut into shards as a cluster runs it: three processes each take one shard, one is killed with
# kill -9 and resumed, and the merged folder equals a one-process run byte for byte.
BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    Import-Module $env:HETEROBATCH_TEST_MODULE -Force
    $script:store = New-TestStore

    # an Even plan of 8 over two CPU units, the same in every process; 3,000 files make shards of 1,000, whole blocks
    # of 8, so each sample runs on the same unit in a shard as in the whole job (predictions.csv names the unit)
    $units = Get-ComputeUnit -CpuGroup 2
    $script:plan = $units | Invoke-Profile -Model tinynet-224 -BatchSize 1, 8 -SecondsPerSize 0.05 -NoStore | Get-BatchPlan -BatchSize 8 -Algorithm Even
    $script:planJson = Join-Path $TestDrive 'plan.json'
    $plan | ConvertTo-Json -Depth 10 | Set-Content $planJson
    $script:count = 3000
    $script:folder = New-JpegFolder (Join-Path $TestDrive 'photos') $count -Seed 7 -Size 50, 13, 40, 9
}

Describe 'A job in three shards' {
    It 'runs as three processes, survives kill -9 of one, and merges to the files of a one-process run' {
        $whole = Join-Path $TestDrive 'whole'
        $plan | Invoke-PartitionedInference -InputPath $folder -OutputPath $whole | Out-Null

        $out = Join-Path $TestDrive 'out'
        $exe = (Get-Process -Id $PID).Path
        $prefix = @(if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { Join-Path $PSHOME 'pwsh.dll' })
        $children = foreach ($k in 0..2) {
            $script = "Import-Module '$env:HETEROBATCH_TEST_MODULE'; `$plan = Get-Content -Raw '$planJson' | ConvertFrom-Json; Invoke-PartitionedInference -Plan `$plan -InputPath '$folder' -OutputPath '$out/shard-$k' -Shard '$k/3' -DecodeThreads 1 | Out-Null"
            Start-Process $exe -ArgumentList (@($prefix) + @('-NoProfile', '-NonInteractive', '-Command', $script)) -PassThru
        }
        # shard 1 is killed (SIGKILL: no handler runs) once its job.json shows two blocks done
        $state = Join-Path $out 'shard-1/job.json'
        $clock = [Diagnostics.Stopwatch]::StartNew()
        $done = 0
        while ($clock.Elapsed.TotalSeconds -lt 120 -and -not $children[1].HasExited) {
            if (Test-Path $state) { $done = (Get-Content -Raw $state | ConvertFrom-Json).SamplesDone }
            if ($done -ge 32) { break }
            Start-Sleep -Milliseconds 20
        }
        $children[1].Kill()
        foreach ($c in $children) { $c.WaitForExit() }
        $done | Should -BeGreaterOrEqual 32
        $at = (Get-Content -Raw $state | ConvertFrom-Json).SamplesDone
        $at | Should -BeLessThan 1000 -Because 'the shard was killed before its end'
        foreach ($k in 0, 2) { (Get-Content -Raw (Join-Path $out "shard-$k/job.json") | ConvertFrom-Json).Completed | Should -BeTrue }

        # the merge waits for every shard; the killed folder is not another shard's to resume
        { Get-ChildItem $out -Directory | Merge-PartitionedOutput -OutputPath (Join-Path $TestDrive 'early') -ErrorAction Stop } | Should -Throw -ErrorId 'ShardUnfinished,HeteroBatch.Commands.MergePartitionedOutputCommand'
        { $plan | Invoke-PartitionedInference -InputPath $folder -OutputPath (Join-Path $out 'shard-1') -Shard 2/3 -Resume -ErrorAction Stop } | Should -Throw -ErrorId 'ResumeMismatch,HeteroBatch.Commands.InvokePartitionedInferenceCommand'

        $rest = $plan | Invoke-PartitionedInference -InputPath $folder -OutputPath (Join-Path $out 'shard-1') -Shard 1/3 -Resume -InformationVariable job
        $job.MessageData.SamplesResumed | Should -Be $at
        $job.MessageData.SamplesRun | Should -Be (1000 - $at)
        $rest.Count | Should -Be 1000
        $rest[0].Input | Should -Be 'img01000.jpg'

        $merged = Join-Path $TestDrive 'merged'
        $m = Get-ChildItem $out -Directory | Merge-PartitionedOutput -OutputPath $merged
        $m.Samples | Should -Be $count
        $m.Shards | Should -Be 3
        foreach ($name in 'logits.npy', 'predictions.csv', 'inputs.txt') {
            (Get-FileHash (Join-Path $merged $name)).Hash | Should -Be (Get-FileHash (Join-Path $whole $name)).Hash -Because $name
        }
    }

    It 'refuses a shard that does not exist, a missing shard, and the same shard twice' {
        { $plan | Invoke-PartitionedInference -InputPath $folder -Shard 3/3 -ErrorAction Stop } | Should -Throw -ErrorId 'ShardInvalid,HeteroBatch.Commands.InvokePartitionedInferenceCommand'
        { $plan | Invoke-PartitionedInference -InputPath $folder -Shard 'one of three' -ErrorAction Stop } | Should -Throw -ErrorId 'ShardInvalid,HeteroBatch.Commands.InvokePartitionedInferenceCommand'
        $few = New-JpegFolder (Join-Path $TestDrive 'few') 4 -Seed 7 -Size 50, 13, 40, 9
        $a = Join-Path $TestDrive 'few-0'
        $plan | Invoke-PartitionedInference -InputPath $few -OutputPath $a -Shard 0/2 | Out-Null
        { Merge-PartitionedOutput -Path $a -OutputPath (Join-Path $TestDrive 'few-merged') -ErrorAction Stop } | Should -Throw -ErrorId 'ShardMissing,HeteroBatch.Commands.MergePartitionedOutputCommand'
        { Merge-PartitionedOutput -Path $a, $a -OutputPath (Join-Path $TestDrive 'few-merged') -ErrorAction Stop } | Should -Throw -ErrorId 'ShardDuplicate,HeteroBatch.Commands.MergePartitionedOutputCommand'
    }
}
