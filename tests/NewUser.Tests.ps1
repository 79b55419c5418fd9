# What a new user trips on (issue 24): resumed jobs piped on, pipeline input that does not bind,
# overwrites and -WhatIf, CSV cells, and the module used from outside the clone.
BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    Import-Module $env:HETEROBATCH_TEST_MODULE -Force
    $script:store = New-TestStore
    $script:units = Get-ComputeUnit -CpuGroup Core
    $script:profiles = $units | Invoke-Profile -Model tinynet -BatchSize 1, 4 -SecondsPerSize 0.05
    $script:plan = $profiles | Get-BatchPlan -BatchSize 8 -Algorithm Even
}

Describe 'A resumed job piped on' {
    It 'hands on every row of the job once, in input order, read back from the folder' {
        [HeteroBatch.Engine.Runtime.NativeLibraries]::Register()
        $photos = New-Item -ItemType Directory (Join-Path $TestDrive 'photos')
        $rng = [Random]::new(7)
        foreach ($i in 0..19) {
            $bmp = [SkiaSharp.SKBitmap]::new([SkiaSharp.SKImageInfo]::new(40, 30, 'Rgba8888', 'Unpremul'))
            $px = [byte[]]::new(40 * 30 * 4); $rng.NextBytes($px)
            [Runtime.InteropServices.Marshal]::Copy($px, 0, $bmp.GetPixels(), $px.Length)
            $data = $bmp.Encode('Jpeg', 90)
            [IO.File]::WriteAllBytes((Join-Path $photos ('p{0:D2}.jpg' -f $i)), $data.ToArray())
            $data.Dispose(); $bmp.Dispose()
        }
        $out = Join-Path $TestDrive 'out'
        $first = Get-ChildItem $photos | Invoke-PartitionedInference -Plan $plan -OutputPath $out
        @($first).Count | Should -Be 20
        # the job is done: resumed, it runs nothing and still gives every row (before: none)
        $csv = Join-Path $TestDrive 'classes.csv'
        Get-ChildItem $photos | Invoke-PartitionedInference -Plan $plan -OutputPath $out -Resume -InformationVariable job | Export-Csv $csv
        $job.MessageData.SamplesRun | Should -Be 0
        $rows = Import-Csv $csv
        $rows.Count | Should -Be 20
        ($rows.Index | ForEach-Object { [int]$_ }) | Should -Be (0..19)
        $rows.Input | Should -Be $first.Input
        $rows.Class | Should -Be ($first.Class | ForEach-Object { "$_" })
        $rows.Unit | Should -Be $first.Unit
        $rows.TopClasses | Should -Be ($first | ForEach-Object { "$($_.TopClasses)" })
    }
}

