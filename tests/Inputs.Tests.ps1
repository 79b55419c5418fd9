# Real inputs and outputs: images, .npy tensors, files from the pipeline, output files, cancellation.
BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    Import-Module $env:HETEROBATCH_TEST_MODULE -Force
    $script:store = New-TestStore
    $script:units = Get-ComputeUnit -CpuGroup 2
    $script:profiles = $units | Invoke-Profile -Model tinynet -BatchSize 1, 4, 16 -SecondsPerSize 0.05
    $script:plan = $profiles | Get-BatchPlan -BatchSize 8 -Algorithm Even
    $script:single = $profiles | Get-BatchPlan -BatchSize 8 -Unit $units[0].Id -Algorithm Single

    # solid-colour images of different sizes, written with the same decoder library the module uses
    [HeteroBatch.Engine.Runtime.NativeLibraries]::Register()
    $script:images = Join-Path $TestDrive 'images'
    New-Item -ItemType Directory $images | Out-Null
    $colours = @(@(255, 0, 0), @(0, 255, 0), @(0, 0, 255), @(255, 255, 0), @(0, 255, 255), @(128, 64, 32), @(10, 200, 90))
    for ($i = 0; $i -lt $colours.Count; $i++) {
        $bmp = [SkiaSharp.SKBitmap]::new(40 + 7 * $i, 30 + 3 * $i)
        $bmp.Erase([SkiaSharp.SKColor]::new([byte]$colours[$i][0], [byte]$colours[$i][1], [byte]$colours[$i][2]))
        $format = if ($i % 2) { [SkiaSharp.SKEncodedImageFormat]::Jpeg } else { [SkiaSharp.SKEncodedImageFormat]::Png }
        $ext = if ($i % 2) { 'jpg' } else { 'png' }
        $data = $bmp.Encode($format, 95)
        [System.IO.File]::WriteAllBytes((Join-Path $images ("img{0}.{1}" -f $i, $ext)), $data.ToArray())
        $data.Dispose(); $bmp.Dispose()
    }
}

