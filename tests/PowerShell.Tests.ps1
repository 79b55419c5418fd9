# HeteroBatch as an experienced PowerShell user drives it: objects through serializers and jobs,
# errors that -ErrorAction and $? control.
BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    Import-Module $env:HETEROBATCH_TEST_MODULE -Force
    $script:store = New-TestStore
    $script:profiles = Get-ComputeUnit -CpuGroup 2 | Invoke-Profile -Model tinynet -BatchSize 1, 2, 4 -SecondsPerSize 0.05
}

Describe 'Objects that survive serializers and jobs' {
    It 'binds profiles back to Get-BatchPlan from Export-Clixml / Import-Clixml' {
        $file = Join-Path $TestDrive 'profiles.xml'
        $profiles | Export-Clixml $file
        $plan = Import-Clixml $file | Get-BatchPlan -BatchSize 8
        ($plan.Shards | Measure-Object Count -Sum).Sum | Should -Be 8
        $plan.Units.Count | Should -Be $profiles.Count
    }

    It 'binds a JSON array of profiles, read whole from a file' {
        $file = Join-Path $TestDrive 'profiles.json'
        $profiles | ConvertTo-Json -Depth 10 | Set-Content $file
        $plan = Get-Content -Raw $file | Get-BatchPlan -BatchSize 8
        ($plan.Shards | Measure-Object Count -Sum).Sum | Should -Be 8
    }

    It 'reads a plan from the lines of its JSON file (Get-Content without -Raw)' {
        $file = Join-Path $TestDrive 'plan.json'
        $profiles | Get-BatchPlan -BatchSize 8 | ConvertTo-Json -Depth 10 | Set-Content $file
        (Get-Content $file).Count | Should -BeGreaterThan 10
        $r = Invoke-PartitionedInference -Plan (Get-Content $file)
        $r.BatchSize | Should -Be 8
        # piped line by line, each line is refused with the way to read the file whole
        $e = { Get-Content $file | Invoke-PartitionedInference -ErrorAction Stop } | Should -Throw -PassThru
        $e.Exception.Message | Should -Match 'Get-Content -Raw'
    }

    It 'puts a profile''s table in JSON once, and binds that JSON back' {
        $json = $profiles[0] | ConvertTo-Json -Depth 6
        ([regex]::Matches($json, '"BatchSize"')).Count | Should -Be $profiles[0].Table.Count
        $json | Should -Not -Match '"Entries"'
        $plan = $json | ConvertFrom-Json | Get-BatchPlan -BatchSize 4
        $plan.BatchSize | Should -Be 4
    }

    It 'runs a plan that came back from Start-Job' {
        $job = Start-Job -ScriptBlock {
            param($module, $storePath)
            Import-Module $module
            Get-BatchPlan -Model tinynet -BatchSize 8 -ProfilePath $storePath
        } -ArgumentList $env:HETEROBATCH_TEST_MODULE, $store
        $plan = $job | Wait-Job -Timeout 120 | Receive-Job
        $job | Remove-Job -Force
        $plan.Shards.Count | Should -BeGreaterThan 0
        $r = $plan | Invoke-PartitionedInference
        $r.Complete | Should -BeTrue
        $r.BatchSize | Should -Be 8
    }
}

