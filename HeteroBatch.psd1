@{
    # build.ps1 stamps ModuleVersion from Directory.Build.props (the one version source) into the built copy.
    RootModule           = 'HeteroBatch.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = '3f6b7a52-2d8e-4c1a-9b7e-5e0c4d8a61f2'
    Author               = 'HeteroBatch team'
    CompanyName          = 'HeteroBatch'
    Copyright            = '(c) 2026 HeteroBatch team. MIT License (see LICENSE).'
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
        'Get-HeteroBatchOption'
        'Set-HeteroBatchOption'
        'Remove-PerformanceProfile'
        'Export-PerformanceChart'
        'Start-InferenceServer'
        'Get-InferenceServer'
        'Stop-InferenceServer'
        'Merge-PartitionedOutput'
    )
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            # MIT: LICENSE beside this manifest (and in the built module). LicenseUri and ProjectUri stay
            # unset: PowerShell keeps only absolute URIs there (a relative 'LICENSE' is read back as
            # empty), and this project has no public address to point them at yet.
            Tags         = @('ONNX', 'inference', 'GPU', 'CUDA', 'OpenVINO', 'heterogeneous', 'batch', 'profiling', 'fp16', 'PSEdition_Core', 'Linux')
            ReleaseNotes = 'Jobs over files, streamed with memory bounded: Invoke-PartitionedInference -InputPath writes a prediction per sample as blocks finish, -OutputPath writes predictions.csv and .npy outputs that -Resume continues after Ctrl+C, a crash or kill -9; torchvision''s ImageNet preprocessing (bit-exact on the test fixtures), -Resize, -Mean, -Std, -ChannelOrder, -DecodeThreads. Fp16 GPU units twice as fast (heuristic cuDNN search, NHWC). Profiles have one Table (stored as Entries); plans read from Get-Content -Raw or -Plan (Get-Content plan.json) (piped line by line without -Raw they do not bind); results back from Import-Clixml or JSON draw charts.'
        }
    }
}
