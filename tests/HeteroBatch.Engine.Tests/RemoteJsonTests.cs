using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Sessions;
using HeteroBatch.Engine.Units;
using HeteroBatch.Engine.Units.Backends;
using HeteroBatch.Serving;
using static HeteroBatch.Engine.Tests.TestModels;

namespace HeteroBatch.Engine.Tests;

/// <summary>
/// Servers that are not HeteroBatch's: one that offers no binary tensor data (used through JSON
/// tensors, with the outputs a binary one gives), one that cannot run the model, one whose model
/// metadata declares no tensors; and the protocol's JSON numbers read back bit for bit.
/// </summary>
public sealed class RemoteJsonTests : IDisposable
{
    private readonly EngineContext _serverSide = new();
    private readonly EngineContext _clientSide = new();
    private readonly List<IDisposable> _owned = new();

    public void Dispose()
    {
        for (int i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
        _clientSide.Dispose();
        _serverSide.Dispose();
    }

    private InferenceServer Serve()
    {
        var server = new InferenceServer(_serverSide, Plan((TestModels.TwoCpuUnits()[^1], 8, 8)), TestModels.Tiny, new ServerSettings { Port = FreePort() });
        _owned.Add(server);
        server.Start();
        return server;
    }

    private ForeignServer Foreign(InferenceServer behind, bool declaresNoTensors = false, bool failsEveryInfer = false, string[]? extensions = null)
    {
        var f = new ForeignServer(behind.Url, FreePort()) { DeclaresNoTensors = declaresNoTensors, FailsEveryInfer = failsEveryInfer, Extensions = extensions ?? Array.Empty<string>() };
        _owned.Add(f);
        return f;
    }

    private float[] LocalOutputs(TensorBatch input) =>
        PartitionedRunner.Run(_clientSide, Plan((TestModels.TwoCpuUnits()[0], input.Count, input.Count)), TestModels.Tiny, InputSet.Of(input), new RunSettings()).Outputs[0].AsFloats();

    [Fact]
    public void AServerWithoutTheBinaryExtensionIsSentJsonTensorsAndAnswersWhatABinaryOneDoes()
    {
        var real = Serve();
        var foreign = Foreign(real);
        var input = SyntheticInput.Create("input", new long[] { 3, 32, 32 }, 7, 17);

        using var overJson = RemoteModel.Open(foreign.Url, "tinynet", null, TimeSpan.FromSeconds(60));
        using var overBinary = RemoteModel.Open(real.Url, "tinynet", null, TimeSpan.FromSeconds(60));
        Assert.False(overJson.Binary);
        Assert.True(overBinary.Binary);
        var (a, b) = (new TensorBatch("logits", new long[] { 10 }, 7), new TensorBatch("logits", new long[] { 10 }, 7));
        overJson.Run(new[] { input }, new[] { a }, 0, 7);
        overBinary.Run(new[] { input }, new[] { b }, 0, 7);
        Assert.Equal(b.AsFloats(), a.AsFloats());
        Assert.Equal(LocalOutputs(input), a.AsFloats());
        // rows from the middle of a batch too
        var part = new TensorBatch("logits", new long[] { 10 }, 7);
        overJson.Run(new[] { input }, new[] { part }, 2, 3);
        Assert.Equal(b.AsFloats().AsSpan(20, 30).ToArray(), part.AsFloats().AsSpan(20, 30).ToArray());
        Assert.Equal((2, 0), foreign.Infers);

        // as a unit found by its address, beside a local one
        var unit = UnitDiscovery.Discover(new DiscoveryRequest { Endpoints = new[] { foreign.Url }, Model = "tinynet" }).Single();
        Assert.True(unit.Available, unit.Reason);
        var batch = SyntheticInput.Create("input", new long[] { 3, 32, 32 }, 24, 4);
        var result = PartitionedRunner.Run(_clientSide, Plan((TestModels.TwoCpuUnits()[0], 12, 4), (unit, 12, 4)), TestModels.Tiny, InputSet.Of(batch), new RunSettings());
        Assert.False(result.Units[1].Failed, result.Units[1].Error);
        Assert.Equal(LocalOutputs(batch), result.Outputs[0].AsFloats());
        Assert.Equal(0, foreign.Infers.Binary);
    }

    [Fact]
    public void AServerThatListsNoExtensionsAtAllIsSentBinaryTensors()
    {
        // Triton and older HeteroBatch servers list theirs; a server that lists none says nothing against binary
        var real = Serve();
        var silent = Foreign(real);
        var quiet = new ForeignServer(real.Url, FreePort()) { Extensions = null };
        _owned.Add(quiet);
        using var model = RemoteModel.Open(quiet.Url, "tinynet", null, TimeSpan.FromSeconds(60));
        Assert.True(model.Binary);
        using var json = RemoteModel.Open(silent.Url, "tinynet", null, TimeSpan.FromSeconds(60));
        Assert.False(json.Binary);
        var listsBinary = Foreign(real, extensions: new[] { "model_configuration", InferenceProtocol.BinaryExtension });
        using var binary = RemoteModel.Open(listsBinary.Url, "tinynet", null, TimeSpan.FromSeconds(60));
        Assert.True(binary.Binary);
    }

    [Fact]
    public void AServerThatAnswersTheModelProbeWithAnErrorIsNotAvailable()
    {
        var real = Serve();
        var broken = Foreign(real, failsEveryInfer: true);
        // without a model to ask about, a ready server is a unit
        Assert.True(UnitDiscovery.Discover(new DiscoveryRequest { Endpoints = new[] { broken.Url } }).Single().Available);
        var unit = UnitDiscovery.Discover(new DiscoveryRequest { Endpoints = new[] { broken.Url }, Model = "tinynet", IncludeUnavailable = true }).Single();
        Assert.False(unit.Available);
        Assert.Equal("RemoteUnitFailed", unit.ReasonId);
        Assert.Contains("500", unit.Reason);
        Assert.Empty(UnitDiscovery.Discover(new DiscoveryRequest { Endpoints = new[] { broken.Url }, Model = "tinynet" }));
        var missing = UnitDiscovery.Discover(new DiscoveryRequest { Endpoints = new[] { real.Url }, Model = "resnet-50", IncludeUnavailable = true }).Single();
        Assert.Equal((false, "RemoteModelNotFound"), (missing.Available, missing.ReasonId));
        var fine = UnitDiscovery.Discover(new DiscoveryRequest { Endpoints = new[] { real.Url }, Model = "tinynet" }).Single();
        Assert.True(fine.Available, fine.Reason);
        Assert.Null(fine.ReasonId);
    }

    [Fact]
    public void AServerWhoseModelDeclaresNoTensorsIsRefusedAtDiscoveryWithItsOwnErrorId()
    {
        var real = Serve();
        var undeclared = Foreign(real, declaresNoTensors: true);
        var unit = UnitDiscovery.Discover(new DiscoveryRequest { Endpoints = new[] { undeclared.Url }, Model = "tinynet", IncludeUnavailable = true }).Single();
        Assert.False(unit.Available);
        Assert.Equal("RemoteTensorsUndeclared", unit.ReasonId);
        Assert.Contains("declares no inputs and no outputs", unit.Reason);
        var e = Assert.Throws<HeteroBatchException>(() => RemoteModel.Open(undeclared.Url, "tinynet", null, TimeSpan.FromSeconds(30)));
        Assert.Equal("RemoteTensorsUndeclared", e.ErrorId);
        Assert.Contains("model-settings.json", e.Message);
        Assert.Equal(0, real.Requests);
        var outputsOnly = Assert.Throws<HeteroBatchException>(() => RemoteModel.CheckDeclared(real.Url, "tinynet", new[] { new TensorSpec("input", Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, new long[] { 3 }) }, Array.Empty<TensorSpec>()));
        Assert.Equal("RemoteTensorsUndeclared", outputsOnly.ErrorId);
        Assert.Contains("declares no outputs", outputsOnly.Message);
    }

    [Fact]
    public void TheServerAnswersTheModelConfigurationAndStatisticsAndNamesTheExtensionsItLacks()
    {
        var s = Serve();
        using var http = new HttpClient();
        System.Text.Json.Nodes.JsonNode Get(string path, HttpStatusCode expected = HttpStatusCode.OK)
        {
            using var response = http.GetAsync(new Uri(s.Url, path)).Result;
            Assert.Equal(expected, response.StatusCode);
            Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
            return System.Text.Json.Nodes.JsonNode.Parse(response.Content.ReadAsStringAsync().Result)!;
        }
        var extensions = Get("v2")["extensions"]!.AsArray().Select(e => e!.GetValue<string>()).ToList();
        Assert.Equal(new[] { "binary_tensor_data", "model_configuration", "statistics" }, extensions);

        var config = Get("v2/models/tinynet/config");
        Assert.Equal("tinynet", config["name"]!.GetValue<string>());
        // 512 MiB (the default largest request) of 3x32x32 FP32 samples, 12,288 bytes each
        Assert.Equal((512L << 20) / 12288, config["max_batch_size"]!.GetValue<long>());
        var input = config["input"]![0]!;
        Assert.Equal(("input", "TYPE_FP32"), (input["name"]!.GetValue<string>(), input["data_type"]!.GetValue<string>()));
        Assert.Equal(new long[] { 3, 32, 32 }, input["dims"]!.AsArray().Select(d => d!.GetValue<long>()));
        Assert.Equal(new long[] { 10 }, config["output"]![0]!["dims"]!.AsArray().Select(d => d!.GetValue<long>()));
        Assert.Equal("tinynet", Get("v2/models/tinynet/versions/1/config")["name"]!.GetValue<string>());

        var before = Get("v2/models/tinynet/stats")["model_stats"]![0]!;
        Assert.Equal((0L, 0L, 0L), (before["inference_count"]!.GetValue<long>(), before["execution_count"]!.GetValue<long>(), before["last_inference"]!.GetValue<long>()));

        // one binary request of 5 samples, one JSON request of 3, one malformed request
        using (var binary = RemoteModel.Open(s.Url, "tinynet", null, TimeSpan.FromSeconds(60)))
            binary.Run(new[] { SyntheticInput.Create("input", new long[] { 3, 32, 32 }, 5, 1) }, new[] { new TensorBatch("logits", new long[] { 10 }, 5) }, 0, 5);
        var three = SyntheticInput.Create("input", new long[] { 3, 32, 32 }, 3, 2);
        var json = InferenceProtocol.EncodeJsonRequest(new List<(string, long[], string, ReadOnlyMemory<byte>)> { ("input", new long[] { 3, 3, 32, 32 }, "FP32", three.Bytes(0, 3).ToArray()) }, "j", new[] { "logits" });
        using (var answer = http.PostAsync(new Uri(s.Url, "v2/models/tinynet/infer"), new ReadOnlyMemoryContent(json)).Result)
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        using (var bad = http.PostAsync(new Uri(s.Url, "v2/models/tinynet/infer"), new StringContent("{\"inputs\":[{\"name\":\"input\"}]}")).Result)
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);

        foreach (var path in new[] { "v2/models/tinynet/stats", "v2/models/stats" })
        {
            var stats = Get(path)["model_stats"]![0]!;
            Assert.Equal(("tinynet", "1"), (stats["name"]!.GetValue<string>(), stats["version"]!.GetValue<string>()));
            Assert.Equal((8L, 2L), (stats["inference_count"]!.GetValue<long>(), stats["execution_count"]!.GetValue<long>()));
            Assert.True(stats["last_inference"]!.GetValue<long>() > 0);
            var success = stats["inference_stats"]!["success"]!;
            var compute = stats["inference_stats"]!["compute_infer"]!;
            Assert.Equal((2L, 2L), (success["count"]!.GetValue<long>(), compute["count"]!.GetValue<long>()));
            Assert.InRange(compute["ns"]!.GetValue<long>(), 1, success["ns"]!.GetValue<long>());
            Assert.Equal(1L, stats["inference_stats"]!["fail"]!["count"]!.GetValue<long>());
        }

        // the extensions this server lacks are named, in JSON
        foreach (var (path, extension) in new[] { ("v2/repository/index", "model_repository"), ("v2/systemsharedmemory/status", "system_shared_memory"), ("v2/models/tinynet/trace/setting", "trace"), ("v2/logging", "logging") })
            Assert.Contains($"does not offer the '{extension}' extension", Get(path, HttpStatusCode.NotFound)["error"]!.GetValue<string>());
        using (var index = http.PostAsync(new Uri(s.Url, "v2/repository/index"), new StringContent("{}")).Result)
        {
            Assert.Equal(HttpStatusCode.NotFound, index.StatusCode);
            Assert.Contains("model_repository", index.Content.ReadAsStringAsync().Result);
        }
    }

