# The module itself on the GPU machine, as a user drives it (not part of CI, which has no GPU).
# Run there by tools/gpu/module-suite.sh. Per precision: discovery, profiling, a plan with the CPU,
# a run, a GPU that fails mid-run, and a job over JPEG files. At Fp16, GPU decoding (issue 23):
# GPU-decoded pixels against the CPU's exact ones, a job decoding on the GPU against the same job
# decoding on the CPU (per-sample cosine of the outputs), a GPU that fails mid-job, -Resume, and a
# job over two GPUs. On a machine with no GPU the GPU blocks are skipped and the last block runs
# the suite's own PowerShell (folders, pixel and output comparisons, stop and resume) on the CPU.
BeforeDiscovery {
    Import-Module $env:HETEROBATCH_TEST_MODULE -Force
    $script:gpuCount = @(Get-ComputeUnit | Where-Object Kind -EQ Gpu).Count
    if ($gpuCount -eq 0) { Write-Host 'No GPU unit here: the GPU blocks are skipped; the CPU checks of the suite run.' }
}

BeforeAll {
    Import-Module $env:HETEROBATCH_TEST_MODULE -Force
    . (Join-Path $PSScriptRoot '../../tests/TestHelpers.ps1')
    $script:store = New-TestStore
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

    # A folder of $Count JPEGs made of $Distinct pictures (a gradient and a few discs: smooth areas
    # and edges, like photos, not noise), each at least 300x260 so that the 256 resize shrinks,
    # copied under the names img00000.jpg...
    function New-PhotoFolder([string] $Path, [int] $Count, [int] $Distinct = 40, [int] $Seed = 23) {
        New-Item -ItemType Directory $Path -Force | Out-Null
        $rng = [Random]::new($Seed)
        $pictures = for ($k = 0; $k -lt $Distinct; $k++) {
            $w = 300 + 13 * ($k % 9); $h = 260 + 11 * ($k % 7)
            $colors = for ($j = 0; $j -lt 8; $j++) { [SkiaSharp.SKColor]::new([byte]$rng.Next(256), [byte]$rng.Next(256), [byte]$rng.Next(256)) }
            $bmp = [SkiaSharp.SKBitmap]::new([SkiaSharp.SKImageInfo]::new($w, $h, 'Rgba8888', 'Premul'))
            $canvas = [SkiaSharp.SKCanvas]::new($bmp)
            $paint = [SkiaSharp.SKPaint]::new()
            $paint.Shader = [SkiaSharp.SKShader]::CreateLinearGradient([SkiaSharp.SKPoint]::new(0, 0), [SkiaSharp.SKPoint]::new($w, $h),
                [SkiaSharp.SKColor[]]@($colors[0], $colors[1]), [float[]]$null, [SkiaSharp.SKShaderTileMode]::Clamp)
            $canvas.DrawRect(0, 0, $w, $h, $paint)
            $paint.Shader = $null
            $paint.IsAntialias = $true
            for ($j = 2; $j -lt 8; $j++) {
                $paint.Color = $colors[$j]
                $canvas.DrawCircle([float]$rng.Next($w), [float]$rng.Next($h), [float](12 + $rng.Next(70)), $paint)
            }
            $canvas.Dispose(); $paint.Dispose()
            $data = $bmp.Encode('Jpeg', 90)
            , $data.ToArray()
            $data.Dispose(); $bmp.Dispose()
        }
        for ($i = 0; $i -lt $Count; $i++) { [IO.File]::WriteAllBytes((Join-Path $Path ('img{0:D5}.jpg' -f $i)), $pictures[$i % $Distinct]) }
        $Path
    }

    # The CPU path's exact pixels of these files (the engine's own decoding, as a job with -DecodeOn Cpu
    # does it): uint8 RGB, [N, Height, Width, 3], the ImageNet geometry (shorter side to 256, centre crop).
    function Get-CpuExactPixels([string[]] $Paths, [int] $Width = 224, [int] $Height = 224) {
        $shape = [long[]]($Height, $Width, 3)
        $spec = [HeteroBatch.Engine.Data.TensorSpec]::new('image', 'UInt8', $shape)
        $files = [HeteroBatch.Engine.Data.InputFiles]::For($Paths, [HeteroBatch.Engine.Data.TensorSpec[]]@($spec))
        $batch = [HeteroBatch.Engine.Data.TensorBatch]::new('image', $shape, $Paths.Count, $null, 'UInt8')
        for ($i = 0; $i -lt $Paths.Count; $i++) { [void]$files.Load($i, $batch, $i, [HeteroBatch.Engine.Data.ImagePreprocessing]::ImageNet) }
        , [byte[]]$batch.Data
    }

    # The same files decoded by nvJPEG on GPU $Device into the layout above (what a job's GPU decoding
    # hands the model), downloaded; with each file's status and whether the JPEG engines did it.
    function Get-GpuPixels([string[]] $Paths, [int] $Device = 0, [int] $Width = 224, [int] $Height = 224, [bool] $Batched = $true) {
        $spec = [HeteroBatch.Engine.Data.TensorSpec]::new('image', 'Float', [long[]](3, $Height, $Width))
        $settings = [HeteroBatch.Engine.Data.Gpu.GpuDecodeSettings]::ForInput($spec, [HeteroBatch.Engine.Data.ImagePreprocessing]::ImageNet, $Paths.Count)
        # a copy with BatchedResize set (an init-only property of a record: set through reflection on a clone)
        $settings = $settings.GetType().GetMethod('<Clone>$').Invoke($settings, $null)
        $settings.GetType().GetProperty('BatchedResize').SetValue($settings, $Batched)
        $jpegs = [System.Collections.Generic.List[ReadOnlyMemory[byte]]]::new()
        foreach ($p in $Paths) { $jpegs.Add([ReadOnlyMemory[byte]]::new([IO.File]::ReadAllBytes($p))) }
        $decoder = [HeteroBatch.Engine.Data.Gpu.GpuJpegDecoder]::new($Device, $settings)
        try {
            $into = $decoder.CreateBatch()
            try {
                $status = $decoder.Decode($jpegs, $into)
                $into.Synchronize()
                [pscustomobject]@{ Pixels = $into.Download($Paths.Count); Status = $status; Hardware = $decoder.UsesHardware; BilinearFallbacks = $into.BilinearFallbacks; ResizedTogether = $into.ResizedTogether }
            }
            finally { $into.Dispose() }
        }
        finally { $decoder.Dispose() }
    }

    # The largest and the mean absolute difference of two equally long byte arrays.
    function Measure-PixelDifference([byte[]] $A, [byte[]] $B) {
        if ($A.Length -ne $B.Length) { throw "pixel arrays of $($A.Length) and $($B.Length) bytes" }
        $max = 0; [long]$sum = 0
        for ($i = 0; $i -lt $A.Length; $i++) {
            $d = [Math]::Abs([int]$A[$i] - [int]$B[$i])
            if ($d -gt $max) { $max = $d }
            $sum += $d
        }
        [pscustomobject]@{ Max = $max; Mean = [Math]::Round($sum / [Math]::Max(1, $A.Length), 4) }
    }

    # A job folder's output tensor (the one .npy a one-output model writes), read with the engine's reader.
    function Read-JobOutput([string] $Folder) {
        $npy = @(Get-ChildItem $Folder -Filter *.npy)
        if ($npy.Count -ne 1) { throw "$Folder holds $($npy.Count) .npy files, not 1" }
        [HeteroBatch.Engine.Data.Npy]::Read($npy[0].FullName, $npy[0].BaseName)
    }

    # Per-sample cosine of two output tensors of the same shape (one value per sample, in order).
    function Get-SampleCosine($A, $B) {
        if ($A.Count -ne $B.Count) { throw "outputs of $($A.Count) and $($B.Count) samples" }
        for ($s = 0; $s -lt $A.Count; $s++) {
            $x = $A.Sample($s); $y = $B.Sample($s)
            $dot = 0.0; $xx = 0.0; $yy = 0.0
            for ($i = 0; $i -lt $x.Length; $i++) { $dot += $x[$i] * $y[$i]; $xx += $x[$i] * $x[$i]; $yy += $y[$i] * $y[$i] }
            if ($xx -eq 0 -or $yy -eq 0) { [double]($xx -eq $yy) } else { $dot / [Math]::Sqrt($xx * $yy) }
        }
    }

    # The job summary a job wrote to its -InformationVariable.
    function Get-JobSummary($Information) {
        @($Information.MessageData | Where-Object { $_ -is [HeteroBatch.Engine.Execution.JobSummary] })[0]
    }

    # How many images $Unit decoded itself, how many CPU threads decoded for it (their pixels copied in) and how many it
    # had the CPU decode, from the summary's UnitDecoding lines ("gpu0 decoded N images itself[, copied in K that CPU
    # threads decoded for it,] and had M decoded on the CPU ..."); null if no line.
    function Get-UnitDecoded($Summary, [string] $Unit) {
        foreach ($line in $Summary.UnitDecoding) {
            if ($line -match "^$([regex]::Escape($Unit)) decoded (\d+) images itself(?:, copied in (\d+) that CPU threads decoded for it,)? and had (\d+) decoded on the CPU") {
                return [pscustomobject]@{ OnUnit = [int]$Matches[1]; FromThreads = [int]$Matches[2]; OnCpu = [int]$Matches[3] }
            }
        }
    }

    # Rows of one job against another's: the same inputs in the same order and the same top class,
    # except where the reference's two best scores tie (within 1e-3), where either order is right.
    function Compare-JobRows($Rows, $Reference) {
        $Rows.Count | Should -Be $Reference.Count
        ($Rows.Index) | Should -Be ($Reference.Index)
        ($Rows.Input) | Should -Be ($Reference.Input)
        for ($i = 0; $i -lt $Rows.Count; $i++) {
            $r = $Reference[$i]
            if ($Rows[$i].Class -ne $r.Class -and -not ($r.TopScores.Count -ge 2 -and [Math]::Abs($r.TopScores[0] - $r.TopScores[1]) -lt 1e-3)) {
                $Rows[$i].Class | Should -Be $r.Class -Because "row $i ($($r.Input))"
            }
        }
    }

    # Runs $Plan over $Jpegs into $Out with $Unit failing (the test hook) after its first sub-batch of a
    # block: its share is cut into sub-batches of 8 first, so that it fails in the middle of its share.
    function Invoke-FailingJob($Plan, [string] $Unit, $Jpegs, [string] $Out) {
        ($Plan.Shards | Where-Object UnitId -EQ $Unit).SubBatchSize = 8
        Set-TestFailure $Unit 1
        # -DecodeThreads: the job keeps every unit of the plan (its pipeline plan may otherwise leave a CPU unit out)
        try { $rows = $Jpegs | Invoke-PartitionedInference -Plan $Plan -OutputPath $Out -DecodeOn Auto -DecodeThreads 4 -InformationVariable job -WarningVariable warned -WarningAction SilentlyContinue }
        finally { Clear-TestFailure }
        [pscustomobject]@{ Rows = $rows; Summary = Get-JobSummary $job; Warnings = @($warned) }
    }

    # What a job with a failed unit must show: every file a row, in order, none with an error; the
    # unit reported failed after it ran some; the others took its samples over.
    function Assert-TookOver($Job, [string] $Unit, [int] $Count) {
        $Job.Rows.Count | Should -Be $Count
        ($Job.Rows.Index) | Should -Be (0..($Count - 1))
        ($Job.Rows | Where-Object Error) | Should -BeNullOrEmpty
        ($Job.Summary.Units | Where-Object UnitId -EQ $Unit).Failed | Should -BeTrue
        ($Job.Summary.Units | Where-Object UnitId -NE $Unit | Measure-Object TookOver -Sum).Sum | Should -BeGreaterThan 0
        ($Job.Summary.Units | Measure-Object Count -Sum).Sum | Should -Be $Count
        @($Job.Rows | Where-Object Unit -EQ $Unit).Count | Should -BeGreaterThan 0 -Because "$Unit ran a sub-batch before it failed"
        @($Job.Rows | Where-Object Unit -NE $Unit).Count | Should -BeGreaterThan 0
    }

    # Runs $Plan over $Folder into $Out, stopped (as Ctrl+C does) once job.json counts its first block,
    # then resumed with -Resume; returns how far the first run got, the stop, the resumed rows and summary.
    function Invoke-StoppedAndResumed($Plan, [string] $Folder, [string] $Out, [string] $DecodeOn) {
        $state = Join-Path $Out 'job.json'
        $stop = Stop-CommandWhen Invoke-PartitionedInference @{ Plan = $Plan; InputPath = $Folder; OutputPath = $Out; DecodeOn = $DecodeOn } {
            (Test-Path $state) -and ((Get-Content -Raw $state -ErrorAction Ignore | ConvertFrom-Json -ErrorAction Ignore).SamplesDone -gt 0)
        }
        $at = if (Test-Path $state) { (Get-Content -Raw $state | ConvertFrom-Json).SamplesDone } else { 0 }
        $rows = $Plan | Invoke-PartitionedInference -InputPath $Folder -OutputPath $Out -DecodeOn $DecodeOn -Resume -InformationVariable job
        [pscustomobject]@{ At = $at; Stop = $stop; Rows = $rows; Summary = Get-JobSummary $job }
    }
}

