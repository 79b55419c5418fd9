using System.Security.Cryptography;
using Google.Protobuf;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Sessions;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using Microsoft.ML.OnnxRuntime;

namespace HeteroBatch.Engine.Tests;

public sealed class ModelCatalogTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "hb-models-" + Guid.NewGuid().ToString("N"));

    private readonly EngineContext _context = new();

    public ModelCatalogTests() => Directory.CreateDirectory(_dir);
    public void Dispose()
    {
        _context.Dispose();
        Directory.Delete(_dir, true);
    }

    private string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static LoadedModel OpenCpu(string path, int threads = 2)
    {
        Runtime.OrtRuntime.Initialize();
        using var o = new SessionOptions { IntraOpNumThreads = threads, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
        return new LoadedModel(path, o);
    }

    [Theory]
    [InlineData("mobilenet")]
    [InlineData("squeezenet_v1.0")]
    [InlineData("squeezenet_v1.1")]
    [InlineData("resnet-18")]
    [InlineData("resnet-34")]
    [InlineData("resnet-50")]
    [InlineData("inception_v3")]
    [InlineData("vgg-16")]
    [InlineData("vgg-19")]
    [InlineData("densenet-121")]
    public void EachNetworkRunsAtBatchOneAndThreeWithAThousandClasses(string name)
    {
        // built in memory: the two VGGs alone would put 1.1 GB in the cache folder
        Runtime.OrtRuntime.Initialize();
        using var options = new SessionOptions { IntraOpNumThreads = 2, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
        using var model = new LoadedModel(ModelZoo.Build(name).ToByteArray(), options);
        Assert.Equal(new long[] { 1000 }, model.Signature.Outputs[0].SampleShape);
        Assert.Null(model.Signature.FixedBatch);
        foreach (var n in new[] { 1, 3 })
        {
            var inputs = model.SyntheticInputs(n, 1);
            var outputs = model.AllocateOutputs(n);
            model.Run(inputs, outputs, 0, n);
            Assert.Equal(n * 1000, outputs[0].AsFloats().Length);
            Assert.All(outputs[0].AsFloats(), v => Assert.True(float.IsFinite(v)));
        }
    }

    [Fact]
    public void TheSameNameGivesTheSameBytes()
    {
        var a = SHA256.HashData(ModelZoo.Build("squeezenet_v1.1").ToByteArray());
        var b = SHA256.HashData(ModelZoo.Build("squeezenet_v1.1").ToByteArray());
        Assert.Equal(a, b);
        Assert.Equal(Convert.ToHexString(a).ToLowerInvariant(), ModelCatalog.Resolve("squeezenet_v1.1", TestModels.Cache).Sha256);
    }

    [Fact]
    public void ADamagedCachedModelIsRebuilt()
    {
        var first = ModelCatalog.Resolve("tinynet", _dir);
        var bytes = File.ReadAllBytes(first.Path);
        File.WriteAllBytes(first.Path, bytes[..(bytes.Length / 2)]); // truncated
        var again = ModelCatalog.Resolve("tinynet", _dir);
        Assert.Equal(first.Sha256, again.Sha256);
        Assert.Equal(bytes, File.ReadAllBytes(again.Path));
    }

    [Fact]
    public void AFailedWriteLeavesNoFileBehind()
    {
        var target = Path.Combine(_dir, "out.onnx");
        Assert.Throws<IOException>(() => AtomicFile.Write(target, s => { s.Write(new byte[1000]); throw new IOException("disk full"); }));
        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Fact]
    public void ErrorIds()
    {
        Assert.Equal("ModelNotFound", Assert.Throws<HeteroBatchException>(() => ModelCatalog.Resolve("resnet-51", _dir)).ErrorId);
        Assert.Equal("ModelFileNotFound", Assert.Throws<HeteroBatchException>(() => ModelCatalog.Resolve(Path.Combine(_dir, "none.onnx"), _dir)).ErrorId);
        var bad = Write("bad.onnx", "not a model"u8.ToArray());
        var invalid = Assert.Throws<HeteroBatchException>(() => ModelCatalog.Resolve(bad, _dir));
        Assert.Equal("ModelInvalid", invalid.ErrorId);
        Assert.Contains("bad.onnx", invalid.Message);
        var noAxis = Write("no-axis.onnx", CustomGraphs.NoBatchAxis());
        Assert.Equal("BatchAxisUnknown", Assert.Throws<HeteroBatchException>(() => ModelCatalog.Resolve(noAxis, _dir)).ErrorId);
    }

    private static BatchPlan TwoUnitPlan(ModelSource model, int batch, int first)
    {
        var units = TestModels.TwoCpuUnits();
        var plan = PlanLayout.Manual(model.Name, model.Sha256, new[] { new ShareSpec(units[0], first, first, 1), new ShareSpec(units[^1], batch - first, 3, 1) });
        plan.ModelPath = model.Path;
        return plan;
    }

    /// <summary>Runs each sample alone on the original file and returns the first output's rows.</summary>
    private static float[][] PerSample(string path, IReadOnlyList<TensorBatch> inputs, int n)
    {
        using var model = OpenCpu(path, 1);
        var rows = new float[n][];
        for (int i = 0; i < n; i++)
        {
            var one = inputs.Select(t => { var b = t.EmptyLike(1); t.CopyTo(i, 1, b, 0); return b; }).ToList();
            var outputs = model.AllocateOutputs(1);
            model.Run(one, outputs, 0, 1);
            rows[i] = outputs[0].AsFloats();
        }
        return rows;
    }

    [Fact]
    public void AFixedBatchModelIsMadeToBatchAndGivesPerSampleOutputs()
    {
        var path = Path.Combine(_dir, "tiny-fixed.onnx");
        File.WriteAllBytes(path, ModelZoo.Build("tinynet", fixedBatch: 1).ToByteArray());
        var source = ModelCatalog.Resolve(path, _dir);
        Assert.Equal(BatchMode.Rewritten, source.BatchMode);
        Assert.NotEqual(path, source.Path);
        var inputs = new[] { SyntheticInput.Create(ModelZoo.InputName, new long[] { 3, 32, 32 }, 10, 5) };
        var result = PartitionedRunner.Run(_context, TwoUnitPlan(source, 10, 4), source, InputSet.Of(inputs), new RunSettings());
        var expected = PerSample(path, inputs, 10);
        for (int i = 0; i < 10; i++)
            for (int j = 0; j < expected[i].Length; j++)
                Assert.Equal(expected[i][j], result.OutputOf(i)[j], 4);
    }

    [Fact]
    public void AModelThatCannotBatchRunsItsSharesSampleBySample()
    {
        var path = Write("fixed-reshape.onnx", CustomGraphs.FixedBatchWithReshape());
        var source = ModelCatalog.Resolve(path, _dir);
        Assert.Equal(BatchMode.Fixed, source.BatchMode);
        Assert.Contains("cannot be made to batch", source.Note);
        var inputs = new[] { SyntheticInput.Create("x", new long[] { 3, 4, 4 }, 7, 9) };
        var result = PartitionedRunner.Run(_context, TwoUnitPlan(source, 7, 3), source, InputSet.Of(inputs), new RunSettings());
        var expected = PerSample(path, inputs, 7);
        for (int i = 0; i < 7; i++) Assert.Equal(expected[i], result.OutputOf(i));
    }

    [Fact]
    public void SeveralInputsAndInt64InputsSplitAlongTheBatch()
    {
        var path = Write("two-inputs.onnx", CustomGraphs.TwoInputsWithInt64());
        var source = ModelCatalog.Resolve(path, _dir);
        var inputs = new TensorBatch[]
        {
            SyntheticInput.Create("x", new long[] { 4 }, 11, 3),
            SyntheticInput.Create("ids", new long[] { 3 }, 11, 3, Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Int64),
        };
        var result = PartitionedRunner.Run(_context, TwoUnitPlan(source, 11, 5), source, InputSet.Of(inputs), new RunSettings());
        Assert.Equal(inputs[1].Data, result.Outputs.Single(o => o.Name == "ids_out").Data);
        var expected = PerSample(path, inputs, 11);
        for (int i = 0; i < 11; i++)
            for (int j = 0; j < 2; j++) Assert.Equal(expected[i][j], result.OutputOf(i)[j], 4);
    }

    [Theory]
    [InlineData(false)] // y declared [1,4]
    [InlineData(true)]  // y declared [N,4], though it is [1,4] when run
    public void AModelWhoseOutputDropsTheBatchAxisIsRefused_NotRunOneSampleAtATime(bool declareBatch)
    {
        var path = Write($"summed-{declareBatch}.onnx", CustomGraphs.SumOverTheBatch(declareBatch));
        var e = Assert.Throws<HeteroBatchException>(() => ModelCatalog.Resolve(path, _dir));
        Assert.Equal("BatchAxisDropped", e.ErrorId);
        Assert.Contains("'y'", e.Message);
        Assert.Contains("[1,4]", e.Message);
    }

    [Fact]
    public void AModelWhoseSamplesInteractIsRefusedForSplittingButRunsWhole()
    {
        var path = Write("centred.onnx", CustomGraphs.CentredOverTheBatch());
        var source = ModelCatalog.Resolve(path, _dir);
        Assert.Equal(BatchMode.SamplesInteract, source.BatchMode);
        var inputs = new[] { SyntheticInput.Create("x", new long[] { 4 }, 10, 3) };
        var e = Assert.Throws<HeteroBatchException>(() => PartitionedRunner.Run(_context, TwoUnitPlan(source, 10, 4), source, InputSet.Of(inputs), new RunSettings()));
        Assert.Equal("SamplesInteract", e.ErrorId);
        var units = TestModels.TwoCpuUnits();
        var whole = PartitionedRunner.Run(_context, PlanLayout.Manual(source.Name, source.Sha256, new[] { new ShareSpec(units[0], 10, 10, 1) }), source, InputSet.Of(inputs), new RunSettings());
        var x = inputs[0].AsFloats();
        for (int j = 0; j < 4; j++)
        {
            float mean = Enumerable.Range(0, 10).Select(i => x[i * 4 + j]).Average();
            Assert.Equal(x[j] - mean, whole.OutputOf(0)[j], 5);
        }
        // planning it across units is refused too; for one unit it is planned
        var p = TestModels.FakeProfile("cpu0", "centred", (10, 1.0));
        var q = TestModels.FakeProfile("cpu1", "centred", (10, 1.0));
        p.BatchMode = q.BatchMode = BatchMode.SamplesInteract;
        q.ModelSha256 = p.ModelSha256;
        Assert.Equal("SamplesInteract", Assert.Throws<HeteroBatchException>(() => Planner.Plan(new[] { p, q }, 10)).ErrorId);
        Assert.Single(Planner.Plan(new[] { p }, 10).Shards);
    }

    [Fact]
    public void AModelFileEditedInPlaceWithTheSameSizeAndTimeIsSeenAsChanged()
    {
        var path = Write("edited.onnx", CustomGraphs.TwoInputsWithInt64());
        var first = ModelCatalog.Resolve(path, _dir);
        var written = File.GetLastWriteTimeUtc(path);
        var bytes = File.ReadAllBytes(path);
        var edited = CustomGraphs.TwoInputsWithInt64();
        // the same graph with one weight changed: same length
        int at = Array.LastIndexOf(edited, (byte)0x3F);
        edited[at - 1] ^= 0x01;
        Assert.Equal(bytes.Length, edited.Length);
        File.WriteAllBytes(path, edited);
        File.SetLastWriteTimeUtc(path, written);
        var second = ModelCatalog.Resolve(path, _dir);
        Assert.NotEqual(first.Sha256, second.Sha256);
    }

    [Fact]
    public void PaddedRunsGiveTheSameOutputsAsExactOnes()
    {
        using var model = OpenCpu(TestModels.Tiny.Path, 1);
        var inputs = model.SyntheticInputs(10, 2);
        var exact = model.AllocateOutputs(10);
        var padded = model.AllocateOutputs(10);
        model.Run(inputs, exact, 0, 10);
        model.Run(inputs, padded, 0, 6, padTo: 8);
        model.Run(inputs, padded, 6, 4, padTo: 8);
        for (int i = 0; i < 10; i++)
            for (int j = 0; j < 10; j++) Assert.Equal(exact[0].Sample(i)[j], padded[0].Sample(i)[j], 4);
        // both windows lay inside the 10 inputs: read in place, nothing copied into staging
        Assert.Equal(0, model.StagedInputBatches);
        // a batch smaller than the padded size has to be staged
        var few = model.SyntheticInputs(3, 2);
        var fewOut = model.AllocateOutputs(3);
        var fewExact = model.AllocateOutputs(3);
        model.Run(few, fewExact, 0, 3);
        model.Run(few, fewOut, 1, 2, padTo: 8);
        Assert.Equal(1, model.StagedInputBatches);
        for (int i = 1; i < 3; i++)
            for (int j = 0; j < 10; j++) Assert.Equal(fewExact[0].Sample(i)[j], fewOut[0].Sample(i)[j], 4);
    }
}
