using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Grpc.Core;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Profiling;
using HeteroBatch.Serving;
using HeteroBatch.Engine.Sessions;
using HeteroBatch.Engine.Sessions.Grpc;
using HeteroBatch.Engine.Units;
using HeteroBatch.Engine.Units.Backends;
using static HeteroBatch.Engine.Tests.TestModels;

namespace HeteroBatch.Engine.Tests;

/// <summary>
/// The Open Inference Protocol on loopback, over REST and over gRPC (Kestrel, HTTP/2): HeteroBatch's
/// server checked against the messages of the protocol's specification, and its client (a remote
/// unit) splitting batches with a local unit, a server that stops mid-run losing no sample.
/// </summary>
public sealed class RemoteTests : IDisposable
{
    private readonly EngineContext _serverSide = new();
    private readonly EngineContext _clientSide = new();
    private readonly HttpClient _http = new();
    private readonly List<InferenceServer> _servers = new();

    public void Dispose()
    {
        _servers.ForEach(s => s.Dispose());
        _http.Dispose();
        _clientSide.Dispose();
        _serverSide.Dispose();
    }

    /// <summary>A server on a free loopback port: REST (HttpListener) or gRPC (Kestrel, HTTP/2).</summary>
    private InferenceServer Serve(string? token = null, ServerProtocol protocol = ServerProtocol.Rest, long maxRequestBytes = 512L << 20, int subBatch = 8)
    {
        var server = new InferenceServer(_serverSide, Plan((TestModels.TwoCpuUnits()[^1], 8, subBatch)), TestModels.Tiny,
            new ServerSettings { Port = FreePort(), Token = token, Protocol = protocol, MaxRequestBytes = maxRequestBytes });
        server.Start();
        Assert.Equal(protocol == ServerProtocol.Grpc ? "grpc" : "http", server.Url.Scheme);
        _servers.Add(server);
        return server;
    }

    /// <summary>The server as a remote unit, found by its address.</summary>
    private static ComputeUnit RemoteUnit(InferenceServer server) =>
        UnitDiscovery.Discover(new DiscoveryRequest { Endpoints = new[] { server.Url } }).Single();

    private (HttpStatusCode Status, JsonNode? Body) Get(Uri url, string? token = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (token != null) request.Headers.Authorization = new("Bearer", token);
        using var response = _http.Send(request);
        var text = response.Content.ReadAsStringAsync().Result;
        return (response.StatusCode, text.Length > 0 ? JsonNode.Parse(text) : null);
    }

