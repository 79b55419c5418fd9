using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.UseCases;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Sessions;
using HeteroBatch.Engine;
using Runtime = HeteroBatch.Engine.Runtime;

namespace HeteroBatch.Serving;

/// <summary>Where and how a server listens.</summary>
public sealed record ServerSettings
{
    /// <summary>The address to listen on: loopback unless the user chooses another ("*" for every address).</summary>
    public string Address { get; init; } = "127.0.0.1";
    public int Port { get; init; } = 8000;
    /// <summary>When set, every request but the health checks must carry "Authorization: Bearer &lt;token&gt;".</summary>
    public string? Token { get; init; }
    /// <summary>The largest request taken (REST: larger bodies get 413; gRPC: larger messages RESOURCE_EXHAUSTED), 1 KiB to 2 GiB - 1.</summary>
    public long MaxRequestBytes { get; init; } = 512L << 20;
    public const long MinRequestBytes = 1L << 10, MaxRequestBytesLimit = int.MaxValue;
    /// <summary>What the requests a server holds at once may take together, at most.</summary>
    public const long HeldRequestBytes = 4L << 30;
    /// <summary>
    /// Infer requests handled at once (reading, waiting for the units, running, answering), whatever the protocol:
    /// as many of the largest as fit in <see cref="HeldRequestBytes"/>, 1 to 8. Later ones wait unread
    /// (REST: in the listener's queue; gRPC: within HTTP/2's flow-control window).
    /// </summary>
    public int RequestsHeldAtOnce => (int)Math.Clamp(HeldRequestBytes / Math.Max(1, MaxRequestBytes), 1, 8);
    /// <summary>REST (HTTP/1.1, HttpListener) or gRPC (HTTP/2, Kestrel; needs the ASP.NET Core runtime).</summary>
    public ServerProtocol Protocol { get; init; } = ServerProtocol.Rest;
}

/// <summary>The two transports of the Open Inference Protocol.</summary>
public enum ServerProtocol { Rest, Grpc }

/// <summary>
/// Serves one model over the Open Inference Protocol from this machine's units, over REST (health,
/// server and model metadata, readiness, infer with JSON or binary tensor data; HttpListener) or
/// gRPC (<see cref="GrpcInferenceService"/> in Kestrel): each infer request runs as a partitioned
/// run of the plan, scaled to the request's samples. Requests run one at a time (the units are shared).
/// </summary>
public sealed class InferenceServer : IDisposable
{
    private readonly EngineContext _context;
    private readonly BatchPlan _plan;
    private readonly ModelSource _model;
    private readonly ServerSettings _settings;
    private readonly HttpListener _listener = new();
    private readonly SemaphoreSlim _oneAtATime = new(1, 1);
    private readonly Engine.UseCases.Inference _inference;
    private long _lastRecordedAt = long.MinValue / 2; // Environment.TickCount64 of the last request recorded
    /// <summary>Infer requests handled at once (<see cref="ServerSettings.RequestsHeldAtOnce"/>).</summary>
    public int HandledAtOnce => _settings.RequestsHeldAtOnce;
    public long MaxRequestBytes => _settings.MaxRequestBytes;
    private readonly SemaphoreSlim _handlers;
    private readonly CancellationTokenSource _stop = new();
    private readonly ModelSignature _signature;
    private Thread? _accept;
    private long _requests, _samples, _failures;

    public Uri Url { get; }
    public string Model => _model.Name;
    public BatchPlan Plan => _plan;
    public DateTimeOffset StartedAt { get; private set; }
    public long Requests => Interlocked.Read(ref _requests);
    public long Samples => Interlocked.Read(ref _samples);
    public long Failures => Interlocked.Read(ref _failures);
    /// <summary>Infer requests received and not yet answered (waiting for the units or running), now and at most so far.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);
    public int PeakInFlight => Volatile.Read(ref _peakInFlight);
    private int _inFlight, _peakInFlight;
    public bool Running => _grpc != null || _listener.IsListening;
    private IDisposable? _grpc;