Describe 'Errors that -ErrorAction controls' {
    It 'writes UnitNotFound for an id that matches no unit, as a non-terminating error' {
        $out = Get-ComputeUnit gpu7 -ErrorVariable ev -ErrorAction SilentlyContinue
        $ok = $?
        $out | Should -BeNullOrEmpty
        $ok | Should -BeFalse
        $ev[0].FullyQualifiedErrorId | Should -BeLike 'UnitNotFound,*'
        $ev[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        # a wildcard that matches nothing is not an error
        Get-ComputeUnit 'gpu*' -ErrorVariable none -ErrorAction SilentlyContinue | Out-Null
        $none | Should -BeNullOrEmpty
    }

    It 'writes ModelNotFound for a misspelt model name, which 2>$null silences' {
        $ErrorActionPreference = 'Continue' # as in a user's shell
        $out = Get-InferenceModel mobilnet 2>$null
        $out | Should -BeNullOrEmpty
        Get-InferenceModel mobilnet, tinynet -ErrorVariable ev -ErrorAction SilentlyContinue | Select-Object -ExpandProperty Name | Should -Be 'tinynet'
        $ev[0].FullyQualifiedErrorId | Should -BeLike 'ModelNotFound,*'
    }
}

Describe 'Binding' {
    It 'takes unit ids for Invoke-Profile -Unit' {
        $p = Invoke-Profile -Model tinynet -Unit cpu0 -BatchSize 1 -SecondsPerSize 0.02 -NoStore
        $p.Unit.Id | Should -Be 'cpu0'
        { Invoke-Profile -Model tinynet -Unit gpu42 -BatchSize 1 -NoStore -ErrorAction Stop } | Should -Throw '*No unit*gpu42*'
    }

    It 'takes the model from Get-InferenceModel by property name' {
        $p = Get-InferenceModel tinynet | Invoke-Profile -Unit cpu0 -BatchSize 1 -SecondsPerSize 0.02 -NoStore
        $p.Model | Should -Be 'tinynet'
    }

    It 'takes units back from Import-Clixml and ConvertFrom-Json' {
        $file = Join-Path $TestDrive 'units.xml'
        Get-ComputeUnit -CpuGroup 2 | Export-Clixml $file
        $p = Import-Clixml $file | Select-Object -First 1 | Invoke-Profile -Model tinynet -BatchSize 1 -SecondsPerSize 0.02 -NoStore
        $p.Unit.Id | Should -Be 'cpu0'
        $j = Get-ComputeUnit -CpuGroup 2 | Select-Object -Last 1 | ConvertTo-Json | ConvertFrom-Json | Invoke-Profile -Model tinynet -BatchSize 1 -SecondsPerSize 0.02 -NoStore
        $j.Unit.Fingerprint | Should -Be (Get-ComputeUnit -CpuGroup 2 | Select-Object -Last 1).Fingerprint
    }

    It 'says UnitNotFound for a unit id that is not here, ProfileNotFound for one without a profile' {
        { Get-BatchPlan -Model tinynet -BatchSize 4 -Unit gpu0 -ErrorAction Stop } | Should -Throw -ErrorId 'UnitNotFound,*'
        { Get-BatchPlan -Model squeezenet_v1.1 -BatchSize 4 -Unit cpu0 -ErrorAction Stop } | Should -Throw -ErrorId 'ProfileNotFound,*'
    }

    It 'says ProfileModelMismatch, not UnitsOverlap, for two models profiled on one unit' {
        $other = [HeteroBatch.Engine.Profiling.UnitProfile]::new()
        $other.Unit = $profiles[0].Unit; $other.Model = 'other'; $other.ModelSha256 = 'beef'
        $other.Table.Add([HeteroBatch.Engine.Profiling.ProfileEntry]@{ BatchSize = 1; MedianMs = 1 })
        { @($profiles[0], $other) | Get-BatchPlan -BatchSize 4 -ErrorAction Stop } | Should -Throw -ErrorId 'ProfileModelMismatch,*'
    }
}

Describe 'Feedback' {
    It 'shows progress while a run goes through several planned batches' {
        $plan = $profiles | Get-BatchPlan -BatchSize 4
        $ps = [powershell]::Create()
        try {
            [void]$ps.AddCommand('Import-Module').AddArgument($env:HETEROBATCH_TEST_MODULE).AddStatement()
            [void]$ps.AddCommand('Invoke-PartitionedInference').AddParameter('Plan', $plan).AddParameter('Repeat', 3)
            $null = $ps.Invoke()
            $records = @($ps.Streams.Progress | Where-Object ActivityId -EQ 4102)
            $records.Count | Should -BeGreaterOrEqual 3
            ($records | Where-Object PercentComplete -EQ 100) | Should -Not -BeNullOrEmpty
            $records[0].StatusDescription | Should -Match 'samples/s'
        }
        finally { $ps.Dispose() }
    }
}

Describe 'Completion' {
    It 'completes <Parameter> of <Command>' -ForEach @(
        @{ Command = 'Get-ComputeUnit'; Parameter = '-Id'; Typed = 'Get-ComputeUnit -Id cp'; Expect = 'cpu' }
        @{ Command = 'Get-ComputeUnit'; Parameter = '-CpuGroup'; Typed = 'Get-ComputeUnit -CpuGroup Co'; Expect = 'Core' }
        @{ Command = 'Get-BatchPlan'; Parameter = '-Unit'; Typed = 'Get-BatchPlan -Model tinynet -BatchSize 4 -Unit cpu'; Expect = 'cpu0' }
        @{ Command = 'Invoke-PartitionedInference'; Parameter = '-Unit'; Typed = 'Invoke-PartitionedInference -Model tinynet -BatchSize 4 -Unit cpu'; Expect = 'cpu0' }
    ) {
        $r = TabExpansion2 -inputScript $Typed -cursorColumn $Typed.Length
        $r.CompletionMatches.CompletionText | Should -Contain $Expect
    }

    It 'completes .onnx files by path for -Model' {
        $dir = Join-Path $TestDrive 'my models'
        New-Item -ItemType Directory $dir | Out-Null
        Export-InferenceModel tinynet (Join-Path $dir 'tiny-export.onnx')
        Set-Content (Join-Path $dir 'notes.txt') 'x'
        Push-Location $TestDrive
        try {
            $typed = "Invoke-Profile -Model 'my models/ti"
            $r = TabExpansion2 -inputScript $typed -cursorColumn $typed.Length
            $r.CompletionMatches.CompletionText | Should -Contain "'my models/tiny-export.onnx'"
            $typed = "Invoke-Profile -Model 'my models/no"
            (TabExpansion2 -inputScript $typed -cursorColumn $typed.Length).CompletionMatches | Should -BeNullOrEmpty
        }
        finally { Pop-Location }
    }
}

Describe 'Objects a script can use' {
    It 'gives a profile''s Table as an array' {
        $t = $profiles[0].Table
        $t.Count | Should -Be 3
        $t[2].BatchSize | Should -Be 4
    }

    It 'names every output type in Format-List (ToString), not by its type name' {
        $plan = $profiles | Get-BatchPlan -BatchSize 6
        $r = $plan | Invoke-PartitionedInference
        foreach ($o in @($plan.Shards[0], $r, $r.Units[0], $r.Predictions[0], $profiles[0].Table[0])) {
            "$o" | Should -Not -Match '^HeteroBatch\.'
        }
    }

    It 'takes -ProfilePath beside a piped plan, as $PSDefaultParameterValues would give it' {
        $plan = $profiles | Get-BatchPlan -BatchSize 4
        ($plan | Invoke-PartitionedInference -ProfilePath $store).Complete | Should -BeTrue
    }

    It 'says in -Verbose which profiles Get-BatchPlan planned from' {
        $v = Get-BatchPlan -Model tinynet -BatchSize 4 -Verbose 4>&1 | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }
        "$v" | Should -Match 'planning from the profile of tinynet on cpu'
    }
}

