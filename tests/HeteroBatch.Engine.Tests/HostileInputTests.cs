using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Sessions;
using HeteroBatch.Engine.Sessions.Grpc;
using HeteroBatch.Engine.Units;
using HeteroBatch.Engine.Units.Backends;
using HeteroBatch.Serving;
using static HeteroBatch.Engine.Tests.TestModels;

namespace HeteroBatch.Engine.Tests;

/// <summary>
/// Hostile input at the server's door (raw HTTP/1.1 on sockets the test controls, raw gRPC) and
/// from remote answers (a fake server on a socket that answers what the test says): every bad
/// request is the protocol's JSON error with a status, nothing allocated for what is not there.
/// A deadline here only bounds a hang; no test measures the clock. Run alone (allocations are counted process-wide).
/// </summary>
[Collection(nameof(HostileInputTests))]
public sealed class HostileInputTests : IDisposable
{
    private readonly EngineContext _serverSide = new();
    private readonly EngineContext _clientSide = new();
    private readonly HttpClient _http = new();
    private readonly List<IDisposable> _owned = new();
    private static readonly TimeSpan Hang = TimeSpan.FromSeconds(90);

    public void Dispose()
    {
        _owned.AsEnumerable().Reverse().ToList().ForEach(d => d.Dispose());
        _http.Dispose();
        _clientSide.Dispose();
        _serverSide.Dispose();
    }

    private InferenceServer Serve(string? token = null, ServerProtocol protocol = ServerProtocol.Rest, long maxRequestBytes = 512L << 20, int subBatch = 8, long heldBytes = ServerSettings.HeldRequestBytes)
    {
        var server = new InferenceServer(_serverSide, Plan((TestModels.TwoCpuUnits()[^1], 8, subBatch)), TestModels.Tiny,
            new ServerSettings { Port = FreePort(), Token = token, Protocol = protocol, MaxRequestBytes = maxRequestBytes, HeldBytes = heldBytes });
        _owned.Add(server);
        server.Start();
        return server;
    }

    private float[] LocalOutputs(TensorBatch input) =>
        PartitionedRunner.Run(_clientSide, Plan((TestModels.TwoCpuUnits()[0], input.Count, input.Count)), TestModels.Tiny, InputSet.Of(input), new RunSettings()).Outputs[0].AsFloats();

    // ---- raw HTTP/1.1 ----

