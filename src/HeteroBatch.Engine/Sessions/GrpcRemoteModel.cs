using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Sessions.Grpc;

namespace HeteroBatch.Engine.Sessions;

/// <summary>
/// A model on an inference server that speaks the Open Inference Protocol over gRPC (Triton's and
/// OpenVINO Model Server's gRPC port, or another HeteroBatch's): each run is one ModelInfer call
/// with the samples' tensors as raw bytes, its outputs written into the same rows. Addresses are
/// grpc://host:port (plain HTTP/2) or grpcs://host:port (TLS). Used only on its unit's worker thread.
/// </summary>
internal sealed class GrpcRemoteModel : IRemoteSession
{
    private readonly GrpcChannel _channel;
    private readonly GRPCInferenceService.GRPCInferenceServiceClient _client;
    private readonly Uri _endpoint;
    private readonly string _model;
    private readonly Metadata _headers;
    private readonly TimeSpan _timeout;
    private long _requests;
    public ModelSignature Signature { get; }
    public HashSet<int> WarmedSizes { get; } = new();

    private GrpcRemoteModel(GrpcChannel channel, Uri endpoint, string model, Metadata headers, TimeSpan timeout, ModelSignature signature)
    {
        _channel = channel; _client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        _endpoint = endpoint; _model = model; _headers = headers; _timeout = timeout; Signature = signature;
    }

    /// <summary>True for the addresses this class speaks to.</summary>
    public static bool IsGrpc(Uri endpoint) => endpoint.IsAbsoluteUri && endpoint.Scheme is "grpc" or "grpcs";

