using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Sessions;
using HeteroBatch.Engine.Units.Backends;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace HeteroBatch.Engine.Tests;

/// <summary>
/// Where every unit of a file job decodes its own share (GPUs), CPU threads with time to spare decode
/// samples from the back of each share into pixels the unit copies in, while the unit decodes from
/// the front: whoever reaches a sample first decodes it.
/// </summary>
public sealed class PixelClaimsTests
{
    private static PixelClaims Claims(int slots, int blockSize) =>
        new(new TensorBatch("pixels", new long[] { 2, 2, 3 }, slots, null, TensorElementType.UInt8), blockSize);

    [Fact]
    public void TheUnitFromTheFrontAndTheThreadsFromTheBackMeetAndEachSampleIsDecodedOnce()
    {
        var claims = Claims(slots: 4, blockSize: 8);
        claims.Open(generation: 3, count: 8, new[] { (0, 8) }, most: 0.5);
        Assert.Equal(4, claims.RoomOf(0));
        // the threads take 7, 6, 5, 4 (half the share at most), each in a slot of its own, in the order taken
        var taken = Enumerable.Range(0, 5).Select(_ => claims.ClaimFromBack(3, 0)).ToList();
        Assert.Equal(new (int, int)?[] { (7, 0), (6, 1), (5, 2), (4, 3), null }, taken);
        foreach (var t in taken.OfType<(int Sample, int Slot)>()) claims.Decoded(t.Sample);
        // the unit decodes 0-3 itself; 4-7 are the threads', their pixels in the slots they took
        Assert.All(Enumerable.Range(0, 4), i => Assert.True(claims.ClaimForUnit(i)));
        Assert.All(Enumerable.Range(4, 4), i => Assert.False(claims.ClaimForUnit(i)));
        Assert.Equal(new[] { 3, 2, 1, 0 }, Enumerable.Range(4, 4).Select(claims.SlotWhenDecoded));
        Assert.Equal(4, claims.DecodedByCpu);
    }

    [Fact]
    public void WhereTheUnitGotThereFirstTheThreadsStopAndTheUnitDecodesTheRest()
    {
        var claims = Claims(slots: 8, blockSize: 8);
        claims.Open(0, 8, new[] { (0, 8) }, most: 0.5);
        for (int i = 0; i < 6; i++) Assert.True(claims.ClaimForUnit(i)); // the unit is fast: six samples in
        Assert.Equal((7, 0), claims.ClaimFromBack(0, 0));
        Assert.Equal((6, 1), claims.ClaimFromBack(0, 0));
        Assert.Null(claims.ClaimFromBack(0, 0)); // 5 is the unit's: they have met
        Assert.Null(claims.ClaimFromBack(0, 0)); // and the share takes no more, room or not
        claims.Decoded(7);
        claims.Decoded(6);
        Assert.False(claims.ClaimForUnit(6));
        Assert.Equal(1, claims.SlotWhenDecoded(6));
        Assert.Equal(2, claims.DecodedByCpu);
    }

    [Fact]
    public void ARangeRunAgainByAnotherUnitIsDecodedByItAndSamplesTheThreadsTookStayTheirs()
    {
        var claims = Claims(slots: 2, blockSize: 4);
        claims.Open(0, 4, new[] { (0, 4) }, most: 0.5);
        Assert.Equal((3, 0), claims.ClaimFromBack(0, 0));
        claims.Decoded(3);
        Assert.True(claims.ClaimForUnit(0));
        // the unit failed; another takes its range over: what the first unit claimed it decodes again, the threads' sample it copies
        Assert.True(claims.ClaimForUnit(0));
        Assert.True(claims.ClaimForUnit(1));
        Assert.False(claims.ClaimForUnit(3));
    }

