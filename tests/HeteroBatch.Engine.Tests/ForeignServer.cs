using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using HeteroBatch.Engine.Sessions;

namespace HeteroBatch.Engine.Tests;

/// <summary>
/// A REST inference server written as other people's servers behave, in front of a real HeteroBatch
/// server: by default as MLServer does, listing no binary_tensor_data extension and answering any
/// request that carries binary tensor data with a 500 (JSON requests go through to the real server).
/// The test chooses what its metadata declares and whether it fails every infer request.
/// </summary>
internal sealed class ForeignServer : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly HttpClient _client = new();
    private readonly Uri _target;
    private readonly Thread _accept;
    private int _json, _binary;

    public Uri Url { get; }
    /// <summary>What GET /v2 lists as "extensions"; null leaves the key out.</summary>
    public string[]? Extensions { get; init; } = Array.Empty<string>();
    /// <summary>Model metadata with "inputs": [] and "outputs": [] (MLServer's default where nothing is declared).</summary>
    public bool DeclaresNoTensors { get; init; }
    /// <summary>Every infer request is answered 500, as by a server that cannot run the model.</summary>
    public bool FailsEveryInfer { get; init; }
    /// <summary>Infer requests that came as JSON alone, and with binary tensor data.</summary>
    public (int Json, int Binary) Infers => (Volatile.Read(ref _json), Volatile.Read(ref _binary));

    public ForeignServer(Uri target, int port)
    {
        _target = target;
        Url = new Uri($"http://127.0.0.1:{port}/");
        _listener.Prefixes.Add(Url.ToString());
        _listener.Start();
        _accept = new Thread(Accept) { IsBackground = true, Name = "foreign server" };
        _accept.Start();
    }

    private void Accept()
    {
        while (true)
        {
            HttpListenerContext context;
            try { context = _listener.GetContext(); }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
            new Thread(() => Serve(context)) { IsBackground = true }.Start();
        }
    }

    private void Serve(HttpListenerContext context)
    {
        var request = context.Request;
        var response = context.Response;
        try
        {
            var path = request.Url!.AbsolutePath.TrimEnd('/');
            if (request.HttpMethod == "GET" && path == "/v2")
            {
                var meta = new JsonObject { ["name"] = "foreign", ["version"] = "1.7.1" };
                if (Extensions != null) meta["extensions"] = new JsonArray(Extensions.Select(e => (JsonNode?)e).ToArray());
                Reply(response, 200, meta.ToJsonString());
                return;
            }
            if (request.HttpMethod == "POST" && path.EndsWith("/infer", StringComparison.Ordinal))
            {
                using var body = new MemoryStream();
                request.InputStream.CopyTo(body);
                bool binary = request.Headers[InferenceProtocol.HeaderLengthHeader] != null;
                if (binary) Interlocked.Increment(ref _binary); else Interlocked.Increment(ref _json);
                if (binary || FailsEveryInfer)
                {
                    Reply(response, 500, """{"error":"Internal Server Error"}""");
                    return;
                }
                using var forwarded = _client.PostAsync(new Uri(_target, path.TrimStart('/')), new ByteArrayContent(body.ToArray())
                { Headers = { ContentType = new("application/json") } }).Result;
                Reply(response, (int)forwarded.StatusCode, forwarded.Content.ReadAsStringAsync().Result);
                return;
            }
            using var passed = _client.Send(new HttpRequestMessage(new HttpMethod(request.HttpMethod), new Uri(_target, path.TrimStart('/'))));
            var text = passed.Content.ReadAsStringAsync().Result;
            if (DeclaresNoTensors && passed.IsSuccessStatusCode && JsonNode.Parse(text) is JsonObject model && model.ContainsKey("inputs"))
            {
                model["inputs"] = new JsonArray();
                model["outputs"] = new JsonArray();
                text = model.ToJsonString();
            }
            Reply(response, (int)passed.StatusCode, text);
        }
        catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException or AggregateException or HttpRequestException) { }
    }

    private static void Reply(HttpListenerResponse response, int status, string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        response.StatusCode = status;
        response.ContentType = "application/json";
        response.ContentLength64 = bytes.Length;
        response.OutputStream.Write(bytes);
        response.Close();
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        _client.Dispose();
    }
}
