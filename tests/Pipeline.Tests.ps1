# The four cmdlets composing end to end on this machine's CPU, with real sessions.
BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    Import-Module $env:HETEROBATCH_TEST_MODULE -Force
    $script:store = New-TestStore
    $script:units = Get-ComputeUnit -CpuGroup 2
    $script:profiles = $units | Invoke-Profile -Model tinynet -BatchSize 1, 2, 4, 8, 16, 32 -SecondsPerSize 0.2
}

Describe 'Get-ComputeUnit' {
    It 'returns the CPU as one unit by default' {
        $u = Get-ComputeUnit
        $u | Should -BeOfType ([HeteroBatch.Engine.Units.ComputeUnit])
        $cpu = $u | Where-Object Id -EQ 'cpu'
        $cpu.Cores | Should -Be ([Environment]::ProcessorCount)
        $cpu.Name | Should -Not -BeNullOrEmpty
    }

    It 'splits the CPU into groups that share no processor' {
        $units.Count | Should -Be ([Math]::Min(2, [Environment]::ProcessorCount))
        $all = $units | ForEach-Object Processors
        ($all | Select-Object -Unique).Count | Should -Be $all.Count
    }

    It 'lists absent GPUs only with -ListAvailable, with a reason' {
        if (Get-ComputeUnit | Where-Object Provider -EQ CUDA) { Set-ItResult -Skipped -Because 'this machine has a working GPU' }
        Get-ComputeUnit | Where-Object Provider -EQ CUDA | Should -BeNullOrEmpty
        $gpu = Get-ComputeUnit -ListAvailable | Where-Object Provider -EQ CUDA
        $gpu.Available | Should -BeFalse
        $gpu.Reason | Should -Not -BeNullOrEmpty
    }

    It 'refuses a bad -CpuGroup with CpuGroupInvalid' {
        { Get-ComputeUnit -CpuGroup Sideways } | Should -Throw -ErrorId 'CpuGroupInvalid,HeteroBatch.Commands.GetComputeUnitCommand'
    }
}

Describe 'Invoke-Profile' {
    It 'emits one profile per unit with every batch size measured' {
        $profiles.Count | Should -Be $units.Count
        $profiles | Should -BeOfType ([HeteroBatch.Engine.Profiling.UnitProfile])
        foreach ($p in $profiles) {
            $p.Table.BatchSize | Should -Be @(1, 2, 4, 8, 16, 32)
            $p.Table | ForEach-Object { $_.MedianMs | Should -BeGreaterThan 0 }
            $p.MaxBatchSize | Should -Be 32
        }
    }

    It 'stores what it measured, and the stored profiles reload equal' {
        $stored = Get-PerformanceProfile -Model tinynet
        $stored.Count | Should -Be $units.Count
        foreach ($p in $profiles) {
            $s = $stored | Where-Object UnitId -EQ $p.UnitId
            $s.Unit.Fingerprint | Should -Be $p.Unit.Fingerprint
            ($s.Table | ConvertTo-Json) | Should -Be ($p.Table | ConvertTo-Json)
        }
    }

    It 'uses the default schedule when no batch sizes are given' {
        $p = $units[0] | Invoke-Profile -Model tinynet -MaxBatchSize 9 -SecondsPerSize 0.05 -NoStore
        $p.Table.BatchSize | Should -Be @(1, 2, 3, 4, 5, 7, 8, 9)
    }

    It 'measures the units together with -Concurrent' {
        $p = $units | Invoke-Profile -Model tinynet -BatchSize 1, 8 -SecondsPerSize 0.05 -Concurrent -NoStore
        $p.Count | Should -Be $units.Count
        foreach ($one in $p) {
            $one.Table.BatchSize | Should -Be @(1, 8)
            $one.MeasuredAlongside | Should -Be @($units.Id | Where-Object { $_ -ne $one.UnitId })
        }
    }

    It 'refuses batch size 0 by parameter validation' {
        { $units[0] | Invoke-Profile -Model tinynet -BatchSize 0 -NoStore } | Should -Throw -ErrorId 'ParameterArgumentValidationError,HeteroBatch.Commands.InvokeProfileCommand'
    }

    It 'names the available models for an unknown one (ModelNotFound)' {
        { $units[0] | Invoke-Profile -Model no-such-net -NoStore } | Should -Throw -ErrorId 'ModelNotFound,HeteroBatch.Commands.InvokeProfileCommand' -ExpectedMessage '*resnet-50*'
    }

    It 'reports a missing model file (ModelFileNotFound)' {
        { $units[0] | Invoke-Profile -Model (Join-Path $TestDrive 'missing.onnx') -NoStore } | Should -Throw -ErrorId 'ModelFileNotFound,HeteroBatch.Commands.InvokeProfileCommand'
    }

    It 'reports a file that is not ONNX with ONNX Runtime''s reason (ModelInvalid)' {
        $bad = Join-Path $TestDrive 'bad.onnx'
        Set-Content $bad 'this is not a model'
        { $units[0] | Invoke-Profile -Model $bad -NoStore } | Should -Throw -ErrorId 'ModelInvalid,HeteroBatch.Commands.InvokeProfileCommand'
    }

    It 'profiles a user ONNX file' {
        $file = Join-Path $TestDrive 'tiny.onnx'
        Export-InferenceModel tinynet $file | Out-Null
        $p = $units[0] | Invoke-Profile -Model $file -BatchSize 1, 3 -SecondsPerSize 0.05 -NoStore
        $p.Model | Should -Be 'tiny'
        $p.Table.BatchSize | Should -Be @(1, 3)
    }
}