    private (HttpStatusCode Status, JsonNode? Body) PostJson(Uri url, JsonObject body)
    {
        using var response = _http.PostAsync(url, new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json")).Result;
        return (response.StatusCode, JsonNode.Parse(response.Content.ReadAsStringAsync().Result));
    }

    private float[] LocalOutputs(TensorBatch input)
    {
        var result = PartitionedRunner.Run(_clientSide, Plan((TestModels.TwoCpuUnits()[0], input.Count, input.Count)), TestModels.Tiny, InputSet.Of(input), new RunSettings());
        return result.Outputs[0].AsFloats();
    }

    [Fact]
    public void TheServerAnswersHealthMetadataAndReadiness()
    {
        var s = Serve();
        Assert.Equal(HttpStatusCode.OK, Get(new Uri(s.Url, "v2/health/live")).Status);
        Assert.Equal(HttpStatusCode.OK, Get(new Uri(s.Url, "v2/health/ready")).Status);
        var server = Get(new Uri(s.Url, "v2")).Body!;
        Assert.Equal("heterobatch", server["name"]!.GetValue<string>());
        Assert.Contains("binary_tensor_data", server["extensions"]!.AsArray().Select(e => e!.GetValue<string>()));
        var model = Get(new Uri(s.Url, "v2/models/tinynet")).Body!;
        Assert.Equal("tinynet", model["name"]!.GetValue<string>());
        var input = model["inputs"]![0]!;
        Assert.Equal(("input", "FP32"), (input["name"]!.GetValue<string>(), input["datatype"]!.GetValue<string>()));
        Assert.Equal(new long[] { -1, 3, 32, 32 }, input["shape"]!.AsArray().Select(d => d!.GetValue<long>()));
        Assert.Equal(new long[] { -1, 10 }, model["outputs"]![0]!["shape"]!.AsArray().Select(d => d!.GetValue<long>()));
        Assert.Equal(HttpStatusCode.OK, Get(new Uri(s.Url, "v2/models/tinynet/ready")).Status);
        Assert.Equal(HttpStatusCode.OK, Get(new Uri(s.Url, "v2/models/tinynet/versions/1")).Status);
        var missing = Get(new Uri(s.Url, "v2/models/resnet-50"));
        Assert.Equal(HttpStatusCode.NotFound, missing.Status);
        Assert.Contains("tinynet", missing.Body!["error"]!.GetValue<string>());
    }

    [Fact]
    public void InferWithJsonDataAnswersJsonAndBinaryRequestsAnswerBinary_BothAsTheModelComputesLocally()
    {
        var s = Serve();
        var input = SyntheticInput.Create("input", new long[] { 3, 32, 32 }, 5, 21);
        var expected = LocalOutputs(input);

        // JSON, as the specification's example request writes it
        var request = new JsonObject
        {
            ["id"] = "42",
            ["inputs"] = new JsonArray(new JsonObject
            {
                ["name"] = "input", ["shape"] = new JsonArray(5, 3, 32, 32), ["datatype"] = "FP32",
                ["data"] = new JsonArray(input.AsFloats().Select(v => (JsonNode?)v).ToArray()),
            }),
        };
        var (status, body) = PostJson(new Uri(s.Url, "v2/models/tinynet/infer"), request);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("42", body!["id"]!.GetValue<string>());
        Assert.Equal("tinynet", body["model_name"]!.GetValue<string>());
        var output = body["outputs"]![0]!;
        Assert.Equal(("logits", "FP32"), (output["name"]!.GetValue<string>(), output["datatype"]!.GetValue<string>()));
        Assert.Equal(new long[] { 5, 10 }, output["shape"]!.AsArray().Select(d => d!.GetValue<long>()));
        Assert.Equal(expected, output["data"]!.AsArray().Select(v => v!.GetValue<float>()));

        // binary tensor data, through the client a remote unit uses
        using var remote = RemoteModel.Open(s.Url, "tinynet", null, TimeSpan.FromSeconds(30));
        var outputs = new[] { new TensorBatch("logits", new long[] { 10 }, 5) };
        remote.Run(new[] { input }, outputs, 0, 5);
        Assert.Equal(expected, outputs[0].AsFloats());
        Assert.Equal(2, s.Requests);
        Assert.Equal(10, s.Samples);
    }

    [Theory]
    [InlineData("BF17", "5,3,32,32", 0, "data type 'BF17'")]
    [InlineData("FP32", "5,3,16,16", 5 * 3 * 16 * 16 * 4, "the model takes")]
    [InlineData("FP32", "5,3,32,32", 12, "binary_data_size 12")]
    [InlineData("INT64", "5,3,32,32", 5 * 3 * 32 * 32 * 8, "the model takes")]
    public void AMalformedRequestGets400WithTheReason(string dataType, string shape, int bytes, string reason)
    {
        var s = Serve();
        var dims = shape.Split(',').Select(long.Parse).ToArray();
        var header = new JsonObject
        {
            ["inputs"] = new JsonArray(new JsonObject
            {
                ["name"] = "input", ["shape"] = new JsonArray(dims.Select(d => (JsonNode?)d).ToArray()), ["datatype"] = dataType,
                ["parameters"] = new JsonObject { ["binary_data_size"] = bytes },
            }),
        };
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        var content = new ByteArrayContent(json.Concat(new byte[bytes]).ToArray());
        content.Headers.Add(InferenceProtocol.HeaderLengthHeader, json.Length.ToString());
        using var response = _http.PostAsync(new Uri(s.Url, "v2/models/tinynet/infer"), content).Result;
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(reason, JsonNode.Parse(response.Content.ReadAsStringAsync().Result)!["error"]!.GetValue<string>());
        Assert.Equal(0, s.Requests);
    }

    [Fact]
    public void WithATokenEveryRequestButHealthNeedsIt()
    {
        var s = Serve(token: "s3cret");
        Assert.Equal(HttpStatusCode.OK, Get(new Uri(s.Url, "v2/health/ready")).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, Get(new Uri(s.Url, "v2/models/tinynet")).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, Get(new Uri(s.Url, "v2/models/tinynet"), "wrong").Status);
        Assert.Equal(HttpStatusCode.OK, Get(new Uri(s.Url, "v2/models/tinynet"), "s3cret").Status);
        var e = Assert.Throws<HeteroBatchException>(() => RemoteModel.Open(s.Url, "tinynet", null, TimeSpan.FromSeconds(10)));
        Assert.Equal("RemoteUnauthorized", e.ErrorId);
        using var ok = RemoteModel.Open(s.Url, "tinynet", "s3cret", TimeSpan.FromSeconds(10));
        Assert.Equal("input", ok.Signature.Inputs[0].Name);
    }

    [Fact]
    public void TheGrpcServiceAnswersHealthMetadataReadinessAndInferAsTheSpecificationSays()
    {
        var server = Serve(protocol: ServerProtocol.Grpc);
        var address = server.Url;
        using var channel = GrpcRemoteModel.Channel(address);
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        Assert.True(client.ServerLive(new ServerLiveRequest()).Live);
        Assert.True(client.ServerReady(new ServerReadyRequest()).Ready);
        Assert.True(client.ModelReady(new ModelReadyRequest { Name = "tinynet" }).Ready);
        Assert.Contains("binary_tensor_data", client.ServerMetadata(new ServerMetadataRequest()).Extensions);
        var meta = client.ModelMetadata(new ModelMetadataRequest { Name = "tinynet" });
        var input = Assert.Single(meta.Inputs);
        Assert.Equal(("input", "FP32"), (input.Name, input.Datatype));
        Assert.Equal(new long[] { -1, 3, 32, 32 }, input.Shape.ToArray());
        Assert.Equal(new long[] { -1, 10 }, Assert.Single(meta.Outputs).Shape.ToArray());
        Assert.Equal(StatusCode.NotFound, Assert.Throws<RpcException>(() => client.ModelMetadata(new ModelMetadataRequest { Name = "other" })).StatusCode);

        // infer: raw little-endian bytes in, raw bytes out, equal to the model run locally
        var batch = SyntheticInput.Create("input", new long[] { 3, 32, 32 }, 5, 3);
        var request = new ModelInferRequest { ModelName = "tinynet", Id = "r1" };
        var tensor = new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32" };
        tensor.Shape.AddRange(new long[] { 5, 3, 32, 32 });
        request.Inputs.Add(tensor);
        request.RawInputContents.Add(ByteString.CopyFrom(batch.Bytes(0, 5)));
        var reply = client.ModelInfer(request);
        Assert.Equal(("r1", "tinynet"), (reply.Id, reply.ModelName));
        var output = Assert.Single(reply.Outputs);
        Assert.Equal(("logits", "FP32"), (output.Name, output.Datatype));
        Assert.Equal(new long[] { 5, 10 }, output.Shape.ToArray());
        var floats = new float[50];
        Buffer.BlockCopy(reply.RawOutputContents[0].ToByteArray(), 0, floats, 0, 200);
        Assert.Equal(LocalOutputs(batch), floats);
        Assert.Equal(1, server.Requests);

        // a tensor the model does not take: INVALID_ARGUMENT with the reason
        tensor.Shape[1] = 4;
        var bad = Assert.Throws<RpcException>(() => client.ModelInfer(request));
        Assert.Equal(StatusCode.InvalidArgument, bad.StatusCode);
        Assert.Contains("the model takes FP32 [-1,3,32,32]", bad.Status.Detail);
    }

    [Fact]
    public void WithATokenEveryGrpcCallButHealthNeedsIt()
    {
        var address = Serve("s3cret", ServerProtocol.Grpc).Url;
        using var channel = GrpcRemoteModel.Channel(address);
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        Assert.True(client.ServerReady(new ServerReadyRequest()).Ready);
        Assert.Equal(StatusCode.Unauthenticated, Assert.Throws<RpcException>(() => client.ModelMetadata(new ModelMetadataRequest { Name = "tinynet" })).StatusCode);
        Assert.Equal("tinynet", client.ModelMetadata(new ModelMetadataRequest { Name = "tinynet" }, GrpcRemoteModel.Headers("s3cret")).Name);
        var e = Assert.Throws<HeteroBatchException>(() => GrpcRemoteModel.Open(address, "tinynet", null, TimeSpan.FromSeconds(5)));
        Assert.Equal("RemoteUnauthorized", e.ErrorId);
    }

    [Theory]
    [InlineData(ServerProtocol.Rest)]
    [InlineData(ServerProtocol.Grpc)]
    public void ARemoteUnitIsFoundByItsAddressAndSaysWhereItIs(ServerProtocol protocol)
    {
        var s = Serve(protocol: protocol);
        var units = UnitDiscovery.Discover(new DiscoveryRequest { Endpoints = new[] { s.Url } });
        var unit = Assert.Single(units);
        Assert.Equal(("remote0", UnitKind.Remote, s.Url.ToString(), true), (unit.Id, unit.Kind, unit.Endpoint, unit.Available));
        Assert.StartsWith("heterobatch", unit.Name);
        var elsewhere = new ComputeUnit { Id = "remote0", Kind = UnitKind.Remote, Provider = ExecutionProvider.Remote, Name = unit.Name, Endpoint = "http://127.0.0.1:1/", RuntimeVersion = unit.RuntimeVersion };
        Assert.NotEqual(unit.Fingerprint, elsewhere.Fingerprint);
        var down = UnitDiscovery.Discover(new DiscoveryRequest { Endpoints = new[] { new Uri($"{s.Url.Scheme}://127.0.0.1:{FreePort()}/") }, IncludeUnavailable = true });
        Assert.False(down.Single().Available);
        Assert.Contains(protocol == ServerProtocol.Grpc ? "no answer over gRPC" : "no answer", down.Single().Reason);
    }

    [Theory]
    [InlineData(ServerProtocol.Rest)]
    [InlineData(ServerProtocol.Grpc)]
    public void ABatchSplitAcrossALocalUnitAndARemoteOneEqualsALocalRun(ServerProtocol protocol)
    {
        var s = Serve(protocol: protocol);
        var remote = RemoteUnit(s);
        var input = SyntheticInput.Create("input", new long[] { 3, 32, 32 }, 32, 5);
        var result = PartitionedRunner.Run(_clientSide, Plan((TestModels.TwoCpuUnits()[0], 20, 5), (remote, 12, 4)), TestModels.Tiny, InputSet.Of(input), new RunSettings());
        Assert.Equal((20, 12), (result.Units[0].Count, result.Units[1].Count));
        Assert.Equal(LocalOutputs(input), result.Outputs[0].AsFloats());
        Assert.Equal(4, s.Requests); // a warm-up run of one sub-batch, then three sub-batches
    }

    [Fact]
    public void ARemoteShareWithTwoRequestsInFlightKeepsTwoAtTheServerAndComputesTheSame()
    {
        var s = Serve();
        var remote = RemoteUnit(s);
        var input = SyntheticInput.Create("input", new long[] { 3, 32, 32 }, 64, 8);
        var plan = PlanLayout.Manual("tinynet", TestModels.Tiny.Sha256, new[] { new ShareSpec(TestModels.TwoCpuUnits()[0], 16, 8, 1), new ShareSpec(remote, 48, 2, 1, InFlight: 2) });
        Assert.Equal(2, plan.Shards[1].InFlight);
        var result = PartitionedRunner.Run(_clientSide, plan, TestModels.Tiny, InputSet.Of(input), new RunSettings());
        Assert.Equal((16, 48, 24), (result.Units[0].Count, result.Units[1].Count, result.Units[1].SubBatches));
        Assert.Equal(LocalOutputs(input), result.Outputs[0].AsFloats());
        Assert.Equal(2, s.PeakInFlight);
        Assert.Equal(0, s.InFlight);
    }

    [Fact]
    public void ProfilingARemoteUnitKeepsTwoRequestsInFlightWhereTwoAreFasterAndThePlanKeepsThat()
    {
        // a server that holds a request alone for 500 ms and answers two in flight as soon as both are there:
        // one at a time is at least 500 ms a run whatever the machine's load, two together far less
        var s = Serve();
        using var paced = new PairingProxy(s.Url, TimeSpan.FromMilliseconds(500), FreePort());
        var remote = UnitDiscovery.Discover(new DiscoveryRequest { Endpoints = new[] { paced.Url } }).Single();
        var profile = Profiler.RunAsync(_clientSide, remote, TestModels.Tiny,
            new ProfileSettings { BatchSizes = new[] { 1, 4 }, WarmupRuns = 0, MinSamples = 3, MaxSamples = 3, PointBudget = TimeSpan.FromMinutes(5) }).GetAwaiter().GetResult();
        Assert.Equal(new[] { (1, 2), (4, 2) }, profile.Table.Select(e => (e.BatchSize, e.InFlight)));
        // each size: 3 runs alone, then 3 rounds of two sent together
        Assert.True(paced.Released.Pairs >= 2 * 3 * 2, $"released {paced.Released}");
        Assert.True(paced.Released.Alone >= 3 * 2, $"released {paced.Released}");

        // the plan takes the count its profile measured at the sub-batch it runs, and the stored form keeps it; the
        // times are set here, so that the sub-batch (4 samples a run for 12 ms against 1 for 10 ms) is the test's choice
        profile.Table[0].InFlight = 1;
        (profile.Table[0].MedianMs, profile.Table[1].MedianMs) = (10, 12);
        var back = System.Text.Json.JsonSerializer.Deserialize<Profiling.UnitProfile>(System.Text.Json.JsonSerializer.Serialize(profile, Profiling.ProfileStore.Json), Profiling.ProfileStore.Json)!;
        Assert.Equal(new[] { 1, 2 }, back.Table.Select(e => e.InFlight));
        var plan = Planner.Plan(new[] { back }, 40);
        Assert.Equal((4, 2), (plan.Shards.Single().SubBatchSize, plan.Shards.Single().InFlight));
        // and where one at a time was kept, so is the plan's
        back.Table[1].InFlight = 1;
        Assert.Equal((4, 1), (Planner.Plan(new[] { back }, 40).Shards.Single().SubBatchSize, Planner.Plan(new[] { back }, 40).Shards.Single().InFlight));
    }

    [Fact]
    public void ASessionCanUseItsOwnServerAsAUnitBesideTheUnitThatServes()
    {
        // one context serves on a unit and, as a client, splits a batch between that same unit and its own server
        var unit = TestModels.TwoCpuUnits()[0];
        var server = new InferenceServer(_clientSide, Plan((unit, 8, 8)), TestModels.Tiny, new ServerSettings { Port = FreePort() });
        _servers.Add(server);
        server.Start();
        var remote = RemoteUnit(server);
        var input = SyntheticInput.Create("input", new long[] { 3, 32, 32 }, 32, 4);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var result = PartitionedRunner.Run(_clientSide, Plan((unit, 16, 4), (remote, 16, 4)), TestModels.Tiny, InputSet.Of(input), new RunSettings());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed}");
        Assert.False(result.Units[1].Failed, result.Units[1].Error);
        Assert.Equal((16, 16), (result.Units[0].Count, result.Units[1].Count));
        Assert.Equal(LocalOutputs(input), result.Outputs[0].AsFloats());
    }