    [Fact]
    public void TheThreadsTakeNoMoreThanEachSharesRoomOrTheSlotsThereAre()
    {
        var claims = Claims(slots: 3, blockSize: 16);
        claims.Open(0, 16, new[] { (0, 8), (8, 8) }, most: 0.25);
        Assert.Equal(new[] { 2, 2 }, new[] { claims.RoomOf(0), claims.RoomOf(1) });
        Assert.Equal((7, 0), claims.ClaimFromBack(0, 0));
        Assert.Equal((15, 1), claims.ClaimFromBack(0, 1));
        Assert.Equal((6, 2), claims.ClaimFromBack(0, 0));
        Assert.Null(claims.ClaimFromBack(0, 0)); // the share's room is used
        Assert.Null(claims.ClaimFromBack(0, 1)); // room left in the share, but no slot
        // a share of nothing, or no room, offers nothing
        foreach (int sample in new[] { 7, 15, 6 }) claims.Decoded(sample);
        claims.Close(); // nothing decoding: returns at once
        claims.Open(1, 4, new[] { (0, 0), (0, 4) }, most: 0);
        Assert.Equal(1, claims.Shares);
        Assert.Null(claims.ClaimFromBack(1, 0));
    }

    [Fact]
    public void SamplesWhoseFilesCouldNotBeReadArePassedOverAndLeftToTheUnit()
    {
        var claims = Claims(slots: 4, blockSize: 8);
        claims.Open(0, 8, new[] { (0, 8) }, most: 0.5);
        var failed = new object?[8];
        failed[7] = failed[6] = "unreadable";
        Assert.Equal((5, 0), claims.ClaimFromBack(0, 0, failed)); // 7 and 6 spend the share's room, no slot
        Assert.Equal((4, 1), claims.ClaimFromBack(0, 0, failed));
        Assert.Null(claims.ClaimFromBack(0, 0, failed)); // the room (4) is spent
        Assert.True(claims.ClaimForUnit(7)); // the unit meets the failure itself
        Assert.True(claims.ClaimForUnit(6));
    }

    [Fact]
    public void ABlockClosedOrAnotherBlocksClaimsOfferNothingToWorkMeantForAnEarlierOne()
    {
        var claims = Claims(slots: 4, blockSize: 8);
        claims.Open(5, 8, new[] { (0, 8) }, most: 0.5);
        Assert.Null(claims.ClaimFromBack(4, 0)); // work queued for the block these inputs held before
        Assert.Null(claims.ClaimFromBack(5, 1)); // a share the block does not have
        claims.Close();
        Assert.Null(claims.ClaimFromBack(5, 0)); // closed: its units have run
        claims.Open(6, 8, new[] { (0, 8) }, most: 0.5);
        Assert.Null(claims.ClaimFromBack(5, 0));
        Assert.Equal((7, 0), claims.ClaimFromBack(6, 0));
    }

    [Fact]
    public void ClosingWaitsForTheSamplesThreadsAreDecodingAndAUnitWaitsForTheOneItNeeds()
    {
        var claims = Claims(slots: 4, blockSize: 8);
        claims.Open(0, 8, new[] { (0, 8) }, most: 0.5);
        Assert.Equal((7, 0), claims.ClaimFromBack(0, 0));
        Assert.False(claims.ClaimForUnit(7));
        var slot = Task.Run(() => claims.SlotWhenDecoded(7));
        var closed = Task.Run(claims.Close);
        // neither can end while the sample is decoding (were one to, the result below would show it: a slot read before the pixels)
        Assert.False(Task.WaitAny(new Task[] { slot, closed }, 200) >= 0);
        Assert.Throws<InvalidOperationException>(() => claims.Open(1, 8, new[] { (0, 8) }, 0.5));
        claims.Decoded(7);
        Assert.True(Task.WaitAll(new Task[] { slot, closed }, TimeSpan.FromMinutes(1)));
        Assert.Equal(0, slot.Result);
        claims.Open(1, 8, new[] { (0, 8) }, 0.5); // the block before is closed: the inputs go to the next
    }
}