Describe 'Get-BatchPlan' {
    It 'splits the batch so that the shard counts sum to it, for every algorithm' -ForEach @(
        @{ A = 'Optimal' }, @{ A = 'Greedy' }, @{ A = 'Proportional' }, @{ A = 'Even' }, @{ A = 'Single' }) {
        foreach ($n in 1, 7, 100, 1000) {
            $plan = $profiles | Get-BatchPlan -BatchSize $n -Algorithm $A
            $plan | Should -BeOfType ([HeteroBatch.Engine.Planning.BatchPlan])
            ($plan.Shards | Measure-Object Count -Sum).Sum | Should -Be $n
            $plan.Algorithm | Should -Be $A
        }
    }

    It 'never predicts worse than the best single unit' {
        foreach ($n in 1, 5, 64, 333) {
            $plan = $profiles | Get-BatchPlan -BatchSize $n
            $plan.PredictedMs | Should -BeLessOrEqual ($plan.BestSingleMs + 1e-9)
        }
    }

    It 'plans from the store with -Model' {
        $plan = Get-BatchPlan -Model tinynet -BatchSize 50
        ($plan.Shards | Measure-Object Count -Sum).Sum | Should -Be 50
        $plan.Units | Should -Be ($units.Id | Sort-Object)
    }

    It 'emits one plan per subset with -EachSubset' {
        $plans = $profiles | Get-BatchPlan -BatchSize 64 -EachSubset
        $plans.Count | Should -Be ([Math]::Pow(2, $units.Count) - 1)
    }

    It 'refuses batch size 0' {
        { $profiles | Get-BatchPlan -BatchSize 0 } | Should -Throw -ErrorId 'ParameterArgumentValidationError,HeteroBatch.Commands.GetBatchPlanCommand'
    }

    It 'says which command to run when there is no profile (ProfileNotFound)' {
        { Get-BatchPlan -Model squeezenet_v1.1 -BatchSize 10 } | Should -Throw -ErrorId 'ProfileNotFound,HeteroBatch.Commands.GetBatchPlanCommand' -ExpectedMessage '*Invoke-Profile -Model squeezenet_v1.1*'
    }

    It 'suggests the next command as the recommended action, keeping -ProfilePath' {
        $empty = Join-Path $TestDrive 'empty store'
        $e = $null
        try { Get-BatchPlan -Model tinynet -BatchSize 10 -ProfilePath $empty -ErrorAction Stop } catch { $e = $_ }
        $e.FullyQualifiedErrorId | Should -BeLike 'ProfileNotFound,*'
        $e.ErrorDetails.RecommendedAction | Should -BeLike "*Invoke-Profile -Model tinynet -ProfilePath '*empty store'"
    }

    It 'refuses units that share processors (UnitsOverlap)' {
        $whole = Get-ComputeUnit | Where-Object Id -EQ cpu | Invoke-Profile -Model tinynet -BatchSize 1, 2 -SecondsPerSize 0.05 -NoStore
        { @($profiles) + @($whole) | Get-BatchPlan -BatchSize 10 } | Should -Throw -ErrorId 'UnitsOverlap,HeteroBatch.Commands.GetBatchPlanCommand'
    }
}