Describe 'Views at 80 columns, data in CSV and JSON' {
    BeforeAll {
        $script:plan = $profiles | Get-BatchPlan -BatchSize 6
        $script:result = $plan | Invoke-PartitionedInference
    }

    It 'renders <Name> at 80 columns with no column under 4 characters' -ForEach @(
        @{ Name = 'units'; Get = { Get-ComputeUnit -ListAvailable } }
        @{ Name = 'profiles'; Get = { $profiles } }
        @{ Name = 'a profile table'; Get = { $profiles[0].Table } }
        @{ Name = 'a plan'; Get = { $plan } }
        @{ Name = 'plan shards'; Get = { $plan.Shards } }
        @{ Name = 'a result'; Get = { $result } }
        @{ Name = 'unit runs'; Get = { $result.Units } }
        @{ Name = 'predictions'; Get = { $result.Predictions } }
        @{ Name = 'models'; Get = { Get-InferenceModel } }
    ) {
        $PSStyle.OutputRendering = 'PlainText'
        $lines = (& $Get | Format-Table | Out-String -Width 80) -split "`r?`n"
        $lines | ForEach-Object { $_.TrimEnd().Length | Should -BeLessOrEqual 80 }
        $dashes = $lines | Where-Object { $_ -match '^-[- ]*$' } | Select-Object -First 1
        $dashes | Should -Not -BeNullOrEmpty
        # each column's room: from where its underline starts to where the next one starts (the last one: to column 80)
        $starts = @([regex]::Matches($dashes, '-+') | ForEach-Object Index) + 81
        for ($i = 0; $i -lt $starts.Count - 1; $i++) {
            ($starts[$i + 1] - $starts[$i] - 1) | Should -BeGreaterOrEqual 4 -Because "column $i of '$dashes'"
        }
    }

    It 'labels columns with property names, so Where-Object finds what the table shows' {
        $PSStyle.OutputRendering = 'PlainText'
        $header = (($profiles[0].Table | Format-Table | Out-String -Width 120) -split "`r?`n" | Where-Object { $_ -match '\S' })[0]
        foreach ($label in $header.Trim() -split ' +') {
            $profiles[0].Table[0].PSObject.Properties.Name | Should -Contain $label
        }
        @($profiles[0].Table | Where-Object Samples -GE 1).Count | Should -Be 3
    }

    It 'writes predictions to CSV as values, never as type names' {
        $file = Join-Path $TestDrive 'predictions.csv'
        $result.Predictions | Export-Csv $file
        $text = Get-Content -Raw $file
        $text | Should -Not -Match 'System\.'
        (Import-Csv $file)[0].TopClasses -split ' ' | Should -HaveCount 5
    }

    It 'writes units and models to CSV as values, never as type names' {
        $file = Join-Path $TestDrive 'units.csv'
        Get-ComputeUnit -CpuGroup 2 | Export-Csv $file
        Get-Content -Raw $file | Should -Not -Match 'System\.'
        (Import-Csv $file)[0].Processors | Should -Match '^\d+( \d+)*$'
        Get-InferenceModel | Export-Csv (Join-Path $TestDrive 'models.csv')
        Get-Content -Raw (Join-Path $TestDrive 'models.csv') | Should -Not -Match 'System\.'
    }

    It 'puts each output in JSON once' {
        $json = $result | ConvertTo-Json -Depth 6 -Compress
        $json | Should -Not -Match '"Floats"'
        $values = $result.Outputs[0].Data.Count
        ([regex]::Matches($json, '"Data":\[')).Count | Should -Be $result.Outputs.Count
        $values | Should -BeGreaterThan 0
    }
}