Describe 'Image inputs' {
    It 'runs a folder of images in name order, a prediction for each, each output equal to that image run alone' {
        $out = Join-Path $TestDrive 'folder-out'
        $p = $plan | Invoke-PartitionedInference -InputPath $images -OutputPath $out
        $p.Count | Should -Be 7
        $p.Input | Should -Be @('img0.png', 'img1.jpg', 'img2.png', 'img3.jpg', 'img4.png', 'img5.jpg', 'img6.png')
        $p.Index | Should -Be (0..6)
        $p.Unit | Sort-Object -Unique | Should -Be ($plan.Shards.UnitId | Sort-Object)
        $p[0].TopClasses.Count | Should -Be 5
        $all = [HeteroBatch.Engine.Data.Npy]::Read((Join-Path $out 'logits.npy'), 'logits')
        for ($i = 0; $i -lt 7; $i++) {
            $file = Get-ChildItem $images | Where-Object Name -EQ $p[$i].Input
            $aloneOut = Join-Path $TestDrive "alone$i"
            $alone = $single | Invoke-PartitionedInference -InputPath $file.FullName -OutputPath $aloneOut
            $alone.Class | Should -Be $p[$i].Class
            $a = [HeteroBatch.Engine.Data.Npy]::Read((Join-Path $aloneOut 'logits.npy'), 'logits').Sample(0)
            $b = $all.Sample($i)
            for ($j = 0; $j -lt $a.Length; $j++) { [Math]::Abs($a[$j] - $b[$j]) | Should -BeLessOrEqual 1e-4 }
        }
    }

    It 'takes files from the pipeline, and runs more inputs than planned in blocks of the plan''s batch' {
        $p = Get-ChildItem $images | Invoke-PartitionedInference -Plan ($profiles | Get-BatchPlan -BatchSize 3) -InformationVariable job
        $p.Count | Should -Be 7
        $p[6].Input | Should -Be 'img6.png'
        $summary = $job.MessageData
        $summary.Blocks | Should -Be 3
        ($summary.Units | Measure-Object Count -Sum).Sum | Should -Be 7
        $summary.SamplesRun | Should -Be 7
    }

    It 'reports an unreadable image as a failed sample and runs the others (ImageUnreadable)' {
        $bad = Join-Path $TestDrive 'bad-images'
        New-Item -ItemType Directory $bad | Out-Null
        Copy-Item (Join-Path $images 'img0.png') $bad
        Set-Content (Join-Path $bad 'broken.jpg') 'not an image'
        $p = $plan | Invoke-PartitionedInference -InputPath $bad -ErrorVariable errs -ErrorAction SilentlyContinue
        $p.Count | Should -Be 2
        $errs.Count | Should -Be 1
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'ImageUnreadable,*'
        $errs[0].TargetObject | Should -Be 'broken.jpg'
        ($p | Where-Object Input -EQ 'broken.jpg').Error | Should -Match 'could not be decoded'
        ($p | Where-Object Input -EQ 'img0.png').Class | Should -BeGreaterOrEqual 0
        { $plan | Invoke-PartitionedInference -InputPath $bad -ErrorAction Stop } | Should -Throw -ErrorId 'ImageUnreadable,HeteroBatch.Commands.InvokePartitionedInferenceCommand'
    }

    It 'gives a JPEG cut short, a FIFO named .jpg and a name that is not UTF-8 an error row each, and keeps inputs.txt one line a sample' -Skip:(-not $IsLinux) {
        # issue 25: half a JPEG was a confident prediction, a FIFO hung the job, a name that is not UTF-8 stopped it
        $odd = Join-Path $TestDrive 'odd-files'
        New-Item -ItemType Directory $odd | Out-Null
        # noise, so that the image data (not the header) is most of the file and half of it cuts the pixels short
        $bmp = [SkiaSharp.SKBitmap]::new(200, 150)
        $noise = [byte[]]::new(200 * 150 * 4)
        [System.Random]::new(3).NextBytes($noise)
        [System.Runtime.InteropServices.Marshal]::Copy($noise, 0, $bmp.GetPixels(), $noise.Length)
        $data = $bmp.Encode([SkiaSharp.SKEncodedImageFormat]::Jpeg, 90)
        $whole = $data.ToArray()
        $data.Dispose(); $bmp.Dispose()
        [System.IO.File]::WriteAllBytes((Join-Path $odd 'a-cut.jpg'), $whole[0..([int]($whole.Length / 2))])
        Copy-Item (Join-Path $images 'img0.png') (Join-Path $odd "d-new`nline.png")
        Copy-Item (Join-Path $images 'img1.jpg') (Join-Path $odd 'e.jpg')
        /bin/sh -c "cd '$odd' && mkfifo c-fifo.jpg && cp e.jpg `"`$(printf 'b-\377.jpg')`""
        $out = Join-Path $TestDrive 'odd-out'
        try { $rows = @($plan | Invoke-PartitionedInference -InputPath $odd -OutputPath $out -ErrorVariable errs -ErrorAction SilentlyContinue) }
        finally { /bin/sh -c "rm -rf '$odd'" } # .NET (and so TestDrive's clean-up) cannot delete a name that is not UTF-8
        $rows.Count | Should -Be 5
        ($errs | ForEach-Object { $_.FullyQualifiedErrorId.Split(',')[0] } | Sort-Object) | Should -Be @('ImageUnreadable', 'InputFileUnreadable', 'InputFileUnreadable')
        ($rows | Where-Object Input -EQ 'a-cut.jpg').Error | Should -Match 'incomplete'
        ($rows | Where-Object Input -EQ 'c-fifo.jpg').Error | Should -Match 'FIFO'
        ($rows | Where-Object Input -EQ "d-new`nline.png").Error | Should -BeNullOrEmpty
        $lines = Get-Content (Join-Path $out 'inputs.txt')
        $lines.Count | Should -Be 5
        $lines[3] | Should -Be 'd-new\nline.png'
    }

    It 'refuses an empty folder (InputFolderEmpty)' {
        $empty = Join-Path $TestDrive 'empty'
        New-Item -ItemType Directory $empty | Out-Null
        { $plan | Invoke-PartitionedInference -InputPath $empty } | Should -Throw -ErrorId 'InputFolderEmpty,HeteroBatch.Commands.InvokePartitionedInferenceCommand'
    }
}