Describe 'Invoke-PartitionedInference' {
    It 'runs the whole pipeline' {
        $r = $units | Invoke-Profile -Model tinynet -BatchSize 1, 8, 32 -SecondsPerSize 0.1 -NoStore |
            Get-BatchPlan -BatchSize 64 | Invoke-PartitionedInference
        $r | Should -BeOfType ([HeteroBatch.Engine.Execution.InferenceResult])
        $r.Complete | Should -BeTrue
        $r.BatchSize | Should -Be 64
        ($r.Units | Measure-Object Count -Sum).Sum | Should -Be 64
        $r.Outputs[0].Count | Should -Be 64
        $r.Outputs[0].SampleShape | Should -Be @(10)
        $r.WallMs | Should -BeGreaterThan 0
    }

    It 'gives the same outputs, sample by sample, as one unit on the same inputs' {
        $split = $profiles | Get-BatchPlan -BatchSize 90 -Algorithm Even | Invoke-PartitionedInference -Seed 42
        $one = $profiles | Get-BatchPlan -BatchSize 90 -Unit $units[0].Id -Algorithm Single | Invoke-PartitionedInference -Seed 42
        $split.Units.Count | Should -Be $units.Count
        $one.Units.Count | Should -Be 1
        for ($i = 0; $i -lt 90; $i++) {
            $a = $one.OutputOf($i); $b = $split.OutputOf($i)
            for ($j = 0; $j -lt $a.Length; $j++) { [Math]::Abs($a[$j] - $b[$j]) | Should -BeLessOrEqual 1e-4 }
        }
        $split.Top1 | Should -Be $one.Top1
    }

    It 'plans and runs from -Model and -BatchSize' {
        $r = Invoke-PartitionedInference -Model tinynet -BatchSize 33 -Balance Dynamic
        ($r.Units | Measure-Object Count -Sum).Sum | Should -Be 33
        $r.Balance | Should -Be 'Dynamic'
    }

    It 'moves a failing unit''s samples to the others, and every sample gets one output' {
        if ($units.Count -lt 2) { Set-ItResult -Skipped -Because 'needs two units' }
        $plan = $profiles | Get-BatchPlan -BatchSize 64 -Algorithm Even
        $reference = $plan | Invoke-PartitionedInference -Seed 5
        Set-TestFailure $units[1].Id 0
        try { $r = $plan | Invoke-PartitionedInference -Seed 5 -WarningVariable warned 3>$null }
        finally { Clear-TestFailure }
        $r.FailedUnits | Should -Be @($units[1].Id)
        ($r.Units | Measure-Object Count -Sum).Sum | Should -Be 64
        ($r.Units | Where-Object UnitId -EQ $units[0].Id).TookOver | Should -Be 32
        $r.Top1 | Should -Be $reference.Top1
        $warned | Should -Not -BeNullOrEmpty
    }

    It 'stops with AllUnitsFailed when no unit can finish' {
        $plan = $profiles | Get-BatchPlan -BatchSize 8 -Unit $units[0].Id -Algorithm Single
        Set-TestFailure $units[0].Id 0
        try { { $plan | Invoke-PartitionedInference } | Should -Throw -ErrorId 'AllUnitsFailed,HeteroBatch.Commands.InvokePartitionedInferenceCommand' }
        finally { Clear-TestFailure }
    }

    It 'refuses a plan that names a unit not present here (UnitUnavailable)' {
        $json = $profiles | Get-BatchPlan -BatchSize 10 | ConvertTo-Json -Depth 6
        $plan = [System.Text.Json.JsonSerializer]::Deserialize($json, [HeteroBatch.Engine.Planning.BatchPlan])
        $plan.Shards[0].Unit.Processors = @(4095)
        $plan | Invoke-PartitionedInference -ErrorVariable failed -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $failed[0].FullyQualifiedErrorId | Should -Be 'UnitUnavailable,HeteroBatch.Commands.InvokePartitionedInferenceCommand'
    }

    It 'binds a plan saved as JSON or CLIXML and read back' {
        $plan = $profiles | Get-BatchPlan -BatchSize 20
        $json = Join-Path $TestDrive 'plan.json'
        $plan | ConvertTo-Json -Depth 8 | Set-Content $json
        $xml = Join-Path $TestDrive 'plan.xml'
        $plan | Export-Clixml $xml -Depth 8
        foreach ($back in @((Get-Content -Raw $json), (Get-Content -Raw $json | ConvertFrom-Json), (Import-Clixml $xml))) {
            $r = $back | Invoke-PartitionedInference
            ($r.Units | Measure-Object Count -Sum).Sum | Should -Be 20
            $r.Plan.Split | Should -Be $plan.Split
        }
    }

    It 'plans from profiles saved as JSON and read back' {
        $json = Join-Path $TestDrive 'profiles.json'
        $profiles | ConvertTo-Json -Depth 8 | Set-Content $json
        $plan = Get-Content -Raw $json | ConvertFrom-Json | Get-BatchPlan -BatchSize 30
        ($plan.Shards | Measure-Object Count -Sum).Sum | Should -Be 30
        $plan.Units | Should -Be ($units.Id | Sort-Object)
    }
}
