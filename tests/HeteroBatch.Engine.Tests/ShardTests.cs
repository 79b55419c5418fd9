using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.UseCases;
using SkiaSharp;

namespace HeteroBatch.Engine.Tests;

public sealed class ShardTests : IDisposable
{
    private readonly EngineContext _context = new();
    private readonly string _dir = Directory.CreateTempSubdirectory("hb-shard-").FullName;

    public void Dispose()
    {
        _context.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(10, 3)]
    [InlineData(11, 4)]
    [InlineData(3000, 7)]
    [InlineData(5, 5)]
    public void ShardsCoverTheListOnceInOrderAndDifferByAtMostOneFile(int files, int count)
    {
        var list = Enumerable.Range(0, files).Select(i => $"/in/f{i:D5}.jpg").ToList();
        var parts = Enumerable.Range(0, count).Select(k => new JobShard(k, count).Select(list)).ToList();
        Assert.Equal(list, parts.SelectMany(p => p));
        Assert.True(parts.Max(p => p.Count) - parts.Min(p => p.Count) <= 1);
        // the same list and count always give the same parts
        Assert.Equal(parts[count - 1], new JobShard(count - 1, count).Select(list.ToList()));
    }

    [Theory]
    [InlineData("0/3", 0, 3)]
    [InlineData("2/3", 2, 3)]
    [InlineData(" 4 / 10 ", 4, 10)]
    public void ParseReadsKOfN(string text, int k, int n)
    {
        var shard = JobShard.Parse(text);
        Assert.Equal((k, n), (shard.Index, shard.Count));
        Assert.Equal($"{k}/{n}", shard.ToString());
    }

    [Theory]
    [InlineData("3/3")]
    [InlineData("-1/3")]
    [InlineData("1/0")]
    [InlineData("1")]
    [InlineData("a/b")]
    [InlineData("1/2/3")]
    [InlineData("")]
    public void ParseRefusesWhatIsNotAShard(string text)
    {
        var e = Assert.Throws<HeteroBatchException>(() => JobShard.Parse(text));
        Assert.Equal("ShardInvalid", e.ErrorId);
    }

    [Fact]
    public void MoreShardsThanFilesIsRefused()
    {
        var e = Assert.Throws<HeteroBatchException>(() => new JobShard(0, 4).Select(new[] { "a.jpg", "b.jpg", "c.jpg" }));
        Assert.Equal("ShardInvalid", e.ErrorId);
    }

