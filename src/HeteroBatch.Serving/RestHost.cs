using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using HeteroBatch.Engine;
using HeteroBatch.Engine.Sessions;

namespace HeteroBatch.Serving;

/// <summary>
/// Kestrel serving an <see cref="InferenceServer"/> over the Open Inference Protocol's REST
/// endpoints (HTTP/1.1). Any Host header is served. Every answer of this server is the protocol's
/// JSON ({"error": ...} for errors; no exception text). An infer request is read whole before it
/// waits for a place among the requests handled at once, so a client that sends its body slowly
/// holds no place (and Kestrel drops a body slower than <see cref="MinBodyBytesPerSecond"/>);
/// its body, tensors and outputs are taken from the server's <see cref="MemoryBudget"/> before they
/// are allocated. Bodies over the limit get 413 whether their length is declared or chunked.
/// </summary>
internal sealed class RestHost : IDisposable
{
    /// <summary>The slowest body taken, after a grace of <see cref="BodyGrace"/> (Kestrel's own defaults, stated).</summary>
    public const double MinBodyBytesPerSecond = 240;
    public static readonly TimeSpan BodyGrace = TimeSpan.FromSeconds(5);
    /// <summary>How long a stop waits for the answers of requests in flight (cancelled by then) to be written.</summary>
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);

    private readonly WebApplication _app;
    private RestHost(WebApplication app) => _app = app;

    public static RestHost Start(InferenceServer server, IPAddress address, int port, long maxRequestBytes)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = maxRequestBytes;
            k.Limits.MinRequestBodyDataRate = new MinDataRate(MinBodyBytesPerSecond, BodyGrace);
            k.Listen(address, port, o => o.Protocols = HttpProtocols.Http1);
        });
        var app = builder.Build();
        var rest = new Endpoints(server, maxRequestBytes);
        app.Run(rest.HandleAsync);
        try { app.StartAsync().GetAwaiter().GetResult(); }
        catch (Exception e) when (e is IOException or InvalidOperationException)
        {
            ((IDisposable)app).Dispose();
            throw new HeteroBatchException("ServerStartFailed", FailureKind.ResourceUnavailable, $"Could not listen on {address}:{port}: {e.Message}", port, e);
        }
        return new RestHost(app);
    }

    /// <summary>Stops taking connections; requests in flight (cancelled by the server's stop) have <see cref="StopGrace"/> to write their answers.</summary>
    public void Dispose()
    {
        using (var grace = new CancellationTokenSource(StopGrace))
            try { _app.StopAsync(grace.Token).GetAwaiter().GetResult(); }
            catch (OperationCanceledException) { }
        ((IDisposable)_app).Dispose();
    }

    private sealed class Endpoints(InferenceServer server, long maxRequestBytes)
    {
        public async Task HandleAsync(HttpContext http)
        {
            try
            {
                var path = (http.Request.PathBase + http.Request.Path).Value!.TrimEnd('/');
                var method = http.Request.Method;
                if (method == "GET" && path is "/v2/health/live" or "/v2/health/ready") { await ReplyAsync(http, 200, new JsonObject()); return; }
                if (!server.Admits(http.Request.Headers.Authorization.FirstOrDefault()))
                {
                    http.Response.Headers.WWWAuthenticate = "Bearer";
                    await ReplyAsync(http, 401, Error("a bearer token is required"));
                    return;
                }
                if (method == "GET" && path == "/v2")
                {
                    await ReplyAsync(http, 200, new JsonObject
                    {
                        ["name"] = "heterobatch",
                        ["version"] = typeof(InferenceServer).Assembly.GetName().Version?.ToString(3) ?? "0",
                        ["extensions"] = new JsonArray(ModelExtensions.Offered.Select(e => (JsonNode?)e).ToArray()),
                    });
                    return;
                }
                if (method == "GET" && path == "/v2/models/stats") { await ReplyAsync(http, 200, ModelExtensions.Stats(server)); return; }
                if (ModelExtensions.MissingExtension(path, server.Model) is { } extension)
                {
                    await ReplyAsync(http, 404, Error($"this server does not offer the '{extension}' extension; it offers {string.Join(", ", ModelExtensions.Offered)}"));
                    return;
                }
                // the model, or its encoded-image form (served beside it where the model takes images)
                var rest = server.EncodedModel is { } named ? RestOf(path, named) : null;
                bool encoded = rest != null;
                var model = encoded ? server.EncodedModel! : server.Model;
                rest ??= RestOf(path, server.Model);
                if (rest != null && rest.StartsWith("/versions/", StringComparison.Ordinal))
                {
                    int cut = rest.IndexOf('/', "/versions/".Length);
                    var version = cut < 0 ? rest["/versions/".Length..] : rest["/versions/".Length..cut];
                    if (version != "1") { await ReplyAsync(http, 404, Error($"model '{model}' has no version '{version}'; it has version 1")); return; }
                    rest = cut < 0 ? "" : rest[cut..];
                }
                if (rest == null) { await ReplyAsync(http, 404, Error($"no model at {path}; this server serves '{server.Model}'{(server.EncodedModel != null ? $" and '{server.EncodedModel}'" : "")}")); return; }
                var signature = encoded ? server.EncodedSignature! : server.Signature;
                if (method == "GET" && rest == "") { await ReplyAsync(http, 200, InferenceProtocol.ModelMetadata(model, signature.Inputs, signature.Outputs)); return; }
                if (method == "GET" && rest == "/ready") { await ReplyAsync(http, 200, new JsonObject()); return; }
                if (method == "POST" && rest == "/infer") { await InferAsync(http, encoded); return; }
                if (encoded) { await ReplyAsync(http, 404, Error($"{method} {path} is not an endpoint of this server ('{model}' answers metadata, ready and infer)")); return; }
                if (method == "GET" && rest == "/config") { await ReplyAsync(http, 200, ModelExtensions.Config(server)); return; }
                if (method == "GET" && rest == "/stats") { await ReplyAsync(http, 200, ModelExtensions.Stats(server)); return; }
                await ReplyAsync(http, 404, Error($"{method} {path} is not an endpoint of this server"));
            }
            catch (HeteroBatchException e)
            {
                server.CountFailure();
                await TryReplyAsync(http, e.Kind is FailureKind.LimitExceeded ? 413 : e.Kind is FailureKind.ResourceUnavailable or FailureKind.OperationStopped ? 503 : 400, Error(e.Message));
            }
            catch (Microsoft.AspNetCore.Http.BadHttpRequestException e)
            {
                // Kestrel's own refusals while the body was read: over the limit (413), too slow (408), shorter than declared (400)
                server.CountFailure();
                await TryReplyAsync(http, e.StatusCode, Error(e.StatusCode switch
                {
                    413 => $"the request is larger than this server takes ({maxRequestBytes} bytes)",
                    408 => $"the request body came slower than {MinBodyBytesPerSecond} bytes a second",
                    _ => "the request is malformed (its body ended before its length, or its framing is broken)",
                }));
            }
            catch (OperationCanceledException) when (server.Stopping.IsCancellationRequested)
            {
                server.CountFailure();
                await TryReplyAsync(http, 503, Error("the server is stopping"));
            }
            catch (Exception e) when (e is OperationCanceledException or IOException)
            {
                server.CountFailure(); // the client went away
            }
            catch (Exception)
            {
                // whatever else went wrong answers this request (without its text), never ends the process
                server.CountFailure();
                await TryReplyAsync(http, 500, Error("the server failed to answer this request"));
            }
        }

        /// <summary>What follows /v2/models/<paramref name="model"/> in <paramref name="path"/> ("" for the model itself), or null where the path is not under it.</summary>
        private static string? RestOf(string path, string model)
        {
            var prefix = $"/v2/models/{model}";
            return path == prefix || path.StartsWith(prefix + "/", StringComparison.Ordinal) ? path[prefix.Length..] : null;
        }

        private async Task InferAsync(HttpContext http, bool encoded)
        {
            var cancel = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, server.Stopping);
            using var _ = cancel;
            var arrived = System.Diagnostics.Stopwatch.StartNew();
            long? length = http.Request.ContentLength;
            if (length > maxRequestBytes)
                throw new HeteroBatchException("RequestTooLarge", FailureKind.LimitExceeded, $"the request holds {length} bytes; this server takes up to {maxRequestBytes}");
            using var held = server.Budget.Open();
            var body = await ReadBodyAsync(http.Request.Body, length, held, cancel.Token);
            int? headerLength = InferenceProtocol.HeaderLength(http.Request.Headers[InferenceProtocol.HeaderLengthHeader].FirstOrDefault());
            var (header, tensors) = InferenceProtocol.Decode(body, headerLength, "inputs", held.Take);
            // the run's copy of the inputs, and its outputs (twice: as computed and as written)
            held.Take(tensors.Sum(t => (long)t.Bytes.Length));
            long samples = tensors.Count > 0 && tensors[0].Shape.Length > 0 ? tensors[0].Shape[0] : 0;
            if (samples > int.MaxValue) throw InferenceProtocol.Invalid($"'{tensors[0].Name}' has {samples} samples; a request holds at most {int.MaxValue}");
            // encoded images: also the inputs they decode into
            if (encoded) held.Take(samples * server.Signature.Inputs.Sum(t => t.SampleBytes));
            held.Take(2 * samples * server.Signature.OutputBytesPerSample);

            // a place among the requests handled at once, only now that the request is all here
            using var place = await server.HandlerAsync(cancel.Token);
            using var answering = server.Answering();
            var computing = System.Diagnostics.Stopwatch.StartNew();
            var result = await server.OnRequestThread(() => encoded ? server.RunEncodedRequest(tensors) : server.RunRequest(tensors));
            var compute = computing.Elapsed;

            // the outputs asked for (all when none are named), binary where the request was binary or asks for it
            var asked = (header["outputs"] as JsonArray)?.Select(o => (Name: o!["name"]!.GetValue<string>(), Binary: o["parameters"]?["binary_data"]?.GetValue<bool>())).ToList();
            var names = asked?.Select(a => a.Name).ToList() ?? result.Outputs.Select(o => o.Name).ToList();
            var outputs = names.Select(n => result.Outputs.FirstOrDefault(o => o.Name == n) ?? throw InferenceProtocol.Invalid($"the model has no output '{n}'"))
                .Select(o => new InferenceProtocol.Tensor(o.Name, o.ShapeFor(o.Count), InferenceProtocol.DataTypeOf(o.ElementType), o.Bytes(0, o.Count).ToArray())).ToList();
            bool binary = asked?.Any(a => a.Binary == true) ?? headerLength != null;
            var id = header["id"]?.GetValue<string>();
            if (binary)
            {
                var (reply, replyHeader) = InferenceProtocol.Encode("outputs", outputs, id, modelName: encoded ? server.EncodedModel : server.Model);
                http.Response.StatusCode = 200;
                http.Response.ContentType = "application/octet-stream";
                http.Response.Headers[InferenceProtocol.HeaderLengthHeader] = replyHeader.ToString();
                http.Response.ContentLength = reply.Length;
                server.CountAnswered(arrived.Elapsed, compute); // before the answer goes out: a client that has it sees it counted
                await http.Response.Body.WriteAsync(reply, cancel.Token);
                return;
            }
            // JSON written as it is made, into a buffer first: an output JSON cannot carry (NaN) fails the request before anything is sent
            using var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteString("model_name", encoded ? server.EncodedModel : server.Model);
                if (id != null) w.WriteString("id", id);
                w.WriteStartArray("outputs");
                foreach (var t in outputs) InferenceProtocol.WriteJsonTensor(w, t.Name, t.Shape, t.DataType, t.Bytes.Span);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            http.Response.StatusCode = 200;
            http.Response.ContentType = "application/json";
            http.Response.ContentLength = buffer.Length;
            buffer.Position = 0;
            server.CountAnswered(arrived.Elapsed, compute);
            await buffer.CopyToAsync(http.Response.Body, cancel.Token);
        }

        /// <summary>The body, each part of it taken from the budget before it is allocated: straight into an array of its length when declared, else in parts as it comes.</summary>
        private async Task<byte[]> ReadBodyAsync(Stream input, long? length, MemoryBudget.Hold held, CancellationToken cancel)
        {
            if (length is long n)
            {
                held.Take(n);
                var exact = new byte[n];
                int at = 0;
                while (at < n)
                {
                    int read = await input.ReadAsync(exact.AsMemory(at), cancel);
                    if (read == 0) throw InferenceProtocol.Invalid($"the body ended after {at} of its {n} bytes (Content-Length)");
                    at += read;
                }
                return exact;
            }
            var parts = new List<byte[]>();
            long total = 0;
            while (true)
            {
                held.Take(1 << 20);
                var part = new byte[1 << 20];
                int filled = 0, read;
                while (filled < part.Length && (read = await input.ReadAsync(part.AsMemory(filled), cancel)) > 0) filled += read;
                if (total + filled > maxRequestBytes) throw new HeteroBatchException("RequestTooLarge", FailureKind.LimitExceeded, $"The request is larger than {maxRequestBytes} bytes.");
                total += filled;
                if (filled < part.Length) { Array.Resize(ref part, filled); parts.Add(part); break; }
                parts.Add(part);
            }
            held.Take(total);
            var body = new byte[total];
            long to = 0;
            foreach (var p in parts) { p.CopyTo(body, to); to += p.Length; }
            return body;
        }

        private static JsonObject Error(string message) => new() { ["error"] = message };

        private static async Task ReplyAsync(HttpContext http, int status, JsonObject body)
        {
            var bytes = Encoding.UTF8.GetBytes(body.ToJsonString());
            http.Response.StatusCode = status;
            http.Response.ContentType = "application/json";
            http.Response.ContentLength = bytes.Length;
            await http.Response.Body.WriteAsync(bytes);
        }

        /// <summary>An error answer, unless part of an answer went out already: then the connection is cut, never left looking like a whole answer.</summary>
        private static async Task TryReplyAsync(HttpContext http, int status, JsonObject body)
        {
            if (http.Response.HasStarted) { http.Abort(); return; }
            try { http.Response.Headers.Remove(InferenceProtocol.HeaderLengthHeader); await ReplyAsync(http, status, body); }
            catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException or OperationCanceledException) { http.Abort(); }
        }
    }
}
