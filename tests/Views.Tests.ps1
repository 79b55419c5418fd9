# Every default table view at 80 columns: the header on one line, no line past 80, and what identifies a row whole.
BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    Import-Module $env:HETEROBATCH_TEST_MODULE -Force
    $script:store = New-TestStore
    $formats = [xml](Get-Content -Raw (Join-Path (Split-Path $env:HETEROBATCH_TEST_MODULE) 'HeteroBatch.format.ps1xml'))
    # each table view's column labels, by the type it shows
    $script:labels = @{}
    foreach ($v in $formats.Configuration.ViewDefinitions.View) {
        if ($v.TableControl) { $labels[$v.ViewSelectedBy.TypeName] = @($v.TableControl.TableHeaders.TableColumnHeader | ForEach-Object { $_.Label }) }
    }
    $unit = [HeteroBatch.Engine.Units.ComputeUnit]@{ Id = 'remote12'; Kind = 'Remote'; Provider = 'Remote'; Name = 'heterobatch 0.1.0'; Available = $false; Reason = 'the inference server at http://127.0.0.1:8011/ did not answer within 10 seconds' }
    $measured = [DateTimeOffset]::new(2026, 11, 29, 15, 52, 41, [TimeSpan]::Zero)
    $profile = [HeteroBatch.Engine.Profiling.UnitProfile]@{ Unit = $unit; Model = 'squeezenet_v1.1'; MaxBatchSize = 1024; MeasuredAt = $measured }
    $profile.Table.Add([HeteroBatch.Engine.Profiling.ProfileEntry]@{ BatchSize = 1024; MedianMs = 123456.789; P10Ms = 123000.5; P90Ms = 124000.25; Samples = 3; Ci95Percent = 12.5 })
    $plan = [HeteroBatch.Engine.Planning.BatchPlan]@{ Model = 'squeezenet_v1.1'; BatchSize = 100000; Algorithm = 'Proportional'; PredictedMs = 1234567.8; PredictedSpeedup = 3.25 }
    foreach ($i in 0..3) { $plan.Shards.Add([HeteroBatch.Engine.Planning.PlanShard]@{ UnitId = "remote1$i"; Unit = $unit; Offset = 25000 * $i; Count = 25000; SubBatchSize = 1024; PredictedMs = 1234567.8 }) }
    $result = [HeteroBatch.Engine.Execution.InferenceResult]@{ Model = 'squeezenet_v1.1'; BatchSize = 100000; WallMs = 1234567.8; PredictedMs = 1234567.8; Plan = $plan }
    foreach ($i in 0..3) { $result.Units.Add([HeteroBatch.Engine.Execution.UnitRun]@{ UnitId = "remote1$i"; PlannedCount = 25000; Count = 25000; SubBatches = 25; Ms = 1234567.8; PredictedMs = 1234567.8; TookOver = 25000; Failed = ($i -eq 3); Error = 'the server closed the connection after 3 requests' }) }
    $prediction = [HeteroBatch.Engine.Execution.SamplePrediction]@{ Index = 123456; Input = 'photo000000.jpg'; Unit = 'remote12'; Class = 999; Score = 4.821934 }
    # the objects each view shows, and the properties that identify a row (each must appear whole)
    $script:cases = @(
        @{ Type = 'HeteroBatch.Engine.Units.ComputeUnit'; Objects = @((Get-ComputeUnit -ListAvailable -Precision Fp16) + $unit); Keys = 'Id', 'Name' }
        @{ Type = 'HeteroBatch.Engine.Profiling.UnitProfile'; Objects = @($profile); Keys = 'UnitId', 'Model'; Also = '2026-11-29 15:52' }
        @{ Type = 'HeteroBatch.Engine.Profiling.ProfileEntry'; Objects = @($profile.Table); Keys = 'BatchSize' }
        @{ Type = 'HeteroBatch.Engine.Planning.BatchPlan'; Objects = @($plan); Keys = 'Model', 'BatchSize' }
        @{ Type = 'HeteroBatch.Engine.Planning.PlanShard'; Objects = @($plan.Shards); Keys = 'UnitId', 'Offset', 'Count' }
        @{ Type = 'HeteroBatch.Engine.Execution.InferenceResult'; Objects = @($result); Keys = 'Model', 'BatchSize' }
        @{ Type = 'HeteroBatch.Engine.Execution.UnitRun'; Objects = @($result.Units); Keys = 'UnitId', 'Count', 'Failed' }
        @{ Type = 'HeteroBatch.Engine.Models.ZooModel'; Objects = @(Get-InferenceModel); Keys = 'Name' }
        @{ Type = 'HeteroBatch.Engine.Execution.SamplePrediction'; Objects = @($prediction); Keys = 'Index', 'Input', 'Unit' }
    )
}

Describe 'Default views at 80 columns' {
    It 'covers every table view of the format file' {
        foreach ($type in $labels.Keys | Where-Object { $_ -ne 'HeteroBatch.Commands.ServerInfo' }) { $cases.Type | Should -Contain $type }
    }

    It 'shows <_> with its header on one line, no line past 80 and each key column whole' -ForEach @(
        'ComputeUnit', 'UnitProfile', 'ProfileEntry', 'BatchPlan', 'PlanShard', 'InferenceResult', 'UnitRun', 'ZooModel', 'SamplePrediction'
    ) {
        $name = $_
        $case = $cases | Where-Object { $_.Type.EndsWith(".$name") } | Select-Object -First 1
        $text = $case.Objects | Out-String -Width 80
        $lines = @($text -split "`r?`n" | ForEach-Object { $_.TrimEnd() } | Where-Object { $_ })
        $lines | ForEach-Object { $_.Length | Should -BeLessOrEqual 80 -Because "'$_' is within 80 columns" }
        # the header is the first line, whole: every label once, in order, nothing wrapped to the next line
        ($lines[0] -split '\s+') | Should -Be $labels[$case.Type]
        $lines[1] | Should -Match '^[- ]+$'
        foreach ($o in $case.Objects) {
            foreach ($key in $case.Keys) {
                $value = "$($o.$key)"
                if ($value) { $text | Should -Match ([regex]::Escape($value)) -Because "$key '$value' shows whole" }
            }
        }
        if ($case.Also) { $text | Should -Match ([regex]::Escape($case.Also)) }
    }
}
