using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using HeteroBatch.Engine.Data;

namespace HeteroBatch.Engine.Sessions;

/// <summary>
/// A model on an inference server that speaks the Open Inference Protocol over REST (Triton,
/// OpenVINO Model Server, KServe, or another HeteroBatch): each run is one infer request with
/// the samples' tensors as binary data, its outputs written into the same rows. Used only on its
/// unit's worker thread.
/// </summary>
internal sealed class RemoteModel : IModelSession
{
    private readonly HttpClient _http;
    private readonly Uri _infer;
    private readonly string _model;
    private long _requests;
    public ModelSignature Signature { get; }
    public HashSet<int> WarmedSizes { get; } = new();

    private RemoteModel(HttpClient http, Uri infer, string model, ModelSignature signature)
    {
        _http = http; _infer = infer; _model = model; Signature = signature;
    }

    /// <summary>An HTTP client for one server: a bearer token if given, and a time limit for each request.</summary>
    public static HttpClient Client(string? token, TimeSpan timeout)
    {
        var http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = timeout };
        if (token != null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return http;
    }

    /// <summary>The model <paramref name="model"/> on the server at <paramref name="endpoint"/>: its metadata read, ready checked. Throws RemoteModelNotFound or RemoteUnitFailed.</summary>
    public static RemoteModel Open(Uri endpoint, string model, string? token, TimeSpan timeout)
    {
        var http = Client(token, timeout);
        try
        {
            var name = Uri.EscapeDataString(model);
            using var response = http.Send(new HttpRequestMessage(HttpMethod.Get, new Uri(endpoint, $"v2/models/{name}")));
            if (response.StatusCode == HttpStatusCode.NotFound)
                throw new HeteroBatchException("RemoteModelNotFound", FailureKind.ObjectNotFound, $"The server at {endpoint} has no model '{model}'; serve it under that name.", model);
            Check(response, endpoint);
            var metadata = JsonNode.Parse(response.Content.ReadAsStream()) ?? throw InferenceProtocol.Invalid("empty model metadata");
            var (inputs, outputs) = InferenceProtocol.ReadModelMetadata(metadata);
            return new RemoteModel(http, new Uri(endpoint, $"v2/models/{name}/infer"), model, new ModelSignature(inputs, outputs));
        }
        catch
        {
            http.Dispose();
            throw;
        }
    }

    internal static void Check(HttpResponseMessage response, Uri endpoint)
    {
        if (response.IsSuccessStatusCode) return;
        string detail = "";
        try { detail = JsonNode.Parse(response.Content.ReadAsStream())?["error"]?.GetValue<string>() ?? ""; }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException) { }
        throw new HeteroBatchException(response.StatusCode == HttpStatusCode.Unauthorized ? "RemoteUnauthorized" : "RemoteUnitFailed",
            FailureKind.ResourceUnavailable, $"The server at {endpoint} answered {(int)response.StatusCode} {response.ReasonPhrase}{(detail.Length > 0 ? $": {detail}" : "")}.", endpoint.ToString());
    }

    public void Run(IReadOnlyList<TensorBatch> inputs, IReadOnlyList<TensorBatch> outputs, int offset, int count, int padTo = 0, CancellationToken cancel = default)
    {
        // the header, then each input's rows copied once, straight into the body
        var sizes = inputs.Select(t => (long)count * t.SampleElements * TensorBatch.ElementSize(t.ElementType)).ToList();
        var header = InferenceProtocol.Header("inputs", inputs.Select((t, i) => (t.Name, t.ShapeFor(count), InferenceProtocol.DataTypeOf(t.ElementType), sizes[i])).ToList(),
            id: Interlocked.Increment(ref _requests).ToString(), requestedOutputs: outputs.Select(o => o.Name).ToList());
        var body = new byte[header.Length + sizes.Sum()];
        header.CopyTo(body, 0);
        int at = header.Length;
        foreach (var t in inputs) { var rows = t.Bytes(offset, count); rows.CopyTo(body.AsSpan(at)); at += rows.Length; }
        int headerLength = header.Length;
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        content.Headers.Add(InferenceProtocol.HeaderLengthHeader, headerLength.ToString());
        byte[] reply;
        int? replyHeader;
        try
        {
            using var response = _http.Send(new HttpRequestMessage(HttpMethod.Post, _infer) { Content = content }, cancel);
            Check(response, _infer);
            replyHeader = InferenceProtocol.HeaderLength(response.Headers.TryGetValues(InferenceProtocol.HeaderLengthHeader, out var v) ? v.First()
                : response.Content.Headers.TryGetValues(InferenceProtocol.HeaderLengthHeader, out var cv) ? cv.First() : null);
            using var stream = response.Content.ReadAsStream(cancel);
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            reply = buffer.ToArray();
        }
        catch (HttpRequestException e)
        {
            throw new HeteroBatchException("RemoteUnitFailed", FailureKind.ResourceUnavailable, $"The server at {_infer.GetLeftPart(UriPartial.Authority)} did not answer: {e.Message}", _model, e);
        }
        catch (TaskCanceledException e) when (!cancel.IsCancellationRequested)
        {
            throw new HeteroBatchException("RemoteUnitFailed", FailureKind.ResourceUnavailable, $"The server at {_infer.GetLeftPart(UriPartial.Authority)} did not answer within {_http.Timeout.TotalSeconds:F0} s.", _model, e);
        }
        var (_, results) = InferenceProtocol.Decode(reply, replyHeader, "outputs");
        foreach (var output in outputs)
        {
            var r = results.FirstOrDefault(t => t.Name == output.Name)
                ?? throw InferenceProtocol.Invalid($"the response has no output '{output.Name}'");
            var target = output.Bytes(offset, count);
            if (r.Shape.Length == 0 || r.Shape[0] != count || r.Bytes.Length != target.Length || r.DataType != InferenceProtocol.DataTypeOf(output.ElementType))
                throw InferenceProtocol.Invalid($"output '{output.Name}' came back as {r.DataType} [{string.Join(",", r.Shape)}]; {count} samples of {InferenceProtocol.DataTypeOf(output.ElementType)} [{string.Join(",", output.SampleShape)}] were expected");
            r.Bytes.Span.CopyTo(target);
        }
    }

    public void Dispose() => _http.Dispose();
}
