using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Units;
using SkiaSharp;

namespace HeteroBatch.Engine.Tests;

public sealed class StreamingTests : IDisposable
{
    private readonly EngineContext _context = new();
    private readonly string _dir = Directory.CreateTempSubdirectory("hb-stream-").FullName;

    public void Dispose()
    {
        _context.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Images of different sizes and kinds (noise, so that every sample's output differs), and one .npy batch of 5.</summary>
    private IReadOnlyList<string> MakeInputs(int images, string? folder = null)
    {
        NativeLibraries.Register();
        folder ??= Path.Combine(_dir, "in");
        Directory.CreateDirectory(folder);
        var rng = new Random(5);
        for (int i = 0; i < images; i++)
        {
            int w = 20 + 9 * (i % 7), h = 16 + 5 * (i % 5);
            var px = new byte[w * h * 4];
            rng.NextBytes(px);
            using var bmp = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul));
            System.Runtime.InteropServices.Marshal.Copy(px, 0, bmp.GetPixels(), px.Length);
            using var data = bmp.Encode(i % 2 == 0 ? SKEncodedImageFormat.Png : SKEncodedImageFormat.Jpeg, 90);
            File.WriteAllBytes(Path.Combine(folder, $"img{i:D3}.{(i % 2 == 0 ? "png" : "jpg")}"), data.ToArray());
        }
        Npy.Write(Path.Combine(folder, "z-batch.npy"), SyntheticInput.Create("input", new long[] { 3, 32, 32 }, 5, 11));
        return InputFiles.ExpandPaths(new[] { folder });
    }

    private BatchPlan Plan(int batch)
    {
        var units = TestModels.TwoCpuUnits();
        int first = batch / 2 + 1;
        return PlanLayout.Manual("tinynet", TestModels.Tiny.Sha256,
            new List<ShareSpec> { new(units[0], first, 3, 1), new(units[^1], batch - first, 2, 1) });
    }

    private InputFiles Files(IReadOnlyList<string> paths) =>
        InputFiles.For(paths, PartitionedRunner.Signature(_context, Plan(8), TestModels.Tiny).Inputs);

    private static JobCheckpoint Job(InputFiles files) =>
        new() { Model = "tinynet", ModelSha256 = TestModels.Tiny.Sha256, Inputs = files.Identity(), Samples = files.SampleCount, Preprocessing = ImagePreprocessing.ImageNet.ToString(), Outputs = new[] { "logits" } };

    private JobSummary Stream(InputFiles files, string folder, bool resume = false, bool force = false, Action<IReadOnlyList<SamplePrediction>>? onBlock = null,
        CancellationToken cancel = default, int batch = 8)
    {
        var plan = Plan(batch);
        var outputs = PartitionedRunner.Signature(_context, plan, TestModels.Tiny).Outputs;
        using var output = JobOutput.Open(folder, Job(files), files, outputs, resume, force);
        var summary = FileJob.Run(_context, plan, TestModels.Tiny, files, output, new RunSettings { DecodeThreads = 2 }, onBlock, cancel);
        output.Complete(summary);
        return summary;
    }

    [Fact]
    public void AFileJobIsRecordedInTheStoreItsPlanCameFrom()
    {
        var plan = Plan(8);
        var store = Path.Combine(_dir, "store");
        plan.ProfileFolder = store;
        var inference = new UseCases.Inference(_context);
        using var job = inference.PrepareJob(plan, MakeInputs(12), Path.Combine(_dir, "recorded"), resume: false, force: false,
            new RunSettings { DecodeThreads = 1 }, TestModels.Tiny);
        var summary = inference.RunJob(job, UseCases.RecordPolicy.ToPlansStore, onBlock: null);
        Assert.Equal(store, summary.RecordedIn);
        Assert.Equal(summary.Samples, summary.Units.Sum(u => u.Count));
        var observed = Directory.EnumerateFiles(Path.Combine(store, "observations")).SelectMany(File.ReadAllLines).Where(l => l.Length > 0).ToList();
        Assert.Equal(plan.Shards.Count, observed.Count);
        // what the job predicted and the units' time (not the decoders') are what calibration compares
        Assert.True(summary.PredictedMs > 0 && summary.InferenceWallMs > 0 && summary.InferenceWallMs <= summary.WallMs);
    }

