# The module as a user first meets it: import, exports, types, formats, help.
BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    Import-Module $env:HETEROBATCH_TEST_MODULE -Force
    $script:cmdlets = 'Get-ComputeUnit', 'Invoke-Profile', 'Get-BatchPlan', 'Invoke-PartitionedInference',
        'Get-InferenceModel', 'Export-InferenceModel', 'Get-PerformanceProfile', 'Set-PerformanceProfile', 'Remove-PerformanceProfile', 'Export-PerformanceChart', 'Start-InferenceServer', 'Get-InferenceServer', 'Stop-InferenceServer',
        'Get-HeteroBatchOption', 'Set-HeteroBatchOption', 'Merge-PartitionedOutput'
}

Describe 'Import' {
    It 'exports exactly the documented cmdlets' {
        (Get-Command -Module HeteroBatch).Name | Sort-Object | Should -Be ($cmdlets | Sort-Object)
    }

    It 'imports and discovers units without a line on stderr' {
        $r = Invoke-ChildPwsh "Import-Module '$env:HETEROBATCH_TEST_MODULE'; Get-ComputeUnit -ListAvailable | Out-Null; Get-InferenceModel | Out-Null; 'done'"
        $r.ExitCode | Should -Be 0
        $r.Stdout | Should -Be 'done'
        $r.Stderr | Should -BeNullOrEmpty
    }

    It 'carries the licence its manifest names' {
        $module = Get-Module HeteroBatch
        $module.Copyright | Should -Match 'MIT License'
        $licence = Join-Path $module.ModuleBase 'LICENSE'
        $licence | Should -Exist
        (Get-Content $licence -TotalCount 1) | Should -Be 'MIT License'
    }

    It 'turns ONNX Runtime telemetry off in the native environment' {
        [Environment]::GetEnvironmentVariable('ORT_DISABLE_TELEMETRY') | Should -Be '1'
    }

    It 'has a table view for every output type' {
        foreach ($c in $cmdlets) {
            foreach ($t in (Get-Command $c).OutputType.Type | Where-Object { $_.Namespace -like 'HeteroBatch*' }) {
                Get-FormatData -TypeName $t.FullName | Should -Not -BeNullOrEmpty -Because "$($t.FullName) is output by $c"
            }
        }
    }
}

Describe 'Help' {
    It '<_> has a synopsis, a description and an example' -ForEach @(
        'Get-ComputeUnit', 'Invoke-Profile', 'Get-BatchPlan', 'Invoke-PartitionedInference',
        'Get-InferenceModel', 'Export-InferenceModel', 'Get-PerformanceProfile', 'Set-PerformanceProfile', 'Remove-PerformanceProfile', 'Export-PerformanceChart', 'Start-InferenceServer', 'Get-InferenceServer', 'Stop-InferenceServer', 'Merge-PartitionedOutput') {
        $help = Get-Help $_ -Full
        $help.Synopsis | Should -Not -BeLike "*$_*[<CommonParameters>]*"
        $help.Synopsis.Length | Should -BeGreaterThan 20
        ($help.Description | Out-String).Trim() | Should -Not -BeNullOrEmpty
        @($help.Examples.Example).Count | Should -BeGreaterOrEqual 1
    }

    It 'documents every parameter of <_>' -ForEach @(
        'Get-ComputeUnit', 'Invoke-Profile', 'Get-BatchPlan', 'Invoke-PartitionedInference',
        'Get-InferenceModel', 'Export-InferenceModel', 'Get-PerformanceProfile', 'Set-PerformanceProfile', 'Remove-PerformanceProfile', 'Export-PerformanceChart', 'Start-InferenceServer', 'Get-InferenceServer', 'Stop-InferenceServer', 'Merge-PartitionedOutput') {
        $common = [System.Management.Automation.PSCmdlet]::CommonParameters + [System.Management.Automation.PSCmdlet]::OptionalCommonParameters
        $help = Get-Help $_ -Full
        foreach ($name in (Get-Command $_).Parameters.Keys | Where-Object { $_ -notin $common }) {
            $p = $help.Parameters.Parameter | Where-Object Name -EQ $name
            ($p.Description | Out-String).Trim() | Should -Not -BeNullOrEmpty -Because "-$name needs a description"
        }
    }

    It 'has about_HeteroBatch' {
        (Get-Help about_HeteroBatch | Out-String) | Should -Match 'Invoke-PartitionedInference'
    }
}

Describe 'Get-InferenceModel' {
    It 'lists the seed''s ten networks with their reference parameter counts' {
        $models = Get-InferenceModel
        $models.Name | Should -Contain 'vgg-16'
        ($models | Where-Object Name -EQ 'resnet-50').Parameters | Should -Be 25557032
        @($models | Where-Object { -not $_.IsTestModel }).Count | Should -Be 10
    }

    It 'offers zoo names to tab completion' {
        $r = TabExpansion2 -inputScript 'Invoke-Profile -Model resn' -cursorColumn 'Invoke-Profile -Model resn'.Length
        $r.CompletionMatches.CompletionText | Should -Be @('resnet-18', 'resnet-34', 'resnet-50')
    }
}

Describe 'Help syntax' {
    It 'shows [-WhatIf] [-Confirm] where a cmdlet has them, and what each takes from the pipeline' {
        $syntax = (Get-Help Set-PerformanceProfile).syntax | Out-String
        $syntax | Should -Match '\[-WhatIf\]'
        $syntax | Should -Match '\[-Confirm\]'
        ((Get-Help Get-BatchPlan).inputTypes | Out-String) | Should -Match 'UnitProfile'
        ((Get-Help Invoke-Profile).inputTypes | Out-String) | Should -Match 'ComputeUnit'
    }
}