/// <summary>CPU decoding threads helping the units that decode their own share, through a job's stages, with real JPEG files.</summary>
public sealed class CpuDecodingHelpTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("hb-help-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static readonly TensorSpec Floats = new("x", TensorElementType.Float, new long[] { 3, 16, 16 });
    private static readonly TensorSpec Pixels = new("pixels", TensorElementType.UInt8, new long[] { 16, 16, 3 });
    private static readonly TensorSpec Logits = new("y", TensorElementType.Float, new long[] { 4 });

    /// <summary>A decoding unit as the job sees it (its decoding is the GPU's; here only what the job asks of it).</summary>
    private sealed class DecodingUnit(int hostThreads, bool takesPixels = true) : IEncodedImageSession
    {
        public ModelSignature Signature { get; } = new(new[] { Pixels }, new[] { Logits });
        public HashSet<int> WarmedSizes { get; } = new();
        public EncodedImages? Source { get; set; }
        public (long OnUnit, long OnCpu) Decoded => (0, 0);
        public bool TakesCpuPixels => takesPixels;
        public int HostThreads => hostThreads;
        public void Warm(int chunk) { }
        public void Run(IReadOnlyList<TensorBatch> inputs, IReadOnlyList<TensorBatch> outputs, int offset, int count, int padTo = 0, CancellationToken cancel = default) { }
        public void Dispose() { }
    }

    private static BatchPlan Plan(int eachShare)
    {
        var units = TestModels.TwoCpuUnits();
        return PlanLayout.Manual("tinynet", TestModels.Tiny.Sha256, new[] { new ShareSpec(units[0], eachShare, eachShare, 1), new ShareSpec(units[^1], eachShare, eachShare, 1) });
    }

    private static UnitDecoding Decoding(BatchPlan plan, int hostThreads = 0, bool takesPixels = true) =>
        new(plan.Shards.ToDictionary(s => s.UnitId, _ => (IEncodedImageSession)new DecodingUnit(hostThreads, takesPixels)));

    [Fact]
    public void ThreadsHelpOnlyWhereAShareIsTheirsToTakeAndAThreadIsLeftOnceTheUnitsOwnHaveProcessors()
    {
        var plan = Plan(8);
        var on = new EngineOptions { CpuDecodeShare = 0.25 };
        Assert.Null(Decoding(plan).CpuHelp(plan, new EngineOptions(), decodeThreads: 12)); // off unless asked for
        var help = Decoding(plan).CpuHelp(plan, on, decodeThreads: 12);
        Assert.NotNull(help);
        Assert.Equal(0.25, help.Most);
        Assert.Equal(6, help.Threads); // half the decoding threads
        Assert.Equal(Pixels, help.Pixels);
        Assert.Equal(0.25, help.BlockShare);
        Assert.Equal(plan.Shards.Select(s => s.UnitId).ToHashSet(), help.Units);
        Assert.Equal(2, Decoding(plan, hostThreads: 4).CpuHelp(plan, on, 12)!.Threads); // each unit's own threads keep a processor, the writer and the feeder two
        Assert.Null(Decoding(plan, hostThreads: 5).CpuHelp(plan, on, 12)); // none left
        Assert.Equal(2, Decoding(plan).CpuHelp(plan, on, 12, cores: () => 3)!.Threads); // one a physical core, less one
        Assert.Equal(6, Decoding(plan).CpuHelp(plan, on, 12, cores: () => 20)!.Threads);
        Assert.Null(Decoding(plan).CpuHelp(plan, on, 12, cores: () => 1));
        Assert.Null(Decoding(plan).CpuHelp(plan, new EngineOptions(), 12, cores: () => throw new InvalidOperationException("read while off")));
        Assert.Null(Decoding(plan).CpuHelp(plan, new EngineOptions { CpuDecodeShare = 0 }, 12)); // turned off
        Assert.Null(Decoding(plan, takesPixels: false).CpuHelp(plan, on, 12)); // a server decodes what it is sent
        Assert.Equal(0.5, Decoding(plan).CpuHelp(plan, new EngineOptions { CpuDecodeShare = 2 }, 12)!.Most); // bounded however it was set
    }

    [Fact]
    public void ProcessorsThatShareACoreCountOnceAndAnOsThatDoesNotSayCountsNothing()
    {
        string root = Directory.CreateTempSubdirectory("hb-sys-").FullName;
        try
        {
            // four cores with two threads each: 0/4, 1/5, 2/6, 3/7
            for (int p = 0; p < 8; p++)
            {
                var dir = Directory.CreateDirectory(Path.Combine(root, $"devices/system/cpu/cpu{p}/topology")).FullName;
                File.WriteAllText(Path.Combine(dir, "thread_siblings_list"), p < 4 ? $"{p},{p + 4}\n" : $"{p - 4},{p}\n");
            }
            Assert.Equal(4, Units.CpuTopology.PhysicalCores(Enumerable.Range(0, 8), root));
            Assert.Equal(2, Units.CpuTopology.PhysicalCores(new[] { 0, 4, 5 }, root));
            Assert.Equal(0, Units.CpuTopology.PhysicalCores(Array.Empty<int>(), root));
            Assert.Null(Units.CpuTopology.PhysicalCores(new[] { 8 }, root));
            File.WriteAllText(Path.Combine(root, "devices/system/cpu/cpu1/topology/thread_siblings_list"), "1-5\n");
            Assert.Equal(3, Units.CpuTopology.PhysicalCores(new[] { 0, 1, 2 }, root)); // ranges read as lists
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public void WhileABlockWaitsForItsUnitsThreadsDecodeTheBacksOfTheirSharesToTheExactPixels()
    {
        const int count = 16;
        var paths = Enumerable.Range(0, count).Select(i =>
        {
            var path = Path.Combine(_folder, $"{i:D2}.jpg");
            File.WriteAllBytes(path, FastPreprocessingTests.Photo(40 + i, 30 + i, seed: i));
            return path;
        }).ToList();
        File.WriteAllBytes(paths[14], new byte[] { 1, 2, 3, 4, 5 }); // not an image: a failed sample, whoever decodes it
        var files = InputFiles.For(paths, new[] { Floats });
        var plan = Plan(count / 2);
        using var decoding = Decoding(plan);
        var help = decoding.CpuHelp(plan, new EngineOptions { CpuDecodeShare = 0.5 }, decodeThreads: 4)!;
        var layout = new JobLayout(plan, 0, count, count);
        var outputs = new ModelSignature(new[] { Floats }, new[] { Logits });
        var inputs = BlockInputs.Allocate(help.Pixels, 8, pinned: false, arenaBytes: 1 << 20, blockSize: count);
        var summary = new JobSummary { Plan = plan, Samples = count, DecodeThreads = 2 };
        using var threads = new JobStageThreads(layout, new[] { JobBlock.Allocate(outputs, count) }, new[] { inputs }, files, ImagePreprocessing.ImageNet,
            null, summary, new RunSettings(), Array.Empty<int>(), null, CancellationToken.None, decoding, help);
        threads.Start();
        var block = threads.NextDecoded(0);
        var claims = block.Inputs.Claims!;
        // the block waits for its units (here, until the test lets it go): the threads take half of each share from its back
        Assert.True(SpinWait.SpinUntil(() => claims.DecodedByCpu == 8, TimeSpan.FromMinutes(2)));
        var exact = new TensorBatch("pixels", Pixels.SampleShape, 1, null, TensorElementType.UInt8);
        foreach (var (offset, unit) in new[] { (0, "first"), (8, "second") })
        {
            Assert.All(Enumerable.Range(offset, 4), i => Assert.True(claims.ClaimForUnit(i))); // the unit's from the front
            foreach (int i in Enumerable.Range(offset + 4, 4))
            {
                Assert.False(claims.ClaimForUnit(i));
                int slot = claims.SlotWhenDecoded(i);
                if (i == 14)
                {
                    Assert.Equal("ImageUnreadable", block.Errors[i]!.ErrorId);
                    continue;
                }
                Assert.Null(block.Errors[i]);
                files.Load(i, exact, 0, ImagePreprocessing.ImageNet with { ChannelOrder = ChannelOrder.Rgb });
                Assert.True(exact.Bytes(0, 1).SequenceEqual(claims.Pixels.Bytes(slot, 1)), $"{unit} share, sample {i}");
            }
        }
        // every sample of the shares was read for the units (a unit may reach any of them first); the threads decoded those bytes
        Assert.All(Enumerable.Range(0, count), i => Assert.True(block.ForUnitDecoding[i] && !block.Bytes[i].IsEmpty));
        threads.Ran(block);
        threads.Finish();
        Assert.Equal(7, summary.SamplesDecodedForUnits); // the file that is not an image is a failed sample, not one decoded
        Assert.True(summary.Stages.HelpDecodeMs > 0);
        Assert.Contains("decode for the decoding units", summary.Stages.ToString());
    }
}
