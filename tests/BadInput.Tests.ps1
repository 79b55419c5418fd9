# Bad input as a hostile but realistic user would type it: every case ends in its documented
# ErrorId (or a bounded, explained outcome), never a raw .NET exception, and loses nothing.
BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    Import-Module $env:HETEROBATCH_TEST_MODULE -Force
    $script:store = New-TestStore
    $script:units = Get-ComputeUnit -CpuGroup 2
    $script:profiles = $units | Invoke-Profile -Model tinynet -BatchSize 1, 2, 4 -SecondsPerSize 0.05
    $script:plan = $profiles | Get-BatchPlan -BatchSize 6

    # a .npy file from raw parts: header dictionary text and data bytes
    function New-Npy([string] $Path, [string] $Header, [byte[]] $Data = @(), [byte[]] $Magic = @(0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59)) {
        $h = [Text.Encoding]::Latin1.GetBytes($Header.PadRight(118) + "`n")
        $bytes = [Collections.Generic.List[byte]]::new()
        $bytes.AddRange($Magic); $bytes.Add(1); $bytes.Add(0)
        $bytes.AddRange([BitConverter]::GetBytes([uint16]$h.Length)); $bytes.AddRange($h); $bytes.AddRange($Data)
        [IO.File]::WriteAllBytes($Path, $bytes.ToArray())
        $Path
    }

    # the error a command ends with, terminating or not
    function Get-FirstError([scriptblock] $Command) {
        $err = $null
        try { & $Command -ErrorAction Stop -ErrorVariable ev 2>$null | Out-Null } catch { $err = $_ }
        if (-not $err -and $ev) { $err = $ev[0] }
        $err
    }

    # a copy of the plan to break
    function Copy-Plan { $plan | ConvertTo-Json -Depth 10 | ConvertFrom-Json }
}

Describe 'Bad models and paths' {
    It '<Name> gives <Id>' -ForEach @(
        @{ Name = 'a misspelt built-in name'; Id = 'ModelNotFound'; Run = { Invoke-Profile -Model resnet-51 -Unit $units[0] -NoStore } }
        @{ Name = 'a model file that is not there'; Id = 'ModelFileNotFound'; Run = { Invoke-Profile -Model "$TestDrive/none.onnx" -Unit $units[0] -NoStore } }
        @{ Name = 'a folder as -Model'; Id = 'ModelPathIsFolder'; Run = { New-Item -ItemType Directory "$TestDrive/models.onnx" -Force | Out-Null; Invoke-Profile -Model "$TestDrive/models.onnx" -Unit $units[0] -NoStore } }
        @{ Name = 'a file that is not ONNX'; Id = 'ModelInvalid'; Run = { Set-Content "$TestDrive/junk.onnx" 'not a model'; Invoke-Profile -Model "$TestDrive/junk.onnx" -Unit $units[0] -NoStore } }
        @{ Name = 'an empty .onnx file'; Id = 'ModelInvalid'; Run = { Set-Content "$TestDrive/empty.onnx" -Value $null; Invoke-Profile -Model "$TestDrive/empty.onnx" -Unit $units[0] -NoStore } }
        @{ Name = 'a CPU grouping of 0'; Id = 'CpuGroupInvalid'; Run = { Get-ComputeUnit -CpuGroup 0 } }
        @{ Name = 'a CPU grouping that is a word'; Id = 'CpuGroupInvalid'; Run = { Get-ComputeUnit -CpuGroup banana } }
        @{ Name = 'a plan for a unit id that is not here'; Id = 'UnitNotFound'; Run = { Get-BatchPlan -Model tinynet -BatchSize 4 -Unit gpu9 } }
        @{ Name = 'a plan for a unit that has no profile of the model'; Id = 'ProfileNotFound'; Run = { Get-BatchPlan -Model squeezenet_v1.1 -BatchSize 4 -Unit cpu1 } }
        @{ Name = 'profiles of two models piped together'; Id = 'ProfileModelMismatch'; Run = {
                $sq = [HeteroBatch.Engine.Profiling.UnitProfile]::new(); $sq.Unit = $units[1]; $sq.Model = 'other'; $sq.ModelSha256 = 'beef'
                $sq.Table.Add([HeteroBatch.Engine.Profiling.ProfileEntry]@{ BatchSize = 1; MedianMs = 1 })
                @($profiles[0], $sq) | Get-BatchPlan -BatchSize 4 } }
    ) {
        (Get-FirstError $Run).FullyQualifiedErrorId | Should -BeLike "$Id,*"
    }
}

