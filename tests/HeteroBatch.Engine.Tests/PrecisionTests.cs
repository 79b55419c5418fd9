using System.Text.Json;
using Google.Protobuf;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Profiling;
using HeteroBatch.Engine.Units;
using Microsoft.ML.OnnxRuntime;
using Xunit.Abstractions;

namespace HeteroBatch.Engine.Tests;

/// <summary>fp16 forms of models, run on the CPU provider against their fp32 originals.</summary>
public sealed class PrecisionTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hb-precision-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static LoadedModel Open(byte[] model)
    {
        Runtime.OrtRuntime.Initialize();
        using var o = new SessionOptions { IntraOpNumThreads = 1, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
        return new LoadedModel(model, o);
    }

    /// <summary>Runs both forms on the same seeded inputs and compares the first output.</summary>
    private OutputAgreement Agreement(byte[] fp32, byte[] fp16, int n)
    {
        using var a = Open(fp32);
        using var b = Open(fp16);
        Assert.Equal(a.Signature.Inputs.Select(i => (i.Name, i.ElementType)), b.Signature.Inputs.Select(i => (i.Name, i.ElementType)));
        Assert.Equal(a.Signature.Outputs.Select(o => (o.Name, o.ElementType)), b.Signature.Outputs.Select(o => (o.Name, o.ElementType)));
        var inputs = a.SyntheticInputs(n, 11);
        var ra = a.AllocateOutputs(n);
        var rb = b.AllocateOutputs(n);
        a.Run(inputs, ra, 0, n);
        b.Run(inputs, rb, 0, n);
        var agreement = OutputAgreement.Compare(ra[0], rb[0]);
        output.WriteLine(agreement.ToString());
        return agreement;
    }

    [Theory]
    [InlineData("tinynet")]
    [InlineData("squeezenet_v1.1")]
    [InlineData("resnet-18")]
    public void AZooModelAtFp16AgreesWithFp32(string name)
    {
        var fp32 = ModelZoo.Build(name);
        var fp16 = PrecisionConverter.ToFloat16(fp32);
        Assert.All(fp16.Graph.Initializer, t => Assert.NotEqual((int)Onnx.TensorProto.Types.DataType.Float, t.DataType));
        var agreement = Agreement(fp32.ToByteArray(), fp16.ToByteArray(), 4);
        Assert.True(agreement.MinCosine >= 0.999, agreement.ToString());
        Assert.True(agreement.MaxAbsDifference > 0, "fp16 gave bit-identical outputs: the conversion did nothing");
    }

    [Fact]
    public void CudaUnitsAtReducedPrecisionAddConvolutionBiasesInsideCuDnnAndUsersCanOverride()
    {
        ComputeUnit Gpu(Precision p) => new() { Id = "gpu1", Kind = UnitKind.Gpu, Provider = ExecutionProvider.CUDA, DeviceId = 1, Precision = p };
        var fp16 = Units.Backends.CudaBackend.ProviderOptions(Gpu(Precision.Fp16), new EngineOptions());
        Assert.Equal(("1", "1", "HEURISTIC", "1"), (fp16["fuse_conv_bias"], fp16["prefer_nhwc"], fp16["cudnn_conv_algo_search"], fp16["device_id"]));
        Assert.Equal("1", Units.Backends.CudaBackend.ProviderOptions(Gpu(Precision.Tf32), new EngineOptions())["fuse_conv_bias"]);
        // NCHW (HETEROBATCH_CUDA_NHWC=0): that fusion fails or errs there, so it is off
        Assert.Equal("0", Units.Backends.CudaBackend.ProviderOptions(Gpu(Precision.Fp16), new EngineOptions { CudaPreferNhwc = false })["fuse_conv_bias"]);
        var fp32 = Units.Backends.CudaBackend.ProviderOptions(Gpu(Precision.Fp32), new EngineOptions());
        Assert.Equal(("0", "0", "EXHAUSTIVE", "0"), (fp32["fuse_conv_bias"], fp32["prefer_nhwc"], fp32["cudnn_conv_algo_search"], fp32["use_tf32"]));
        // HETEROBATCH_CUDA_OPTIONS wins over the defaults
        var settings = EngineOptions.FromEnvironment(v => v == EngineOptions.CudaOptionsVariable ? "fuse_conv_bias=0; enable_cuda_graph=1" : null);
        var tuned = Units.Backends.CudaBackend.ProviderOptions(Gpu(Precision.Fp16), settings);
        Assert.Equal(("0", "1"), (tuned["fuse_conv_bias"], tuned["enable_cuda_graph"]));
    }

    [Fact]
    public void AUserModelWithIntegerInputsAndAReductionAgreesAndKeepsItsTypes()
    {
        var path = Path.Combine(_dir, "user.onnx");
        File.WriteAllBytes(path, CustomGraphs.TwoInputsWithInt64());
        var source = ModelCatalog.Resolve(path, _dir);
        var fp16Path = ModelCatalog.PathFor(source, Precision.Fp16);
        var agreement = Agreement(File.ReadAllBytes(path), File.ReadAllBytes(fp16Path), 6);
        Assert.True(agreement.MinCosine >= 0.999, agreement.ToString());

        var reduce = PrecisionConverter.ToFloat16(Onnx.ModelProto.Parser.ParseFrom(CustomGraphs.SumOverFeatures()));
        Assert.Contains(reduce.Graph.Node, n => n.OpType == "Cast" && n.Output.Any(o => reduce.Graph.Node.Single(r => r.OpType == "ReduceSum").Input.Contains(o)));
        var sum = Agreement(CustomGraphs.SumOverFeatures(), reduce.ToByteArray(), 3);
        Assert.True(sum.MinCosine >= 0.999, sum.ToString());
    }

    [Fact]
    public void TheConversionIsCachedByContentHash()
    {
        var source = ModelCatalog.Resolve("tinynet", _dir);
        var first = ModelCatalog.PathFor(source, Precision.Fp16);
        var written = File.GetLastWriteTimeUtc(first);
        Assert.Contains(source.Sha256[..16], Path.GetFileName(first));
        Assert.Equal(first, ModelCatalog.PathFor(source, Precision.Fp16));
        Assert.Equal(written, File.GetLastWriteTimeUtc(first));
        // a damaged cached file is written again
        File.WriteAllBytes(first, new byte[] { 1, 2, 3 });
        ModelCatalog.PathFor(source, Precision.Fp16);
        Assert.True(new FileInfo(first).Length > 1000);
        Assert.Equal(source.Path, ModelCatalog.PathFor(source, Precision.Tf32));
    }

    [Fact]
    public void AModelThatCannotBeConvertedIsRefusedClearly()
    {
        var e = Assert.Throws<HeteroBatchException>(() => PrecisionConverter.ToFloat16(Onnx.ModelProto.Parser.ParseFrom(CustomGraphs.DoubleModel())));
        Assert.Equal("PrecisionUnsupported", e.ErrorId);
        Assert.Contains("double", e.Message);
    }

    [Fact]
    public async Task AProfileAtFp16CarriesItsAgreementAndAPlanMayMixPrecisions()
    {
        using var context = new EngineContext();
        var units = TestModels.TwoCpuUnits();
        var half = JsonSerializer.Deserialize<ComputeUnit>(JsonSerializer.Serialize(units[^1], ProfileStore.Json), ProfileStore.Json)!;
        half.Precision = Precision.Fp16; // the engine runs any unit at any precision; the cmdlets keep CPU units at Fp32
        var model = ModelCatalog.Resolve("tinynet", _dir);
        var settings = new ProfileSettings { BatchSizes = new[] { 1, 4 }, PointBudget = TimeSpan.FromMilliseconds(50) };
        var p16 = await Profiler.RunAsync(context, half, model, settings);
        var p32 = await Profiler.RunAsync(context, units[0], model, settings);
        Assert.Null(p32.Agreement);
        Assert.NotNull(p16.Agreement);
        Assert.True(p16.Agreement!.MinCosine >= 0.999 && p16.Agreement.MaxAbsDifference > 0, p16.Agreement.ToString());

        var plan = Planning.PlanLayout.Manual(model.Name, model.Sha256, new[] { new Planning.ShareSpec(units[0], 6, 3, 1), new Planning.ShareSpec(half, 6, 3, 1) });
        Assert.True(plan.MixedPrecision);
        Assert.Contains(":Fp16", plan.Precisions);
        var mixed = Execution.PartitionedRunner.Run(context, plan, model, null, new Execution.RunSettings { Seed = 5 });
        Assert.Equal(new[] { Precision.Fp32, Precision.Fp16 }, mixed.Units.Select(u => u.Precision));
        var alone = Execution.PartitionedRunner.Run(context, Planning.PlanLayout.Manual(model.Name, model.Sha256, new[] { new Planning.ShareSpec(units[0], 12, 12, 1) }), model, null, new Execution.RunSettings { Seed = 5 });
        var agreement = OutputAgreement.Compare(alone.Outputs[0], mixed.Outputs[0]);
        Assert.True(agreement.MinCosine >= 0.999, agreement.ToString());
        Assert.Equal(alone.OutputOf(0), mixed.OutputOf(0)); // the fp32 unit's samples are exact
    }

    [Fact]
    public void PrecisionIsPartOfAUnitAndSurvivesJson()
    {
        var fp32 = new ComputeUnit { Id = "gpu0", Kind = UnitKind.Gpu, Provider = ExecutionProvider.CUDA, Name = "NVIDIA H200", RuntimeVersion = "1.31.0" };
        var fp16 = JsonSerializer.Deserialize<ComputeUnit>(JsonSerializer.Serialize(fp32, ProfileStore.Json), ProfileStore.Json)!;
        Assert.Equal(fp32.Fingerprint, fp16.Fingerprint);
        fp16.Precision = Precision.Fp16;
        var tf32 = new ComputeUnit { Id = "gpu0", Kind = UnitKind.Gpu, Provider = ExecutionProvider.CUDA, Name = "NVIDIA H200", RuntimeVersion = "1.31.0", Precision = Precision.Tf32 };
        Assert.Equal(3, new[] { fp32.Fingerprint, fp16.Fingerprint, tf32.Fingerprint }.Distinct().Count());
        var back = JsonSerializer.Deserialize<ComputeUnit>(JsonSerializer.Serialize(fp16, ProfileStore.Json), ProfileStore.Json)!;
        Assert.Equal(Precision.Fp16, back.Precision);
        Assert.Equal(fp16.Fingerprint, back.Fingerprint);
        // a unit stored before Precision existed, with TF32 on
        var old = JsonSerializer.Deserialize<ComputeUnit>("""{"Id":"gpu0","Kind":"Gpu","Provider":"CUDA","Name":"NVIDIA H200","RuntimeVersion":"1.31.0","AllowTf32":true}""", ProfileStore.Json)!;
        Assert.Equal(Precision.Tf32, old.Precision);
        Assert.Equal(tf32.Fingerprint, old.Fingerprint);
    }

    /// <summary>Runs the .onnx file at <paramref name="path"/> on x (a batch of 3 × 16) and gives y.</summary>
    private static float[] RunGemm(string path, float[] x)
    {
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(path);
        using var input = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(x, new long[] { 3, 16 });
        using var run = new Microsoft.ML.OnnxRuntime.RunOptions();
        using var results = session.Run(run, new[] { "x" }, new[] { input }, new[] { "y" });
        return results[0].GetTensorDataAsSpan<float>().ToArray();
    }

    [Fact]
    public void AModelWithExternalDataExportsWhole_AtFp16AndFp32_AndItsFp16FormRuns()
    {
        var source = Path.Combine(_dir, "src");
        Directory.CreateDirectory(source);
        var path = Path.Combine(source, "ext.onnx");
        File.WriteAllBytes(path, CustomGraphs.WithExternalData(source, "ext.weights"));
        var x = Enumerable.Range(0, 48).Select(i => MathF.Cos(i * 0.7f)).ToArray();
        var expected = RunGemm(path, x);

        var away = Path.Combine(_dir, "elsewhere");
        Directory.CreateDirectory(away);
        foreach (var precision in new[] { Precision.Fp16, Precision.Fp32 })
        {
            // issue 25: the fp16 export was a 244-byte file with empty weights that did not load
            var model = ModelCatalog.ForExport(path, null, precision);
            var written = Path.Combine(away, $"ext-{precision}.onnx");
            using (var f = File.Create(written)) Google.Protobuf.MessageExtensions.WriteTo(model, f);
            Assert.True(new FileInfo(written).Length > 8 * 16 * (precision == Precision.Fp16 ? 2 : 4), $"{precision}: {new FileInfo(written).Length} bytes");
            var actual = RunGemm(written, x);
            Assert.Equal(expected.Length, actual.Length);
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(expected[i] - actual[i]) <= (precision == Precision.Fp16 ? 1e-2f : 0f) * (1 + Math.Abs(expected[i])), $"{precision}: y[{i}] is {actual[i]}, fp32 {expected[i]}");
        }

        // a unit at fp16 runs the converted form from the cache, away from the data file
        var resolved = ModelCatalog.Resolve(path, _dir);
        var fp16 = ModelCatalog.PathFor(resolved, Precision.Fp16);
        var half = RunGemm(fp16, x);
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - half[i]) <= 1e-2f * (1 + Math.Abs(expected[i])));

        // the converter itself never writes a model whose weights it did not have
        var raw = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        Assert.Equal("PrecisionUnsupported", Assert.Throws<HeteroBatchException>(() => PrecisionConverter.ToFloat16(raw)).ErrorId);
        // a data file gone: refused with the reason
        File.Delete(Path.Combine(source, "ext.weights"));
        var gone = Assert.Throws<HeteroBatchException>(() => ExternalData.Inline(raw, source, path));
        Assert.Equal("ModelInvalid", gone.ErrorId);
        Assert.Contains("ext.weights", gone.Message);
    }
}
