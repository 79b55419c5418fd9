using System.Text.Json.Nodes;
using HeteroBatch.Engine.Sessions;

namespace HeteroBatch.Engine.Units.Backends;

/// <summary>
/// Inference servers that speak the Open Inference Protocol, as units: over gRPC at grpc:// (or
/// grpcs://) addresses, over REST at http:// (or https://) ones; found by their address, present
/// while they say they are ready, and running a model the server serves under the model's name. Their times include the network; a server that stops answering mid-run is a
/// failed unit whose work moves to the others.
/// </summary>
public sealed class RemoteBackend : IUnitBackend
{
    /// <summary>How long a probe (health, metadata) may take.</summary>
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(5);
    /// <summary>How long one infer request may take before the unit counts as failed.</summary>
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(120);

    public string Name => "Remote";
    public bool NeedsFeeder => false;
    public bool KeepsOneShape => false;
    public int DefaultMaxBatch => 256;
    /// <summary>A second request in flight sends its tensors while the server computes the first.</summary>
    public int MaxInFlight => 2;

    /// <summary>One unit per address: remote0, remote1, ... in the order given; unavailable (with the reason) where the server is not ready.</summary>
    public IReadOnlyList<ComputeUnit> Discover(DiscoveryRequest request, string runtimeVersion)
    {
        if (request.Endpoints.Count > 0) Runtime.SharedFrameworks.PreferAspNetCoreVersions(); // before the gRPC client loads its own
        var units = new List<ComputeUnit>();
        for (int i = 0; i < request.Endpoints.Count; i++)
        {
            var endpoint = Normalize(request.Endpoints[i]);
            var why = Probe(endpoint, request.Token?.Reveal(), out var server);
            string? whyId = null;
            if (why == null && request.Model != null) (why, whyId) = ProbeModel(endpoint, request.Model, request.Token?.Reveal());
            request.Log?.Invoke(why == null ? $"remote{i}: {server} at {endpoint} is ready{(request.Model != null ? $" and runs '{request.Model}'" : "")}" : $"remote{i}: {endpoint}: {why}");
            units.Add(new ComputeUnit
            {
                Id = $"remote{i}", Kind = UnitKind.Remote, Provider = ExecutionProvider.Remote, Name = server ?? endpoint.ToString(),
                Endpoint = endpoint.ToString(), DeviceId = i, RuntimeVersion = runtimeVersion, Available = why == null, Reason = why, ReasonId = whyId, Token = request.Token,
                EncodedModel = request.EncodedModel,
            });
        }
        return units;
    }

    /// <summary>An address as typed: parsed and normalized, or EndpointInvalid saying what is wrong with it.</summary>
    public static Uri Parse(string text)
    {
        if (Uri.TryCreate(text, UriKind.Absolute, out var uri)) return Normalize(uri);
        var port = System.Text.RegularExpressions.Regex.Match(text, @"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/@]*@)?(?:\[[^\]]*\]|[^/:\[]*):(\d*)(?:/|$)");
        string why = !text.Contains("://") ? "it has no scheme (grpc://, grpcs://, http:// or https://)"
            : port.Success && !(int.TryParse(port.Groups[1].Value, out var p) && p is >= 1 and <= 65535) ? $"its port '{port.Groups[1].Value}' is not 1 to 65535"
            : System.Text.RegularExpressions.Regex.IsMatch(text, @"^[^:]*://(?:[^/@]*@)?(?::|/|$)") ? "it has no host"
            : "it does not parse as an address";
        throw Invalid(text, why);
    }

    private static HeteroBatchException Invalid(string endpoint, string why) => new("EndpointInvalid", FailureKind.InvalidArgument,
        $"'{endpoint}' is not the address of an inference server: {why}. Give grpc://host:port (or grpcs://) for its gRPC port, http://host:port (or https://) for REST.", endpoint);