Describe 'Numbers that would exhaust memory' {
    It 'plans batches of a billion and of 2147483647, and refuses to run a billion (BatchTooLarge), all within 1 GiB' {
        # a child pwsh under a memory limit: an allocation that grows with the batch would fail it (or be killed)
        $script = @"
Import-Module '$env:HETEROBATCH_TEST_MODULE'
foreach (`$n in 1000000000, 2147483647) {
    `$p = Get-BatchPlan -Model tinynet -BatchSize `$n
    'planned {0} {1}' -f `$n, (`$p.Shards | ForEach-Object { [long]`$_.Count } | Measure-Object -Sum).Sum
}
try { Invoke-PartitionedInference -Model tinynet -BatchSize 1000000000 -ErrorAction Stop | Out-Null } catch { 'run ' + `$_.FullyQualifiedErrorId + ' ' + `$_.Exception.Message }
"@
        $r = Invoke-ChildPwshLimited $script (1GB)
        $r.OomKilled | Should -BeFalse
        $r.Stdout | Should -Match 'planned 1000000000 1000000000'
        $r.Stdout | Should -Match 'planned 2147483647 2147483647'
        $r.Stdout | Should -Match 'run BatchTooLarge,\S+ .*samples'
    }

    It 'stops profiling at the first size that would not fit, under a memory limit (-MaxBatchSize <Max>)' -ForEach @(
        @{ Max = 500000 }
        @{ Max = 2147483647 }
    ) {
        # sizes grow in order; the first one that would not fit in 1 GiB is refused, not attempted
        $script = "Import-Module '$env:HETEROBATCH_TEST_MODULE'; `$p = Get-ComputeUnit -CpuGroup 1 | Invoke-Profile -Model tinynet -MaxBatchSize $Max -SecondsPerSize 0.02 -NoStore -WarningAction SilentlyContinue; '{0} {1} {2}' -f `$p.MaxBatchSize, `$p.FailedBatchSize, `$p.FailureReason"
        $r = Invoke-ChildPwshLimited $script (1GB)
        $r.OomKilled | Should -BeFalse
        $r.ExitCode | Should -Be 0
        $ran, $refused = ($r.Stdout.Trim() -split ' ')[0, 1] | ForEach-Object { [long]$_ }
        $ran | Should -BeGreaterOrEqual 3
        $refused | Should -BeGreaterThan $ran
        $refused | Should -BeLessThan $Max
        $r.Stdout | Should -Match 'would need about .* of memory'
    }

    It 'refuses a size whose buffers no array holds, before allocating it' {
        $script = "Import-Module '$env:HETEROBATCH_TEST_MODULE'; `$p = Get-ComputeUnit -CpuGroup 1 | Invoke-Profile -Model tinynet -BatchSize 1, 2, 3, 2147483647 -SecondsPerSize 0.02 -NoStore -WarningAction SilentlyContinue; '{0} {1} {2}' -f `$p.MaxBatchSize, `$p.FailedBatchSize, `$p.FailureReason"
        $r = Invoke-ChildPwshLimited $script (1GB)
        $r.ExitCode | Should -Be 0
        $r.Stdout | Should -Match '^3 2147483647 .*array'
    }

    It 'refuses numbers below one at the parameter (<Name>)' -ForEach @(
        @{ Name = 'Get-BatchPlan -BatchSize 0'; Run = { $profiles | Get-BatchPlan -BatchSize 0 } }
        @{ Name = 'Invoke-Profile -SecondsPerSize 0'; Run = { Invoke-Profile -Model tinynet -SecondsPerSize 0 -NoStore } }
        @{ Name = 'Set-PerformanceProfile -MedianMs 0'; Run = { $profiles[0] | Set-PerformanceProfile -BatchSize 1 -MedianMs 0 } }
        @{ Name = 'Invoke-PartitionedInference -Repeat 0'; Run = { $plan | Invoke-PartitionedInference -Repeat 0 } }
    ) {
        (Get-FirstError $Run).FullyQualifiedErrorId | Should -BeLike 'ParameterArgumentValidationError*'
    }
}

