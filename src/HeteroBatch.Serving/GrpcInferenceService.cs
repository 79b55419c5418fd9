using Google.Protobuf;
using Grpc.Core;
using HeteroBatch.Engine.Sessions;
using HeteroBatch.Engine.Sessions.Grpc;
using HeteroBatch.Engine;
using Data = HeteroBatch.Engine.Data;

namespace HeteroBatch.Serving;

/// <summary>
/// The Open Inference Protocol's gRPC service over an <see cref="InferenceServer"/>: the same model,
/// plan, token and one-request-at-a-time runs as its REST endpoints. Tensors come and go as raw
/// bytes (raw_input_contents / raw_output_contents); typed fp32 contents are read too. Any ASP.NET
/// Core host maps it (MapGrpcService); health calls need no token.
/// </summary>
internal sealed class GrpcInferenceService(InferenceServer server) : GRPCInferenceService.GRPCInferenceServiceBase
{
    public override Task<ServerLiveResponse> ServerLive(ServerLiveRequest request, ServerCallContext context) => Task.FromResult(new ServerLiveResponse { Live = true });

    public override Task<ServerReadyResponse> ServerReady(ServerReadyRequest request, ServerCallContext context) => Task.FromResult(new ServerReadyResponse { Ready = true });

    public override Task<ModelReadyResponse> ModelReady(ModelReadyRequest request, ServerCallContext context)
    {
        Admit(context);
        return Task.FromResult(new ModelReadyResponse { Ready = Served(request.Name, request.Version) || ServedEncoded(request.Name, request.Version) });
    }

    public override Task<ServerMetadataResponse> ServerMetadata(ServerMetadataRequest request, ServerCallContext context)
    {
        Admit(context);
        var reply = new ServerMetadataResponse { Name = "heterobatch", Version = typeof(InferenceServer).Assembly.GetName().Version?.ToString(3) ?? "0" };
        reply.Extensions.Add(InferenceProtocol.BinaryExtension);
        return Task.FromResult(reply);
    }

    public override Task<ModelMetadataResponse> ModelMetadata(ModelMetadataRequest request, ServerCallContext context)
    {
        Admit(context);
        bool encoded = ServedEncoded(request.Name, request.Version);
        if (!encoded && !Served(request.Name, request.Version)) throw NotFound(request.Name, request.Version);
        var signature = encoded ? server.EncodedSignature! : server.Signature;
        var reply = new ModelMetadataResponse { Name = encoded ? server.EncodedModel : server.Model, Platform = "onnxruntime_onnx" };
        reply.Versions.Add("1");
        static ModelMetadataResponse.Types.TensorMetadata Meta(Data.TensorSpec t)
        {
            var m = new ModelMetadataResponse.Types.TensorMetadata { Name = t.Name, Datatype = InferenceProtocol.DataTypeOf(t.ElementType) };
            m.Shape.Add(-1);
            m.Shape.AddRange(t.SampleShape);
            return m;
        }
        reply.Inputs.AddRange(signature.Inputs.Select(Meta));
        reply.Outputs.AddRange(signature.Outputs.Select(Meta));
        return Task.FromResult(reply);
    }