    [Fact]
    public void JsonTensorsReadBackBitForBit()
    {
        float[] floats = { 0f, -0f, 1f, -1.5f, float.Epsilon, -float.Epsilon, float.MaxValue, float.MinValue, 1.17549435E-38f, 3.4028235E+38f, 0.1f, 1e-7f, 123456.789f, (float)Math.PI };
        double[] doubles = { 0, -0.0, double.Epsilon, double.MaxValue, double.MinValue, 0.1, Math.E, 1e-300 };
        long[] longs = { long.MinValue, long.MaxValue, 0, -1 };
        int[] ints = { int.MinValue, int.MaxValue, 0, 7 };
        byte[] bytes = { 0, 1, 127, 255 };
        var rng = new Random(5);
        var many = Enumerable.Range(0, 4096).Select(_ => BitConverter.Int32BitsToSingle(rng.Next()) is var f && float.IsFinite(f) ? f : 0.5f).ToArray();
        var tensors = new List<(string, long[], string, ReadOnlyMemory<byte>)>
        {
            ("f", new long[] { floats.Length }, "FP32", Bytes(floats)),
            ("d", new long[] { 2, doubles.Length / 2 }, "FP64", Bytes(doubles)),
            ("l", new long[] { longs.Length }, "INT64", Bytes(longs)),
            ("i", new long[] { ints.Length }, "INT32", Bytes(ints)),
            ("b", new long[] { bytes.Length }, "UINT8", bytes),
            ("random", new long[] { 4, 1024 }, "FP32", Bytes(many)),
        };
        var body = InferenceProtocol.EncodeJsonRequest(tensors, "9", new[] { "out" }).ToArray();
        var (header, read) = InferenceProtocol.Decode(body, null, "inputs");
        Assert.Equal("9", header["id"]!.GetValue<string>());
        Assert.Equal("out", header["outputs"]![0]!["name"]!.GetValue<string>());
        Assert.Null(header["outputs"]![0]!["parameters"]);
        Assert.Equal(tensors.Count, read.Count);
        for (int i = 0; i < tensors.Count; i++)
        {
            Assert.Equal((tensors[i].Item1, tensors[i].Item3), (read[i].Name, read[i].DataType));
            Assert.Equal(tensors[i].Item2, read[i].Shape);
            Assert.Equal(tensors[i].Item4.ToArray(), read[i].Bytes.ToArray());
        }

        var nan = Assert.Throws<HeteroBatchException>(() => InferenceProtocol.EncodeJsonRequest(new List<(string, long[], string, ReadOnlyMemory<byte>)> { ("x", new long[] { 2 }, "FP32", Bytes(new[] { 1f, float.NaN })) }, null, Array.Empty<string>()));
        Assert.Equal("ProtocolInvalid", nan.ErrorId);
        Assert.Contains("'x' holds NaN", nan.Message);
    }