Describe 'Bad input files' {
    BeforeAll {
        $script:sampleBytes = [byte[]]::new(3 * 32 * 32 * 4)
    }

    It '<Name> gives <Id>' -ForEach @(
        @{ Name = 'a file that is not there'; Id = 'InputFileNotFound'; Run = { $plan | Invoke-PartitionedInference -InputPath "$TestDrive/nothing.npy" } }
        @{ Name = 'an empty folder'; Id = 'InputFolderEmpty'; Run = { New-Item -ItemType Directory "$TestDrive/empty" -Force | Out-Null; $plan | Invoke-PartitionedInference -InputPath "$TestDrive/empty" } }
        @{ Name = 'a text file'; Id = 'InputFileUnsupported'; Run = { Set-Content "$TestDrive/notes.txt" 'hello'; $plan | Invoke-PartitionedInference -InputPath "$TestDrive/notes.txt" } }
        @{ Name = 'a JPEG that is not one'; Id = 'ImageUnreadable'; Run = { Set-Content "$TestDrive/broken.jpg" 'not a jpeg'; $plan | Invoke-PartitionedInference -InputPath "$TestDrive/broken.jpg" } }
        @{ Name = 'a .npy without its magic'; Id = 'NpyInvalid'; Run = { $f = New-Npy "$TestDrive/magic.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 32, 32), }" $sampleBytes @(1, 2, 3, 4, 5, 6); $plan | Invoke-PartitionedInference -InputPath $f } }
        @{ Name = 'a .npy whose shape overflows'; Id = 'NpyInvalid'; Run = { $f = New-Npy "$TestDrive/overflow.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 3), }"; $plan | Invoke-PartitionedInference -InputPath $f } }
        @{ Name = 'a .npy whose shape has a word in it'; Id = 'NpyInvalid'; Run = { $f = New-Npy "$TestDrive/word.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (3, x, 32), }"; $plan | Invoke-PartitionedInference -InputPath $f } }
        @{ Name = 'a .npy with a negative dimension'; Id = 'NpyInvalid'; Run = { $f = New-Npy "$TestDrive/negative.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (-3, 32, 32), }"; $plan | Invoke-PartitionedInference -InputPath $f } }
        @{ Name = 'a .npy of int16'; Id = 'NpyInvalid'; Run = { $f = New-Npy "$TestDrive/int16.npy" "{'descr': '<i2', 'fortran_order': False, 'shape': (3, 32, 32), }" ([byte[]]::new(3 * 32 * 32 * 2)); $plan | Invoke-PartitionedInference -InputPath $f } }
        @{ Name = 'a truncated .npy'; Id = 'NpyInvalid'; Run = { $f = New-Npy "$TestDrive/short.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 32, 32), }" ([byte[]]::new(100)); $plan | Invoke-PartitionedInference -InputPath $f } }
        @{ Name = 'a Fortran-ordered .npy'; Id = 'NpyInvalid'; Run = { $f = New-Npy "$TestDrive/fortran.npy" "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 32, 32), }" $sampleBytes; $plan | Invoke-PartitionedInference -InputPath $f } }
        @{ Name = 'a .npy of the wrong shape'; Id = 'InputShapeMismatch'; Run = { $f = New-Npy "$TestDrive/shape.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 16, 64), }" $sampleBytes; $plan | Invoke-PartitionedInference -InputPath $f } }
        @{ Name = 'a .npy of float64 for a float model'; Id = 'InputTypeMismatch'; Run = { $f = New-Npy "$TestDrive/double.npy" "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 32, 32), }" ([byte[]]::new(3 * 32 * 32 * 8)); $plan | Invoke-PartitionedInference -InputPath $f } }
        @{ Name = 'a -Std of 0'; Id = 'PreprocessingInvalid'; Run = { $f = New-Npy "$TestDrive/std.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 32, 32), }" $sampleBytes; $plan | Invoke-PartitionedInference -InputPath $f -Std 0 } }
        @{ Name = '-Repeat over files'; Id = 'RepeatNeedsSyntheticInputs'; Run = { $f = New-Npy "$TestDrive/repeat.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 32, 32), }" $sampleBytes; $plan | Invoke-PartitionedInference -InputPath $f -Repeat 2 } }
        @{ Name = '-Resume without files'; Id = 'ResumeNeedsInputFiles'; Run = { $plan | Invoke-PartitionedInference -Resume } }
        @{ Name = '-Resume without -OutputPath'; Id = 'ResumeNeedsInputFiles'; Run = { $f = New-Npy "$TestDrive/resume.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 32, 32), }" $sampleBytes; $plan | Invoke-PartitionedInference -InputPath $f -Resume } }
        @{ Name = 'a folder with another job''s outputs'; Id = 'OutputPathInUse'; Run = { $f = New-Npy "$TestDrive/twice.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 32, 32), }" $sampleBytes; $plan | Invoke-PartitionedInference -InputPath $f -OutputPath "$TestDrive/twice" | Out-Null; $plan | Invoke-PartitionedInference -InputPath $f -OutputPath "$TestDrive/twice" } }
        @{ Name = 'resuming with other preprocessing'; Id = 'ResumeMismatch'; Run = { $f = New-Npy "$TestDrive/other.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 32, 32), }" $sampleBytes; $plan | Invoke-PartitionedInference -InputPath $f -OutputPath "$TestDrive/other" | Out-Null; $plan | Invoke-PartitionedInference -InputPath $f -OutputPath "$TestDrive/other" -Resume -Resize Stretch } }
    ) {
        (Get-FirstError $Run).FullyQualifiedErrorId | Should -BeLike "$Id,*"
    }
}