    /// <summary>Noise images (every output differs) with a comma in one name (a quoted CSV field), and a .npy batch of 4 (one file, four samples).</summary>
    private string MakeInputs(int images)
    {
        NativeLibraries.Register();
        var folder = Path.Combine(_dir, "in");
        Directory.CreateDirectory(folder);
        var rng = new Random(9);
        for (int i = 0; i < images; i++)
        {
            int w = 20 + 7 * (i % 5), h = 18 + 3 * (i % 4);
            var px = new byte[w * h * 4];
            rng.NextBytes(px);
            using var bmp = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul));
            System.Runtime.InteropServices.Marshal.Copy(px, 0, bmp.GetPixels(), px.Length);
            using var data = bmp.Encode(SKEncodedImageFormat.Jpeg, 90);
            File.WriteAllBytes(Path.Combine(folder, i == 3 ? "img003,\"odd\".jpg" : $"img{i:D3}.jpg"), data.ToArray());
        }
        Npy.Write(Path.Combine(folder, "m-batch.npy"), SyntheticInput.Create("input", new long[] { 3, 32, 32 }, 4, 3));
        return folder;
    }

    private static BatchPlan OneUnitPlan(int batch) =>
        PlanLayout.Manual("tinynet", TestModels.Tiny.Sha256, new List<ShareSpec> { new(TestModels.TwoCpuUnits()[0], batch, 3, 1) });

    private JobSummary Run(string input, string output, JobShard? shard, bool resume = false, int batch = 4)
    {
        var inference = new Inference(_context);
        using var job = inference.PrepareJob(OneUnitPlan(batch), new[] { input }, output, resume, force: false, new RunSettings { DecodeThreads = 1 }, TestModels.Tiny, shard);
        return inference.RunJob(job, RecordPolicy.Off, onBlock: null);
    }

    private static void AssertSameFiles(string expected, string actual)
    {
        foreach (var f in new[] { JobOutput.PredictionsFile, "logits.npy", JobOutput.InputsFile })
            Assert.True(File.ReadAllBytes(Path.Combine(expected, f)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(actual, f))), $"{f} differs");
    }

    [Fact]
    public void MergedShardsEqualAOneProcessRunByteForByte()
    {
        var input = MakeInputs(13);
        Run(input, Path.Combine(_dir, "whole"), null);
        // given out of order: the merge puts them in shard order
        var shards = new[] { 2, 0, 1 }.Select(k => Path.Combine(_dir, $"shard-{k}")).ToList();
        foreach (var k in new[] { 0, 1, 2 })
        {
            var summary = Run(input, Path.Combine(_dir, $"shard-{k}"), new JobShard(k, 3), batch: 3);
            Assert.True(summary.Samples > 0);
        }
        var merged = ShardMerge.Merge(shards, Path.Combine(_dir, "merged"), force: false);
        Assert.Equal(17, merged.Samples);
        Assert.Equal(3, merged.Shards);
        Assert.Equal(Enumerable.Range(0, 3).Select(k => Path.Combine(_dir, $"shard-{k}")), merged.ShardFolders);
        AssertSameFiles(Path.Combine(_dir, "whole"), Path.Combine(_dir, "merged"));
        // the shards' own indexes start at 0; the merged ones run over the whole job
        Assert.StartsWith("0,", File.ReadAllLines(Path.Combine(_dir, "shard-1", JobOutput.PredictionsFile))[1]);

        var again = Assert.Throws<HeteroBatchException>(() => ShardMerge.Merge(shards, Path.Combine(_dir, "merged"), force: false));
        Assert.Equal("OutputPathInUse", again.ErrorId);
        ShardMerge.Merge(shards, Path.Combine(_dir, "merged"), force: true);
        AssertSameFiles(Path.Combine(_dir, "whole"), Path.Combine(_dir, "merged"));
    }

    [Fact]
    public void AShardFolderResumedWithAnotherShardIsAMismatch()
    {
        var input = MakeInputs(6);
        var folder = Path.Combine(_dir, "s0");
        var inference = new Inference(_context);
        // shard 0 stopped before its first block: job.json says 0 samples done
        inference.PrepareJob(OneUnitPlan(2), new[] { input }, folder, false, false, new RunSettings(), TestModels.Tiny, new JobShard(0, 2)).Dispose();
        var e = Assert.Throws<HeteroBatchException>(() => inference.PrepareJob(OneUnitPlan(2), new[] { input }, folder, true, false, new RunSettings(), TestModels.Tiny, new JobShard(1, 2)));
        Assert.Equal("ResumeMismatch", e.ErrorId);
        Assert.Contains("shard 0/2", e.Message);
        // the whole job over the same files is another job than its shard
        var whole = Assert.Throws<HeteroBatchException>(() => inference.PrepareJob(OneUnitPlan(2), new[] { input }, folder, true, false, new RunSettings(), TestModels.Tiny, null));
        Assert.Equal("ResumeMismatch", whole.ErrorId);
        // its own shard resumes
        inference.PrepareJob(OneUnitPlan(2), new[] { input }, folder, true, false, new RunSettings(), TestModels.Tiny, new JobShard(0, 2)).Dispose();

        var a = new JobCheckpoint { Model = "m", Inputs = "x", Shard = 0, ShardCount = 3, JobFiles = "all" };
        Assert.True(a.SameJob(a with { }));
        Assert.False(a.SameJob(a with { Shard = 1 }));
        Assert.False(a.SameJob(a with { ShardCount = 4 }));
        Assert.False(a.SameJob(a with { JobFiles = "other" }));
    }

    [Fact]
    public void TheMergeRefusesUnfinishedMissingDuplicateAndForeignShards()
    {
        var input = MakeInputs(8);
        var inference = new Inference(_context);
        string S(string name) => Path.Combine(_dir, name);
        Run(input, S("a0"), new JobShard(0, 3));
        Run(input, S("a1"), new JobShard(1, 3));
        inference.PrepareJob(OneUnitPlan(4), new[] { input }, S("a2"), false, false, new RunSettings(), TestModels.Tiny, new JobShard(2, 3)).Dispose();
        Run(input, S("b1"), new JobShard(1, 2));
        Run(input, S("whole"), null);

        string Refused(params string[] folders) =>
            Assert.Throws<HeteroBatchException>(() => ShardMerge.Merge(folders.Select(S).ToList(), S("out"), force: false)).ErrorId;
        Assert.Equal("ShardUnfinished", Refused("a0", "a1", "a2"));
        Assert.Equal("ShardUnfinished", Refused("a0", "whole"));
        Assert.Equal("ShardUnfinished", Refused("a0", "nothing-here"));
        Assert.Equal("ShardMissing", Refused("a0", "a1"));
        Assert.Equal("ShardDuplicate", Refused("a0", "a1", "a1"));
        Assert.Equal("ShardJobMismatch", Refused("a0", "b1"));
        Assert.False(Directory.Exists(S("out")));

        // finished, the three merge
        Run(input, S("a2"), new JobShard(2, 3), resume: true);
        Assert.Equal(12, ShardMerge.Merge(new[] { S("a0"), S("a1"), S("a2") }, S("out"), force: false).Samples);
        AssertSameFiles(S("whole"), S("out"));
    }
}
