using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using HeteroBatch.Engine.Data;

namespace HeteroBatch.Engine.Sessions;

/// <summary>
/// A model on an inference server that speaks the Open Inference Protocol over REST (Triton,
/// OpenVINO Model Server, KServe, or another HeteroBatch): each run is one infer request with
/// the samples' tensors as binary data where the server offers the binary tensor data extension
/// (its server metadata lists it, or lists no extensions at all), as JSON numbers where it lists
/// extensions without it; its outputs written into the same rows. Used only on its unit's worker thread.
/// </summary>
internal sealed class RemoteModel : IRemoteSession
{
    private readonly HttpClient _http;
    private readonly Uri _infer;
    private readonly string _model;
    private long _requests;
    public ModelSignature Signature { get; }
    public HashSet<int> WarmedSizes { get; } = new();
    /// <summary>True when requests carry binary tensor data; false when they carry JSON numbers (the server does not offer the extension).</summary>
    public bool Binary { get; }

    private RemoteModel(HttpClient http, Uri infer, string model, ModelSignature signature, bool binary)
    {
        _http = http; _infer = infer; _model = model; Signature = signature; Binary = binary;
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
            using var response = http.Send(new HttpRequestMessage(HttpMethod.Get, new Uri(endpoint, $"v2/models/{name}")), HttpCompletionOption.ResponseHeadersRead);
            if (response.StatusCode == HttpStatusCode.NotFound)
                throw new HeteroBatchException("RemoteModelNotFound", FailureKind.ObjectNotFound, $"The server at {endpoint} has no model '{model}'; serve it under that name.", model);
            Check(response, endpoint);
            List<TensorSpec> inputs, outputs;
            try
            {
                var metadata = JsonNode.Parse(ReadCapped(response, MaxMetadataBytes, endpoint, "its model metadata", default)) ?? throw InferenceProtocol.Invalid("empty model metadata");
                (inputs, outputs) = InferenceProtocol.ReadModelMetadata(metadata);
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException or HeteroBatchException { ErrorId: "ProtocolInvalid" })
            {
                throw new HeteroBatchException("RemoteUnitFailed", FailureKind.ResourceUnavailable, $"The server at {endpoint} answered model metadata that is not the protocol's ({(e is HeteroBatchException ? e.Message : "malformed JSON")}).", endpoint.ToString(), e);
            }
            CheckDeclared(endpoint, model, inputs, outputs);
            return new RemoteModel(http, new Uri(endpoint, $"v2/models/{name}/infer"), model, new ModelSignature(inputs, outputs), OffersBinary(http, endpoint));
        }
        catch
        {
            http.Dispose();
            throw;
        }
    }

    /// <summary>
    /// RemoteTensorsUndeclared where a model's metadata lists no inputs or no outputs: nothing can be sent to it
    /// nor read back (MLServer's default metadata, for one, lists none until its model settings declare them).
    /// </summary>
    internal static void CheckDeclared(Uri endpoint, string model, IReadOnlyList<TensorSpec> inputs, IReadOnlyList<TensorSpec> outputs)
    {
        if (inputs.Count > 0 && outputs.Count > 0) return;
        var missing = inputs.Count == 0 && outputs.Count == 0 ? "no inputs and no outputs" : inputs.Count == 0 ? "no inputs" : "no outputs";
        throw new HeteroBatchException("RemoteTensorsUndeclared", FailureKind.InvalidData,
            $"The server at {endpoint.GetLeftPart(UriPartial.Authority)} declares {missing} in model '{model}''s metadata; a remote unit needs the name, datatype and shape " +
            "(batch dimension first, -1) of every input and output. Declare them in the model's settings on the server (MLServer: \"inputs\" and \"outputs\" " +
            "of model-settings.json; Triton: \"input\" and \"output\" in config.pbtxt).", model);
    }

    /// <summary>
    /// Whether the server takes binary tensor data: true unless its server metadata (GET /v2) lists extensions
    /// and <see cref="InferenceProtocol.BinaryExtension"/> is not among them. Metadata that cannot be read says nothing: binary.
    /// </summary>
    internal static bool OffersBinary(HttpClient http, Uri endpoint)
    {
        try
        {
            using var response = http.Send(new HttpRequestMessage(HttpMethod.Get, new Uri(endpoint, "v2")), HttpCompletionOption.ResponseHeadersRead);
            if (!response.IsSuccessStatusCode) return true;
            var extensions = InferenceProtocol.Extensions(ReadCapped(response, MaxMetadataBytes, endpoint, "its server metadata", default));
            return extensions == null || extensions.Contains(InferenceProtocol.BinaryExtension);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or HeteroBatchException) { return true; }
    }

    /// <summary>The largest model metadata read (a server's answer beyond it is refused).</summary>
    private const int MaxMetadataBytes = 16 << 20;
    /// <summary>The most of an error answer read for its message.</summary>
    private const int MaxErrorBytes = 64 << 10;

    /// <summary>
    /// An answer's body, refused (RemoteUnitFailed) before it is read when its Content-Length says it is over
    /// <paramref name="limit"/>, and while it is read when it goes on past it.
    /// </summary>
    internal static byte[] ReadCapped(HttpResponseMessage response, long limit, Uri endpoint, string what, CancellationToken cancel)
    {
        HeteroBatchException TooLarge(string size) => new("RemoteUnitFailed", FailureKind.ResourceUnavailable,
            $"The server at {endpoint.GetLeftPart(UriPartial.Authority)} answered {what} of {size} bytes; at most {limit} were expected.", endpoint.ToString());
        if (response.Content.Headers.ContentLength is long declared && declared > limit) throw TooLarge(declared.ToString());
        using var stream = response.Content.ReadAsStream(cancel);
        using var buffer = new MemoryStream();
        var chunk = new byte[1 << 16];
        int n;
        while ((n = stream.Read(chunk)) > 0)
        {
            if (buffer.Length + n > limit) throw TooLarge($"more than {limit}");
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }

    internal static void Check(HttpResponseMessage response, Uri endpoint)
    {
        if (response.IsSuccessStatusCode) return;
        string detail = "";
        try
        {
            // the first 64 KiB at most; what is not JSON gives no detail
            using var stream = response.Content.ReadAsStream();
            var head = new byte[MaxErrorBytes];
            int length = 0, n;
            while (length < head.Length && (n = stream.Read(head, length, head.Length - length)) > 0) length += n;
            detail = JsonNode.Parse(head.AsSpan(0, length))?["error"]?.GetValue<string>() ?? "";
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or IOException or HttpRequestException) { }
        throw new HeteroBatchException(response.StatusCode == HttpStatusCode.Unauthorized ? "RemoteUnauthorized" : "RemoteUnitFailed",
            FailureKind.ResourceUnavailable, $"The server at {endpoint} answered {(int)response.StatusCode} {response.ReasonPhrase}{(detail.Length > 0 ? $": {detail}" : "")}.", endpoint.ToString());
    }

    public void Run(IReadOnlyList<TensorBatch> inputs, IReadOnlyList<TensorBatch> outputs, int offset, int count, int padTo = 0, CancellationToken cancel = default)
    {
        var id = Interlocked.Increment(ref _requests).ToString();
        HttpContent content;
        if (Binary)
        {
            // the header, then each input's rows copied once, straight into the body
            var sizes = inputs.Select(t => (long)count * t.SampleElements * TensorBatch.ElementSize(t.ElementType)).ToList();
            var header = InferenceProtocol.Header("inputs", inputs.Select((t, i) => (t.Name, t.ShapeFor(count), InferenceProtocol.DataTypeOf(t.ElementType), sizes[i])).ToList(),
                id: id, requestedOutputs: outputs.Select(o => o.Name).ToList());
            var body = new byte[header.Length + sizes.Sum()];
            header.CopyTo(body, 0);
            int at = header.Length;
            foreach (var t in inputs) { var rows = t.Bytes(offset, count); rows.CopyTo(body.AsSpan(at)); at += rows.Length; }
            content = new ByteArrayContent(body);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            content.Headers.Add(InferenceProtocol.HeaderLengthHeader, header.Length.ToString());
        }
        else
        {
            // JSON numbers, formatted straight from the rows; the outputs come back as JSON
            var json = InferenceProtocol.EncodeJsonRequest(inputs.Select(t => (t.Name, t.ShapeFor(count), InferenceProtocol.DataTypeOf(t.ElementType), Rows(t, offset, count))).ToList(),
                id, outputs.Select(o => o.Name).ToList());
            content = new ReadOnlyMemoryContent(json);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }
        Exchange(content, outputs, offset, count, cancel);
    }

    /// <summary>Bytes of the infer requests' bodies sent so far (headers of HTTP not counted).</summary>
    public long BytesSent => Interlocked.Read(ref _bytesSent);
    private long _bytesSent;

    /// <summary>
    /// One infer request of a BYTES input (<paramref name="elements"/>, one per sample: an encoded image each) in shape
    /// <paramref name="shape"/>, as binary data where the server takes it, else as JSON strings (base64); its answers
    /// written into rows <paramref name="offset"/>.. of <paramref name="outputs"/>.
    /// </summary>
    public void RunBytes(string input, long[] shape, IReadOnlyList<ReadOnlyMemory<byte>> elements, IReadOnlyList<TensorBatch> outputs, int offset, CancellationToken cancel)
    {
        var id = Interlocked.Increment(ref _requests).ToString();
        var names = outputs.Select(o => o.Name).ToList();
        HttpContent content;
        if (Binary)
        {
            // the header, then the files written once, straight into the body
            long size = InferenceProtocol.SerializedLength(elements);
            var header = InferenceProtocol.Header("inputs", new[] { (input, shape, InferenceProtocol.BytesType, size) }, id: id, requestedOutputs: names);
            var body = new byte[header.Length + size];
            header.CopyTo(body, 0);
            InferenceProtocol.SerializeBytes(elements, body.AsSpan(header.Length));
            content = new ByteArrayContent(body);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            content.Headers.Add(InferenceProtocol.HeaderLengthHeader, header.Length.ToString());
        }
        else
        {
            var serialized = InferenceProtocol.SerializeBytes(elements);
            content = new ReadOnlyMemoryContent(InferenceProtocol.EncodeJsonRequest(new[] { (input, shape, InferenceProtocol.BytesType, (ReadOnlyMemory<byte>)serialized) }, id, names));
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }
        Exchange(content, outputs, offset, elements.Count, cancel);
    }

    /// <summary>Sends one infer request and writes its answers into rows <paramref name="offset"/>.. of <paramref name="outputs"/>.</summary>
    private void Exchange(HttpContent content, IReadOnlyList<TensorBatch> outputs, int offset, int count, CancellationToken cancel)
    {
        Interlocked.Add(ref _bytesSent, content.Headers.ContentLength ?? 0);
        byte[] reply;
        int? replyHeader;
        try
        {
            using var response = _http.Send(new HttpRequestMessage(HttpMethod.Post, _infer) { Content = content }, HttpCompletionOption.ResponseHeadersRead, cancel);
            Check(response, _infer);
            replyHeader = InferenceProtocol.HeaderLength(response.Headers.TryGetValues(InferenceProtocol.HeaderLengthHeader, out var v) ? v.First()
                : response.Content.Headers.TryGetValues(InferenceProtocol.HeaderLengthHeader, out var cv) ? cv.First() : null);
            reply = ReadCapped(response, MaxAnswerBytes(outputs, count), _infer, "an infer answer", cancel);
        }
        catch (HttpRequestException e)
        {
            throw new HeteroBatchException("RemoteUnitFailed", FailureKind.ResourceUnavailable, $"The server at {_infer.GetLeftPart(UriPartial.Authority)} did not answer: {e.Message}", _model, e);
        }
        catch (TaskCanceledException e) when (!cancel.IsCancellationRequested)
        {
            throw new HeteroBatchException("RemoteUnitFailed", FailureKind.ResourceUnavailable, $"The server at {_infer.GetLeftPart(UriPartial.Authority)} did not answer within {_http.Timeout.TotalSeconds:F0} s.", _model, e);
        }
        List<InferenceProtocol.Tensor> results;
        try { (_, results) = InferenceProtocol.Decode(reply, replyHeader, "outputs"); }
        catch (HeteroBatchException e) when (e is { Kind: FailureKind.InvalidData }) // the answer is not the protocol's
        {
            throw new HeteroBatchException("RemoteUnitFailed", FailureKind.ResourceUnavailable, $"The server at {_infer.GetLeftPart(UriPartial.Authority)} answered what is not the protocol's: {e.Message}", _model, e);
        }
        foreach (var output in outputs)
        {
            var r = results.FirstOrDefault(t => t.Name == output.Name)
                ?? throw InferenceProtocol.Invalid($"the response has no output '{output.Name}'");
            var target = output.Bytes(offset, count);
            if (r.Shape.Length == 0 || r.Shape[0] != count || r.Bytes.Length != target.Length || r.DataType != InferenceProtocol.DataTypeOf(output.ElementType))
                throw InferenceProtocol.Invalid($"output '{output.Name}' came back as {r.DataType} [{string.Join(",", r.Shape)}]; {count} samples of {InferenceProtocol.DataTypeOf(output.ElementType)} [{string.Join(",", output.SampleShape)}] were expected");
            r.Bytes.Span.CopyTo(target);
            InferenceProtocol.CheckFinite(output, offset, count, _infer);
        }
    }

    /// <summary>
    /// The most bytes an answer of <paramref name="count"/> samples of these outputs can take: their binary size,
    /// eight times over (JSON writes a 4-byte float in at most 16 characters and a separator), and 1 MiB of header.
    /// </summary>
    internal static long MaxAnswerBytes(IReadOnlyList<TensorBatch> outputs, int count) =>
        (1L << 20) + 8 * outputs.Sum(o => (long)count * o.SampleElements * TensorBatch.ElementSize(o.ElementType));

    /// <summary>Rows of a batch as memory for a JSON request (copied once; the numbers are formatted from the copy).</summary>
    private static ReadOnlyMemory<byte> Rows(TensorBatch t, int offset, int count) => t.Bytes(offset, count).ToArray();

    public void Dispose() => _http.Dispose();
}