Describe '.npy inputs and outputs' {
    It 'round-trips a tensor file to output files in input order' {
        $data = [HeteroBatch.Engine.Data.SyntheticInput]::Create('input', [long[]](3, 32, 32), 6, 3, 'Float', 10)
        $npy = Join-Path $TestDrive 'batch.npy'
        [HeteroBatch.Engine.Data.Npy]::Write($npy, $data)
        $out = Join-Path $TestDrive 'out'
        $p = $plan | Invoke-PartitionedInference -InputPath $npy -OutputPath $out
        $p.Input | Should -Be @(0..5 | ForEach-Object { "batch.npy[$_]" })
        $synthetic = $profiles | Get-BatchPlan -BatchSize 6 -Algorithm Even | Invoke-PartitionedInference -Seed 3
        $written = [HeteroBatch.Engine.Data.Npy]::Read((Join-Path $out 'logits.npy'), 'logits')
        $written.Count | Should -Be 6
        for ($i = 0; $i -lt 6; $i++) { $written.Sample($i) | Should -Be $synthetic.OutputOf($i) }
        Get-Content (Join-Path $out 'inputs.txt') | Should -Be $p.Input
        (Import-Csv (Join-Path $out 'predictions.csv')).input | Should -Be $p.Input
        Get-ChildItem $out -Filter '*.tmp' -Force | Should -BeNullOrEmpty
        Get-ChildItem $out -Filter '*.partial' -Force | Should -BeNullOrEmpty
    }

    It 'refuses a tensor of the wrong shape (InputShapeMismatch) or type (InputTypeMismatch)' {
        $wrongShape = Join-Path $TestDrive 'shape.npy'
        [HeteroBatch.Engine.Data.Npy]::Write($wrongShape, [HeteroBatch.Engine.Data.SyntheticInput]::Create('input', [long[]](3, 16, 16), 2, 1, 'Float', 10))
        { $plan | Invoke-PartitionedInference -InputPath $wrongShape } | Should -Throw -ErrorId 'InputShapeMismatch,HeteroBatch.Commands.InvokePartitionedInferenceCommand'
        $wrongType = Join-Path $TestDrive 'type.npy'
        [HeteroBatch.Engine.Data.Npy]::Write($wrongType, [HeteroBatch.Engine.Data.SyntheticInput]::Create('input', [long[]](3, 32, 32), 2, 1, 'Int64', 10))
        { $plan | Invoke-PartitionedInference -InputPath $wrongType } | Should -Throw -ErrorId 'InputTypeMismatch,HeteroBatch.Commands.InvokePartitionedInferenceCommand'
        $garbage = Join-Path $TestDrive 'garbage.npy'
        Set-Content $garbage 'nope'
        { $plan | Invoke-PartitionedInference -InputPath $garbage } | Should -Throw -ErrorId 'NpyInvalid,HeteroBatch.Commands.InvokePartitionedInferenceCommand'
    }
}

Describe '-Repeat' {
    It 'runs the batch that many times and reports the median' {
        $r = $plan | Invoke-PartitionedInference -Repeat 5
        $r.RepeatWallMs.Count | Should -Be 5
        $r.WallMs | Should -Be $r.RepeatWallMs[2]
    }
}

Describe 'Stopping' {
    It 'stops every unit promptly on Ctrl+C and leaves no output file' {
        $slow = $units | Invoke-Profile -Model squeezenet_v1.1 -BatchSize 1, 8 -SecondsPerSize 0.05 -NoStore | Get-BatchPlan -BatchSize 200
        $out = Join-Path $TestDrive 'stopped'
        $stop = Stop-CommandAfter Invoke-PartitionedInference @{ Plan = $slow; Repeat = 50; OutputPath = $out } 1500
        $stop.StopSeconds | Should -BeLessThan 2
        $stop.Completed | Should -BeTrue
        $stop.State | Should -Be 'Stopped'
        Test-Path $out | Should -BeFalse
    }
}

Describe 'Export-InferenceModel -Precision' {
    It 'writes the fp16 form of <What>, which runs and agrees with fp32' -ForEach @(
        @{ What = 'a built-in network'; Name = 'tinynet' }
        @{ What = 'a user''s .onnx file'; Name = 'user' }
    ) {
        $source = if ($Name -eq 'user') { (Export-InferenceModel tinynet (Join-Path $TestDrive 'user.onnx') -Force).FullName } else { $Name }
        $half = Export-InferenceModel $source (Join-Path $TestDrive "$Name-fp16.onnx") -Precision Fp16 -Force
        $full = Export-InferenceModel $source (Join-Path $TestDrive "$Name-fp32.onnx") -Force
        $half.Length | Should -BeLessThan ($full.Length * 0.6)
        $unit = Get-ComputeUnit -CpuGroup Core | Select-Object -First 1
        $a = $unit | Invoke-Profile -Model $half.FullName -BatchSize 2 -SecondsPerSize 0.02 -NoStore | Get-BatchPlan -BatchSize 2 | Invoke-PartitionedInference
        $b = $unit | Invoke-Profile -Model $full.FullName -BatchSize 2 -SecondsPerSize 0.02 -NoStore | Get-BatchPlan -BatchSize 2 | Invoke-PartitionedInference
        $agreement = [HeteroBatch.Engine.Data.OutputAgreement]::Compare($b.Outputs[0], $a.Outputs[0])
        $agreement.MinCosine | Should -BeGreaterOrEqual 0.999
    }

    It 'refuses a model it cannot convert (PrecisionUnsupported)' {
        $twice = Export-InferenceModel tinynet (Join-Path $TestDrive 'once.onnx') -Precision Fp16 -Force
        { Export-InferenceModel $twice.FullName (Join-Path $TestDrive 'twice.onnx') -Precision Fp16 -ErrorAction Stop } | Should -Throw -ErrorId 'PrecisionUnsupported,*'
    }
}
