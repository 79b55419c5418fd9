using System.Collections.Concurrent;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Sessions;
using HeteroBatch.Engine.Units.Backends;

namespace HeteroBatch.Engine.Tests;

/// <summary>
/// A unit that decodes its own share of a file job runs a session of its own on the board; the
/// CPU decodes only what the other units run, and a decoding unit's range taken over by another
/// unit is decoded on the spot. (The GPU session itself needs nvJPEG: tools/gpu and the bench.)
/// </summary>
public sealed class UnitDecodingTests : IDisposable
{
    private readonly EngineContext _context = new(new EngineOptions { ModelCacheFolder = TestModels.Cache });

    public void Dispose() => _context.Dispose();

    /// <summary>A stand-in for a decoding GPU: writes 42 into its samples' outputs, or fails from its first run when told to.</summary>
    private sealed class DecodingStandIn(ModelSignature signature, bool fails) : IEncodedImageSession
    {
        public ConcurrentBag<(int Offset, int Count)> Ran { get; } = new();
        public ModelSignature Signature => signature;
        public HashSet<int> WarmedSizes { get; } = new();
        public EncodedImages? Source { get; set; }
        public (long OnUnit, long OnCpu) Decoded => (Ran.Sum(r => r.Count), 0);
        public DecodingStages? Stages { get; set; }
        public void Warm(int chunk) { }

        private int _running, _calls;
        private readonly ManualResetEventSlim _second = new();
        public int MostAtOnce;

        public void Run(IReadOnlyList<TensorBatch> inputs, IReadOnlyList<TensorBatch> outputs, int offset, int count, int padTo = 0, CancellationToken cancel = default)
        {
            int now = Interlocked.Increment(ref _running);
            lock (Ran) MostAtOnce = Math.Max(MostAtOnce, now);
            if (now > 1) _second.Set();
            // the first run gives any other taker of the same unit the time to arrive (a bound on the wait, not on the result:
            // with one taker nothing arrives and the wait ends once; with several, the second ends it at once)
            if (Interlocked.Increment(ref _calls) == 1) _second.Wait(TimeSpan.FromSeconds(2));
            try { RunOne(outputs, offset, count); }
            finally { Interlocked.Decrement(ref _running); }
        }

        private void RunOne(IReadOnlyList<TensorBatch> outputs, int offset, int count)
        {
            if (fails) throw new InvalidOperationException("the stand-in's GPU is gone");
            Assert.NotNull(Source); // a block's bytes are there before its board runs
            Ran.Add((offset, count));
            outputs[0].AsFloats().AsSpan(offset * (int)outputs[0].SampleElements, count * (int)outputs[0].SampleElements).Fill(42);
        }

        public Action? OnDispose;
        public void Dispose() => OnDispose?.Invoke();
    }

    private sealed class Released(List<string> order, string name) : IDisposable
    {
        public void Dispose() => order.Add(name);
    }

    [Fact]
    public void WhatTheSessionsCopyFromIsReleasedOnlyAfterEverySessionIsDisposed()
    {
        var (_, _, _, real) = Setup();
        var order = new List<string>();
        var gpu0 = StandIn(real, 8, fails: false);
        var gpu1 = StandIn(real, 8, fails: false);
        gpu0.OnDispose = () => order.Add("gpu0");
        gpu1.OnDispose = () => order.Add("gpu1");
        var decoding = new UnitDecoding(new Dictionary<string, IEncodedImageSession> { ["gpu0"] = gpu0, ["gpu1"] = gpu1 });
        decoding.HoldUntilDisposed(new Released(order, "page-locked bytes"));
        decoding.Dispose();
        Assert.Equal(new[] { "gpu0", "gpu1", "page-locked bytes" }, order);
        decoding.Dispose();
        Assert.Equal(5, order.Count); // the sessions again (harmless), the bytes not twice
    }

