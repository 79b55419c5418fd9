# The module itself on the GPU machine, as a user drives it (not part of CI, which has no GPU).
# Run there by tools/gpu/module-suite.sh; each precision: discovery, profiling, a plan with the
# CPU, a run, a GPU that fails mid-run, and a job over JPEG files.
BeforeAll {
    Import-Module $env:HETEROBATCH_TEST_MODULE -Force
    $env:HETEROBATCH_PROFILE_PATH = Join-Path ([IO.Path]::GetTempPath()) "hb-gpu-store-$PID"
    [HeteroBatch.Engine.Runtime.NativeLibraries]::Register()
    $script:photos = Join-Path ([IO.Path]::GetTempPath()) "hb-gpu-photos-$PID"
    New-Item -ItemType Directory $photos -Force | Out-Null
    $rng = [Random]::new(1)
    for ($i = 0; $i -lt 48; $i++) {
        $w = 200 + 13 * ($i % 5); $h = 150 + 11 * ($i % 3)
        $px = [byte[]]::new($w * $h * 4); $rng.NextBytes($px)
        $bmp = [SkiaSharp.SKBitmap]::new([SkiaSharp.SKImageInfo]::new($w, $h, 'Rgba8888', 'Unpremul'))
        [Runtime.InteropServices.Marshal]::Copy($px, 0, $bmp.GetPixels(), $px.Length)
        $data = $bmp.Encode('Jpeg', 90)
        [IO.File]::WriteAllBytes((Join-Path $photos ('photo{0:D3}.jpg' -f $i)), $data.ToArray())
        $data.Dispose(); $bmp.Dispose()
    }
    $script:cpuProfile = Get-ComputeUnit | Where-Object Kind -EQ Cpu | Invoke-Profile -Model resnet-50 -BatchSize 1, 4 -SecondsPerSize 0.2
}

Describe 'GPU units at <Precision>' -ForEach @(@{ Precision = 'Fp32' }, @{ Precision = 'Tf32' }, @{ Precision = 'Fp16' }) {
    BeforeAll {
        $script:gpus = @(Get-ComputeUnit -Precision $Precision | Where-Object Kind -EQ Gpu)
    }

    It 'lists every GPU as available at that precision' {
        $gpus.Count | Should -BeGreaterThan 0
        foreach ($g in $gpus) { $g.Available | Should -BeTrue; "$($g.Precision)" | Should -Be $Precision }
    }

    It 'profiles resnet-50 on gpu0; reduced precision agrees with fp32' {
        $script:gpuProfile = $gpus[0] | Invoke-Profile -Model resnet-50 -BatchSize 1, 8, 32 -SecondsPerSize 0.3
        $gpuProfile.Table.Count | Should -Be 3
        $gpuProfile.Table | ForEach-Object { $_.MedianMs | Should -BeGreaterThan 0 }
        if ($Precision -ne 'Fp32') { $gpuProfile.Agreement.MinCosine | Should -BeGreaterOrEqual 0.999 }
        Write-Host ("    {0} resnet-50 on gpu0: {1}" -f $Precision, (($gpuProfile.Table | ForEach-Object { '×{0} {1:F2} ms' -f $_.BatchSize, $_.MedianMs }) -join ', '))
    }

    It 'plans gpu0 with the CPU and runs the plan; every sample has an output, at the unit''s precision' {
        $plan = @($gpuProfile, $cpuProfile) | Get-BatchPlan -BatchSize 64
        $r = $plan | Invoke-PartitionedInference
        $r.Complete | Should -BeTrue
        ($r.Units | Measure-Object Count -Sum).Sum | Should -Be 64
        ($r.Units | Where-Object UnitId -EQ 'gpu0').Precision | Should -Be $Precision
        Write-Host ("    {0}: plan {1}, {2:F1} ms (predicted {3:F1})" -f $Precision, $plan.Split, $r.WallMs, $r.PredictedMs)
    }

    It 'moves the samples of a GPU that fails mid-run to the CPU' {
        $plan = @($gpuProfile, $cpuProfile) | Get-BatchPlan -BatchSize 40 -Algorithm Even
        $env:HETEROBATCH_TEST_FAIL_UNIT = 'gpu0:0'
        try { $r = $plan | Invoke-PartitionedInference -WarningAction SilentlyContinue }
        finally { Remove-Item Env:HETEROBATCH_TEST_FAIL_UNIT }
        $r.Complete | Should -BeTrue
        ($r.Units | Measure-Object Count -Sum).Sum | Should -Be 40
        ($r.Units | Where-Object UnitId -EQ 'gpu0').Failed | Should -BeTrue
        ($r.Units | Where-Object UnitId -NE 'gpu0').TookOver | Should -BeGreaterThan 0
    }

    It 'streams a folder of JPEGs through gpu0' {
        $plan = $gpuProfile | Get-BatchPlan -BatchSize 16
        $p = Get-ChildItem $photos -Filter *.jpg | Invoke-PartitionedInference -Plan $plan -InformationVariable job
        $p.Count | Should -Be 48
        ($p | Where-Object Error) | Should -BeNullOrEmpty
        $p.Unit | Sort-Object -Unique | Should -Be 'gpu0'
        Write-Host ("    {0}: 48 JPEGs at {1:F1} images/s; {2}" -f $Precision, $job.MessageData.ImagesPerSecond, $job.MessageData.Stages)
    }
}