    [Fact]
    public void StreamedOutputsEqualTheInMemoryRunOnTheSameFiles()
    {
        var files = Files(MakeInputs(23));
        Assert.Equal(28, files.SampleCount);
        var folder = Path.Combine(_dir, "out");
        var seen = new List<SamplePrediction>();
        var summary = Stream(files, folder, onBlock: seen.AddRange);

        var inMemory = PartitionedRunner.Run(_context, Plan(28), TestModels.Tiny, InputSet.FromFiles(files, ImagePreprocessing.ImageNet), new RunSettings());
        var written = Npy.Read(Path.Combine(folder, "logits.npy"), "logits");
        Assert.Equal(inMemory.Outputs[0].AsFloats(), written.AsFloats());
        Assert.Equal(inMemory.InputNames, File.ReadAllLines(Path.Combine(folder, JobOutput.InputsFile)));
        Assert.Equal(Enumerable.Range(0, 28), seen.Select(p => p.Index));
        Assert.Equal(inMemory.Top1, seen.Select(p => p.Class));
        Assert.Equal("z-batch.npy[4]", seen[^1].Input);
        Assert.All(seen, p => Assert.Contains(p.Unit, new[] { TestModels.TwoCpuUnits()[0].Id, TestModels.TwoCpuUnits()[^1].Id }));
        Assert.Equal(29, File.ReadAllLines(Path.Combine(folder, JobOutput.PredictionsFile)).Length);
        Assert.Equal(28, summary.SamplesRun);
        Assert.Equal(4, summary.Blocks);
        Assert.Equal(28, summary.Units.Sum(u => u.Count));
        Assert.Empty(Directory.GetFiles(folder, "*.partial"));
    }

    [Fact]
    public void TheBlockBeingWrittenHoldsOnlyItsOutputs()
    {
        // four blocks of 8 in flight (decoding, decoded, running, writing): inputs for three of them, outputs for all four
        var files = Files(MakeInputs(23));
        var summary = Stream(files, Path.Combine(_dir, "held"));
        Assert.Equal(4, summary.Blocks);
        long outputs = PartitionedRunner.Signature(_context, Plan(8), TestModels.Tiny).OutputBytesPerSample;
        Assert.Equal(3 * 8 * files.Input.SampleBytes + 4 * 8 * outputs, summary.BlockBufferBytes);
    }

