using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Sessions;
using HeteroBatch.Engine.Units;
using HeteroBatch.Engine.Units.Backends;
using HeteroBatch.Engine.UseCases;
using HeteroBatch.Serving;
using Xunit.Abstractions;
using static HeteroBatch.Engine.Tests.TestModels;

namespace HeteroBatch.Engine.Tests;

/// <summary>
/// Encoded images (BYTES tensors) to remote units that decode: the BYTES wire forms (binary and JSON), the server's
/// encoded-image form of a model (<c>M_encoded</c>) over REST and gRPC, and file jobs whose remote unit is sent image
/// files instead of floats, against the same job decoded here.
/// </summary>
public sealed class EncodedImageTests : IDisposable
{
    private readonly EngineContext _serverSide = new();
    private readonly EngineContext _clientSide = new();
    private readonly List<IDisposable> _owned = new();
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "hb-encoded-" + Guid.NewGuid().ToString("N"));
    private readonly ITestOutputHelper _log;

    public EncodedImageTests(ITestOutputHelper log) => _log = log;

    public void Dispose()
    {
        for (int i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
        _clientSide.Dispose();
        _serverSide.Dispose();
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private InferenceServer Serve(ServerProtocol protocol = ServerProtocol.Rest, bool encoded = true, ModelSource? model = null)
    {
        model ??= Tiny;
        var plan = PlanLayout.Manual(model.Name, model.Sha256, new List<ShareSpec> { new(TwoCpuUnits()[^1], 8, 8, 1) });
        var server = new InferenceServer(_serverSide, plan, model, new ServerSettings { Port = FreePort(), Protocol = protocol, EncodedImages = encoded });
        _owned.Add(server);
        server.Start();
        return server;
    }

    private static IRemoteSession Open(Uri endpoint, string model) => GrpcRemoteModel.IsGrpc(endpoint)
        ? GrpcRemoteModel.Open(endpoint, model, null, TimeSpan.FromSeconds(60))
        : RemoteModel.Open(endpoint, model, null, TimeSpan.FromSeconds(60));

    private static List<ReadOnlyMemory<byte>> Photos(int count, int width = 41, int height = 29) =>
        Enumerable.Range(0, count).Select(i => (ReadOnlyMemory<byte>)FastPreprocessingTests.Photo(width + 5 * i, height + 3 * (i % 3), seed: 100 + i)).ToList();

    // --- the wire forms ---

    [Fact]
    public void BytesElementsRoundTripThroughBinaryAndJson()
    {
        var elements = new List<ReadOnlyMemory<byte>> { Encoding.UTF8.GetBytes("héllo"), Array.Empty<byte>(), new byte[] { 0xFF, 0xD8, 0x00, 0x22, 0x5C } };
        var serialized = InferenceProtocol.SerializeBytes(elements);
        // Triton's binary form: a 4-byte little-endian length, then the bytes, each
        Assert.Equal(new byte[] { 6, 0, 0, 0 }, serialized[..4]);
        Assert.Equal(4 + 6 + 4 + 0 + 4 + 5, serialized.Length);
        var split = InferenceProtocol.SplitBytes("x", serialized, 3);
        Assert.Equal(elements.Select(e => e.ToArray()), split.Select(e => e.ToArray()));

        var tensor = new InferenceProtocol.Tensor("x", new long[] { 3 }, InferenceProtocol.BytesType, serialized);
        var (binary, headerLength) = InferenceProtocol.Encode("inputs", new[] { tensor });
        var fromBinary = InferenceProtocol.Decode(binary, headerLength, "inputs").Tensors.Single();
        Assert.Equal(serialized, fromBinary.Bytes.ToArray());

        // JSON: not all text, so base64 strings and content_type "base64"
        var json = InferenceProtocol.EncodeJsonRequest(new[] { ("x", new long[] { 3 }, InferenceProtocol.BytesType, (ReadOnlyMemory<byte>)serialized) }, "1", new[] { "y" });
        var node = JsonNode.Parse(json.Span)!["inputs"]![0]!;
        Assert.Equal("base64", node["parameters"]!["content_type"]!.GetValue<string>());
        Assert.Equal(Convert.ToBase64String(elements[2].ToArray()), node["data"]![2]!.GetValue<string>());
        Assert.Equal(serialized, InferenceProtocol.Decode(json.ToArray(), null, "inputs").Tensors.Single().Bytes.ToArray());

        // all text: plain strings (as Triton writes and reads BYTES in JSON), no parameters
        var text = InferenceProtocol.SerializeBytes(new List<ReadOnlyMemory<byte>> { Encoding.UTF8.GetBytes("a\"b"), Encoding.UTF8.GetBytes("ü") });
        var textJson = InferenceProtocol.EncodeJsonRequest(new[] { ("t", new long[] { 2, 1 }, InferenceProtocol.BytesType, (ReadOnlyMemory<byte>)text) }, null, Array.Empty<string>());
        var textNode = JsonNode.Parse(textJson.Span)!["inputs"]![0]!;
        Assert.Null(textNode["parameters"]);
        Assert.Equal("a\"b", textNode["data"]![0]!.GetValue<string>());
        Assert.Equal(text, InferenceProtocol.Decode(textJson.ToArray(), null, "inputs").Tensors.Single().Bytes.ToArray());
    }

    [Fact]
    public void ATritonStyleJsonBytesTensorIsRead()
    {
        var body = Encoding.UTF8.GetBytes("""{"inputs":[{"data":["ab","\u00e9"],"name":"s","shape":[2],"datatype":"BYTES"}]}""");
        var t = InferenceProtocol.Decode(body, null, "inputs").Tensors.Single();
        var split = InferenceProtocol.SplitBytes("s", t.Bytes, 2);
        Assert.Equal("ab", Encoding.UTF8.GetString(split[0].Span));
        Assert.Equal("é", Encoding.UTF8.GetString(split[1].Span));
    }

    [Theory]
    [InlineData("""{"inputs":[{"name":"s","shape":[3],"datatype":"BYTES","data":["a","b"]}]}""", "has 2 elements")]
    [InlineData("""{"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","data":[1]}]}""", "holds numbers")]
    [InlineData("""{"inputs":[{"name":"s","shape":[1],"datatype":"FP32","data":["1"]}]}""", "holds a string")]
    [InlineData("""{"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","parameters":{"content_type":"base64"},"data":["%%%"]}]}""", "not base64")]
    public void MalformedJsonBytesAreProtocolInvalid(string body, string says)
    {
        var e = Assert.Throws<HeteroBatchException>(() => InferenceProtocol.Decode(Encoding.UTF8.GetBytes(body), null, "inputs"));
        Assert.Equal("ProtocolInvalid", e.ErrorId);
        Assert.Contains(says, e.Message);
    }

    [Fact]
    public void MalformedBinaryBytesAreProtocolInvalid()
    {
        var serialized = InferenceProtocol.SerializeBytes(new List<ReadOnlyMemory<byte>> { new byte[] { 1, 2, 3 } });
        Assert.Contains("holds more than", Assert.Throws<HeteroBatchException>(() => InferenceProtocol.SplitBytes("x", InferenceProtocol.SerializeBytes(new List<ReadOnlyMemory<byte>> { new byte[1], new byte[1] }), 1)).Message);
        Assert.Contains("holds 1 elements", Assert.Throws<HeteroBatchException>(() => InferenceProtocol.SplitBytes("x", serialized, 2)).Message);
        serialized[0] = 9; // a length past the end
        Assert.Contains("says it holds 9 bytes", Assert.Throws<HeteroBatchException>(() => InferenceProtocol.SplitBytes("x", serialized, 1)).Message);
        Assert.Contains("inside the length", Assert.Throws<HeteroBatchException>(() => InferenceProtocol.SplitBytes("x", new byte[] { 1, 0 }, 1)).Message);
    }

    // --- the server's encoded-image form ---

    [Theory]
    [InlineData(ServerProtocol.Rest)]
    [InlineData(ServerProtocol.Grpc)]
    public void AnEncodedRequestAnswersWhatTheSameImagesDecodedHereDo(ServerProtocol protocol)
    {
        var server = Serve(protocol);
        Assert.Equal("tinynet_encoded", server.EncodedModel);
        var files = Photos(5);
        using var encoded = Open(server.Url, "tinynet_encoded");
        using var floats = Open(server.Url, "tinynet");
        var input = Assert.Single(encoded.Signature.Inputs);
        Assert.Equal(Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.String, input.ElementType);
        Assert.Empty(input.SampleShape); // BYTES [-1]: an image file a sample
        Assert.Equal("input", EncodedImageModel.InputOf(encoded.Signature, floats.Signature)!.Name);

        var decoded = new TensorBatch("input", new long[] { 3, 32, 32 }, files.Count);
        for (int i = 0; i < files.Count; i++) ImageInput.Load(files[i].ToArray(), $"{i}", decoded, i, ImagePreprocessing.ImageNet);
        var viaFloats = floats.AllocateOutputs(files.Count);
        floats.Run(new[] { decoded }, viaFloats, 0, files.Count);
        var viaFiles = encoded.AllocateOutputs(files.Count + 2);
        encoded.RunBytes("input", new long[] { files.Count }, files, viaFiles, 2, default);
        // the same decoder, preprocessing and batch on the server: the same bits
        Assert.Equal(viaFloats[0].AsFloats(), viaFiles[0].AsFloats().Skip(2 * 10).ToArray());
    }

    [Fact]
    public void AnImageTheServerCannotDecodeRefusesTheRequestNamingIt()
    {
        var server = Serve();
        using var encoded = (RemoteModel)Open(server.Url, "tinynet_encoded");
        var files = Photos(3);
        files[1] = files[1][..40]; // cut short
        var e = Assert.Throws<HeteroBatchException>(() => encoded.RunBytes("input", new long[] { 3 }, files, encoded.AllocateOutputs(3), 0, default));
        Assert.Contains("element 1 is not an image this server decodes", e.Message);
        Assert.Contains("400", e.Message);
    }

    [Fact]
    public void WithoutTheEncodedFormTheServerHasNoSuchModel()
    {
        var server = Serve(encoded: false);
        Assert.Null(server.EncodedModel);
        var e = Assert.Throws<HeteroBatchException>(() => Open(server.Url, "tinynet_encoded"));
        Assert.Equal("RemoteModelNotFound", e.ErrorId);
    }

    // --- file jobs ---

    /// <summary>Photo-like JPEGs of a few sizes, and one cut short (img004.jpg), in a folder of their own.</summary>
    private string Folder(int images, int corrupt = -1)
    {
        var folder = Path.Combine(_dir, "in");
        Directory.CreateDirectory(folder);
        var files = Photos(images);
        for (int i = 0; i < images; i++)
            File.WriteAllBytes(Path.Combine(folder, $"img{i:D3}.jpg"), i == corrupt ? files[i][..60].ToArray() : files[i].ToArray());
        return folder;
    }

    private JobSummary Job(ComputeUnit unit, string input, string output, int batch = 6)
    {
        var plan = PlanLayout.Manual("tinynet", Tiny.Sha256, new List<ShareSpec> { new(unit, batch, batch, 1) });
        var inference = new Inference(_clientSide);
        using var job = inference.PrepareJob(plan, new[] { input }, output, resume: false, force: false, new RunSettings { DecodeThreads = 1 }, Tiny, null);
        return inference.RunJob(job, RecordPolicy.Off, onBlock: null);
    }

    private static ComputeUnit RemoteUnit(InferenceServer server) =>
        UnitDiscovery.Discover(new DiscoveryRequest { Endpoints = new[] { server.Url } }).Single();

    [Theory]
    [InlineData(ServerProtocol.Rest)]
    [InlineData(ServerProtocol.Grpc)]
    public void AJobSendingImagesToTheServerEqualsTheJobDecodedHere(ServerProtocol protocol)
    {
        var input = Folder(14, corrupt: 4);
        var server = Serve(protocol);
        var local = Job(TwoCpuUnits()[0], input, Path.Combine(_dir, "local"));
        var remote = Job(RemoteUnit(server), input, Path.Combine(_dir, "remote"));
        foreach (var n in remote.UnitDecoding) _log.WriteLine(n);

        // the block holding the file cut short was refused by the server and sent decoded from here; the others went as files
        Assert.Equal("remote0 decoded 8 images itself and had 5 decoded on the CPU (not JPEG, or refused)", Assert.Single(remote.UnitDecoding));
        Assert.Equal(1, remote.SamplesFailed);
        var rows = File.ReadAllLines(Path.Combine(_dir, "remote", JobOutput.PredictionsFile));
        // its row says why, as the job decoded here says it
        Assert.StartsWith("4,img004.jpg,", rows[1 + 4]);
        var why = rows[1 + 4][rows[1 + 4].IndexOf("img004.jpg is", StringComparison.Ordinal)..];
        Assert.EndsWith(why, File.ReadAllLines(Path.Combine(_dir, "local", JobOutput.PredictionsFile))[1 + 4]);
        // exact mode on both sides, the same decoder and model on one machine: the same bits
        var a = Npy.Read(Path.Combine(_dir, "local", "logits.npy"), "l").AsFloats();
        var b = Npy.Read(Path.Combine(_dir, "remote", "logits.npy"), "l").AsFloats();
        Assert.Equal(a, b);
        Assert.True(float.IsNaN(b[4 * 10]));
    }

    [Fact]
    public void AServerWithoutTheEncodedFormIsSentFloatsAsBefore()
    {
        var input = Folder(7);
        var server = Serve(encoded: false);
        var local = Job(TwoCpuUnits()[0], input, Path.Combine(_dir, "local"));
        var remote = Job(RemoteUnit(server), input, Path.Combine(_dir, "remote"));
        Assert.Empty(remote.UnitDecoding); // no unit decoded: CPU threads here decoded every image, and floats were sent
        Assert.Equal(Npy.Read(Path.Combine(_dir, "local", "logits.npy"), "l").AsFloats(), Npy.Read(Path.Combine(_dir, "remote", "logits.npy"), "l").AsFloats());
    }

    [Fact]
    public void AJobWithOtherPreprocessingSaysWhyTheServerDecodesNothing()
    {
        var input = Folder(3);
        var server = Serve();
        var plan = PlanLayout.Manual("tinynet", Tiny.Sha256, new List<ShareSpec> { new(RemoteUnit(server), 3, 3, 1) });
        var inference = new Inference(_clientSide);
        var settings = new RunSettings { DecodeThreads = 1, Preprocessing = new ImagePreprocessing { Resize = ResizeMode.Stretch } };
        using var job = inference.PrepareJob(plan, new[] { input }, Path.Combine(_dir, "out"), false, false, settings, Tiny, null);
        var summary = inference.RunJob(job, RecordPolicy.Off, onBlock: null);
        Assert.Contains("remote0 decodes nothing ([RemoteDecodeUnavailable]", Assert.Single(summary.UnitDecoding));
        Assert.Equal(0, summary.SamplesFailed);
    }

    [Fact]
    public void AUnitSendsImagesToTheModelItNamesAndSaysWhyWhereThatIsNotTheForm()
    {
        var input = Folder(5);
        var server = Serve();
        var local = Job(TwoCpuUnits()[0], input, Path.Combine(_dir, "local"));
        var unit = UnitDiscovery.Discover(new DiscoveryRequest { Endpoints = new[] { server.Url }, EncodedModel = "tinynet_encoded" }).Single();
        Assert.Equal("tinynet_encoded", unit.EncodedModel);
        Assert.Equal(RemoteUnit(server).Fingerprint, unit.Fingerprint); // not part of the unit's identity
        var named = Job(unit, input, Path.Combine(_dir, "named"));
        Assert.Equal("remote0 decoded 5 images itself and had 0 decoded on the CPU (not JPEG, or refused)", Assert.Single(named.UnitDecoding));

        // a name the server lacks, and a model that is not the form (the float model itself): floats, and the job says why
        unit.EncodedModel = "ensemble_that_is_not_there";
        Assert.Contains("remote0 decodes nothing ([RemoteModelNotFound]", Assert.Single(Job(unit, input, Path.Combine(_dir, "missing")).UnitDecoding));
        unit.EncodedModel = "tinynet";
        var notTheForm = Job(unit, input, Path.Combine(_dir, "floats"));
        Assert.Contains("[RemoteDecodeUnavailable]", Assert.Single(notTheForm.UnitDecoding));
        Assert.Contains("one BYTES input", notTheForm.UnitDecoding[0]);
        foreach (var folder in new[] { "named", "missing", "floats" })
            Assert.Equal(Npy.Read(Path.Combine(_dir, "local", "logits.npy"), "l").AsFloats(), Npy.Read(Path.Combine(_dir, folder, "logits.npy"), "l").AsFloats());
    }

    // --- what goes on the wire ---

    [Fact]
    public void BytesSentPerImageAsFilesAndAsFloats()
    {
        var model = ModelCatalog.Resolve("tinynet-224", Cache);
        var rest = Serve(model: model);
        var grpc = Serve(ServerProtocol.Grpc, model: model);
        var json = new ForeignServer(rest.Url, FreePort()); // lists no binary extension: JSON tensors
        _owned.Add(json);
        const int n = 8;
        var files = Photos(n, 500, 375);
        long fileBytes = files.Sum(f => (long)f.Length);
        var floats = new TensorBatch("input", new long[] { 3, 224, 224 }, n);
        for (int i = 0; i < n; i++) ImageInput.Load(files[i].ToArray(), $"{i}", floats, i, ImagePreprocessing.ImageNet);
        _log.WriteLine($"{n} JPEGs of 500×375: {fileBytes} bytes ({fileBytes / n} a file); float32 3×224×224: {3 * 224 * 224 * 4} bytes an image");
        foreach (var (what, url) in new[] { ("REST binary", rest.Url), ("REST JSON", json.Url), ("gRPC", grpc.Url) })
        {
            using var asFiles = Open(url, "tinynet-224_encoded");
            using var asFloats = Open(url, "tinynet-224");
            asFiles.RunBytes("input", new long[] { n }, files, asFiles.AllocateOutputs(n), 0, default);
            asFloats.Run(new[] { floats }, asFloats.AllocateOutputs(n), 0, n);
            _log.WriteLine($"{what}: a request of {n}: files {asFiles.BytesSent} bytes ({asFiles.BytesSent / n} an image), floats {asFloats.BytesSent} bytes ({asFloats.BytesSent / n} an image), {(double)asFloats.BytesSent / asFiles.BytesSent:F1}×");
            // the files and each one's 4-byte length (base64 in JSON: 4 characters for 3 bytes), and a header of under 1 KiB
            long payload = what == "REST JSON" ? files.Sum(f => (f.Length + 2) / 3 * 4L + 3) : fileBytes + 4 * n;
            Assert.InRange(asFiles.BytesSent - payload, 0, 1024);
            Assert.True(asFiles.BytesSent < asFloats.BytesSent);
        }
    }
}
