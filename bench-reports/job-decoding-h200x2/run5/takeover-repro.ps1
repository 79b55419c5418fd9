Import-Module $env:HETEROBATCH_TEST_MODULE -Force
. /work/main/tests/TestHelpers.ps1
[HeteroBatch.Engine.Runtime.NativeLibraries]::Register()
Add-Type -Path (Join-Path (Split-Path $env:HETEROBATCH_TEST_MODULE) SkiaSharp.dll) -ErrorAction SilentlyContinue
$dir = Join-Path ([IO.Path]::GetTempPath()) "hb-repro-$PID"
New-Item -ItemType Directory $dir -Force | Out-Null
# the suite's pictures: 40 distinct, 130 files
$rng = [Random]::new(23)
$pictures = for ($k = 0; $k -lt 40; $k++) {
    $w = 300 + 13 * ($k % 9); $h = 260 + 11 * ($k % 7)
    $bmp = [SkiaSharp.SKBitmap]::new([SkiaSharp.SKImageInfo]::new($w, $h, 'Rgba8888', 'Premul'))
    $canvas = [SkiaSharp.SKCanvas]::new($bmp); $paint = [SkiaSharp.SKPaint]::new(); $paint.Color = [SkiaSharp.SKColor]::new([byte]$rng.Next(256), 90, 30)
    $canvas.DrawCircle(100, 100, 80, $paint); $canvas.Dispose(); $paint.Dispose()
    $data = $bmp.Encode('Jpeg', 90); , $data.ToArray(); $data.Dispose(); $bmp.Dispose()
}
for ($i = 0; $i -lt 130; $i++) { [IO.File]::WriteAllBytes((Join-Path $dir ('img{0:D5}.jpg' -f $i)), $pictures[$i % 40]) }
$jpegs = Get-ChildItem $dir -Filter *.jpg
$hash0 = ($jpegs | Get-FileHash).Hash -join ''
$units = @(Get-ComputeUnit -CpuGroup 2)
"units: $($units.Count)"
$plan = $units | Invoke-Profile -Model tinynet -BatchSize 1, 16 -SecondsPerSize 0.1 -NoStore | Get-BatchPlan -BatchSize 64 -Algorithm Even
"plan: $($plan.Split)"
foreach ($try in 'plain', 'plain', 'failing', 'failing') {
    $plan2 = $plan
    if ($try -eq 'failing') { ($plan.Shards | Where-Object UnitId -EQ $units[0].Id).SubBatchSize = 8; Set-TestFailure $units[0].Id 1 }
    try { $rows = $jpegs | Invoke-PartitionedInference -Plan $plan -InformationVariable job -WarningAction SilentlyContinue -ErrorAction SilentlyContinue -ErrorVariable errs }
    finally { Clear-TestFailure }
    $bad = @($rows | Where-Object Error)
    "{0}: {1} rows, {2} with an error ({3}); errors {4}; decode threads {5}; units {6}" -f $try, $rows.Count, $bad.Count, (($bad | Select-Object -First 3 | ForEach-Object { "$($_.Index) $($_.ErrorId)" }) -join ', '), $errs.Count, ($job | Select-Object -Last 1).MessageData.DecodeThreads, ((($job | Select-Object -Last 1).MessageData.Units | ForEach-Object { "$($_.UnitId):$($_.Count)$(if ($_.Failed) {'F'})" }) -join ' ')
}
"files unchanged: $((($jpegs | Get-FileHash).Hash -join '') -eq $hash0)"