    [Theory]
    [InlineData("FP32", "[[1, -2.5e-3],\n [3E2 ,4]]", "2,2", "1,-0.0025,300,4")]
    [InlineData("INT64", "[ -9223372036854775808 , 9223372036854775807 ]", "2", "-9223372036854775808,9223372036854775807")]
    [InlineData("UINT8", "[0,255]", "2", "0,255")]
    [InlineData("UINT8", "[0,256]", "2", null)]
    [InlineData("INT32", "[1,1.5]", "2", null)]
    [InlineData("FP32", "[1,1e39]", "2", null)]
    [InlineData("FP64", "[1,-0.0]", "2", "1,-0")]
    public void JsonDataIsReadFromNestedArraysAndWhitespaceAndRefusedWhereAValueDoesNotFitItsType(string type, string data, string shape, string? expected)
    {
        var body = System.Text.Encoding.UTF8.GetBytes($"{{\"inputs\":[{{\"name\":\"x\",\"datatype\":\"{type}\",\"shape\":[{shape}],\"data\":{data}}}]}}");
        if (expected == null)
        {
            var e = Assert.Throws<HeteroBatchException>(() => InferenceProtocol.Decode(body, null, "inputs"));
            Assert.Equal("ProtocolInvalid", e.ErrorId);
            Assert.Contains($"is not a finite {type} value", e.Message);
            return;
        }
        var t = InferenceProtocol.Decode(body, null, "inputs").Tensors.Single();
        var values = expected.Split(',');
        string[] read = type switch
        {
            "FP32" => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(t.Bytes.Span).ToArray().Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray(),
            "FP64" => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(t.Bytes.Span).ToArray().Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray(),
            "INT64" => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(t.Bytes.Span).ToArray().Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray(),
            _ => t.Bytes.ToArray().Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray(),
        };
        Assert.Equal(values, read);
    }