    /// <summary>The address as a base for the protocol's paths (http://host:port/...) with a trailing slash; EndpointInvalid for what cannot be one, and for credentials in it.</summary>
    public static Uri Normalize(Uri endpoint)
    {
        if (!endpoint.IsAbsoluteUri || endpoint.Scheme is not ("http" or "https" or "grpc" or "grpcs"))
            throw Invalid(endpoint.IsAbsoluteUri ? endpoint.GetLeftPart(UriPartial.Authority) : endpoint.OriginalString, "its scheme is not grpc, grpcs, http or https");
        if (endpoint.UserInfo.Length > 0)
            // never shown, stored or sent: the text given is not repeated, only where it points
            throw new HeteroBatchException("EndpointInvalid", FailureKind.InvalidArgument,
                $"The address of {endpoint.Scheme}://{endpoint.Host}:{endpoint.Port}/ carries credentials (user:password@); addresses never do here. Give the token with -Token or -Credential (or HETEROBATCH_REMOTE_TOKEN).",
                $"{endpoint.Scheme}://{endpoint.Host}:{endpoint.Port}/");
        if (endpoint.Host.Length == 0) throw Invalid(endpoint.OriginalString, "it has no host");
        if (endpoint.Port is < 1 or > 65535) throw Invalid(endpoint.OriginalString, $"its port {endpoint.Port} is not 1 to 65535");
        var text = endpoint.ToString();
        return text.EndsWith('/') ? endpoint : new Uri(text + "/");
    }

    /// <summary>Null when the server says it is ready; otherwise why not. <paramref name="server"/>: its name and version from its metadata.</summary>
    private static string? Probe(Uri endpoint, string? token, out string? server)
    {
        server = null;
        if (GrpcRemoteModel.IsGrpc(endpoint)) return ProbeGrpc(endpoint, token, out server);
        using var http = RemoteModel.Client(token, ProbeTimeout);
        try
        {
            using (var ready = http.Send(new HttpRequestMessage(HttpMethod.Get, new Uri(endpoint, "v2/health/ready"))))
                if (!ready.IsSuccessStatusCode) return $"the server is not ready ({(int)ready.StatusCode} {ready.ReasonPhrase})";
            using var meta = http.Send(new HttpRequestMessage(HttpMethod.Get, new Uri(endpoint, "v2")));
            if (meta.IsSuccessStatusCode && JsonNode.Parse(meta.Content.ReadAsStream()) is JsonObject o)
                server = $"{o["name"]?.GetValue<string>() ?? "server"} {o["version"]?.GetValue<string>() ?? ""}".Trim();
            return null;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException or InvalidOperationException)
        {
            return $"no answer ({e.Message})";
        }
    }

    /// <summary>How long the model probe's one-sample request may take (a server may load the model first).</summary>
    private static readonly TimeSpan ModelProbeTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Null when the server runs <paramref name="model"/>: its metadata declares inputs and outputs, and one sample of zeros
    /// (where every input's sample shape is fixed) is answered; otherwise why not, and the ErrorId that said so.
    /// </summary>
    internal static (string? Why, string? ErrorId) ProbeModel(Uri endpoint, string model, string? token)
    {
        try
        {
            using IModelSession session = GrpcRemoteModel.IsGrpc(endpoint)
                ? GrpcRemoteModel.Open(endpoint, model, token, ModelProbeTimeout)
                : RemoteModel.Open(endpoint, model, token, ModelProbeTimeout);
            var signature = session.Signature;
            if (signature.Inputs.Any(t => t.SampleShape.Any(d => d < 0)) || signature.Outputs.Any(t => t.SampleShape.Any(d => d < 0))) return (null, null);
            var inputs = signature.Inputs.Select(t => new Data.TensorBatch(t.Name, t.SampleShape, 1, null, t.ElementType)).ToList();
            var outputs = signature.Outputs.Select(t => new Data.TensorBatch(t.Name, t.SampleShape, 1, null, t.ElementType)).ToList();
            session.Run(inputs, outputs, 0, 1);
            return (null, null);
        }
        catch (HeteroBatchException e)
        {
            return ($"it cannot run '{model}': {e.Message}", e.ErrorId);
        }
    }