    public override async Task<ModelInferResponse> ModelInfer(ModelInferRequest request, ServerCallContext context)
    {
        Admit(context);
        bool encoded = ServedEncoded(request.ModelName, request.ModelVersion);
        if (!encoded && !Served(request.ModelName, request.ModelVersion)) throw NotFound(request.ModelName, request.ModelVersion);
        var arrived = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            // a place among the calls handled at once, now that the message is read (see GrpcHost)
            using var cancel = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, server.Stopping);
            using var place = await server.HandlerAsync(cancel.Token);
            using var answering = server.Answering();
            if (request.RawInputContents.Count > 0 && request.RawInputContents.Count != request.Inputs.Count)
                throw InferenceProtocol.Invalid($"{request.Inputs.Count} inputs but {request.RawInputContents.Count} raw_input_contents");
            var tensors = request.Inputs.Select((t, i) => new InferenceProtocol.Tensor(t.Name, t.Shape.ToArray(), t.Datatype,
                request.RawInputContents.Count > 0 ? request.RawInputContents[i].Memory : TypedContents(t))).ToList();
            var computing = System.Diagnostics.Stopwatch.StartNew();
            var result = await server.OnRequestThread(() => encoded ? server.RunEncodedRequest(tensors) : server.RunRequest(tensors));
            var compute = computing.Elapsed;
            var names = request.Outputs.Count > 0 ? request.Outputs.Select(o => o.Name).ToList() : result.Outputs.Select(o => o.Name).ToList();
            var reply = new ModelInferResponse { ModelName = request.ModelName, ModelVersion = "1", Id = request.Id };
            foreach (var name in names)
            {
                var o = result.Outputs.FirstOrDefault(x => x.Name == name) ?? throw InferenceProtocol.Invalid($"the model has no output '{name}'");
                var tensor = new ModelInferResponse.Types.InferOutputTensor { Name = o.Name, Datatype = InferenceProtocol.DataTypeOf(o.ElementType) };
                tensor.Shape.AddRange(o.ShapeFor(o.Count));
                reply.Outputs.Add(tensor);
                reply.RawOutputContents.Add(ByteString.CopyFrom(o.Bytes(0, o.Count)));
            }
            server.CountAnswered(arrived.Elapsed, compute);
            return reply;
        }
        catch (HeteroBatchException e)
        {
            server.CountFailure();
            throw new RpcException(new Status(e.Kind is FailureKind.InvalidArgument or FailureKind.InvalidData ? StatusCode.InvalidArgument
                : e.Kind is FailureKind.ResourceUnavailable or FailureKind.OperationStopped ? StatusCode.Unavailable : StatusCode.Internal, e.Message));
        }
        catch (OperationCanceledException)
        {
            server.CountFailure();
            throw new RpcException(new Status(StatusCode.Unavailable, "the server is stopping or the call was cancelled"));
        }
        catch (Exception e) when (e is not RpcException)
        {
            // whatever else went wrong answers this call without its text
            server.CountFailure();
            throw new RpcException(new Status(StatusCode.Internal, "the server failed to answer this call"));
        }
    }

    /// <summary>Typed contents (fp32, and BYTES as bytes_contents, one element each) as bytes; other types must come as raw_input_contents.</summary>
    private static ReadOnlyMemory<byte> TypedContents(ModelInferRequest.Types.InferInputTensor t)
    {
        if (t.Contents?.BytesContents.Count > 0 && t.Datatype == InferenceProtocol.BytesType)
            return InferenceProtocol.SerializeBytes(t.Contents.BytesContents.Select(b => b.Memory).ToList());
        if (t.Contents?.Fp32Contents.Count > 0 && t.Datatype == "FP32")

            return System.Runtime.InteropServices.MemoryMarshal.AsBytes(t.Contents.Fp32Contents.ToArray().AsSpan()).ToArray();
        throw InferenceProtocol.Invalid($"input '{t.Name}' has no raw_input_contents, fp32_contents or bytes_contents");
    }

    /// <summary>The model served, at its one version ("1"; no version means that one).</summary>
    private bool Served(string name, string version) => name == server.Model && version is "" or "1";

    /// <summary>The model's encoded-image form, where it is served, at its one version.</summary>
    private bool ServedEncoded(string name, string version) => server.EncodedModel != null && name == server.EncodedModel && version is "" or "1";

    private static RpcException NotFound(string name, string version) =>
        new(new Status(StatusCode.NotFound, version is "" or "1" ? $"no model '{name}' is served here" : $"model '{name}' has no version '{version}'; it has version 1"));

    private void Admit(ServerCallContext context)
    {
        if (!server.Admits(context.RequestHeaders.GetValue("authorization")))
            throw new RpcException(new Status(StatusCode.Unauthenticated, "a bearer token is required"));
    }
}