    [Fact]
    public void JsonDataReadsTheSameWhateverTheOrderOfItsKeysAndACountThatMissesTheShapeIsRefused()
    {
        // shape and datatype before the data: read in the header's pass; after it: counted first, then read
        var first = System.Text.Encoding.UTF8.GetBytes("""{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1.5,-2,3e-3,4]}]}""");
        var last = System.Text.Encoding.UTF8.GetBytes("""{"inputs":[{"data":[[1.5,-2],[3e-3,4]],"name":"x","datatype":"FP32","shape":[2,2]}]}""");
        long reservedFirst = 0, reservedLast = 0;
        var a = InferenceProtocol.Decode(first, null, "inputs", n => reservedFirst += n).Tensors.Single();
        var b = InferenceProtocol.Decode(last, null, "inputs", n => reservedLast += n).Tensors.Single();
        Assert.Equal(new[] { 1.5f, -2f, 3e-3f, 4f }, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(a.Bytes.Span).ToArray());
        Assert.Equal(a.Bytes.ToArray(), b.Bytes.ToArray());
        Assert.Equal((16L, 16L), (reservedFirst, reservedLast));

        foreach (var body in new[]
        {
            """{"inputs":[{"name":"x","shape":[5],"datatype":"FP32","data":[1,2,3]}]}""",
            """{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1,2,3]}]}""",
            """{"inputs":[{"name":"x","datatype":"FP32","data":[1,2,3],"shape":[2]}]}""",
        })
        {
            var e = Assert.Throws<HeteroBatchException>(() => InferenceProtocol.Decode(System.Text.Encoding.UTF8.GetBytes(body), null, "inputs"));
            Assert.Contains("'x' has 3 values; its shape needs", e.Message);
        }
        // a shape far larger than the body could hold is never allocated for: the values are counted, then refused
        long reserved = 0;
        var huge = Assert.Throws<HeteroBatchException>(() => InferenceProtocol.Decode(System.Text.Encoding.UTF8.GetBytes("""{"inputs":[{"name":"x","shape":[100000000],"datatype":"FP64","data":[1]}]}"""), null, "inputs", n => reserved += n));
        Assert.Contains("'x' has 1 values; its shape needs 100000000", huge.Message);
        Assert.Equal(0, reserved);
    }

    private static byte[] Bytes<T>(T[] values) where T : struct => System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
}
