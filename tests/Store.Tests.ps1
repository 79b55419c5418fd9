# The profile store as users drive it: reading, editing, damage, and two shells at once.
BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    Import-Module $env:HETEROBATCH_TEST_MODULE -Force
    $script:store = New-TestStore
    $script:unit = Get-ComputeUnit -CpuGroup Core | Select-Object -First 1
    $unit | Invoke-Profile -Model tinynet -BatchSize 1, 2, 4 -SecondsPerSize 0.05 | Out-Null
}

Describe 'Get-PerformanceProfile' {
    It 'filters by model and unit' {
        @(Get-PerformanceProfile -Model tinynet).Count | Should -Be 1
        @(Get-PerformanceProfile -Model tinynet -Unit $unit.Id).Count | Should -Be 1
        Get-PerformanceProfile -Model tinynet -Unit 'gpu*' | Should -BeNullOrEmpty
        Get-PerformanceProfile -Model mobilenet | Should -BeNullOrEmpty
    }

    It 're-binds to Get-BatchPlan from the pipeline' {
        $plan = Get-PerformanceProfile -Model tinynet | Get-BatchPlan -BatchSize 12
        ($plan.Shards | Measure-Object Count -Sum).Sum | Should -Be 12
    }

    It 'moves a corrupt file aside with a ProfileCorrupt warning, and keeps it' {
        $dir = Join-Path $TestDrive 'damaged'
        New-Item -ItemType Directory $dir | Out-Null
        Copy-Item (Join-Path $store '*.json') $dir
        $file = Get-ChildItem $dir -Filter *.json | Select-Object -First 1
        Set-Content $file.FullName '{"SchemaVersion": 1, "Model": "tinynet", "Entri'
        $found = Get-PerformanceProfile -ProfilePath $dir -WarningVariable warned 3>$null
        $found | Should -BeNullOrEmpty
        "$warned" | Should -Match 'ProfileCorrupt'
        Test-Path $file.FullName | Should -BeFalse
        $aside = Get-ChildItem $dir -Filter '*.corrupt-*'
        Get-Content -Raw $aside.FullName | Should -Match '"Entri'
    }
}

Describe 'Set-PerformanceProfile' {
    It 'changes nothing with -WhatIf' {
        $before = Get-ChildItem $store -Filter *.json | Get-FileHash
        Get-PerformanceProfile -Model tinynet | Set-PerformanceProfile -BatchSize 3 -MedianMs 9.5 -WhatIf
        (Get-ChildItem $store -Filter *.json | Get-FileHash).Hash | Should -Be $before.Hash
    }

    It 'adds an entry, marked as edited, and keeps it' {
        $p = Get-PerformanceProfile -Model tinynet | Set-PerformanceProfile -BatchSize 3 -MedianMs 9.5 -Confirm:$false
        $p.Table.BatchSize | Should -Be @(1, 2, 3, 4)
        $e = (Get-PerformanceProfile -Model tinynet).Table | Where-Object BatchSize -EQ 3
        $e.MedianMs | Should -Be 9.5
        $e.Samples | Should -Be 0
        Get-PerformanceProfile -Model tinynet | Remove-PerformanceProfile -BatchSize 3 -Confirm:$false | Out-Null
    }

    It 'leaves the piped profile as it was and returns an edited copy' {
        $piped = Get-PerformanceProfile -Model tinynet
        $p = $piped | Set-PerformanceProfile -BatchSize 3 -MedianMs 9.5 -Confirm:$false
        $piped.Table.BatchSize | Should -Not -Contain 3
        $p.Table.BatchSize | Should -Contain 3
        [object]::ReferenceEquals($piped, $p) | Should -BeFalse
        Get-PerformanceProfile -Model tinynet | Remove-PerformanceProfile -BatchSize 3 -Confirm:$false | Out-Null
    }

    It 'shows the tables side by side with -AsTable' {
        $rows = Get-PerformanceProfile -Model tinynet -AsTable
        $rows.BatchSize | Should -Be @(1, 2, 4)
        $rows[0].PSObject.Properties.Name | Should -Contain "$($unit.Id) ms"
    }
}