Describe 'Charts' {
    It 'draws <What> to <Ext>' -ForEach @(
        @{ What = 'profiles'; Ext = 'png'; Get = { $profiles } }
        @{ What = 'a plan'; Ext = 'svg'; Get = { $profiles | Get-BatchPlan -BatchSize 6 } }
        @{ What = 'a result'; Ext = 'png'; Get = { $profiles | Get-BatchPlan -BatchSize 6 | Invoke-PartitionedInference } }
        @{ What = 'a result back from Export-Clixml'; Ext = 'svg'; Get = { $f = Join-Path $TestDrive 'r.xml'; $profiles | Get-BatchPlan -BatchSize 6 | Invoke-PartitionedInference | Export-Clixml $f; Import-Clixml $f } }
        @{ What = 'a result back from JSON'; Ext = 'png'; Get = { $profiles | Get-BatchPlan -BatchSize 6 | Invoke-PartitionedInference | ConvertTo-Json -Depth 8 | ConvertFrom-Json } }
        @{ What = 'profiles back from Export-Clixml'; Ext = 'png'; Get = { $f = Join-Path $TestDrive 'p.xml'; $profiles | Export-Clixml $f; Import-Clixml $f } }
    ) {
        $file = Join-Path $TestDrive "chart-$($What -replace ' ', '-').$Ext"
        $out = & $Get | Export-PerformanceChart $file
        $out.FullName | Should -Be $file
        (Get-Item $file).Length | Should -BeGreaterThan 2000
        $head = [IO.File]::ReadAllBytes($file)[0..3]
        if ($Ext -eq 'png') { $head | Should -Be @(0x89, 0x50, 0x4E, 0x47) } else { (Get-Content -Raw $file) | Should -Match '<svg' }
    }

    It 'draws in a fresh shell, where nothing else has loaded the drawing library yet' {
        $file = Join-Path $TestDrive 'fresh.png'
        $r = Invoke-ChildPwsh "Import-Module '$env:HETEROBATCH_TEST_MODULE'; Get-ComputeUnit | Invoke-Profile -Model tinynet -BatchSize 1, 2 -SecondsPerSize 0.02 -NoStore | Export-PerformanceChart '$file' | Out-Null; 'ok'"
        $r.Stdout | Should -Be 'ok'
        (Get-Item $file).Length | Should -BeGreaterThan 2000
    }

    It 'refuses a format it does not write (ChartFormatUnsupported)' {
        { $profiles | Export-PerformanceChart (Join-Path $TestDrive 'chart.bmp') -ErrorAction Stop } | Should -Throw -ErrorId 'ChartFormatUnsupported,*'
    }
}