Describe 'Bad plans' {
    It '<Name> gives <Id>' -ForEach @(
        @{ Name = 'one unit in two shards'; Id = 'PlanInvalid'; Run = { $p = Copy-Plan; $p.Shards[1].Unit = $p.Shards[0].Unit; $p.Shards[1].UnitId = $p.Shards[0].UnitId; $p | Invoke-PartitionedInference } }
        @{ Name = 'a negative shard count'; Id = 'PlanInvalid'; Run = { $p = Copy-Plan; $p.Shards[0].Count = -2; $p.Shards[1].Count += 8; $p | Invoke-PartitionedInference } }
        @{ Name = 'a shard without its unit'; Id = 'PlanInvalid'; Run = { $p = Copy-Plan; $p.Shards[0].Unit = $null; $p | Invoke-PartitionedInference } }
        @{ Name = 'shards that overlap'; Id = 'PlanInvalid'; Run = { $p = Copy-Plan; $p.Shards[1].Offset = 0; $p | Invoke-PartitionedInference } }
        @{ Name = 'shards that do not add up to the batch'; Id = 'PlanInvalid'; Run = { $p = Copy-Plan; $p.BatchSize = 99; $p | Invoke-PartitionedInference } }
        @{ Name = 'no shards'; Id = 'PlanEmpty'; Run = { $p = Copy-Plan; $p.Shards = @(); $p | Invoke-PartitionedInference } }
        @{ Name = 'a model whose bytes changed'; Id = 'ModelChanged'; Run = { $p = Copy-Plan; $p.ModelSha256 = '0' * 64; $p | Invoke-PartitionedInference } }
        @{ Name = 'a unit that is not here'; Id = 'UnitUnavailable'; Run = { $p = Copy-Plan; $p.Shards[0].Unit.Processors = @(4095); $p | Invoke-PartitionedInference } }
    ) {
        (Get-FirstError $Run).FullyQualifiedErrorId | Should -BeLike "$Id,*"
    }

    It 'stops Start-InferenceServer with UnitUnavailable for a plan whose unit is not here, as one check says' {
        $p = Copy-Plan
        $p.Shards[0].Unit.Processors = @(4095)
        { $p | Start-InferenceServer -Port 1 } | Should -Throw -ErrorId 'UnitUnavailable,HeteroBatch.Commands.StartInferenceServerCommand'
        Get-InferenceServer | Should -BeNullOrEmpty
    }

    It 'skips a unit that cannot run here in Invoke-Profile with a UnitUnavailable error, and profiles the others' {
        $gone = Get-ComputeUnit -CpuGroup 2 | Select-Object -First 1 | ConvertTo-Json -Depth 4 | ConvertFrom-Json
        $gone.Available = $false
        $gone.Reason = 'taken away for this test'
        $out = @($gone) + @($units[-1]) | Invoke-Profile -Model tinynet -BatchSize 1 -SecondsPerSize 0.02 -NoStore -ErrorAction SilentlyContinue -ErrorVariable ev
        @($out).Count | Should -Be 1
        $ev[0].FullyQualifiedErrorId | Should -Be 'UnitUnavailable,HeteroBatch.Commands.InvokeProfileCommand'
        "$($ev[0])" | Should -Match 'taken away for this test'
    }
}