    private static string? ProbeGrpc(Uri endpoint, string? token, out string? server)
    {
        server = null;
        using var channel = GrpcRemoteModel.Channel(endpoint);
        var client = new Sessions.Grpc.GRPCInferenceService.GRPCInferenceServiceClient(channel);
        try
        {
            if (!client.ServerReady(new Sessions.Grpc.ServerReadyRequest(), deadline: DateTime.UtcNow + ProbeTimeout).Ready) return "the server is not ready";
            try
            {
                var meta = client.ServerMetadata(new Sessions.Grpc.ServerMetadataRequest(), GrpcRemoteModel.Headers(token), DateTime.UtcNow + ProbeTimeout);
                server = $"{(meta.Name.Length > 0 ? meta.Name : "server")} {meta.Version}".Trim();
            }
            catch (Grpc.Core.RpcException e) when (e.StatusCode == Grpc.Core.StatusCode.Unauthenticated) { }
            return null;
        }
        catch (Grpc.Core.RpcException e)
        {
            return $"no answer over gRPC ({e.StatusCode}: {e.Status.Detail})";
        }
    }

    public IModelSession Open(ComputeUnit unit, Models.ModelSource model, EngineOptions settings) => Opener(unit, settings).Open(model.Name);

    /// <summary>The unit's endpoint, and how to open a model of its server by name (over gRPC or REST, with the unit's own token, else the module's default).</summary>
    private static (Uri Endpoint, Func<string, IRemoteSession> Open) Opener(ComputeUnit unit, EngineOptions settings)
    {
        var endpoint = new Uri(unit.Endpoint ?? throw new HeteroBatchException("EndpointInvalid", FailureKind.InvalidData, $"Remote unit '{unit.Id}' has no endpoint.", unit.Id));
        Runtime.SharedFrameworks.PreferAspNetCoreVersions();
        var token = (unit.Token ?? settings.RemoteToken)?.Reveal();
        return (endpoint, name => GrpcRemoteModel.IsGrpc(endpoint)
            ? GrpcRemoteModel.Open(endpoint, name, token, RequestTimeout)
            : RemoteModel.Open(endpoint, name, token, RequestTimeout));
    }

    /// <summary>
    /// The server's encoded-image form of the model (the unit's <see cref="ComputeUnit.EncodedModel"/>, else <see cref="EncodedImageModel"/>'s name), where it serves one: the unit's
    /// share of a file job is then sent as image files, decoded on the server; null where it does not (floats as before).
    /// </summary>
    public IEncodedImageSession? OpenImageSession(ComputeUnit unit, Models.ModelSource model, EngineOptions settings, Data.TensorSpec input,
        Data.ImagePreprocessing preprocessing, int maxChunk)
    {
        var (endpoint, open) = Opener(unit, settings);
        return RemoteImageSession.Open(open, endpoint, model.Name, unit.EncodedModel, input, preprocessing);
    }

    public string? WhyAbsent(ComputeUnit unit, IReadOnlyList<ComputeUnit> found) =>
        unit.Endpoint == null ? "it has no endpoint" : Probe(new Uri(unit.Endpoint), null, out _);

    /// <summary>A remote unit's requests run on a worker thread that waits for the network; it is pinned nowhere.</summary>
    public int? WorkerProcessor(ComputeUnit unit) => null;

    public double? ComputeOnlyMedianMs(IModelSession model, ComputeUnit unit, int batch, int runs, CancellationToken cancel) => null;

    /// <summary>Two units at one address are one server.</summary>
    public bool Overlap(ComputeUnit a, ComputeUnit b) => a.Endpoint != null && a.Endpoint == b.Endpoint;
}