    private static Socket Connect(Uri url)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = (int)Hang.TotalMilliseconds };
        socket.Connect(IPAddress.Loopback, url.Port);
        return socket;
    }

    /// <summary>A whole HTTP/1.1 answer read from the socket: status, headers (lower-case names), body (by Content-Length, or to the close; one char a byte).</summary>
    private static (int Status, Dictionary<string, string> Headers, string Body) ReadAnswer(Socket socket)
    {
        var received = new List<byte>();
        var buffer = new byte[65536];
        int headerEnd = -1;
        while (headerEnd < 0)
        {
            int n = socket.Receive(buffer);
            if (n == 0) throw new IOException("the server closed the connection before answering");
            received.AddRange(buffer.AsSpan(0, n).ToArray());
            headerEnd = IndexOf(received, "\r\n\r\n"u8.ToArray());
        }
        var head = Encoding.ASCII.GetString(received.GetRange(0, headerEnd).ToArray()).Split("\r\n");
        var headers = head.Skip(1).Select(l => l.Split(':', 2)).ToDictionary(p => p[0].Trim().ToLowerInvariant(), p => p[1].Trim());
        int status = int.Parse(head[0].Split(' ')[1]);
        var body = received.Skip(headerEnd + 4).ToList();
        long length = headers.TryGetValue("content-length", out var cl) ? long.Parse(cl) : long.MaxValue;
        while (body.Count < length)
        {
            int n;
            try { n = socket.Receive(buffer); } catch (SocketException) { break; }
            if (n == 0) break;
            body.AddRange(buffer.AsSpan(0, n).ToArray());
        }
        return (status, headers, Encoding.Latin1.GetString(body.ToArray())); // byte for byte (binary answers too); the JSON here is ASCII
    }

    private static int IndexOf(List<byte> data, byte[] what)
    {
        for (int i = 0; i + what.Length <= data.Count; i++)
            if (data.GetRange(i, what.Length).SequenceEqual(what)) return i;
        return -1;
    }

    private static (int Status, Dictionary<string, string> Headers, string Body) Raw(Uri url, string head, byte[]? body = null)
    {
        using var socket = Connect(url);
        socket.Send(Encoding.ASCII.GetBytes(head));
        if (body != null) socket.Send(body);
        return ReadAnswer(socket);
    }

    private static void AssertJsonError(int expectedStatus, (int Status, Dictionary<string, string> Headers, string Body) answer, string? says = null)
    {
        Assert.Equal(expectedStatus, answer.Status);
        Assert.StartsWith("application/json", answer.Headers["content-type"]);
        var error = JsonNode.Parse(answer.Body)!["error"]!.GetValue<string>();
        Assert.DoesNotContain("Exception", error);
        if (says != null) Assert.Contains(says, error);
    }

    private static byte[] JsonInfer(string shape, string data) =>
        Encoding.UTF8.GetBytes($$"""{"inputs":[{"name":"input","datatype":"FP32","shape":[{{shape}}],"data":[{{data}}]}]}""");

    private static string PostHead(Uri url, long length, string? token = null, string path = "/v2/models/tinynet/infer", string extra = "") =>
        $"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{url.Port}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n{(token != null ? $"Authorization: Bearer {token}\r\n" : "")}{extra}\r\n";

    [Fact]
    public void RequestsWhoseBodiesHaveNotArrivedHoldNoPlace_HealthAndInferStillAnswer()
    {
        var s = Serve(token: "t0k");
        // one more authenticated infer request than the server handles at once, each declaring 1000 bytes and sending 1
        var stalled = Enumerable.Range(0, s.HandledAtOnce + 1).Select(_ =>
        {
            var socket = Connect(s.Url);
            socket.Send(Encoding.ASCII.GetBytes(PostHead(s.Url, 1000, "t0k")));
            socket.Send("{"u8.ToArray());
            return socket;
        }).ToList();
        try
        {
            Assert.Equal(200, Raw(s.Url, $"GET /v2/health/ready HTTP/1.1\r\nHost: 127.0.0.1:{s.Url.Port}\r\n\r\n").Status);
            var input = SyntheticInput.Create("input", new long[] { 3, 32, 32 }, 2, 4);
            using var client = RemoteModel.Open(s.Url, "tinynet", "t0k", Hang);
            var outputs = new[] { new TensorBatch("logits", new long[] { 10 }, 2) };
            client.Run(new[] { input }, outputs, 0, 2);
            Assert.Equal(LocalOutputs(input), outputs[0].AsFloats());
            Assert.Equal(1, s.Requests);
        }
        finally { stalled.ForEach(x => x.Dispose()); }
    }

    [Fact]
    public void ABodyShortOfItsContentLengthThenAHalfCloseIs400NotAnAnswer()
    {
        var s = Serve();
        var body = JsonInfer("1,3,32,32", string.Join(",", Enumerable.Repeat("0.5", 3072)));
        using var socket = Connect(s.Url);
        socket.Send(Encoding.ASCII.GetBytes(PostHead(s.Url, body.Length + 1000)));
        socket.Send(body);
        socket.Shutdown(SocketShutdown.Send);
        int status;
        string text;
        try { (status, _, text) = ReadAnswer(socket); }
        catch (Exception e) when (e is IOException or SocketException) { (status, text) = (0, ""); } // cut: no answer is also not a 200
        Assert.NotEqual(200, status);
        if (status != 0) Assert.Equal(400, status);
        Assert.Equal(0, s.Requests);
    }

    [Fact]
    public void AChunkedBodyOverTheLimitIs413LikeADeclaredOne()
    {
        var s = Serve(maxRequestBytes: 64 << 10);
        AssertJsonError(413, Raw(s.Url, PostHead(s.Url, 100_000)), "65536");
        using var socket = Connect(s.Url);
        socket.Send(Encoding.ASCII.GetBytes($"POST /v2/models/tinynet/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"));
        var chunk = Encoding.ASCII.GetBytes($"4000\r\n{new string(' ', 0x4000)}\r\n");
        try { for (int i = 0; i < 8; i++) socket.Send(chunk); } // 128 KiB; the server may answer and close before the end
        catch (SocketException) { }
        AssertJsonError(413, ReadAnswer(socket));
    }

    [Theory]
    [InlineData("localhost")]
    [InlineData("inference.example")]
    public void AnyHostHeaderIsServedAndEveryErrorIsTheProtocolsJson(string host)
    {
        var s = Serve();
        var ready = Raw(s.Url, $"GET /v2/health/ready HTTP/1.1\r\nHost: {host}:{s.Url.Port}\r\n\r\n");
        Assert.Equal(200, ready.Status);
        var meta = Raw(s.Url, $"GET /v2/models/tinynet HTTP/1.1\r\nHost: {host}\r\n\r\n");
        Assert.Equal("tinynet", JsonNode.Parse(meta.Body)!["name"]!.GetValue<string>());
        AssertJsonError(404, Raw(s.Url, $"POST /v2/repository/index HTTP/1.1\r\nHost: {host}\r\n\r\n"));
        AssertJsonError(404, Raw(s.Url, $"GET /nothing/here HTTP/1.1\r\nHost: {host}\r\n\r\n"));
    }

    [Theory]
    [InlineData("9223372036854775807,3,32,32", "0", "larger than one array")]
    [InlineData("4611686018427387904,4,32,32", "0", "larger than one array")] // the product overflows int64
    [InlineData("1,3,32,32", "\"a\"", "string")]
    [InlineData("1,3,32,32", "{\"x\":1}", "object")]
    [InlineData("1,3,32,32", "true", "boolean")]
    [InlineData("1,1,1,1", "1e40", "not a finite FP32")]
    public void MalformedJsonTensorsAre400WithTheReasonAndNoExceptionText(string shape, string data, string says)
    {
        var s = Serve();
        var body = JsonInfer(shape, data);
        AssertJsonError(400, Raw(s.Url, PostHead(s.Url, body.Length), body), says);
        Assert.Equal(0, s.Requests);
    }

    [Fact]
    public void JsonTensorsAreReadWithoutADocument_TheServerAllocatesLittleMoreThanTheBody()
    {
        var s = Serve(subBatch: 64);
        var input = SyntheticInput.Create("input", new long[] { 3, 32, 32 }, 256, 5);
        var body = JsonInfer("256,3,32,32", string.Join(",", input.AsFloats().Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture))));
        var answer = Raw(s.Url, PostHead(s.Url, body.Length), body);
        Assert.Equal(200, answer.Status);
        Assert.Equal(LocalOutputs(input), JsonNode.Parse(answer.Body)!["outputs"]![0]!["data"]!.AsArray().Select(v => v!.GetValue<float>()));
        // what reading the body costs, on this thread: its floats (about a third of the text) and little else;
        // a document of the numbers (the server's reading before) took several times the body
        InferenceProtocol.Decode(body, null, "inputs"); // the JIT's first time
        long before = GC.GetAllocatedBytesForCurrentThread();
        var (_, tensors) = InferenceProtocol.Decode(body, null, "inputs");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(256 * 3072 * 4, tensors[0].Bytes.Length);
        Assert.True(allocated < 256 * 3072 * 4 + (64 << 10), $"{allocated} bytes allocated to read a body of {body.Length}");
    }

    [Fact]
    public void WhatRequestsHeldAtOnceTakeIsCapped_IncludingWhatParsingTakes()
    {
        // 200 KiB for all requests held: a JSON body of 148 KB fits, and its floats (49 KB more), but not the run's copy of them
        var s = Serve(heldBytes: 200 << 10);
        var body = JsonInfer("4,3,32,32", string.Join(",", Enumerable.Repeat("0.123456789", 4 * 3072)));
        Assert.InRange(body.Length, 140_000, 160_000);
        AssertJsonError(503, Raw(s.Url, PostHead(s.Url, body.Length), body), "Try again later");
        Assert.Equal(0, s.Budget.Taken);
        // a request that fits is answered, and gives its share back
        var small = JsonInfer("1,3,32,32", string.Join(",", Enumerable.Repeat("0.5", 3072)));
        Assert.Equal(200, Raw(s.Url, PostHead(s.Url, small.Length), small).Status);
        Assert.Equal(0, s.Budget.Taken);
        Assert.InRange(s.Budget.PeakTaken, small.Length, 200 << 10);
    }

    [Fact]
    public void ADeclaredShapeWithLittleDataIsRefusedBeforeAnythingIsAllocatedForIt()
    {
        var s = Serve();
        // binary: [100000,3,32,32] is 1.2 GB of floats; 12 bytes come
        var header = Encoding.UTF8.GetBytes("""{"inputs":[{"name":"input","datatype":"FP32","shape":[100000,3,32,32],"parameters":{"binary_data_size":12}}]}""");
        long before = GC.GetTotalAllocatedBytes(true);
        var answer = Raw(s.Url, PostHead(s.Url, header.Length + 12, extra: $"{InferenceProtocol.HeaderLengthHeader}: {header.Length}\r\n"), header.Concat(new byte[12]).ToArray());
        AssertJsonError(400, answer, "binary_data_size 12");
        // gRPC: the same shape with 12 raw bytes, and shapes that overflow or are negative
        var g = Serve(protocol: ServerProtocol.Grpc);
        using var channel = GrpcRemoteModel.Channel(g.Url);
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        foreach (var shape in new[] { new long[] { 100000, 3, 32, 32 }, new long[] { 2147483647, 3, 32, 32 }, new long[] { -5, 3, 32, 32 } })
        {
            var request = new ModelInferRequest { ModelName = "tinynet" };
            var tensor = new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32" };
            tensor.Shape.AddRange(shape);
            request.Inputs.Add(tensor);
            request.RawInputContents.Add(ByteString.CopyFrom(new byte[12]));
            var e = Assert.Throws<RpcException>(() => client.ModelInfer(request, deadline: DateTime.UtcNow + Hang));
            Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
            Assert.DoesNotContain("Exception", e.Status.Detail);
        }
        long allocated = GC.GetTotalAllocatedBytes(true) - before;
        Assert.True(allocated < 200L << 20, $"{allocated} bytes allocated for requests of 12 bytes of data");
        Assert.Equal((0, 0), (s.Requests, g.Requests));
    }

    [Fact]
    public void TheTokenMustMatchWhole_APrefixALongerOneOrAnotherSchemeIsRefused()
    {
        // the compare is of hashes in constant time; what it admits is exactly the one header value
        var s = Serve(token: "s3cret");
        Assert.True(s.Admits("Bearer s3cret"));
        foreach (var wrong in new[] { null, "", "Bearer ", "Bearer s3cre", "Bearer s3cretX", "bearer s3cret", "Basic s3cret", "s3cret", "Bearer  s3cret" })
            Assert.False(s.Admits(wrong), wrong);
    }

    [Fact]
    public void OnlyVersion1OfTheModelIsServed()
    {
        var s = Serve();
        var body = JsonInfer("1,3,32,32", string.Join(",", Enumerable.Repeat("0.5", 3072)));
        AssertJsonError(404, Raw(s.Url, PostHead(s.Url, body.Length, path: "/v2/models/tinynet/versions/999/infer"), body), "version '999'");
        AssertJsonError(404, Raw(s.Url, $"GET /v2/models/tinynet/versions/abc HTTP/1.1\r\nHost: x\r\n\r\n"));
        Assert.Equal(200, Raw(s.Url, PostHead(s.Url, body.Length, path: "/v2/models/tinynet/versions/1/infer"), body).Status);
        Assert.Equal(1, s.Requests);
        var g = Serve(protocol: ServerProtocol.Grpc);
        using var channel = GrpcRemoteModel.Channel(g.Url);
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        Assert.Equal(StatusCode.NotFound, Assert.Throws<RpcException>(() => client.ModelMetadata(new ModelMetadataRequest { Name = "tinynet", Version = "abc" })).StatusCode);
        var request = new ModelInferRequest { ModelName = "tinynet", ModelVersion = "999" };
        Assert.Equal(StatusCode.NotFound, Assert.Throws<RpcException>(() => client.ModelInfer(request)).StatusCode);
        Assert.Equal("tinynet", client.ModelMetadata(new ModelMetadataRequest { Name = "tinynet", Version = "1" }).Name);
    }

    [Fact]
    public void AStopWithRequestsInFlightAnswersEachWholeOr503()
    {
        var s = Serve(subBatch: 1);
        var input = SyntheticInput.Create("input", new long[] { 3, 32, 32 }, 64, 9);
        var expected = LocalOutputs(input);
        var (header, _) = (InferenceProtocol.Header("inputs", new[] { ("input", new long[] { 64, 3, 32, 32 }, "FP32", (long)input.Bytes(0, 64).Length) }), 0);
        var body = header.Concat(input.Bytes(0, 64).ToArray()).ToArray();
        var answers = new (int Status, Dictionary<string, string> Headers, string Body)?[12];
        var threads = Enumerable.Range(0, answers.Length).Select(i => new Thread(() =>
        {
            try { answers[i] = Raw(s.Url, PostHead(s.Url, body.Length, extra: $"{InferenceProtocol.HeaderLengthHeader}: {header.Length}\r\n"), body); }
            catch (Exception e) when (e is IOException or SocketException) { answers[i] = null; } // the connection closed without an answer: not a 200
        })).ToList();
        threads.ForEach(t => t.Start());
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (s.InFlight < 1 && clock.Elapsed < Hang) Thread.Sleep(1);
        s.Stop();
        threads.ForEach(t => t.Join());
        foreach (var a in answers.Where(a => a != null).Select(a => a!.Value))
            if (a.Status == 200)
            {
                int length = int.Parse(a.Headers[InferenceProtocol.HeaderLengthHeader.ToLowerInvariant()]);
                var (_, tensors) = InferenceProtocol.Decode(Encoding.Latin1.GetBytes(a.Body), length, "outputs");
                var floats = new float[64 * 10];
                Buffer.BlockCopy(tensors[0].Bytes.ToArray(), 0, floats, 0, floats.Length * 4);
                Assert.Equal(expected, floats);
            }
            else AssertJsonError(503, a, "stopping");
        Assert.Contains(answers, a => a?.Status == 503);
    }

    [Fact]
    public void ManyLargeGrpcCallsOnOneHttp2ConnectionAreAllAnswered()
    {
        var s = Serve(protocol: ServerProtocol.Grpc, subBatch: 16);
        // one connection for all: the client may not open more
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{s.Url.Port}", new GrpcChannelOptions
        {
            MaxReceiveMessageSize = null, MaxSendMessageSize = null,
            HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = false },
        });
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        var input = SyntheticInput.Create("input", new long[] { 3, 32, 32 }, 50, 2); // 614 KB a call
        var expected = LocalOutputs(input);
        var statuses = new StatusCode[32];
        var threads = Enumerable.Range(0, statuses.Length).Select(i => new Thread(() =>
        {
            var request = new ModelInferRequest { ModelName = "tinynet" };
            var tensor = new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32" };
            tensor.Shape.AddRange(new long[] { 50, 3, 32, 32 });
            request.Inputs.Add(tensor);
            request.RawInputContents.Add(ByteString.CopyFrom(input.Bytes(0, 50)));
            for (int k = 0; k < 2; k++)
                try
                {
                    var reply = client.ModelInfer(request, deadline: DateTime.UtcNow + Hang);
                    var floats = new float[500];
                    Buffer.BlockCopy(reply.RawOutputContents[0].ToByteArray(), 0, floats, 0, 2000);
                    Assert.Equal(expected, floats);
                }
                catch (RpcException e) { statuses[i] = e.StatusCode; return; }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.All(statuses, st => Assert.Equal(StatusCode.OK, st));
        Assert.Equal(64, s.Requests);
    }

    // ---- remote answers: a fake server that answers what the test says ----

    /// <summary>HTTP/1.1 on a loopback socket, one request a connection: health, server and tinynet's metadata as the protocol says, infer as <c>infer</c> says.</summary>
    private sealed class FakeServer : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly Func<byte[], int?, (byte[] Body, string Head)> _infer;
        private readonly string? _inferHead, _metadata;
        public Uri Url { get; }

        /// <param name="infer">the answer's body from the request's body and header length, and extra header lines for it</param>
        /// <param name="inferHead">a whole status line and headers to send instead of the usual ones</param>
        public FakeServer(Func<byte[], int?, (byte[] Body, string Head)> infer, string? inferHead = null, string? metadata = null)
        {
            _infer = infer; _inferHead = inferHead; _metadata = metadata;
            _listener.Start();
            Url = new Uri($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");
            new Thread(Accept) { IsBackground = true }.Start();
        }

        private void Accept()
        {
            while (true)
            {
                Socket socket;
                try { socket = _listener.AcceptSocket(); } catch (Exception) { return; }
                new Thread(() => { try { Serve(socket); } catch (Exception) { } finally { socket.Dispose(); } }) { IsBackground = true }.Start();
            }
        }

        private void Serve(Socket socket)
        {
            var data = new List<byte>();
            var buffer = new byte[65536];
            int end;
            while ((end = IndexOf(data, "\r\n\r\n"u8.ToArray())) < 0) { int n = socket.Receive(buffer); if (n == 0) return; data.AddRange(buffer.AsSpan(0, n).ToArray()); }
            var lines = Encoding.ASCII.GetString(data.GetRange(0, end).ToArray()).Split("\r\n");
            var headers = lines.Skip(1).Select(l => l.Split(':', 2)).ToDictionary(p => p[0].Trim().ToLowerInvariant(), p => p[1].Trim());
            int length = headers.TryGetValue("content-length", out var cl) ? int.Parse(cl) : 0;
            var body = data.Skip(end + 4).ToList();
            while (body.Count < length) { int n = socket.Receive(buffer); if (n == 0) return; body.AddRange(buffer.AsSpan(0, n).ToArray()); }
            var path = lines[0].Split(' ')[1];
            byte[] answer;
            string extra = "";
            if (path.EndsWith("/infer"))
            {
                (answer, extra) = _infer(body.ToArray(), headers.TryGetValue(InferenceProtocol.HeaderLengthHeader.ToLowerInvariant(), out var h) ? int.Parse(h) : null);
                if (_inferHead != null) { socket.Send(Encoding.ASCII.GetBytes(_inferHead)); socket.Send(answer); Thread.Sleep(Hang); return; }
            }
            else if (path.StartsWith("/v2/models/tinynet"))
                answer = Encoding.UTF8.GetBytes(_metadata ?? InferenceProtocol.ModelMetadata("tinynet",
                    new[] { new TensorSpec("input", Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, new long[] { 3, 32, 32 }) },
                    new[] { new TensorSpec("logits", Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, new long[] { 10 }) }).ToJsonString());
            else answer = Encoding.UTF8.GetBytes(path == "/v2" ? """{"name":"fake","version":"1"}""" : "{}");
            socket.Send(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {answer.Length}\r\nConnection: close\r\n{extra}\r\n"));
            socket.Send(answer);
        }

        public void Dispose() => _listener.Stop();
    }

    /// <summary>A binary answer of <c>logits</c> for the request's samples, every value <paramref name="value"/>.</summary>
    private static (byte[] Body, string Head) Logits(byte[] request, int? headerLength, float value)
    {
        var (_, tensors) = InferenceProtocol.Decode(request, headerLength, "inputs");
        long count = tensors[0].Shape[0];
        var values = Enumerable.Repeat(value, (int)count * 10).ToArray();
        var bytes = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        var (body, header) = InferenceProtocol.Encode("outputs", new[] { new InferenceProtocol.Tensor("logits", new[] { count, 10 }, "FP32", bytes) });
        return (body, $"{InferenceProtocol.HeaderLengthHeader}: {header}\r\n");
    }

    /// <summary>A batch split between a local unit and the fake server: the remote share fails over, the outputs equal a local run.</summary>
    private void AssertTheRemoteShareFailsOver(FakeServer fake, string says)
    {
        var remote = UnitDiscovery.Discover(new DiscoveryRequest { Endpoints = new[] { fake.Url } }).Single();
        Assert.True(remote.Available, remote.Reason);
        var input = SyntheticInput.Create("input", new long[] { 3, 32, 32 }, 24, 7);
        var result = PartitionedRunner.Run(_clientSide, Plan((TestModels.TwoCpuUnits()[0], 12, 4), (remote, 12, 4)), TestModels.Tiny, InputSet.Of(input), new RunSettings());
        var lost = result.Units.Single(u => u.UnitId == "remote0");
        Assert.True(lost.Failed, "the remote share should have failed");
        Assert.Contains(says, lost.Error);
        Assert.Equal(24, result.Units.Sum(u => u.Count));
        Assert.Equal(LocalOutputs(input), result.Outputs[0].AsFloats());
    }

    [Fact]
    public void NaNFromAServerFailsItsShareWhichMovesToAnotherUnit()
    {
        using var fake = new FakeServer((body, h) => Logits(body, h, float.NaN));
        AssertTheRemoteShareFailsOver(fake, "NaN");
        using var infinite = new FakeServer((body, h) => Logits(body, h, float.PositiveInfinity));
        AssertTheRemoteShareFailsOver(infinite, "infinite");
    }

    [Fact]
    public void GarbageJsonFromAServerFailsItsShareWhichMovesToAnotherUnit()
    {
        using var fake = new FakeServer((_, _) => ("{\"outputs\": [{\"name\": \"logits\", \"shape\": [4,"u8.ToArray(), ""));
        AssertTheRemoteShareFailsOver(fake, "not the protocol's");
        using var badMetadata = new FakeServer((_, _) => (Array.Empty<byte>(), ""), metadata: "{\"inputs\": [{\"name\": 7");
        var e = Assert.Throws<HeteroBatchException>(() => RemoteModel.Open(badMetadata.Url, "tinynet", null, Hang));
        Assert.Equal("RemoteUnitFailed", e.ErrorId);
    }

    [Fact]
    public void AnAnswerLargerThanTheOutputsCanBeIsRefusedBeforeItIsRead()
    {
        // declares 3 GiB, sends a few bytes, then keeps the connection open
        using var fake = new FakeServer((_, _) => (new byte[16], ""),
            inferHead: "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 3221225472\r\n\r\n");
        using var client = RemoteModel.Open(fake.Url, "tinynet", null, Hang);
        var input = SyntheticInput.Create("input", new long[] { 3, 32, 32 }, 4, 1);
        var outputs = new[] { new TensorBatch("logits", new long[] { 10 }, 4) };
        long before = GC.GetTotalAllocatedBytes(true);
        var e = Assert.Throws<HeteroBatchException>(() => client.Run(new[] { input }, outputs, 0, 4));
        Assert.Equal("RemoteUnitFailed", e.ErrorId);
        Assert.Contains("3221225472", e.Message);
        Assert.True(GC.GetTotalAllocatedBytes(true) - before < 16L << 20);
    }

    [Theory]
    [InlineData("grpc://", "no host")]
    [InlineData("http://", "no host")]
    [InlineData("http://:0", "port '0'")]
    [InlineData("grpc://127.0.0.1:99999", "port '99999'")]
    [InlineData("ftp://127.0.0.1:21", "scheme")]
    [InlineData("127.0.0.1:8000", "scheme")]
    public void AMalformedEndpointIsEndpointInvalidWithTheReason(string endpoint, string says)
    {
        var e = Assert.Throws<HeteroBatchException>(() => RemoteBackend.Parse(endpoint));
        Assert.Equal("EndpointInvalid", e.ErrorId);
        Assert.Contains(says, e.Message);
    }

    [Theory]
    [InlineData("http://alice:hunter2@127.0.0.1:8000/")]
    [InlineData("grpc://alice:hunter2@127.0.0.1:8001")]
    [InlineData("http://hunter2@127.0.0.1:8000")]
    public void CredentialsInAnEndpointAreRefusedAndNeverRepeated(string endpoint)
    {
        var e = Assert.Throws<HeteroBatchException>(() => RemoteBackend.Parse(endpoint));
        Assert.Equal("EndpointInvalid", e.ErrorId);
        Assert.DoesNotContain("hunter2", e.Message);
        Assert.DoesNotContain("hunter2", e.Target?.ToString() ?? "");
        Assert.Contains("-Credential", e.Message);
    }
}

/// <summary>Tests that count allocations process-wide or load the machine: run when nothing else does.</summary>
[CollectionDefinition(nameof(HostileInputTests), DisableParallelization = true)]
public sealed class HostileInputCollection;