Describe 'Plans calibrated by runs' {
    It 'records each run and plans from what the runs showed; -NoCalibration plans from profiles alone' {
        $dir = Join-Path $TestDrive 'calibrated'
        $null = Get-ComputeUnit -CpuGroup 2 | Invoke-Profile -Model tinynet -BatchSize 1, 2, 4, 8 -SecondsPerSize 0.05 -ProfilePath $dir
        (Get-BatchPlan -Model tinynet -BatchSize 8 -ProfilePath $dir).CostsFrom | Should -Be 'profiles'
        # Even: both units run in both runs, whatever a loaded host's first run showed (Optimal could then give one unit all)
        1..2 | ForEach-Object { $null = Invoke-PartitionedInference -Model tinynet -BatchSize 8 -Algorithm Even -ProfilePath $dir }
        (Get-ChildItem (Join-Path $dir 'observations') -Filter *.jsonl).Count | Should -Be 2
        # what two runs on a loaded host showed moves a factor half-way at most; three more whole runs in which each
        # unit took a quarter of its prediction agree (the test writes them beside the real ones: their times are the test's)
        $files = Get-ChildItem (Join-Path $dir 'observations') -Filter *.jsonl
        $seen = $files | ForEach-Object { Get-Content $_.FullName | Select-Object -First 1 | ConvertFrom-Json }
        foreach ($i in 1..3) {
            $runId = [guid]::NewGuid().ToString('N')
            $seen | ForEach-Object { $_.Ms = $_.PredictedMs / 4; $_.RunId = $runId; $_.At = [DateTimeOffset]::UtcNow.AddDays($i) }
            $seen | ForEach-Object { $_.RunWallMs = ($seen | Measure-Object Ms -Maximum).Maximum }
            for ($f = 0; $f -lt $files.Count; $f++) { Add-Content $files[$f].FullName ($seen[$f] | ConvertTo-Json -Compress -Depth 5) }
        }
        $plan = Get-BatchPlan -Model tinynet -BatchSize 8 -ProfilePath $dir
        $plan.CostsFrom | Should -Be 'profiles, calibrated by runs: cpu0 x0.250 (3 runs), cpu1 x0.250 (3 runs)'
        $plan.Calibrated | Should -Be '3 runs'
        (Get-BatchPlan -Model tinynet -BatchSize 8 -ProfilePath $dir -NoCalibration).CostsFrom | Should -Be 'profiles'
        $null = Invoke-PartitionedInference -Model tinynet -BatchSize 8 -ProfilePath $dir -NoCalibration
        (Get-Content (Get-ChildItem (Join-Path $dir 'observations') -Filter *.jsonl)[0].FullName).Count | Should -Be 5
    }

    It 'shows in the default table view whether runs changed a plan, within 80 columns' {
        $dir = Join-Path $TestDrive 'calibrated-view'
        $null = Get-ComputeUnit -CpuGroup 2 | Invoke-Profile -Model tinynet -BatchSize 1, 2, 4, 8 -SecondsPerSize 0.05 -ProfilePath $dir
        $null = Invoke-PartitionedInference -Model tinynet -BatchSize 8 -Algorithm Even -ProfilePath $dir
        # three runs of cpu1 that took three times its prediction, newer than the real one
        $file = Get-ChildItem (Join-Path $dir 'observations') -Filter *cpu1*.jsonl
        $seen = Get-Content $file.FullName | Select-Object -First 1 | ConvertFrom-Json
        foreach ($i in 1..3) {
            $seen.Ms = $seen.PredictedMs * 3; $seen.RunId = [guid]::NewGuid().ToString('N'); $seen.At = [DateTimeOffset]::UtcNow.AddDays($i)
            Add-Content $file.FullName ($seen | ConvertTo-Json -Compress -Depth 5)
        }
        $PSStyle.OutputRendering = 'PlainText'
        $view = { param($p) ($p | Format-Table | Out-String -Width 80) -split "`r?`n" | Where-Object { $_ -match '\S' } | ForEach-Object { $_.TrimEnd() } }
        $lines = & $view (Get-BatchPlan -Model tinynet -BatchSize 8 -ProfilePath $dir)
        $lines[0] | Should -Match '^Model +BatchSize +PredictedMs +PredictedSpeedup +Calibrated +Split$'
        $lines[2] | Should -Match ' \d+ runs +cpu0:\d+'
        $lines | ForEach-Object { $_.TrimEnd().Length | Should -BeLessOrEqual 80 }
        (& $view (Get-BatchPlan -Model tinynet -BatchSize 8 -ProfilePath $dir -NoCalibration))[2] | Should -Match ' no +cpu0:\d+'
    }

    It 'records the runs of a plan made from -ProfilePath X in X, piped on without -ProfilePath, file jobs too' {
        $x = Join-Path $TestDrive 'planned-from-x'
        $defaultStore = $env:HETEROBATCH_PROFILE_PATH
        $before = @(Get-ChildItem (Join-Path $defaultStore 'observations') -Filter *.jsonl -ErrorAction Ignore | Get-Content).Count
        $null = Get-ComputeUnit -CpuGroup 2 | Invoke-Profile -Model tinynet -BatchSize 1, 2, 4, 8 -SecondsPerSize 0.05 -ProfilePath $x
        $plan = Get-BatchPlan -Model tinynet -BatchSize 8 -ProfilePath $x -Algorithm Even
        $plan.ProfileFolder | Should -Be (Get-Item $x).FullName
        $result = $plan | Invoke-PartitionedInference -Verbose 4>&1 | Where-Object { $_ -isnot [System.Management.Automation.VerboseRecord] -or $_.Message -like 'this run was recorded*' }
        ($result | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message | Should -BeLike "this run was recorded in $((Get-Item $x).FullName)*"
        @(Get-ChildItem (Join-Path $x 'observations') -Filter *.jsonl | Get-Content).Count | Should -Be 2
        # a job over files from the same plan records there as well
        $images = Join-Path $TestDrive 'x-images'
        New-Item -ItemType Directory $images | Out-Null
        $tensor = [HeteroBatch.Engine.Data.TensorBatch]::new('x', [long[]](3, 32, 32), 1, [float[]]::new(3072))
        1..8 | ForEach-Object { [HeteroBatch.Engine.Data.Npy]::Write((Join-Path $images "s$_.npy"), $tensor) }
        $rows = Get-ChildItem $images | Invoke-PartitionedInference -Plan $plan
        $rows.Count | Should -Be 8
        @(Get-ChildItem (Join-Path $x 'observations') -Filter *.jsonl | Get-Content).Count | Should -Be 4
        @(Get-ChildItem (Join-Path $defaultStore 'observations') -Filter *.jsonl -ErrorAction Ignore | Get-Content).Count | Should -Be $before
    }
}