    [Fact]
    public void UnitsThatTakePixelsGetUint8ImagesAndComputeWhatTheFloatInputsGive()
    {
        var paths = MakeInputs(23).Where(p => !p.EndsWith(".npy")).ToList();
        var files = Files(paths);
        var plan = Plan(8);
        var outputs = PartitionedRunner.Signature(_context, plan, TestModels.Tiny).Outputs;
        JobSummary Run(EngineContext context, string folder)
        {
            using var output = JobOutput.Open(folder, Job(files), files, outputs, resume: false, force: false);
            var summary = FileJob.Run(context, plan, TestModels.Tiny, files, output, new RunSettings { DecodeThreads = 2 }, null);
            output.Complete(summary);
            return summary;
        }
        // CPU units take the model's own input unless every unit is told to take pixels
        var floats = Run(_context, Path.Combine(_dir, "floats"));
        Assert.Equal("Float [3,32,32]", floats.FedInputs);
        using var pixelContext = new EngineContext(new EngineOptions { PixelInputs = PixelInputMode.All, ModelCacheFolder = Path.Combine(_dir, "cache") });
        var pixels = Run(pixelContext, Path.Combine(_dir, "pixels"));
        Assert.Equal("UInt8 [32,32,3] pixels, normalised on the units", pixels.FedInputs);
        Assert.All(pixels.Units, u => Assert.False(u.Failed, $"{u.UnitId} failed: {u.Error}"));
        // 23 images in three blocks, each with its inputs (uint8 pixels: a quarter of the float blocks' bytes) and outputs
        Assert.Equal(3, pixels.Blocks);
        long outputBytes = 3 * 8 * PartitionedRunner.Signature(_context, plan, TestModels.Tiny).OutputBytesPerSample;
        Assert.Equal(3 * 8 * 32 * 32 * 3 + outputBytes, pixels.BlockBufferBytes);
        Assert.Equal(3 * 8 * 32 * 32 * 3 * 4 + outputBytes, floats.BlockBufferBytes);
        // the same images through the normalisation in the graph: the same outputs, to float rounding
        var a = Npy.Read(Path.Combine(_dir, "floats", "logits.npy"), "logits").AsFloats();
        var b = Npy.Read(Path.Combine(_dir, "pixels", "logits.npy"), "logits").AsFloats();
        Assert.Equal(a.Length, b.Length);
        for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) <= 1e-4f * Math.Max(1f, Math.Abs(a[i])), $"output {i}: {a[i]} against {b[i]}");
    }

    [Fact]
    public void AJobWhoseFolderCannotBeWrittenAnyMoreStopsWithOutputWriteFailed()
    {
        var files = Files(MakeInputs(23));
        var folder = Path.Combine(_dir, "taken-away");
        int blocks = 0;
        // after the first block's rows, the folder is gone and a file holds its name: job.json cannot be replaced
        var e = Assert.Throws<HeteroBatchException>(() => Stream(files, folder, onBlock: _ =>
        {
            if (++blocks != 1) return;
            Directory.Move(folder, folder + "-moved"); // its files stay open where they went
            File.WriteAllText(folder, "not a folder");
        }));
        Assert.Equal("OutputWriteFailed", e.ErrorId);
        Assert.True(e.StopsCommand);
        // job.json where the folder went still counts only what reached it before
        var moved = System.Text.Json.JsonSerializer.Deserialize<JobCheckpoint>(File.ReadAllText(Path.Combine(folder + "-moved", JobOutput.StateFile)))!;
        Assert.True(moved.SamplesDone is >= 0 and <= 8, $"{moved.SamplesDone} samples counted done");
    }

    [Fact]
    public void TimeTheRowsTakeToBeTakenIsHandingOnNotWriting()
    {
        var files = Files(MakeInputs(23));
        // whoever takes the rows holds each block for at least 25 ms
        var summary = Stream(files, Path.Combine(_dir, "slow-taker"), onBlock: _ =>
        {
            var held = System.Diagnostics.Stopwatch.StartNew();
            while (held.ElapsedMilliseconds < 25) Thread.SpinWait(100);
        });
        Assert.Equal(4, summary.Blocks);
        Assert.True(summary.Stages.HandOnMs >= 4 * 25, $"{summary.Stages}");
        Assert.Contains("hand on", summary.Stages.ToString());
    }

    [Theory]
    [InlineData(100, 10, 700, 100, "Taking the rows limited this job")]
    [InlineData(100, 700, 10, 100, "Writing limited this job")]
    [InlineData(900, 10, 10, 100, "Inference limited this job")]
    [InlineData(100, 10, 10, 800, "Decoding limited this job")]
    public void TheJobSaysWhichStageLimitedIt(double infer, double write, double handOn, double waited, string note)
    {
        var summary = new JobSummary { WallMs = 1000, SamplesRun = 10, DecodeThreads = 1 };
        summary.Stages = new JobStages { InferMs = infer, WriteMs = write, HandOnMs = handOn, WaitForInputMs = waited };
        Assert.StartsWith(note, FileJob.Bottleneck(summary));
    }

    [Fact]
    public void AJobStoppedAfterTwoBlocksResumesToTheSameFilesAndRunsOnlyTheRest()
    {
        var files = Files(MakeInputs(35));
        var whole = Path.Combine(_dir, "whole");
        var first = Stream(files, whole);
        Assert.All(first.Units, u => Assert.False(u.Failed, $"{u.UnitId} failed: {u.Error}"));

        var stopped = Path.Combine(_dir, "stopped");
        using var stop = new CancellationTokenSource();
        int blocks = 0;
        Assert.ThrowsAny<OperationCanceledException>(() => Stream(files, stopped, onBlock: _ => { if (++blocks == 2) stop.Cancel(); }, cancel: stop.Token));
        Assert.False(File.Exists(Path.Combine(stopped, "logits.npy")));
        Assert.False(File.Exists(Path.Combine(stopped, JobOutput.PredictionsFile)));
        var checkpoint = System.Text.Json.JsonSerializer.Deserialize<JobCheckpoint>(File.ReadAllText(Path.Combine(stopped, JobOutput.StateFile)))!;
        Assert.Equal(16, checkpoint.SamplesDone);

        // without -Resume the folder is refused; with it, the job goes on from sample 16
        var refused = Assert.Throws<HeteroBatchException>(() => Stream(files, stopped));
        Assert.Equal("OutputPathInUse", refused.ErrorId);
        var rest = new List<SamplePrediction>();
        var summary = Stream(files, stopped, resume: true, onBlock: rest.AddRange);
        Assert.All(summary.Units, u => Assert.False(u.Failed, $"{u.UnitId} failed: {u.Error}"));
        Assert.Equal(16, summary.SamplesResumed);
        Assert.Equal(files.SampleCount - 16, summary.SamplesRun);
        Assert.Equal(16, rest[0].Index);
        Assert.Equal(File.ReadAllLines(Path.Combine(whole, JobOutput.PredictionsFile)), File.ReadAllLines(Path.Combine(stopped, JobOutput.PredictionsFile)));
        foreach (var name in new[] { "logits.npy", JobOutput.PredictionsFile, JobOutput.InputsFile })
            Assert.Equal(File.ReadAllBytes(Path.Combine(whole, name)), File.ReadAllBytes(Path.Combine(stopped, name)));

        // resuming a completed job runs nothing
        Assert.Equal(0, Stream(files, stopped, resume: true).SamplesRun);
    }

    [Fact]
    public void AResumedJobReadsBackTheRowsItHadInInputOrder()
    {
        var paths = MakeInputs(20).ToList();
        // a name that the CSV must quote, and a file that cannot be read (a row with its error)
        var odd = Path.Combine(_dir, "in", "img, \"odd\".png");
        File.Copy(paths[0], odd);
        var broken = Path.Combine(_dir, "in", "img002b.jpg");
        File.WriteAllText(broken, "not a JPEG");
        var files = Files(InputFiles.ExpandPaths(new[] { Path.Combine(_dir, "in") }));
        var stopped = Path.Combine(_dir, "stopped");
        using var stop = new CancellationTokenSource();
        var before = new List<SamplePrediction>();
        int blocks = 0;
        Assert.ThrowsAny<OperationCanceledException>(() => Stream(files, stopped, onBlock: b => { before.AddRange(b); if (++blocks == 2) stop.Cancel(); }, cancel: stop.Token));
        Assert.Equal(16, before.Count);
        Assert.Contains(before, p => p.Input.Contains("odd"));
        Assert.Contains(before, p => p.Error != null);

        var outputs = PartitionedRunner.Signature(_context, Plan(8), TestModels.Tiny).Outputs;
        void SameRows(IReadOnlyList<SamplePrediction> expected, IReadOnlyList<SamplePrediction> actual)
        {
            Assert.Equal(expected.Count, actual.Count);
            for (int i = 0; i < expected.Count; i++)
            {
                var (e, a) = (expected[i], actual[i]);
                Assert.Equal((e.Index, e.Input, e.Unit, e.Class, e.Score, e.Error), (a.Index, a.Input, a.Unit, a.Class, a.Score, a.Error));
                Assert.Equal(e.TopClasses, a.TopClasses);
                Assert.Equal(e.TopScores, a.TopScores);
            }
        }
        using (var reopened = JobOutput.Open(stopped, Job(files), files, outputs, resume: true, force: false))
        {
            Assert.Equal(16, reopened.ResumedAt);
            SameRows(before, reopened.CommittedPredictions().ToList());
        }
        // the rest of the job, then a completed job reads back every row
        var rest = new List<SamplePrediction>();
        Stream(files, stopped, resume: true, onBlock: rest.AddRange);
        using var done = JobOutput.Open(stopped, Job(files), files, outputs, resume: true, force: false);
        SameRows(before.Concat(rest).ToList(), done.CommittedPredictions().ToList());
        Assert.Equal(Enumerable.Range(0, files.SampleCount), done.CommittedPredictions().Select(p => p.Index));
    }

    [Fact]
    public void ResumingWithOtherInputsIsRefused()
    {
        var files = Files(MakeInputs(6));
        var folder = Path.Combine(_dir, "out");
        Stream(files, folder);
        var other = Files(MakeInputs(4, Path.Combine(_dir, "other")));
        var e = Assert.Throws<HeteroBatchException>(() => Stream(other, folder, resume: true));
        Assert.Equal("ResumeMismatch", e.ErrorId);
        Assert.Equal(other.SampleCount, Stream(other, folder, force: true).SamplesRun);
    }

    [Fact]
    public void AnUnreadableImageIsAFailedSampleWithARowNotAFailedJob()
    {
        var paths = MakeInputs(5).ToList();
        var broken = Path.Combine(_dir, "in", "img001.jpg");
        File.WriteAllText(broken, "not a jpeg");
        var files = Files(paths);
        var folder = Path.Combine(_dir, "out");
        var seen = new List<SamplePrediction>();
        var summary = Stream(files, folder, onBlock: seen.AddRange);
        Assert.Equal(1, summary.SamplesFailed);
        // the job planned its stages: every unit infers (no unit here decodes its own share), threads decode beside them
        Assert.StartsWith("pipeline: " + string.Join(" + ", summary.Plan.Shards.Select(s => s.UnitId)) + " infer, ", summary.Pipeline);
        // the decoding probe skips a file that cannot be read, and times the ones that can
        Assert.True(FileJob.ProbeDecodeMs(files, 0, ImagePreprocessing.ImageNet) > 0);
        Assert.Equal(0, FileJob.ProbeDecodeMs(files, 0, ImagePreprocessing.ImageNet, samples: 1)); // img000 untimed, img001 broken
        var failed = seen.Single(p => p.Error != null);
        Assert.Equal(("img001.jpg", "ImageUnreadable", -1), (failed.Input, failed.ErrorId, failed.Class));
        var logits = Npy.Read(Path.Combine(folder, "logits.npy"), "logits");
        Assert.All(logits.Sample(1), v => Assert.True(float.IsNaN(v)));
        Assert.All(logits.Sample(0), v => Assert.False(float.IsNaN(v)));
        Assert.Contains("could not be decoded", File.ReadAllLines(Path.Combine(folder, JobOutput.PredictionsFile))[2]);
    }

    [Fact]
    public void BlocksShrinkToKeepTheBlocksInFlightWithinTheBudget()
    {
        const long budget = 512L << 20, floats = 3 * 224 * 224 * 4, logits = 4000;
        Assert.Equal(1000, FileJob.BlockSize(1000, 600, 400, 50_000, 0, budget));
        // CPU threads decode every sample: three blocks of floats (the fourth, being written, holds
        // outputs only) and four of outputs in 512 MiB
        Assert.Equal(294, FileJob.BlockSize(1000, floats, logits, 53_000, 0, budget));
        Assert.Equal(1, FileJob.BlockSize(1000, long.MaxValue / 2, 0, 0, 0, budget));
    }

    [Fact]
    public void BlocksThatUnitsDecodeHoldFileBytesAndCountDecodedInputsWhereAnyUnitTakesThem()
    {
        const long budget = 512L << 20, floats = 3 * 224 * 224 * 4, logits = 4000;
        // the GPUs decode every sample: three blocks of bytes (53 KB) and four of outputs in the budget
        Assert.Equal(3067, FileJob.BlockSize(4096, floats, logits, 53_000, 1, budget));
        Assert.Equal(512, FileJob.BlockSize(512, floats, logits, 53_000, 1, budget));
        // 99% decoded by units: a failed unit's samples may go to the unit fed decoded inputs, so every
        // sample counts its decoded input, and the units' share its bytes as well
        Assert.Equal(271, FileJob.BlockSize(4096, floats, logits, 53_000, 0.99, budget));
        Assert.Equal(282, FileJob.BlockSize(4096, floats, logits, 53_000, 0.5, budget));
        // large files that a unit decodes count as what they are
        Assert.Equal(35, FileJob.BlockSize(4096, floats, logits, 5_000_000, 1, budget));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(31, 31)]
    [InlineData(32, 16)]
    [InlineData(100, 50)]
    [InlineData(256, 128)]
    [InlineData(442, 111)]
    [InlineData(512, 128)]
    [InlineData(513, 103)]
    public void ADecodingUnitRunsItsRangeInEqualChunksOfAtMost128(int sub, int chunk)
    {
        Assert.Equal(chunk, UnitDecoding.ChunkFor(sub));
        int chunks = (sub + chunk - 1) / chunk;
        Assert.True(chunk * chunks - sub < chunks, "padding is less than one sample a chunk");
    }

    [Theory]
    [InlineData(512, 256, 256)]
    [InlineData(1024, 256, 256)]
    [InlineData(513, 256, 171)]
    [InlineData(512, 512, 256)]
    [InlineData(100, 1, 1)]
    [InlineData(20, 8, 8)]
    [InlineData(20, 0, 1)]
    [InlineData(4000, 5000, 1000)]
    public void TheLargestChunkIsTheOnesSetting(int sub, int max, int chunk)
    {
        Assert.Equal(chunk, UnitDecoding.ChunkFor(sub, max));
    }

    [Fact]
    public void ADecodingUnitsStagesSayWhatEachChunkTookOnAverage()
    {
        var stages = new DecodingStages(Chunks: 4, Images: 500, DecodeMs: 40, InferMs: 48, WaitMs: 3.4, ParseMs: 4, SubmitMs: 20, ResizeMs: 14, ResizedTogether: 480);
        Assert.Equal("4 chunks, 500 images: decoding 10.00 ms a chunk (12500.0 images/s on its thread; headers 1.00, nvJPEG 5.00, resizes 3.50, 480 images resized in batched calls), inference 12.00 ms a chunk (10416.7 images/s), waiting for decoding 3 ms",
            stages.ToString());
        Assert.Contains("decoding - ms a chunk (- images/s", new DecodingStages(0, 0, 0, 0, 0).ToString());
    }

    [Fact]
    public void ImagesAreCutAsTorchvisionCutsThem()
    {
        // Resize(256) then CenterCrop(224): 500×375 → 341×256, crop at (58, 16) (round half to even)
        Assert.Equal((341, 256, 58, 16), ImagePreprocessing.ImageNet.Geometry(500, 375, 224, 224));
        Assert.Equal((256, 341, 16, 58), ImagePreprocessing.ImageNet.Geometry(375, 500, 224, 224));
        Assert.Equal((224, 224, 0, 0), new ImagePreprocessing { Resize = ResizeMode.Stretch }.Geometry(500, 375, 224, 224));
    }

    [Fact]
    public void TheResamplerKeepsAnImageOfTheSameSizeAndAColourOfAnySize()
    {
        var rgba = new byte[4 * 2 * 4];
        for (int i = 0; i < 8; i++) { rgba[i * 4] = (byte)(i * 30); rgba[i * 4 + 1] = 100; rgba[i * 4 + 2] = (byte)(250 - i * 10); }
        var same = Resampler.ResizeWindow(rgba, 4, 2, 16, 4, 4, 2, 0, 0, 4, 2);
        for (int i = 0; i < 8; i++) Assert.Equal(new[] { rgba[i * 4], rgba[i * 4 + 1], rgba[i * 4 + 2] }, same[(i * 3)..(i * 3 + 3)]);
        // any resize of one colour is that colour (the weights of every output pixel sum to one)
        var flat = Enumerable.Range(0, 40 * 30).SelectMany(_ => new byte[] { 17, 200, 99, 255 }).ToArray();
        foreach (var (w, h) in new[] { (13, 7), (40, 30), (97, 61) })
        {
            var resized = Resampler.ResizeWindow(flat, 40, 30, 160, 4, w, h, 0, 0, w, h);
            Assert.Equal(Enumerable.Range(0, w * h).SelectMany(_ => new byte[] { 17, 200, 99 }), resized);
        }
    }

    [Fact]
    public void PreprocessingSettingsThatCannotWorkAreRefused()
    {
        Assert.Equal("PreprocessingInvalid", Assert.Throws<HeteroBatchException>(() => new ImagePreprocessing { Std = new[] { 0f } }.Checked()).ErrorId);
        Assert.Equal("PreprocessingInvalid", Assert.Throws<HeteroBatchException>(() => new ImagePreprocessing { Mean = new[] { 1f, 2f } }.Checked()).ErrorId);
    }
}