Describe 'Remove-PerformanceProfile' {
    It 'changes nothing with -WhatIf' {
        $before = Get-ChildItem $store -Filter *.json | Get-FileHash
        Get-PerformanceProfile -Model tinynet | Remove-PerformanceProfile -WhatIf
        Get-PerformanceProfile -Model tinynet | Remove-PerformanceProfile -BatchSize 2 -WhatIf
        (Get-ChildItem $store -Filter *.json | Get-FileHash).Hash | Should -Be $before.Hash
    }

    It 'removes single batch sizes and keeps the rest' {
        $left = Get-PerformanceProfile -Model tinynet | Remove-PerformanceProfile -BatchSize 2 -Confirm:$false
        $left.Table.BatchSize | Should -Be @(1, 4)
        (Get-PerformanceProfile -Model tinynet).Table.BatchSize | Should -Be @(1, 4)
    }

    It 'removes whole profiles' {
        Get-PerformanceProfile -Model tinynet | Remove-PerformanceProfile -Confirm:$false
        Get-PerformanceProfile -Model tinynet | Should -BeNullOrEmpty
    }
}

Describe 'Two shells profiling into one store at once' {
    It 'keeps both processes'' measurements' {
        $shared = Join-Path $TestDrive 'shared-store'
        $scripts = foreach ($sizes in '1,3,5', '2,4,6') {
            "Import-Module '$env:HETEROBATCH_TEST_MODULE'; Get-ComputeUnit -CpuGroup Core -Id '$($unit.Id)' | Invoke-Profile -Model tinynet -BatchSize $sizes -SecondsPerSize 0.3 -ProfilePath '$shared' | Out-Null"
        }
        $exe = (Get-Process -Id $PID).Path
        $prefix = @(if ([System.IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { Join-Path $PSHOME 'pwsh.dll' })
        $procs = foreach ($s in $scripts) { Start-Process $exe -ArgumentList ($prefix + @('-NoProfile', '-NonInteractive', '-Command', $s)) -PassThru -RedirectStandardError (Join-Path $TestDrive "err-$([guid]::NewGuid()).txt") }
        $procs | Wait-Process -Timeout 120
        $procs | ForEach-Object { $_.ExitCode | Should -Be 0 }
        $p = Get-PerformanceProfile -ProfilePath $shared -Model tinynet
        @($p).Count | Should -Be 1
        $p.Table.BatchSize | Should -Be @(1, 2, 3, 4, 5, 6)
    }
}

Describe 'Stopping a profile run' {
    It 'stops promptly on Ctrl+C and leaves the store consistent' {
        $dir = Join-Path $TestDrive 'stop-store'
        $unit | Invoke-Profile -Model squeezenet_v1.1 -BatchSize 1, 2 -SecondsPerSize 0.05 -ProfilePath $dir | Out-Null
        $before = Get-ChildItem $dir -Filter *.json | Get-FileHash
        $stop = Stop-CommandAfter Invoke-Profile @{ Unit = $unit; Model = 'squeezenet_v1.1'; MaxBatchSize = 64; SecondsPerSize = 5; ProfilePath = $dir } 2000
        $stop.StopSeconds | Should -BeLessThan 2
        $stop.Completed | Should -BeTrue
        Get-ChildItem $dir -Force | Where-Object Name -Like '*.tmp' | Should -BeNullOrEmpty
        (Get-ChildItem $dir -Filter *.json | Get-FileHash).Hash | Should -Be $before.Hash
        $p = Get-PerformanceProfile -ProfilePath $dir -Model squeezenet_v1.1 -WarningVariable warned
        $warned | Should -BeNullOrEmpty
        $p.Table.BatchSize | Should -Be @(1, 2)
    }
}

Describe 'Reference tables in profiles/' {
    It 'plan without the hardware they were measured on' {
        $ref = Join-Path $PSScriptRoot '../profiles/gpu-2xH200'
        $p = Get-PerformanceProfile -ProfilePath $ref -Model vgg-16
        $p.UnitId | Sort-Object | Should -Be @('cpu', 'gpu0', 'gpu1')
        $plan = $p | Get-BatchPlan -BatchSize 1000
        ($plan.Shards | Measure-Object Count -Sum).Sum | Should -Be 1000
        $plan.PredictedMs | Should -BeLessThan $plan.BestSingleMs
        (Get-PerformanceProfile -ProfilePath $ref -Model resnet-50 -AsTable)[0].PSObject.Properties.Name | Should -Be @('BatchSize', 'cpu ms', 'gpu0 ms', 'gpu1 ms')
    }
}
