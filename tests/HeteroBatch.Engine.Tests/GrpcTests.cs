using System.Net;
using Google.Protobuf;
using Grpc.Core;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Serving;
using HeteroBatch.Engine.Sessions;
using HeteroBatch.Engine.Sessions.Grpc;
using HeteroBatch.Engine.Units;

namespace HeteroBatch.Engine.Tests;

/// <summary>
/// The Open Inference Protocol over gRPC on loopback: an InferenceServer speaking gRPC (its
/// service in Kestrel, HTTP/2), checked against the specification's messages, and the gRPC remote unit splitting a
/// batch with a local unit, a server that goes away mid-run losing no sample.
/// </summary>
public sealed class GrpcTests : IDisposable
{
    private readonly EngineContext _serverSide = new();
    private readonly EngineContext _clientSide = new();
    private readonly List<InferenceServer> _servers = new();

    public void Dispose()
    {
        _servers.ForEach(s => s.Dispose());
        _clientSide.Dispose();
        _serverSide.Dispose();
    }

    private static BatchPlan Plan(params (ComputeUnit Unit, int Count, int Sub)[] shares) =>
        PlanLayout.Manual("tinynet", TestModels.Tiny.Sha256, shares.Select(s => new ShareSpec(s.Unit, s.Count, s.Sub, 1)).ToList());

    private static int FreePort()
    {
        var l = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    /// <summary>A gRPC server (Kestrel, HTTP/2) on a free loopback port.</summary>
    private (Uri Address, InferenceServer Server) Serve(string? token = null)
    {
        var server = new InferenceServer(_serverSide, Plan((TestModels.TwoCpuUnits()[^1], 8, 8)), TestModels.Tiny,
            new ServerSettings { Port = FreePort(), Token = token, Protocol = ServerProtocol.Grpc });
        _servers.Add(server);
        server.Start();
        Assert.Equal("grpc", server.Url.Scheme);
        return (server.Url, server);
    }

    private float[] LocalOutputs(TensorBatch input) =>
        PartitionedRunner.Run(_clientSide, Plan((TestModels.TwoCpuUnits()[0], input.Count, input.Count)), TestModels.Tiny, InputSet.Of(input), new RunSettings()).Outputs[0].AsFloats();

    [Fact]
    public void TheServiceAnswersHealthMetadataReadinessAndInferAsTheSpecificationSays()
    {
        var (address, server) = Serve();
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
    public void WithATokenEveryCallButHealthNeedsIt()
    {
        var (address, _) = Serve("s3cret");
        using var channel = GrpcRemoteModel.Channel(address);
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        Assert.True(client.ServerReady(new ServerReadyRequest()).Ready);
        Assert.Equal(StatusCode.Unauthenticated, Assert.Throws<RpcException>(() => client.ModelMetadata(new ModelMetadataRequest { Name = "tinynet" })).StatusCode);
        Assert.Equal("tinynet", client.ModelMetadata(new ModelMetadataRequest { Name = "tinynet" }, GrpcRemoteModel.Headers("s3cret")).Name);
        var e = Assert.Throws<HeteroBatchException>(() => GrpcRemoteModel.Open(address, "tinynet", null, TimeSpan.FromSeconds(5)));
        Assert.Equal("RemoteUnauthorized", e.ErrorId);
    }

    [Fact]
    public void AGrpcUnitIsFoundByItsAddressAndSplitsABatchWithALocalUnitAsALocalRunComputes()
    {
        var (address, server) = Serve();
        var remote = UnitDiscovery.Discover(new DiscoveryRequest { Endpoints = new[] { address } }).Single();
        Assert.Equal((UnitKind.Remote, true, address.ToString()), (remote.Kind, remote.Available, remote.Endpoint));
        var input = SyntheticInput.Create("input", new long[] { 3, 32, 32 }, 32, 5);
        var result = PartitionedRunner.Run(_clientSide, Plan((TestModels.TwoCpuUnits()[0], 20, 5), (remote, 12, 4)), TestModels.Tiny, InputSet.Of(input), new RunSettings());
        Assert.Equal((20, 12), (result.Units[0].Count, result.Units[1].Count));
        Assert.Equal(LocalOutputs(input), result.Outputs[0].AsFloats());
        Assert.Equal(4, server.Requests); // a warm-up run of one sub-batch, then three sub-batches
        var down = UnitDiscovery.Discover(new DiscoveryRequest { Endpoints = new[] { new Uri("grpc://127.0.0.1:9/") }, IncludeUnavailable = true }).Single();
        Assert.False(down.Available);
        Assert.Contains("no answer over gRPC", down.Reason);
    }

    [Fact]
    public void AGrpcServerThatGoesAwayMidRunLosesNoSample()
    {
        var (address, server) = Serve();
        var remote = UnitDiscovery.Discover(new DiscoveryRequest { Endpoints = new[] { address } }).Single();
        var input = SyntheticInput.Create("input", new long[] { 3, 32, 32 }, 400, 6);
        var stopper = new Thread(() =>
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (server.Requests < 5 && clock.Elapsed < TimeSpan.FromSeconds(30)) Thread.Sleep(1);
            server.Stop();
        });
        stopper.Start();
        var result = PartitionedRunner.Run(_clientSide, Plan((TestModels.TwoCpuUnits()[0], 8, 8), (remote, 392, 1)), TestModels.Tiny, InputSet.Of(input), new RunSettings());
        stopper.Join();
        var lost = result.Units.Single(u => u.UnitId == "remote0");
        Assert.True(lost.Failed, "the remote unit should have failed when its server went away");
        Assert.InRange(lost.Count, 1, 391);
        Assert.Equal(400, result.Units.Sum(u => u.Count));
        Assert.Equal(LocalOutputs(input), result.Outputs[0].AsFloats());
    }
}
