@{
    # build.ps1 stamps ModuleVersion from Directory.Build.props (the one version source) into the built copy.
    RootModule           = 'HeteroBatch.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = '3f6b7a52-2d8e-4c1a-9b7e-5e0c4d8a61f2'
    Author               = 'HeteroBatch team'
    CompanyName          = 'HeteroBatch'
    Copyright            = '(c) HeteroBatch team. MIT licence.'
    Description          = 'Profiles a neural network on every compute unit of a machine (CPU core groups, NVIDIA GPUs, OpenVINO devices), plans how to split a batch across them so it finishes soonest, and runs the shares in parallel with ONNX Runtime.'
    PowerShellVersion    = '7.4'
    CompatiblePSEditions = @('Core')
    FormatsToProcess     = @('HeteroBatch.format.ps1xml')
    TypesToProcess       = @('HeteroBatch.types.ps1xml')
    CmdletsToExport      = @(
        'Get-ComputeUnit'
        'Invoke-Profile'
        'Get-BatchPlan'
        'Invoke-PartitionedInference'
        'Get-InferenceModel'
        'Export-InferenceModel'
        'Get-PerformanceProfile'
        'Set-PerformanceProfile'
        'Remove-PerformanceProfile'
        'Export-PerformanceChart'
    )
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            Tags         = @('ONNX', 'inference', 'GPU', 'CUDA', 'OpenVINO', 'heterogeneous', 'batch', 'profiling', 'fp16', 'PSEdition_Core', 'Linux')
            ReleaseNotes = 'Precision as part of a unit (Get-ComputeUnit -Precision Fp32|Tf32|Fp16); unit backends and an engine context; documented ErrorIds for bad input and bounded memory for any number; views that fit 80 columns, completers, serializer round trips; Export-PerformanceChart.'
        }
    }
}