    public InferenceServer(EngineContext context, BatchPlan plan, ModelSource model, ServerSettings settings)
    {
        PlanLayout.Validate(plan);
        if (settings.Port is < 1 or > 65535)
            throw new HeteroBatchException("PortInvalid", FailureKind.InvalidArgument, $"Port {settings.Port} is not between 1 and 65535.", settings.Port);
        if (settings.MaxRequestBytes is < ServerSettings.MinRequestBytes or > ServerSettings.MaxRequestBytesLimit)
            throw new ArgumentOutOfRangeException(nameof(settings), settings.MaxRequestBytes, $"MaxRequestBytes is {ServerSettings.MinRequestBytes} to {ServerSettings.MaxRequestBytesLimit}.");
        _plan = plan; _model = model; _settings = settings;
        _handlers = new SemaphoreSlim(settings.RequestsHeldAtOnce, settings.RequestsHeldAtOnce);
        // workers of its own: a session may run (as a client) a plan whose units this server also uses
        // (its remote unit being this server); on shared workers each run would wait for the other's
        _context = new EngineContext(context.Options, context.Presence);
        _inference = new Engine.UseCases.Inference(_context);
        try { _signature = PartitionedRunner.Signature(_context, plan, model); }
        catch { _context.Dispose(); throw; }
        var host = settings.Address is "*" or "0.0.0.0" or "+" ? "*" : settings.Address;
        var scheme = settings.Protocol == ServerProtocol.Grpc ? "grpc" : "http";
        Url = new Uri($"{scheme}://{(host == "*" ? "localhost" : host.Contains(':') ? $"[{host}]" : host)}:{settings.Port}/");
        if (settings.Protocol == ServerProtocol.Rest) _listener.Prefixes.Add($"http://{(host.Contains(':') ? $"[{host}]" : host)}:{settings.Port}/");
    }

    /// <summary>Starts listening (throws ServerStartFailed if the port is taken or the address is not this machine's).</summary>
    public void Start()
    {
        StartRequestThreads();
        if (_settings.Protocol == ServerProtocol.Grpc)
        {
            Runtime.SharedFrameworks.EnsureAspNetCore();
            StartGrpc();
            StartedAt = DateTimeOffset.UtcNow;
            return;
        }
        try { _listener.Start(); }
        catch (HttpListenerException e)
        {
            throw new HeteroBatchException("ServerStartFailed", FailureKind.ResourceUnavailable, $"Could not listen on {Url}: {e.Message}", Url.ToString(), e);
        }
        StartedAt = DateTimeOffset.UtcNow;
        _accept = new Thread(Accept) { IsBackground = true, Name = $"HeteroBatch server {Url}" };
        _accept.Start();
    }

    /// <summary>Apart from Start, so that ASP.NET Core is loaded only once it can be found.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private void StartGrpc()
    {
        var address = _settings.Address is "*" or "0.0.0.0" or "+" ? IPAddress.Any
            : _settings.Address == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(_settings.Address.Trim('[', ']'), out var ip) ? ip
            : throw new HeteroBatchException("ServerStartFailed", FailureKind.InvalidArgument, $"'{_settings.Address}' is not an IP address of this machine (gRPC listens on addresses, not names).", _settings.Address);
        _grpc = GrpcHost.Start(this, address, _settings.Port, _settings.MaxRequestBytes);
    }