    private (BatchPlan Plan, IReadOnlyList<TensorBatch> Inputs, IReadOnlyList<TensorBatch> Outputs, IModelSession Real) Setup()
    {
        var units = TestModels.TwoCpuUnits();
        var plan = PlanLayout.Manual("tinynet", TestModels.Tiny.Sha256, new[] { new ShareSpec(units[0], 4, 2, 1), new ShareSpec(units[^1], 4, 2, 1) });
        var real = PartitionedRunner.LoadSessions(PartitionedRunner.Workers(_context, plan), TestModels.Tiny)[0];
        return (plan, real.SyntheticInputs(8, 3), real.AllocateOutputs(8), real);
    }

    private static DecodingStandIn StandIn(IModelSession real, int samples, bool fails) =>
        new(real.Signature, fails) { Source = new EncodedImages(_ => ReadOnlyMemory<byte>.Empty, i => $"{i}", new HeteroBatchException?[samples]) };

    /// <summary>One board of <paramref name="plan"/> with its second unit decoding through <paramref name="standIn"/>; the ranges made sure of go to <paramref name="ensured"/>.</summary>
    private BoardOutcome RunWithStandIn(BatchPlan plan, IReadOnlyList<TensorBatch> inputs, IReadOnlyList<TensorBatch> outputs, DecodingStandIn standIn,
        ConcurrentBag<(int, int)>? ensured = null) =>
        new BoardRun(_context, plan, TestModels.Tiny, new RunSettings()).Run(new BoardWork(plan, new[] { (plan, 0) }, inputs, outputs)
        {
            Sessions = new Dictionary<string, IModelSession> { [plan.Shards[1].UnitId] = standIn },
            EnsureDecoded = ensured == null ? null : (o, n) => ensured.Add((o, n)),
        }, CancellationToken.None);

    [Fact]
    public void TheDecodingUnitRunsItsOwnSessionAndTheCpuDecodesOnlyTheOtherUnitsRanges()
    {
        var (plan, inputs, outputs, real) = Setup();
        var standIn = StandIn(real, 8, fails: false);
        var ensured = new ConcurrentBag<(int, int)>();
        var outcome = RunWithStandIn(plan, inputs, outputs, standIn, ensured);

        Assert.Equal(new[] { (4, 2), (6, 2) }, standIn.Ran.OrderBy(r => r.Offset));
        Assert.Equal(new[] { (0, 2), (2, 2) }, ensured.OrderBy(r => r.Item1));
        Assert.All(Enumerable.Range(4, 4), i => Assert.All(outputs[0].Sample(i), v => Assert.Equal(42f, v)));
        Assert.All(Enumerable.Range(0, 4), i => Assert.DoesNotContain(42f, outputs[0].Sample(i)));
        Assert.Equal(new[] { 4, 4 }, outcome.Runs.Select(r => r.Count));
    }

    [Fact]
    public void TheJobSummarySaysWhatEachDecodingUnitDecodedAndWhereItsChunksTimeWent()
    {
        var (plan, inputs, outputs, real) = Setup();
        var gpu = StandIn(real, 8, fails: false);
        gpu.Stages = new DecodingStages(Chunks: 2, Images: 4, DecodeMs: 3, InferMs: 5, WaitMs: 1, ParseMs: 0.5, SubmitMs: 2, ResizeMs: 0.25);
        var server = StandIn(real, 8, fails: false); // a unit whose decoding has no chunk stages (a server)
        RunWithStandIn(plan, inputs, outputs, gpu);

        var summary = new JobSummary();
        new UnitDecoding(new Dictionary<string, IEncodedImageSession> { ["gpu0"] = gpu, ["remote0"] = server }).Report(summary);
        Assert.Equal(new[] { "gpu0" }, summary.DecodingStages.Keys);
        Assert.Equal(5, summary.DecodingStages["gpu0"].InferMs);
        Assert.Contains("gpu0 decoded 4 images itself and had 0 decoded on the CPU (not JPEG, or refused)", summary.UnitDecoding);
        Assert.Contains("gpu0: 2 chunks, 4 images: decoding 1.50 ms a chunk (1333.3 images/s on its thread; headers 0.25, nvJPEG 1.00, resizes 0.12, 0 images resized in batched calls), inference 2.50 ms a chunk (800.0 images/s), waiting for decoding 1 ms", summary.UnitDecoding);
        Assert.Contains("remote0 decoded 0 images itself and had 0 decoded on the CPU (not JPEG, or refused)", summary.UnitDecoding);
        Assert.Equal(3, summary.UnitDecoding.Count);
    }

