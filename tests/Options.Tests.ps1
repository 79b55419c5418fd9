BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    Import-Module $env:HETEROBATCH_TEST_MODULE -Force
    $script:store = New-TestStore
}

Describe 'Get-HeteroBatchOption' {
    It 'returns the typed settings, read from the environment once at import' {
        $dir = Join-Path $TestDrive 'from-env'
        $r = Invoke-ChildPwsh "`$env:HETEROBATCH_PROFILE_PATH = '$dir'; `$env:HETEROBATCH_STORE_LOCK_SECONDS = '7'; Import-Module '$env:HETEROBATCH_TEST_MODULE'; `$o = Get-HeteroBatchOption; `$env:HETEROBATCH_STORE_LOCK_SECONDS = '9'; '{0}|{1}|{2}|{3}' -f `$o.GetType().FullName, `$o.ProfileStorePath, `$o.StoreLockSeconds, (Get-HeteroBatchOption).StoreLockSeconds"
        $r.Stdout | Should -Be "HeteroBatch.Engine.EngineOptions|$dir|7|7"
    }
}

Describe 'Set-HeteroBatchOption' {
    BeforeAll { $script:units = Get-ComputeUnit -CpuGroup 2 }
    AfterEach { Set-HeteroBatchOption -ProfilePath $store }

    It 'sets the store that Invoke-Profile and Get-BatchPlan use without -ProfilePath' {
        $other = Join-Path $TestDrive 'other-store'
        { Get-BatchPlan -Model tinynet -BatchSize 4 -ErrorAction Stop } | Should -Throw -ErrorId 'ProfileNotFound,*'
        Set-HeteroBatchOption -ProfilePath $other
        (Get-HeteroBatchOption).ProfileStorePath | Should -Be $other
        $units | Invoke-Profile -Model tinynet -BatchSize 1, 2, 4 -SecondsPerSize 0.02 | Out-Null
        (Get-ChildItem $other -Filter 'tinynet-*.json').Count | Should -Be $units.Count
        $plan = Get-BatchPlan -Model tinynet -BatchSize 4
        ($plan.Shards | Measure-Object Count -Sum).Sum | Should -Be 4
        Set-HeteroBatchOption -ProfilePath $store
        { Get-BatchPlan -Model tinynet -BatchSize 4 -ErrorAction Stop } | Should -Throw -ErrorId 'ProfileNotFound,*'
    }

    It 'sets the folder models are written to' {
        $cache = Join-Path $TestDrive 'models'
        $before = (Get-HeteroBatchOption).ModelCacheFolder
        Set-HeteroBatchOption -ModelCachePath $cache
        try { $units[0] | Invoke-Profile -Model tinynet -BatchSize 1 -SecondsPerSize 0.02 -NoStore | Out-Null }
        finally { Set-HeteroBatchOption -ModelCachePath $before }
        (Get-ChildItem $cache -Filter '*.onnx').Count | Should -BeGreaterThan 0
    }

    It 'refuses a bad value with a documented ErrorId and changes nothing' {
        $before = Get-HeteroBatchOption
        $file = Join-Path $TestDrive 'a-file'
        Set-Content $file 'x'
        { Set-HeteroBatchOption -StoreLockSeconds -1 } | Should -Throw -ErrorId 'OptionInvalid,HeteroBatch.Commands.SetHeteroBatchOptionCommand'
        { Set-HeteroBatchOption -ModelCachePath $file } | Should -Throw -ErrorId 'OptionInvalid,HeteroBatch.Commands.SetHeteroBatchOptionCommand'
        { Set-HeteroBatchOption -ProfilePath $file -StoreLockSeconds 3 } | Should -Throw -ErrorId 'ProfilePathIsFile,HeteroBatch.Commands.SetHeteroBatchOptionCommand'
        $after = Get-HeteroBatchOption
        ($after.ProfileStorePath, $after.ModelCacheFolder, $after.StoreLockSeconds) | Should -Be @($before.ProfileStorePath, $before.ModelCacheFolder, $before.StoreLockSeconds)
        (Get-Content "$PSScriptRoot/../en-US/about_HeteroBatch.help.txt" -Raw) | Should -Match '\bOptionInvalid\b'
    }

    It 'changes nothing with -WhatIf, and -PassThru writes the settings' {
        Set-HeteroBatchOption -StoreLockSeconds 5 -WhatIf
        (Get-HeteroBatchOption).StoreLockSeconds | Should -Not -Be 5
        $before = (Get-HeteroBatchOption).StoreLockSeconds
        (Set-HeteroBatchOption -StoreLockSeconds 5 -PassThru).StoreLockSeconds | Should -Be 5
        Set-HeteroBatchOption -StoreLockSeconds $before
    }

    It 'keeps a default remote token out of what is shown or serialized' {
        Set-HeteroBatchOption -RemoteToken (ConvertTo-SecureString 'p4ss-w0rd' -AsPlainText -Force)
        try {
            $o = Get-HeteroBatchOption
            $o.RemoteToken | Should -Not -BeNullOrEmpty
            ($o | Format-List * | Out-String) | Should -Not -Match 'p4ss'
            ($o | ConvertTo-Json -Depth 4) | Should -Not -Match 'p4ss'
            $xml = Join-Path $TestDrive 'options.xml'
            $o | Export-Clixml $xml
            (Get-Content -Raw $xml) | Should -Not -Match 'p4ss'
        }
        finally { Set-HeteroBatchOption -NoRemoteToken }
        (Get-HeteroBatchOption).RemoteToken | Should -BeNullOrEmpty
    }
}