AfterAll {
    if ($photos) { Remove-Item $photos -Recurse -ErrorAction Ignore }
    if ($store) { Remove-Item $store -Recurse -ErrorAction Ignore }
}

Describe 'GPU units at <Precision>' -Skip:($gpuCount -eq 0) -ForEach @(@{ Precision = 'Fp32' }, @{ Precision = 'Tf32' }, @{ Precision = 'Fp16' }) {
    BeforeAll {
        if (-not $script:cpuProfile) { $script:cpuProfile = Get-ComputeUnit | Where-Object Kind -EQ Cpu | Invoke-Profile -Model resnet-50 -BatchSize 1, 4 -SecondsPerSize 0.2 }
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
        Set-TestFailure gpu0 0
        try { $r = $plan | Invoke-PartitionedInference -WarningAction SilentlyContinue }
        finally { Clear-TestFailure }
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

Describe 'GPU decoding in file jobs (resnet-50 at Fp16)' -Skip:($gpuCount -eq 0) {
    BeforeAll {
        $script:gpus = @(Get-ComputeUnit -Precision Fp16 | Where-Object Kind -EQ Gpu)
        if (-not $script:cpuProfile) { $script:cpuProfile = Get-ComputeUnit | Where-Object Kind -EQ Cpu | Invoke-Profile -Model resnet-50 -BatchSize 1, 4 -SecondsPerSize 0.2 }
        $script:fp16 = $gpus[0] | Invoke-Profile -Model resnet-50 -BatchSize 1, 16, 64 -SecondsPerSize 0.3
        $script:folder = New-PhotoFolder (Join-Path $TestDrive 'photos') 300
        $script:jpegs = @(Get-ChildItem $folder -Filter *.jpg | Sort-Object Name)
        $script:gpuPlan = $fp16 | Get-BatchPlan -BatchSize 64
        # the reference: the same job with every image decoded on the CPU (exact mode)
        $script:cpuDecoded = Join-Path $TestDrive 'cpu-decoded'
        $script:cpuRows = $jpegs | Invoke-PartitionedInference -Plan $gpuPlan -OutputPath $cpuDecoded -DecodeOn Cpu -InformationVariable cpuJob
        $script:cpuSummary = Get-JobSummary $cpuJob
        $script:reference = Read-JobOutput $cpuDecoded
    }

    It 'decodes on gpu0 the pixels the CPU decodes exactly, to within a few levels' {
        $paths = [string[]]@($jpegs | Select-Object -First 32 | ForEach-Object FullName)
        $exact = Get-CpuExactPixels $paths
        foreach ($batched in $true, $false) {
            $gpu = Get-GpuPixels $paths 0 -Batched $batched
            $diff = Measure-PixelDifference $gpu.Pixels $exact
            Write-Host ("    GPU-decoded against CPU exact pixels, {0} images (JPEG engines: {1}, batched resize asked: {2}, resized together {3}, bilinear fallbacks {4}): largest |difference| {5}, mean {6}" -f
                $paths.Count, $gpu.Hardware, $batched, $gpu.ResizedTogether, $gpu.BilinearFallbacks, $diff.Max, $diff.Mean)
            @($gpu.Status | Where-Object { "$_" -notin 'Decoded', 'DecodedByFallback' }) | Should -BeNullOrEmpty
            $gpu.Pixels.Length | Should -Be $exact.Length
            # a wrong crop, scale or channel order moves the mean by tens of levels on these pictures; filters differ by a few
            $diff.Mean | Should -BeLessThan 4
            # NPP 12/13 have the batched resize: where asked, every image of these photos (all shrunk) goes through it
            if ($batched) { $gpu.ResizedTogether | Should -Be $paths.Count } else { $gpu.ResizedTogether | Should -Be 0 }
        }
    }

    It 'a job with -DecodeOn Auto: gpu0 decodes every image (CPU threads the backs of its shares where HETEROBATCH_CPU_DECODE_SHARE asks); outputs agree with CPU decoding (cosine >= 0.999)' {
        $out = Join-Path $TestDrive 'gpu-decoded'
        $rows = $jpegs | Invoke-PartitionedInference -Plan $gpuPlan -OutputPath $out -DecodeOn Auto -InformationVariable job
        $summary = Get-JobSummary $job
        $rows.Count | Should -Be 300
        ($rows | Where-Object Error) | Should -BeNullOrEmpty
        $rows.Unit | Sort-Object -Unique | Should -Be 'gpu0'
        $summary.Blocks | Should -BeGreaterThan 1
        $decoded = Get-UnitDecoded $summary gpu0
        $decoded | Should -Not -BeNullOrEmpty -Because "the summary says what gpu0 decoded ($($summary.UnitDecoding -join '; '))"
        $decoded.OnUnit + $decoded.FromThreads | Should -Be 300
        $decoded.FromThreads | Should -Be $summary.SamplesDecodedForUnits
        $decoded.OnCpu | Should -Be 0
        $cpuSummary.UnitDecoding | Should -BeNullOrEmpty
        $cos = @(Get-SampleCosine (Read-JobOutput $out) $reference)
        $min = ($cos | Measure-Object -Minimum).Minimum
        $top1 = @(for ($i = 0; $i -lt 300; $i++) { if ($rows[$i].Class -eq $cpuRows[$i].Class) { 1 } }).Count
        Write-Host ("    GPU decoding against CPU decoding, 300 files: min cosine {0:F6}, mean {1:F6}, top-1 equal {2}/300; {3:F1} images/s against {4:F1}; {5}" -f
            $min, ($cos | Measure-Object -Average).Average, $top1, $summary.ImagesPerSecond, $cpuSummary.ImagesPerSecond, ($summary.UnitDecoding -join '; '))
        $min | Should -BeGreaterOrEqual 0.999
    }

    It 'a job with -DecodeOn Cpu: CPU threads hand gpu0 uint8 pixels; outputs agree with a CPU unit''s float inputs (cosine >= 0.999)' {
        $cpuSummary.FedInputs | Should -Be 'UInt8 [224,224,3] pixels, normalised on the units'
        $floats = Join-Path $TestDrive 'cpu-unit-floats'
        $null = $jpegs | Invoke-PartitionedInference -Plan ($cpuProfile | Get-BatchPlan -BatchSize 64) -OutputPath $floats -DecodeOn Cpu -InformationVariable cpuUnitJob
        (Get-JobSummary $cpuUnitJob).FedInputs | Should -Be 'Float [3,224,224]'
        $cos = @(Get-SampleCosine $reference (Read-JobOutput $floats))
        $min = ($cos | Measure-Object -Minimum).Minimum
        Write-Host ("    gpu0 fed uint8 pixels against a CPU unit fed floats, 300 files: min cosine {0:F6}, mean {1:F6}; gpu0's block buffers {2:F1} MiB (blocks of {3})" -f
            $min, ($cos | Measure-Object -Average).Average, ($cpuSummary.BlockBufferBytes / 1MB), $cpuSummary.BlockSize)
        $min | Should -BeGreaterOrEqual 0.999
    }

    It 'gpu0 fails mid-job while decoding its share; the CPU decodes and runs the rest; every file has a row' {
        $plan = @($fp16, $cpuProfile) | Get-BatchPlan -BatchSize 64 -Algorithm Even
        $out = Join-Path $TestDrive 'gpu-failed'
        $job = Invoke-FailingJob $plan gpu0 $jpegs $out
        $cos = @(Get-SampleCosine (Read-JobOutput $out) $reference)
        Write-Host ("    gpu0 failed after 1 sub-batch: rows by unit {0}; min cosine against CPU decoding {1:F6}; {2}; {3} warning(s): {4}" -f
            (($job.Rows | Group-Object Unit | ForEach-Object { "$($_.Name) $($_.Count)" }) -join ', '), ($cos | Measure-Object -Minimum).Minimum,
            ($job.Summary.UnitDecoding -join '; '), $job.Warnings.Count, ($job.Warnings | Select-Object -First 1))
        Assert-TookOver $job gpu0 300
        # samples marked for gpu0's own decoding were decoded on the CPU when it failed: none is left empty
        ($cos | Measure-Object -Minimum).Minimum | Should -BeGreaterOrEqual 0.999
    }

    It 'a GPU-decoding job stopped after its first block resumes with -Resume; rows equal an uninterrupted run''s' {
        $many = New-PhotoFolder (Join-Path $TestDrive 'many') 3000
        $whole = Join-Path $TestDrive 'whole'
        $uninterrupted = $gpuPlan | Invoke-PartitionedInference -InputPath $many -OutputPath $whole -DecodeOn Auto
        $r = Invoke-StoppedAndResumed $gpuPlan $many (Join-Path $TestDrive 'stopped') Auto
        Write-Host ("    stopped at {0} of 3000 (state {1}, {2:F2} s to stop); resumed: {3} run, {4}" -f $r.At, $r.Stop.State, $r.Stop.StopSeconds, $r.Summary.SamplesRun, ($r.Summary.UnitDecoding -join '; '))
        $r.Stop.State | Should -Be 'Stopped'
        $r.At | Should -BeGreaterThan 0
        $r.At | Should -BeLessThan 3000
        $r.Summary.SamplesResumed | Should -Be $r.At
        $r.Summary.SamplesRun | Should -Be (3000 - $r.At)
        $d = Get-UnitDecoded $r.Summary gpu0; $d.OnUnit + $d.FromThreads | Should -Be (3000 - $r.At)
        Compare-JobRows $r.Rows $uninterrupted
        $cos = @(Get-SampleCosine (Read-JobOutput (Join-Path $TestDrive 'stopped')) (Read-JobOutput $whole))
        ($cos | Measure-Object -Minimum).Minimum | Should -BeGreaterOrEqual 0.9999
        Get-ChildItem (Join-Path $TestDrive 'stopped') -Filter '*.partial' | Should -BeNullOrEmpty
        Remove-Item $many -Recurse
    }

    It 'a job over two GPUs: each decodes its own share' {
        if ($gpus.Count -lt 2) { Set-ItResult -Skipped -Because "needs two GPUs; this machine has $($gpus.Count)" }
        $second = $gpus[1] | Invoke-Profile -Model resnet-50 -BatchSize 1, 16, 64 -SecondsPerSize 0.3
        $plan = @($fp16, $second) | Get-BatchPlan -BatchSize 64
        $out = Join-Path $TestDrive 'two-gpus'
        $rows = $jpegs | Invoke-PartitionedInference -Plan $plan -OutputPath $out -DecodeOn Auto -InformationVariable job
        $summary = Get-JobSummary $job
        $rows.Count | Should -Be 300
        ($rows | Where-Object Error) | Should -BeNullOrEmpty
        $byUnit = @{}; $rows | Group-Object Unit | ForEach-Object { $byUnit[$_.Name] = $_.Count }
        Write-Host ("    two GPUs, plan {0}: rows by unit {1}; {2}; {3:F1} images/s" -f $plan.Split, (($byUnit.GetEnumerator() | ForEach-Object { "$($_.Key) $($_.Value)" }) -join ', '), ($summary.UnitDecoding -join '; '), $summary.ImagesPerSecond)
        foreach ($g in 'gpu0', 'gpu1') {
            $byUnit[$g] | Should -BeGreaterThan 0 -Because "$g has a share"
            $d = Get-UnitDecoded $summary $g; $d.OnUnit + $d.FromThreads | Should -Be $byUnit[$g]
        }
        (Get-SampleCosine (Read-JobOutput $out) $reference | Measure-Object -Minimum).Minimum | Should -BeGreaterOrEqual 0.999
    }
}

# Runs everywhere (the only block that does where there is no GPU): the suite's own PowerShell
# above, driven by tinynet on the CPU, so that a mistake in it shows before a GPU call is spent.
Describe 'the suite''s own checks, on the CPU' {
    BeforeAll {
        $script:cpuPlan = Get-ComputeUnit | Where-Object Kind -EQ Cpu | Select-Object -First 1 | Invoke-Profile -Model tinynet -BatchSize 1, 16 -SecondsPerSize 0.1 | Get-BatchPlan -BatchSize 64
        $script:folder = New-PhotoFolder (Join-Path $TestDrive 'photos') 130
        $script:jpegs = @(Get-ChildItem $folder -Filter *.jpg | Sort-Object Name)
        $script:gpuHere = @(Get-ComputeUnit | Where-Object Kind -EQ Gpu).Count -gt 0 # BeforeDiscovery's variables do not reach the run
    }

    It 'makes a folder of distinct JPEG pictures larger than the 256 resize' {
        $jpegs.Count | Should -Be 130
        (Get-FileHash $jpegs[0]).Hash | Should -Be (Get-FileHash $jpegs[40]).Hash
        (Get-FileHash $jpegs[0]).Hash | Should -Not -Be (Get-FileHash $jpegs[1]).Hash
        $codec = [SkiaSharp.SKCodec]::Create($jpegs[8].FullName)
        try { $codec.Info.Width | Should -Be (300 + 13 * 8); $codec.Info.Height | Should -Be (260 + 11 * 1) }
        finally { $codec.Dispose() }
    }

    It 'reads exact CPU pixels as uint8 RGB of 224x224 and measures differences' {
        $paths = [string[]]@($jpegs | Select-Object -First 3 | ForEach-Object FullName)
        $a = Get-CpuExactPixels $paths
        $a.Length | Should -Be (3 * 224 * 224 * 3)
        $b = Get-CpuExactPixels $paths
        (Measure-PixelDifference $a $b).Max | Should -Be 0
        $b[7] = [byte](($b[7] + 9) % 256); $b[100] = [byte](($b[100] + 3) % 256)
        $d = Measure-PixelDifference $a $b
        $d.Max | Should -Be ([Math]::Max([Math]::Abs([int]$b[7] - [int]$a[7]), 3))
        # the pictures are not flat: the first and second differ
        (Measure-PixelDifference $a[0..150527] $a[150528..301055]).Mean | Should -BeGreaterThan 5
        if (-not $gpuHere) { { Get-GpuPixels $paths 0 } | Should -Throw -ExpectedMessage '*GPU decoding is not available here*' }
    }

    It 'compares two jobs'' outputs per sample, and their rows' {
        $a = Join-Path $TestDrive 'a'; $b = Join-Path $TestDrive 'b'
        $ra = $jpegs | Invoke-PartitionedInference -Plan $cpuPlan -OutputPath $a -DecodeOn Auto -InformationVariable ja
        $rb = $jpegs | Invoke-PartitionedInference -Plan $cpuPlan -OutputPath $b -DecodeOn Cpu
        (Get-JobSummary $ja).Blocks | Should -BeGreaterThan 1
        (Get-JobSummary $ja).UnitDecoding | Should -BeNullOrEmpty -Because 'a CPU unit decodes nothing itself'
        $cos = @(Get-SampleCosine (Read-JobOutput $a) (Read-JobOutput $b))
        $cos.Count | Should -Be 130
        ($cos | Measure-Object -Minimum).Minimum | Should -BeGreaterThan 0.999999
        Compare-JobRows $ra $rb
        # a job over the files in another order is told apart
        $c = Join-Path $TestDrive 'c'
        $rc = $jpegs[1..129] + $jpegs[0] | Invoke-PartitionedInference -Plan $cpuPlan -OutputPath $c -DecodeOn Cpu
        (Get-SampleCosine (Read-JobOutput $c) (Read-JobOutput $b) | Measure-Object -Minimum).Minimum | Should -BeLessThan 0.9999
        { Compare-JobRows $rc $rb } | Should -Throw
    }

    It 'reads what a unit decoded from the job summary''s UnitDecoding lines' {
        $s = [HeteroBatch.Engine.Execution.JobSummary]::new()
        $s.UnitDecoding.Add('gpu1 decodes nothing ([GpuDecodeUnavailable] GPU decoding is not available here: no nvJPEG.); CPU threads decode its share')
        $s.UnitDecoding.Add('gpu10 decoded 7 images itself and had 1 decoded on the CPU (not JPEG, or refused)')
        # the engine's line (UnitDecoding.Report in Execution/UnitDecoding.cs), as a GPU job writes it
        $s.UnitDecoding.Add(('{0} decoded {1} images itself and had {2} decoded on the CPU (not JPEG, or refused)' -f 'gpu1', 290, 10))
        $s.UnitDecoding.Add(('{0} decoded {1} images itself, copied in {2} that CPU threads decoded for it, and had {3} decoded on the CPU (not JPEG, or refused)' -f 'gpu2', 250, 40, 10))
        $d = Get-UnitDecoded $s gpu1
        $d.OnUnit | Should -Be 290
        $d.OnCpu | Should -Be 10
        $d.FromThreads | Should -Be 0
        $h = Get-UnitDecoded $s gpu2
        $h.OnUnit, $h.FromThreads, $h.OnCpu | Should -Be 250, 40, 10
        (Get-UnitDecoded $s gpu10).OnUnit | Should -Be 7
        Get-UnitDecoded $s gpu0 | Should -BeNullOrEmpty
    }

    It 'a unit that fails mid-job leaves its share to the other' {
        $units = @(Get-ComputeUnit -CpuGroup 2)
        if ($units.Count -lt 2) { Set-ItResult -Skipped -Because 'needs two processors for two CPU units' }
        $plan = $units | Invoke-Profile -Model tinynet -BatchSize 1, 16 -SecondsPerSize 0.1 | Get-BatchPlan -BatchSize 64 -Algorithm Even
        $out = Join-Path $TestDrive 'failed'
        $job = Invoke-FailingJob $plan $units[0].Id $jpegs $out
        Assert-TookOver $job $units[0].Id 130
        $whole = Join-Path $TestDrive 'unfailed'
        $plan | Invoke-PartitionedInference -InputPath $folder -OutputPath $whole | Out-Null
        # on a GPU host the units include the GPUs, which decode what they take over with nvJPEG: within the GPU
        # decoding's agreement with CPU decoding (0.999), not the CPU's run-to-run agreement
        $least = if ($units | Where-Object Kind -EQ Gpu) { 0.999 } else { 0.9999 }
        (Get-SampleCosine (Read-JobOutput $out) (Read-JobOutput $whole) | Measure-Object -Minimum).Minimum | Should -BeGreaterOrEqual $least
        # the hook is cleared: the same plan runs on both units again
        $again = $plan | Invoke-PartitionedInference -InputPath $folder -InformationVariable j2
        (Get-JobSummary $j2).Units.Failed | Should -Not -Contain $true
    }

    It 'stops a job after its first block and resumes it' {
        $many = New-PhotoFolder (Join-Path $TestDrive 'many') 1200
        $whole = Join-Path $TestDrive 'whole'
        $uninterrupted = $cpuPlan | Invoke-PartitionedInference -InputPath $many -OutputPath $whole -DecodeOn Auto
        $r = Invoke-StoppedAndResumed $cpuPlan $many (Join-Path $TestDrive 'stopped') Auto
        Write-Host ("    stopped at {0} of 1200 (state {1}, {2:F2} s to stop)" -f $r.At, $r.Stop.State, $r.Stop.StopSeconds)
        $r.Stop.State | Should -Be 'Stopped'
        $r.At | Should -BeGreaterThan 0
        $r.Summary.SamplesResumed | Should -Be $r.At
        $r.Summary.SamplesRun | Should -Be (1200 - $r.At)
        Compare-JobRows $r.Rows $uninterrupted
        (Get-SampleCosine (Read-JobOutput (Join-Path $TestDrive 'stopped')) (Read-JobOutput $whole) | Measure-Object -Minimum).Minimum | Should -BeGreaterOrEqual 0.9999
        Remove-Item $many -Recurse
    }
}