    [Fact]
    public void ADecodingUnitRunsOneRangeAtATimeWhateverThePlansRunsInFlight()
    {
        var units = TestModels.TwoCpuUnits();
        // a plan (hand-edited, or piped from elsewhere) that asks the decoding unit for four runs in flight
        var plan = PlanLayout.Manual("tinynet", TestModels.Tiny.Sha256, new[] { new ShareSpec(units[0], 2, 2, 1), new ShareSpec(units[^1], 30, 1, 1, InFlight: 4) });
        var real = PartitionedRunner.LoadSessions(PartitionedRunner.Workers(_context, plan), TestModels.Tiny)[0];
        var standIn = StandIn(real, 32, fails: false);
        var outcome = RunWithStandIn(plan, real.SyntheticInputs(32, 3), real.AllocateOutputs(32), standIn);
        // its device batches are its own: two takers at once would decode into the batch the other infers
        Assert.Equal(1, standIn.MostAtOnce);
        Assert.Equal(30, standIn.Ran.Sum(r => r.Count));
        Assert.Equal(32, outcome.Runs.Sum(r => r.Count));
    }

    [Fact]
    public void ARangeOfADecodingUnitThatFailedIsDecodedOnTheSpotByTheUnitThatTakesItOver()
    {
        var (plan, inputs, outputs, real) = Setup();
        var standIn = StandIn(real, 8, fails: true);
        var ensured = new ConcurrentBag<(int, int)>();
        var outcome = RunWithStandIn(plan, inputs, outputs, standIn, ensured);

        Assert.True(outcome.Runs[1].Failed);
        Assert.Equal(8, outcome.Runs[0].Count);
        // every range the CPU unit ran was made sure of first, the failed unit's ones included
        Assert.Equal(8, ensured.Sum(r => r.Item2));
        Assert.Contains(ensured, r => r.Item1 >= 4);
        // and the taken-over samples' outputs are the model's, equal to a run of the whole batch on one unit
        var whole = real.AllocateOutputs(8);
        real.Run(inputs, whole, 0, 8);
        for (int i = 0; i < 8; i++) Assert.Equal(whole[0].Sample(i).ToArray(), outputs[0].Sample(i).ToArray());
    }
}

/// <summary>Through the backend interface (as the file job asks), a GPU unit decodes where nvJPEG is, and says why not where it is not.</summary>
public sealed class GpuImageSessionDispatchTests
{
    private static Units.ComputeUnit Gpu(string? whyNoDecoding) => new()
    {
        Id = "gpu0", Kind = Units.UnitKind.Gpu, Provider = Units.ExecutionProvider.CUDA, DeviceId = 0, Name = "NVIDIA GPU", GpuDecodeReason = whyNoDecoding,
    };

    [Fact]
    public void TheJobReachesTheCudaBackendsImageSessionThroughTheInterface()
    {
        IUnitBackend backend = UnitBackends.Cuda;
        var input = new TensorSpec("x", Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, new long[] { 3, 224, 224 });
        // a GPU without nvJPEG decodes nothing: its share is decoded on the CPU
        Assert.Null(backend.OpenImageSession(Gpu("libnvjpeg.so.13 was not found"), TestModels.Tiny, new EngineOptions(), input, ImagePreprocessing.ImageNet, 16));
        // one that says it can is asked to open (here, with no GPU, opening fails with the decoder's reason, not a silent null)
        if (Data.Gpu.GpuJpegDecoder.WhyUnavailable(0) is { } why)
        {
            var e = Assert.Throws<HeteroBatchException>(() => backend.OpenImageSession(Gpu(null), TestModels.Tiny, new EngineOptions(), input, ImagePreprocessing.ImageNet, 16));
            Assert.Equal("GpuDecodeUnavailable", e.ErrorId);
        }
    }
}