Describe 'Bad profile stores' {
    It 'refuses a -ProfilePath that is a file (ProfilePathIsFile)' {
        Set-Content "$TestDrive/store.txt" 'x'
        (Get-FirstError { Get-PerformanceProfile -ProfilePath "$TestDrive/store.txt" }).FullyQualifiedErrorId | Should -BeLike 'ProfilePathIsFile,*'
    }

    It 'still returns measurements it cannot store, with ProfileStoreFailed' {
        $out = $units[0] | Invoke-Profile -Model tinynet -BatchSize 1 -SecondsPerSize 0.02 -ProfilePath /proc/heterobatch-store -ErrorVariable ev -ErrorAction SilentlyContinue
        $out | Should -BeOfType ([HeteroBatch.Engine.Profiling.UnitProfile])
        $out.Table.Count | Should -Be 1
        $ev[0].FullyQualifiedErrorId | Should -BeLike 'ProfileStoreFailed,*'
    }

    It 'says ProfileStoreBusy when another process holds the lock' {
        $dir = Join-Path $TestDrive 'busy'
        $null = $units[0] | Invoke-Profile -Model tinynet -BatchSize 1 -SecondsPerSize 0.02 -ProfilePath $dir
        $lock = Get-ChildItem $dir -Filter *.json | Select-Object -First 1 | ForEach-Object { "$($_.FullName).lock" }
        $holder = Start-Process -FilePath /usr/bin/flock -ArgumentList $lock, 'sleep', '20' -PassThru
        try {
            Start-Sleep -Milliseconds 500
            $waited = (Get-HeteroBatchOption).StoreLockSeconds
            Set-HeteroBatchOption -StoreLockSeconds 1
            $e = Get-FirstError { $units[0] | Invoke-Profile -Model tinynet -BatchSize 1 -SecondsPerSize 0.02 -ProfilePath $dir }
            $e.FullyQualifiedErrorId | Should -BeLike 'ProfileStoreBusy,*'
        }
        finally { Set-HeteroBatchOption -StoreLockSeconds $waited; $holder | Stop-Process -ErrorAction Ignore }
    }

    It 'leaves a profile of a newer schema in place and skips it (ProfileSchemaNewer)' {
        $dir = Join-Path $TestDrive 'newer'
        $null = $units[0] | Invoke-Profile -Model tinynet -BatchSize 1 -SecondsPerSize 0.02 -ProfilePath $dir
        $file = Get-ChildItem $dir -Filter *.json | Select-Object -First 1
        (Get-Content -Raw $file.FullName) -replace '"SchemaVersion": 1', '"SchemaVersion": 99' | Set-Content $file.FullName
        $found = Get-PerformanceProfile -ProfilePath $dir -WarningVariable w -WarningAction SilentlyContinue
        $found | Should -BeNullOrEmpty
        "$w" | Should -Match 'ProfileSchemaNewer'
        Test-Path $file.FullName | Should -BeTrue
        (Get-Content -Raw $file.FullName) | Should -Match '"SchemaVersion": 99'
    }
}

Describe 'Another ONNX Runtime that is not one' {
    It 'refuses it at import (OrtPathInvalid), and a new import without it works' {
        $dir = Join-Path $TestDrive 'fake-ort'
        New-Item -ItemType Directory $dir | Out-Null
        Set-Content (Join-Path $dir 'libonnxruntime.so') 'not a library'
        $r = Invoke-ChildPwsh "`$env:HETEROBATCH_ORT_PATH = '$dir'; try { Import-Module '$env:HETEROBATCH_TEST_MODULE' -ErrorAction Stop } catch { 'refused: ' + `$_.FullyQualifiedErrorId + ' ' + `$_.Exception.Message }; Remove-Item Env:HETEROBATCH_ORT_PATH; Remove-Module HeteroBatch -ErrorAction Ignore; Import-Module '$env:HETEROBATCH_TEST_MODULE'; (Get-ComputeUnit).Id"
        $r.Stdout | Should -Match 'refused: OrtPathInvalid,\S+ .*HETEROBATCH_ORT_PATH'
        $r.Stdout | Should -Match '(?m)^cpu$'
    }

    It 'gives OrtPathInvalid as the ErrorId of a folder that is not there' {
        $r = Invoke-ChildPwsh "`$env:HETEROBATCH_ORT_PATH = '$TestDrive/not-there'; try { Import-Module '$env:HETEROBATCH_TEST_MODULE' -ErrorAction Stop } catch { `$_.FullyQualifiedErrorId }"
        $r.Stdout | Should -BeLike 'OrtPathInvalid,*'
    }
}