    /// <summary>A channel to the server: no limit on message sizes (a batch of images is hundreds of MB).</summary>
    public static GrpcChannel Channel(Uri endpoint) =>
        GrpcChannel.ForAddress(new UriBuilder(endpoint) { Scheme = endpoint.Scheme == "grpcs" ? "https" : "http", Path = "" }.Uri, new GrpcChannelOptions
        {
            MaxReceiveMessageSize = null, MaxSendMessageSize = null,
            HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true, PooledConnectionLifetime = TimeSpan.FromMinutes(5) },
        });

    /// <summary>The bearer token, as the call's metadata.</summary>
    public static Metadata Headers(string? token) => token == null ? new Metadata() : new Metadata { { "authorization", $"Bearer {token}" } };

    /// <summary>The model <paramref name="model"/> on the server at <paramref name="endpoint"/>: its metadata read, ready checked. Throws RemoteModelNotFound, RemoteUnauthorized or RemoteUnitFailed.</summary>
    public static GrpcRemoteModel Open(Uri endpoint, string model, string? token, TimeSpan timeout)
    {
        var channel = Channel(endpoint);
        try
        {
            var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
            var headers = Headers(token);
            var metadata = Call(endpoint, model, () => client.ModelMetadata(new ModelMetadataRequest { Name = model }, headers, DateTime.UtcNow + timeout));
            var ready = Call(endpoint, model, () => client.ModelReady(new ModelReadyRequest { Name = model }, headers, DateTime.UtcNow + timeout));
            if (!ready.Ready)
                throw new HeteroBatchException("RemoteUnitFailed", FailureKind.ResourceUnavailable, $"The server at {endpoint} says model '{model}' is not ready.", model);
            static List<TensorSpec> Specs(IEnumerable<ModelMetadataResponse.Types.TensorMetadata> tensors) =>
                tensors.Select(t => new TensorSpec(t.Name, InferenceProtocol.ElementTypeOf(t.Datatype), t.Shape.Skip(1).ToArray())).ToList();
            var (inputs, outputs) = (Specs(metadata.Inputs), Specs(metadata.Outputs));
            RemoteModel.CheckDeclared(endpoint, model, inputs, outputs);
            return new GrpcRemoteModel(channel, endpoint, model, headers, timeout, new ModelSignature(inputs, outputs));
        }
        catch
        {
            channel.Dispose();
            throw;
        }
    }

    /// <summary>One call, its failures as HeteroBatch errors.</summary>
    internal static T Call<T>(Uri endpoint, string what, Func<T> call)
    {
        try { return call(); }
        catch (RpcException e)
        {
            throw e.StatusCode switch
            {
                StatusCode.NotFound => new HeteroBatchException("RemoteModelNotFound", FailureKind.ObjectNotFound, $"The server at {endpoint} has no model '{what}': {e.Status.Detail}", what, e),
                StatusCode.Unauthenticated => new HeteroBatchException("RemoteUnauthorized", FailureKind.ResourceUnavailable, $"The server at {endpoint} wants a token: {e.Status.Detail}", endpoint.ToString(), e),
                StatusCode.InvalidArgument => InferenceProtocol.Invalid($"the server at {endpoint} refused the request: {e.Status.Detail}"),
                StatusCode.ResourceExhausted => new HeteroBatchException("RemoteUnitFailed", FailureKind.ResourceUnavailable, $"The server at {endpoint} refused the request as too large: {e.Status.Detail}", endpoint.ToString(), e),
                _ => new HeteroBatchException("RemoteUnitFailed", FailureKind.ResourceUnavailable, $"The server at {endpoint} did not answer: {e.Status.StatusCode} {e.Status.Detail}", endpoint.ToString(), e),
            };
        }
    }

    public void Run(IReadOnlyList<TensorBatch> inputs, IReadOnlyList<TensorBatch> outputs, int offset, int count, int padTo = 0, CancellationToken cancel = default)
    {
        var request = new ModelInferRequest { ModelName = _model, Id = Interlocked.Increment(ref _requests).ToString() };
        foreach (var t in inputs)
        {
            var tensor = new ModelInferRequest.Types.InferInputTensor { Name = t.Name, Datatype = InferenceProtocol.DataTypeOf(t.ElementType) };
            tensor.Shape.AddRange(t.ShapeFor(count));
            request.Inputs.Add(tensor);
            request.RawInputContents.Add(ByteString.CopyFrom(t.Bytes(offset, count)));
        }
        Exchange(request, outputs, offset, count, cancel);
    }

    /// <summary>Bytes of the ModelInfer messages sent so far (their protobuf size; HTTP/2 and gRPC framing not counted).</summary>
    public long BytesSent => Interlocked.Read(ref _bytesSent);
    private long _bytesSent;

    /// <summary>
    /// One ModelInfer call of a BYTES input (<paramref name="elements"/>, one per sample: an encoded image each) in shape
    /// <paramref name="shape"/>, as raw_input_contents (each element a 4-byte little-endian length, then its bytes); its
    /// answers written into rows <paramref name="offset"/>.. of <paramref name="outputs"/>.
    /// </summary>
    public void RunBytes(string input, long[] shape, IReadOnlyList<ReadOnlyMemory<byte>> elements, IReadOnlyList<TensorBatch> outputs, int offset, CancellationToken cancel)
    {
        var request = new ModelInferRequest { ModelName = _model, Id = Interlocked.Increment(ref _requests).ToString() };
        var tensor = new ModelInferRequest.Types.InferInputTensor { Name = input, Datatype = InferenceProtocol.BytesType };
        tensor.Shape.AddRange(shape);
        request.Inputs.Add(tensor);
        request.RawInputContents.Add(UnsafeByteOperations.UnsafeWrap(InferenceProtocol.SerializeBytes(elements)));
        Exchange(request, outputs, offset, elements.Count, cancel);
    }

    /// <summary>Sends one ModelInfer call and writes its answers into rows <paramref name="offset"/>.. of <paramref name="outputs"/>.</summary>
    private void Exchange(ModelInferRequest request, IReadOnlyList<TensorBatch> outputs, int offset, int count, CancellationToken cancel)
    {
        foreach (var o in outputs) request.Outputs.Add(new ModelInferRequest.Types.InferRequestedOutputTensor { Name = o.Name });
        Interlocked.Add(ref _bytesSent, request.CalculateSize());
        var reply = Call(_endpoint, _model, () => _client.ModelInfer(request, _headers, DateTime.UtcNow + _timeout, cancel));
        for (int k = 0; k < outputs.Count; k++)
        {
            var output = outputs[k];
            int at = reply.Outputs.ToList().FindIndex(o => o.Name == output.Name);
            if (at < 0) throw InferenceProtocol.Invalid($"the response has no output '{output.Name}'");
            var r = reply.Outputs[at];
            var target = output.Bytes(offset, count);
            if (at >= reply.RawOutputContents.Count)
                throw InferenceProtocol.Invalid($"output '{output.Name}' came back without raw_output_contents");
            var bytes = reply.RawOutputContents[at];
            if (r.Shape.Count == 0 || r.Shape[0] != count || bytes.Length != target.Length || r.Datatype != InferenceProtocol.DataTypeOf(output.ElementType))
                throw InferenceProtocol.Invalid($"output '{output.Name}' came back as {r.Datatype} [{string.Join(",", r.Shape)}]; {count} samples of {InferenceProtocol.DataTypeOf(output.ElementType)} [{string.Join(",", output.SampleShape)}] were expected");
            bytes.Span.CopyTo(target);
            InferenceProtocol.CheckFinite(output, offset, count, _endpoint);
        }
    }

    public void Dispose() => _channel.Dispose();
}