Describe 'Pipeline input that binds nothing' {
    It 'starts no profiling (nothing returned, nothing stored)' {
        $got = [pscustomobject]@{ Colour = 'red' } | Invoke-Profile -Model tinynet -ProfilePath (Join-Path $TestDrive 'none') -ErrorVariable bad -ErrorAction SilentlyContinue
        $got | Should -BeNullOrEmpty
        $bad.Count | Should -BeGreaterThan 0
        Get-PerformanceProfile -ProfilePath (Join-Path $TestDrive 'none') | Should -BeNullOrEmpty
    }

    It 'lists no models, units, profiles or servers' {
        [pscustomobject]@{ Colour = 'red' } | Get-InferenceModel -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        'x' | Get-ComputeUnit -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        'x' | Get-PerformanceProfile -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        'x' | Get-InferenceServer -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'binds a model name piped to Get-InferenceModel' {
        ('tinynet' | Get-InferenceModel).Name | Should -Be 'tinynet'
        (@('tinynet', 'mobilenet') | Get-InferenceModel).Name | Should -Be @('tinynet', 'mobilenet')
    }

    It 'binds units by Id from Select-Object and from CSV rows' {
        $one = $units | Select-Object -First 1
        $p = $one | Select-Object Id | Invoke-Profile -Model tinynet -BatchSize 1 -SecondsPerSize 0.05 -NoStore
        $p.Unit.Id | Should -Be $one.Id
        $csv = Join-Path $TestDrive 'units.csv'
        $units | Export-Csv $csv
        $q = Import-Csv $csv | Invoke-Profile -Model tinynet -BatchSize 1 -SecondsPerSize 0.05 -NoStore
        $q.Unit.Id | Should -Be $units.Id
    }

    It 'says plainly why a unit made up by hand cannot run' {
        $made = [HeteroBatch.Engine.Units.ComputeUnit]@{ Id = 'cpu' }
        $made | Invoke-Profile -Model tinynet -BatchSize 1 -NoStore -ErrorVariable bad -ErrorAction SilentlyContinue | Out-Null
        $bad[0].FullyQualifiedErrorId | Should -BeLike 'UnitUnavailable,*'
        "$($bad[0])" | Should -Not -Match 'Runtime ;'
        "$($bad[0])" | Should -Match 'Get-ComputeUnit'
    }
}

Describe 'Overwrites, -WhatIf and paths' {
    It 'Export-PerformanceChart and Export-InferenceModel share one overwrite rule and -WhatIf' {
        $chart = Join-Path $TestDrive 'chart.svg'
        $profiles | Export-PerformanceChart $chart -WhatIf
        Test-Path $chart | Should -BeFalse
        $profiles | Export-PerformanceChart $chart | Out-Null
        $before = (Get-Item $chart).LastWriteTimeUtc
        { $profiles | Export-PerformanceChart $chart -ErrorAction Stop } | Should -Throw -ErrorId 'FileExists,*'
        (Get-Item $chart).LastWriteTimeUtc | Should -Be $before
        ($profiles | Export-PerformanceChart $chart -Force).FullName | Should -Be $chart

        $model = Join-Path $TestDrive 'tiny.onnx'
        Export-InferenceModel -Model tinynet -Path $model -WhatIf
        Test-Path $model | Should -BeFalse
        (Export-InferenceModel -Name tinynet -Path $model).FullName | Should -Be $model
        { Export-InferenceModel -Model tinynet -Path $model -ErrorAction Stop } | Should -Throw -ErrorId 'FileExists,*'
        (Get-InferenceModel tinynet | Export-InferenceModel -Path $model -Force).FullName | Should -Be $model
    }

    It 'Invoke-PartitionedInference -OutputPath -WhatIf writes nothing, and -Plan is positional' {
        $out = Join-Path $TestDrive 'whatif'
        $plan | Invoke-PartitionedInference -OutputPath $out -WhatIf | Should -BeNullOrEmpty
        Test-Path $out | Should -BeFalse
        (Invoke-PartitionedInference $plan -NoCalibration).BatchSize | Should -Be 8
    }

    It '-CpuGroup with more groups than processors says so' {
        $made = Get-ComputeUnit -CpuGroup 100000 -WarningVariable warned -WarningAction SilentlyContinue
        $warned.Count | Should -Be 1
        "$($warned[0])" | Should -Match "made $(@($made).Count) groups"
    }
}

Describe 'Rows the user expects filled' {
    It 'an in-memory run names the unit of every prediction' {
        $result = $plan | Invoke-PartitionedInference -NoCalibration
        $result.Predictions.Count | Should -Be 8
        $result.Predictions.Unit | Should -Be ($plan.Shards | ForEach-Object { , $_.UnitId * $_.Count } | ForEach-Object { $_ })
    }

    It 'Export-Csv of <Name> writes no list type names' -ForEach @(
        @{ Name = 'profiles'; Make = { $profiles } }
        @{ Name = 'plans'; Make = { $plan } }
        @{ Name = 'results'; Make = { $plan | Invoke-PartitionedInference -NoCalibration } }
    ) {
        $csv = Join-Path $TestDrive "$Name.csv"
        & $Make | Export-Csv $csv
        Get-Content -Raw $csv | Should -Not -Match 'System\.Collections\.Generic'
    }

    It 'a plan''s CSV row reads its shares, a profile''s its table' {
        ($plan | ConvertTo-Csv | ConvertFrom-Csv).Shards | Should -Be (($plan.Shards | ForEach-Object { "$_" }) -join '; ')
        ($profiles[0] | ConvertTo-Csv | ConvertFrom-Csv).Table | Should -Match '^batch 1: [0-9.]+ ms; batch 4: [0-9.]+ ms$'
    }
}

Describe 'Outside the repository' {
    It 'imports the built module from a folder outside the clone, in a new shell' {
        $away = Join-Path ([IO.Path]::GetTempPath()) ("hb-away-" + [guid]::NewGuid().ToString('N'))
        New-Item -ItemType Directory $away | Out-Null
        try {
            $module = Split-Path $env:HETEROBATCH_TEST_MODULE
            Copy-Item $module (Join-Path $away 'HeteroBatch') -Recurse
            $r = Invoke-ChildPwsh "Set-Location '$away'; Import-Module ./HeteroBatch/HeteroBatch.psd1 -ErrorAction Stop; (Get-Module HeteroBatch).ModuleBase; (Get-InferenceModel tinynet).Name"
            $r.ExitCode | Should -Be 0 -Because $r.Stderr
            $lines = $r.Stdout -split "`n"
            $lines[0] | Should -Be (Join-Path $away 'HeteroBatch')
            $lines[1] | Should -Be 'tinynet'
        }
        finally { Remove-Item $away -Recurse -Force -ErrorAction Ignore }
    }
}