    private void Accept()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext request;
            try { request = _listener.GetContext(); }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
            // health, metadata: answered at once from the pool, whatever the infer requests are doing
            if (!request.Request.Url!.AbsolutePath.TrimEnd('/').EndsWith("/infer", StringComparison.Ordinal))
            {
                ThreadPool.QueueUserWorkItem(_ => Handle(request));
                continue;
            }
            // each infer request on a request thread (it blocks while the units run), at most HandledAtOnce of them;
            // beyond that, new connections wait in the listener's queue
            try { _handlers.Wait(_stop.Token); }
            catch (OperationCanceledException) { request.Response.Abort(); return; }
            if (!Post(() => { try { Handle(request); } finally { _handlers.Release(); } })) { _handlers.Release(); request.Response.Abort(); return; }
        }
    }

    private void Handle(HttpListenerContext http)
    {
        var response = http.Response;
        try
        {
            var path = http.Request.Url!.AbsolutePath.TrimEnd('/');
            var method = http.Request.HttpMethod;
            if (method == "GET" && path is "/v2/health/live" or "/v2/health/ready") { Reply(response, 200, new JsonObject()); return; }
            if (!Admits(http.Request.Headers["Authorization"]))
            {
                response.AddHeader("WWW-Authenticate", "Bearer");
                Reply(response, 401, Error("a bearer token is required"));
                return;
            }
            if (method == "GET" && path == "/v2")
            {
                Reply(response, 200, new JsonObject
                {
                    ["name"] = "heterobatch",
                    ["version"] = typeof(InferenceServer).Assembly.GetName().Version?.ToString(3) ?? "0",
                    ["extensions"] = new JsonArray(InferenceProtocol.BinaryExtension),
                });
                return;
            }
            var prefix = $"/v2/models/{Uri.EscapeDataString(_model.Name)}";
            var rest = path.StartsWith(prefix, StringComparison.Ordinal) ? path[prefix.Length..] : null;
            if (rest != null && rest.StartsWith("/versions/", StringComparison.Ordinal))
            {
                int cut = rest.IndexOf('/', "/versions/".Length);
                rest = cut < 0 ? "" : rest[cut..];
            }
            if (rest == null) { Reply(response, 404, Error($"no model at {path}; this server serves '{_model.Name}'")); return; }
            if (method == "GET" && rest == "") { Reply(response, 200, InferenceProtocol.ModelMetadata(_model.Name, _signature.Inputs, _signature.Outputs)); return; }
            if (method == "GET" && rest == "/ready") { Reply(response, 200, new JsonObject()); return; }
            if (method == "POST" && rest == "/infer") { using (Answering()) Infer(http); return; }
            Reply(response, 404, Error($"{method} {path} is not an endpoint of this server"));
        }
        catch (HeteroBatchException e)
        {
            Interlocked.Increment(ref _failures);
            TryReply(response, StatusOf(e), Error(e.Message));
        }
        catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException)
        {
            Interlocked.Increment(ref _failures); // the client went away
        }
        catch (OperationCanceledException)
        {
            Interlocked.Increment(ref _failures);
            TryReply(response, 503, Error("the server is stopping"));
        }
        catch (Exception e)
        {
            // whatever else went wrong answers this request, never ends the process
            Interlocked.Increment(ref _failures);
            TryReply(response, 500, Error(e.Message));
        }
        finally
        {
            try { response.Close(); } catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { }
        }
    }

    private void Infer(HttpListenerContext http)
    {
        long length = http.Request.ContentLength64;
        if (length > _settings.MaxRequestBytes)
        {
            Interlocked.Increment(ref _failures);
            Reply(http.Response, 413, Error($"the request holds {length} bytes; this server takes up to {_settings.MaxRequestBytes}"));
            return;
        }
        var body = ReadBody(http.Request.InputStream, length, _settings.MaxRequestBytes);
        int? headerLength = InferenceProtocol.HeaderLength(http.Request.Headers[InferenceProtocol.HeaderLengthHeader]);
        var (header, tensors) = InferenceProtocol.Decode(body, headerLength, "inputs");
        var result = RunRequest(tensors);

        // the outputs asked for (all when none are named), binary where the request was binary or asks for it
        var asked = (header["outputs"] as JsonArray)?.Select(o => (Name: o?["name"]?.GetValue<string>() ?? "", Binary: o?["parameters"]?["binary_data"]?.GetValue<bool>())).ToList();
        var names = asked?.Select(a => a.Name).ToList() ?? result.Outputs.Select(o => o.Name).ToList();
        var outputs = names.Select(n => result.Outputs.FirstOrDefault(o => o.Name == n) ?? throw InferenceProtocol.Invalid($"the model has no output '{n}'"))
            .Select(o => new InferenceProtocol.Tensor(o.Name, o.ShapeFor(o.Count), InferenceProtocol.DataTypeOf(o.ElementType), o.Bytes(0, o.Count).ToArray())).ToList();
        bool binary = asked?.Any(a => a.Binary == true) ?? headerLength != null;
        var id = header["id"]?.GetValue<string>();
        if (binary)
        {
            var (reply, replyHeader) = InferenceProtocol.Encode("outputs", outputs, id, modelName: _model.Name);
            http.Response.StatusCode = 200;
            http.Response.ContentType = "application/octet-stream";
            http.Response.AddHeader(InferenceProtocol.HeaderLengthHeader, replyHeader.ToString());
            http.Response.ContentLength64 = reply.Length;
            http.Response.OutputStream.Write(reply);
            return;
        }
        var json = new JsonObject { ["model_name"] = _model.Name };
        if (id != null) json["id"] = id;
        json["outputs"] = new JsonArray(outputs.Select(t => (JsonNode?)new JsonObject
        {
            ["name"] = t.Name,
            ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode?)d).ToArray()),
            ["datatype"] = t.DataType,
            ["data"] = InferenceProtocol.ToJsonData(t),
        }).ToArray());
        Reply(http.Response, 200, json);
    }

    /// <summary>What the server serves: the model's inputs and outputs.</summary>
    public ModelSignature Signature => _signature;

    /// <summary>True when <paramref name="authorization"/> (an Authorization header's value) lets a request in.</summary>
    public bool Admits(string? authorization) => _settings.Token == null || authorization == $"Bearer {_settings.Token}";

    // request threads: HandledAtOnce of them, started with the server and kept, since a request blocks
    // its thread while the units run (on the thread pool it would starve the pool's other work)
    private readonly System.Collections.Concurrent.BlockingCollection<Action> _requestWork = new();
    private List<Thread>? _requestThreads;

    private void StartRequestThreads()
    {
        if (_requestThreads != null) return;
        _requestThreads = Enumerable.Range(0, HandledAtOnce).Select(i => new Thread(() =>
        {
            foreach (var work in _requestWork.GetConsumingEnumerable()) work();
        }) { IsBackground = true, Name = $"HeteroBatch request {i}" }).ToList();
        _requestThreads.ForEach(t => t.Start());
    }

    /// <summary>Runs <paramref name="work"/> on one of the server's request threads (callers hold a place from <see cref="HandlerAsync"/>).</summary>
    internal Task<T> OnRequestThread<T>(Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!Post(() =>
        {
            try { done.SetResult(work()); }
            catch (Exception e) { done.SetException(e); }
        }))
            done.SetCanceled();
        return done.Task;
    }

    /// <summary>Queues work for the request threads; false once the server is disposed.</summary>
    private bool Post(Action work)
    {
        try { _requestWork.Add(work); return true; }
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>Waits for a place among the <see cref="HandledAtOnce"/> requests handled at once; dispose to give it back.</summary>
    internal async Task<IDisposable> HandlerAsync(CancellationToken cancel)
    {
        await _handlers.WaitAsync(cancel).ConfigureAwait(false);
        return new Once(() => _handlers.Release());
    }

    /// <summary>An infer request from its arrival until its answer is written (dispose then), counted in <see cref="InFlight"/>.</summary>
    public IDisposable Answering()
    {
        int now = Interlocked.Increment(ref _inFlight);
        for (int peak = Volatile.Read(ref _peakInFlight); now > peak; peak = Volatile.Read(ref _peakInFlight))
            if (Interlocked.CompareExchange(ref _peakInFlight, now, peak) == peak) break;
        return new Once(() => Interlocked.Decrement(ref _inFlight));
    }

    /// <summary>Gives back what it holds on its first Dispose only.</summary>
    private sealed class Once(Action release) : IDisposable
    {
        private int _done;
        public void Dispose() { if (Interlocked.Exchange(ref _done, 1) == 0) release(); }
    }

    /// <summary>Counts a request that failed (for Get-InferenceServer).</summary>
    public void CountFailure() => Interlocked.Increment(ref _failures);

    /// <summary>
    /// One request's samples (each input checked against the model) run across this host's units
    /// with the server's plan, scaled to the request's size; one request at a time, whatever the
    /// protocol it came in by. Throws ProtocolInvalid for tensors the model does not take.
    /// </summary>
    public InferenceResult RunRequest(IReadOnlyList<InferenceProtocol.Tensor> tensors)
    {
        var inputs = new List<TensorBatch>();
        int count = -1;
        foreach (var spec in _signature.Inputs)
        {
            var t = tensors.FirstOrDefault(x => x.Name == spec.Name) ?? throw InferenceProtocol.Invalid($"no input '{spec.Name}'");
            if (InferenceProtocol.ElementTypeOf(t.DataType) != spec.ElementType || t.Shape.Length != spec.SampleShape.Length + 1 || !t.Shape.Skip(1).SequenceEqual(spec.SampleShape))
                throw InferenceProtocol.Invalid($"input '{spec.Name}' is {t.DataType} [{string.Join(",", t.Shape)}]; the model takes {InferenceProtocol.DataTypeOf(spec.ElementType)} [-1,{string.Join(",", spec.SampleShape)}]");
            if (count >= 0 && t.Shape[0] != count) throw InferenceProtocol.Invalid($"input '{spec.Name}' has {t.Shape[0]} samples, another {count}");
            count = (int)t.Shape[0];
            var batch = new TensorBatch(spec.Name, spec.SampleShape, count, null, spec.ElementType);
            if (t.Bytes.Length != batch.Bytes(0, count).Length)
                throw InferenceProtocol.Invalid($"input '{spec.Name}' holds {t.Bytes.Length} bytes; [{string.Join(",", t.Shape)}] of {t.DataType} is {batch.Bytes(0, count).Length}");
            t.Bytes.Span.CopyTo(batch.Bytes(0, count));
            inputs.Add(batch);
        }
        if (count < 1) throw InferenceProtocol.Invalid("a request needs at least one sample");
        var plan = count >= _plan.BatchSize ? _plan : PlanScaling.Scale(_plan, count);
        InferenceResult result;
        _oneAtATime.Wait(_stop.Token);
        try
        {
            // served requests are runs of the plan like any other: recorded (at most one a second) where the plan came from
            long now = Environment.TickCount64, last = Interlocked.Read(ref _lastRecordedAt);
            bool record = now - last >= 1000 && Interlocked.CompareExchange(ref _lastRecordedAt, now, last) == last;
            result = _inference.RunBatch(plan, new InputSet(inputs, Enumerable.Range(0, count).Select(i => $"{i}").ToList()), new RunSettings(),
                record ? RecordPolicy.ToPlansStore : RecordPolicy.Off, _stop.Token, _model);
        }
        finally { _oneAtATime.Release(); }
        Interlocked.Increment(ref _requests);
        Interlocked.Add(ref _samples, count);
        return result;
    }

    /// <summary>The request body: read straight into an array of its length when the client says it, else grown as it comes.</summary>
    private static byte[] ReadBody(Stream input, long length, long limit)
    {
        if (length >= 0)
        {
            var exact = new byte[length];
            input.ReadExactly(exact);
            return exact;
        }
        using var buffer = new MemoryStream();
        var chunk = new byte[1 << 16];
        int n;
        while ((n = input.Read(chunk)) > 0)
        {
            if (buffer.Length + n > limit) throw new HeteroBatchException("RequestTooLarge", FailureKind.InvalidArgument, $"The request is larger than {limit} bytes.");
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }

    /// <summary>503 for what may pass (a unit or the server unavailable), 400 for a request that cannot work.</summary>
    private static int StatusOf(HeteroBatchException e)
    {
        var failure = e.Kind;
        return failure is FailureKind.ResourceUnavailable or FailureKind.OperationStopped ? 503 : 400;
    }

    private static JsonObject Error(string message) => new() { ["error"] = message };

    private static void Reply(HttpListenerResponse response, int status, JsonObject body)
    {
        var bytes = Encoding.UTF8.GetBytes(body.ToJsonString());
        response.StatusCode = status;
        response.ContentType = "application/json";
        response.ContentLength64 = bytes.Length;
        response.OutputStream.Write(bytes);
    }

    private static void TryReply(HttpListenerResponse response, int status, JsonObject body)
    {
        try { Reply(response, status, body); }
        catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException or InvalidOperationException) { }
    }

    /// <summary>Stops taking requests; a request running ends first (cancelled).</summary>
    public void Stop()
    {
        if (Interlocked.Exchange(ref _grpc, null) is { } grpc)
        {
            _stop.Cancel();
            grpc.Dispose();
            return;
        }
        if (!_listener.IsListening) return;
        _stop.Cancel();
        _listener.Stop();
        _accept?.Join(TimeSpan.FromSeconds(5));
    }

    public void Dispose()
    {
        Stop();
        _requestWork.CompleteAdding();
        _listener.Close();
        _stop.Dispose();
        _context.Dispose();
    }

    public override string ToString() => $"{_model.Name} at {Url} ({(Running ? "running" : "stopped")}, {Requests} requests)";
}