    [Theory]
    [InlineData(ServerProtocol.Rest)]
    [InlineData(ServerProtocol.Grpc)]
    public void AServerHoldsAtMostItsHandledAtOnceRequestsAndAnswersEveryOne(ServerProtocol protocol)
    {
        // a plan of one sample per run: each request of 64 takes the units a while, so requests pile up
        var server = Serve(protocol: protocol, subBatch: 1);
        Assert.Equal(8, server.HandledAtOnce);
        int clients = server.HandledAtOnce * 2 + 4;
        var input = SyntheticInput.Create("input", new long[] { 3, 32, 32 }, 64, 9);
        var expected = LocalOutputs(input);
        var answers = new float[clients][];
        var threads = Enumerable.Range(0, clients).Select(c => new Thread(() =>
        {
            using IModelSession client = protocol == ServerProtocol.Grpc
                ? GrpcRemoteModel.Open(server.Url, "tinynet", null, TimeSpan.FromSeconds(120))
                : RemoteModel.Open(server.Url, "tinynet", null, TimeSpan.FromSeconds(120));
            var outputs = new[] { new TensorBatch("logits", new long[] { 10 }, 64) };
            client.Run(new[] { input }, outputs, 0, 64);
            answers[c] = outputs[0].AsFloats();
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.All(answers, a => Assert.Equal(expected, a));
        Assert.Equal(clients, server.Requests);
        Assert.InRange(server.PeakInFlight, 2, server.HandledAtOnce);
    }

    [Theory]
    [InlineData(ServerProtocol.Rest)]
    [InlineData(ServerProtocol.Grpc)]
    public void ARequestOverTheServersLimitIsRefusedAsTooLargeAndTheServerAnswersTheNext(ServerProtocol protocol)
    {
        // tinynet takes 3x32x32 floats, 12 KiB a sample: 2 samples fit in 64 KiB, 8 do not
        var s = Serve(protocol: protocol, maxRequestBytes: 64 << 10);
        var remote = RemoteUnit(s);
        var profile = Profiler.RunAsync(_clientSide, remote, TestModels.Tiny, new ProfileSettings { BatchSizes = new[] { 2, 8 }, MinSamples = 1, PointBudget = TimeSpan.FromSeconds(0.05) }).GetAwaiter().GetResult();
        Assert.Equal(new[] { 2 }, profile.Table.Select(e => e.BatchSize));
        Assert.Equal(8, profile.FailedBatchSize);
        Assert.Contains("too large", profile.FailureReason, StringComparison.OrdinalIgnoreCase);
        // counted once the answer is out (the client may read it first): waits for that, with a limit only for a server that never counts it
        var counted = System.Diagnostics.Stopwatch.StartNew();
        while (s.Failures < 1 && counted.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(10);
        Assert.True(s.Failures >= 1, "a request refused as too large is a failed request of the server");

        var input = SyntheticInput.Create("input", new long[] { 3, 32, 32 }, 6, 3);
        var result = PartitionedRunner.Run(_clientSide, Plan((remote, 6, 2)), TestModels.Tiny, InputSet.Of(input), new RunSettings());
        Assert.False(result.Units[0].Failed, result.Units[0].Error);
        Assert.Equal(LocalOutputs(input), result.Outputs[0].AsFloats());
    }

    [Theory]
    [InlineData(ServerProtocol.Rest)]
    [InlineData(ServerProtocol.Grpc)]
    public void AServerThatStopsMidRunLosesNoSample(ServerProtocol protocol)
    {
        var s = Serve(protocol: protocol);
        var remote = RemoteUnit(s);
        var input = SyntheticInput.Create("input", new long[] { 3, 32, 32 }, 400, 6);
        var stopper = new Thread(() =>
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (s.Requests < 5 && clock.Elapsed < TimeSpan.FromSeconds(30)) Thread.Sleep(1);
            s.Stop();
        });
        stopper.Start();
        var result = PartitionedRunner.Run(_clientSide, Plan((TestModels.TwoCpuUnits()[0], 8, 8), (remote, 392, 1)), TestModels.Tiny, InputSet.Of(input), new RunSettings());
        stopper.Join();
        var lost = result.Units.Single(u => u.UnitId == "remote0");
        Assert.True(lost.Failed, "the remote unit should have failed when its server stopped");
        Assert.InRange(lost.Count, 1, 391);
        Assert.Equal(400, result.Units.Sum(u => u.Count));
        Assert.Equal(LocalOutputs(input), result.Outputs[0].AsFloats());
    }
}
