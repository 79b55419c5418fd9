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
    /// <summary>What the requests a server holds at once may take together, at most: their bodies, the tensors read from them and their outputs.</summary>
    public const long HeldRequestBytes = 4L << 30;
    /// <summary>The memory budget of requests held at once (<see cref="HeldRequestBytes"/>; tests set less).</summary>
    internal long HeldBytes { get; init; } = HeldRequestBytes;
    /// <summary>
    /// Infer requests handled at once (waiting for the units, running, answering), whatever the protocol:
    /// as many of the largest as fit in <see cref="HeldRequestBytes"/>, 1 to 8. Later ones wait
    /// with their bodies read (a request takes its place once its body has arrived; see <see cref="MemoryBudget"/> for what bounds them).
    /// </summary>
    public int RequestsHeldAtOnce => (int)Math.Clamp(HeldRequestBytes / Math.Max(1, MaxRequestBytes), 1, 8);
    /// <summary>REST (HTTP/1.1) or gRPC (HTTP/2), both on Kestrel (the ASP.NET Core runtime, found at run time).</summary>
    public ServerProtocol Protocol { get; init; } = ServerProtocol.Rest;
    /// <summary>
    /// Also serve the model's encoded-image form (<see cref="EncodedImageModel"/>: <c>M_encoded</c>, one BYTES input of
    /// image files, decoded here with <see cref="EncodedImageModel.Preprocessing"/>), where the model has one image input.
    /// </summary>
    public bool EncodedImages { get; init; } = true;
}

/// <summary>The two transports of the Open Inference Protocol.</summary>
public enum ServerProtocol { Rest, Grpc }

/// <summary>
/// Serves one model over the Open Inference Protocol from this machine's units, over REST (health,
/// server and model metadata, readiness, infer with JSON or binary tensor data; <see cref="RestHost"/>) or
/// gRPC (<see cref="GrpcInferenceService"/>), both in Kestrel: each infer request runs as a partitioned
/// run of the plan, scaled to the request's samples. Requests run one at a time (the units are shared).
/// </summary>
public sealed class InferenceServer : IDisposable
{
    private readonly EngineContext _context;
    private readonly BatchPlan _plan;
    private readonly ModelSource _model;
    private readonly ServerSettings _settings;
    private readonly SemaphoreSlim _oneAtATime = new(1, 1);
    private readonly Engine.UseCases.Inference _inference;
    private long _lastRecordedAt = long.MinValue / 2; // Environment.TickCount64 of the last request recorded
    /// <summary>Infer requests handled at once (<see cref="ServerSettings.RequestsHeldAtOnce"/>).</summary>
    public int HandledAtOnce => _settings.RequestsHeldAtOnce;
    public long MaxRequestBytes => _settings.MaxRequestBytes;
    private readonly SemaphoreSlim _handlers;
    private readonly CancellationTokenSource _stop = new();
    private readonly ModelSignature _signature;
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
    public bool Running => _host != null;
    private IDisposable? _host;
    /// <summary>What the infer requests held at once may take together (bodies, their tensors, their outputs).</summary>
    internal MemoryBudget Budget { get; }
    /// <summary>Cancelled when the server stops.</summary>
    internal CancellationToken Stopping => _stop.Token;

    public InferenceServer(EngineContext context, BatchPlan plan, ModelSource model, ServerSettings settings)
    {
        PlanLayout.Validate(plan);
        if (settings.Port is < 1 or > 65535)
            throw new HeteroBatchException("PortInvalid", FailureKind.InvalidArgument, $"Port {settings.Port} is not between 1 and 65535.", settings.Port);
        if (settings.MaxRequestBytes is < ServerSettings.MinRequestBytes or > ServerSettings.MaxRequestBytesLimit)
            throw new ArgumentOutOfRangeException(nameof(settings), settings.MaxRequestBytes, $"MaxRequestBytes is {ServerSettings.MinRequestBytes} to {ServerSettings.MaxRequestBytesLimit}.");
        _plan = plan; _model = model; _settings = settings;
        _handlers = new SemaphoreSlim(settings.RequestsHeldAtOnce, settings.RequestsHeldAtOnce);
        Budget = new MemoryBudget(settings.HeldBytes);
        // workers of its own: a session may run (as a client) a plan whose units this server also uses
        // (its remote unit being this server); on shared workers each run would wait for the other's
        _context = new EngineContext(context.Options, context.Presence);
        _inference = new Engine.UseCases.Inference(_context);
        try { _signature = PartitionedRunner.Signature(_context, plan, model); }
        catch { _context.Dispose(); throw; }
        EncodedSignature = settings.EncodedImages ? EncodedImageModel.SignatureFor(_signature) : null;
        var host = settings.Address is "*" or "0.0.0.0" or "+" ? "*" : settings.Address;
        var scheme = settings.Protocol == ServerProtocol.Grpc ? "grpc" : "http";
        Url = new Uri($"{scheme}://{(host == "*" ? "localhost" : host.Contains(':') ? $"[{host}]" : host)}:{settings.Port}/");
    }

    /// <summary>Starts listening (throws ServerStartFailed if the port is taken or the address is not this machine's).</summary>
    public void Start()
    {
        StartRequestThreads();
        Runtime.SharedFrameworks.EnsureAspNetCore();
        StartKestrel();
        StartedAt = DateTimeOffset.UtcNow;
    }

    /// <summary>Apart from Start, so that ASP.NET Core is loaded only once it can be found.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private void StartKestrel()
    {
        var address = _settings.Address is "*" or "0.0.0.0" or "+" ? IPAddress.Any
            : _settings.Address == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(_settings.Address.Trim('[', ']'), out var ip) ? ip
            : throw new HeteroBatchException("ServerStartFailed", FailureKind.InvalidArgument, $"'{_settings.Address}' is not an IP address of this machine (the server listens on addresses, not names).", _settings.Address);
        _host = _settings.Protocol == ServerProtocol.Grpc
            ? GrpcHost.Start(this, address, _settings.Port, _settings.MaxRequestBytes)
            : RestHost.Start(this, address, _settings.Port, _settings.MaxRequestBytes);
    }

    /// <summary>What the server serves: the model's inputs and outputs.</summary>
    public ModelSignature Signature => _signature;

    /// <summary>The name of the model's encoded-image form (<see cref="EncodedImageModel.NameFor"/>), null where it is not served.</summary>
    public string? EncodedModel => EncodedSignature == null ? null : EncodedImageModel.NameFor(_model.Name);
    /// <summary>The encoded-image form's inputs (one BYTES, an image file a sample) and outputs (the model's); null where it is not served.</summary>
    public ModelSignature? EncodedSignature { get; }

    /// <summary>True when <paramref name="authorization"/> (an Authorization header's value) lets a request in.</summary>
    /// <remarks>The compare takes the same time wherever the two differ (hashes of both are compared in constant time), so it tells nothing of the token.</remarks>
    public bool Admits(string? authorization)
    {
        if (_settings.Token == null) return true;
        Span<byte> given = stackalloc byte[32], wanted = stackalloc byte[32];
        System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(authorization ?? ""), given);
        System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes($"Bearer {_settings.Token}"), wanted);
        return System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(given, wanted) && authorization != null;
    }

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

    private long _answered, _answeredTicks, _computeTicks, _lastAnsweredMs;

    /// <summary>Infer requests answered, the time from their arrival to their answer and the time their runs took (nanoseconds), and when the last was answered (milliseconds since 1970, 0 before the first): the statistics extension's.</summary>
    internal (long Count, long Nanoseconds, long ComputeNanoseconds, long LastMs) Answered =>
        (Interlocked.Read(ref _answered), Interlocked.Read(ref _answeredTicks) * 100, Interlocked.Read(ref _computeTicks) * 100, Interlocked.Read(ref _lastAnsweredMs));

    /// <summary>Counts an infer request answered: <paramref name="total"/> from its arrival, <paramref name="compute"/> of it running.</summary>
    internal void CountAnswered(TimeSpan total, TimeSpan compute)
    {
        Interlocked.Increment(ref _answered);
        Interlocked.Add(ref _answeredTicks, total.Ticks);
        Interlocked.Add(ref _computeTicks, compute.Ticks);
        Interlocked.Exchange(ref _lastAnsweredMs, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
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
        var (inputs, count) = Inputs(tensors);
        return Run(inputs, count);
    }

    /// <summary>
    /// A request to the encoded-image form: its one BYTES input's elements (image files, one a sample) decoded here
    /// with <see cref="EncodedImageModel.Preprocessing"/> (exact mode; on the request's thread and the thread pool's),
    /// then run as <see cref="RunRequest"/> runs decoded ones. ProtocolInvalid where an element is not an image this
    /// server decodes (the request is refused whole, naming it), or where the form is not served.
    /// </summary>
    public InferenceResult RunEncodedRequest(IReadOnlyList<InferenceProtocol.Tensor> tensors)
    {
        var encoded = EncodedSignature ?? throw InferenceProtocol.Invalid($"this server does not serve '{EncodedImageModel.NameFor(_model.Name)}'");
        var name = encoded.Inputs[0].Name;
        var t = tensors.FirstOrDefault(x => x.Name == name) ?? throw InferenceProtocol.Invalid($"no input '{name}'");
        if (t.DataType != InferenceProtocol.BytesType || t.Shape.Length is not (1 or 2) || (t.Shape.Length == 2 && t.Shape[1] != 1) || t.Shape[0] < 1)
            throw InferenceProtocol.Invalid($"input '{name}' is {t.DataType} [{string.Join(",", t.Shape)}]; '{EncodedModel}' takes BYTES [-1] (or [-1,1]), an image file a sample");
        var files = InferenceProtocol.SplitBytes(name, t.Bytes, t.Shape[0]);
        var spec = _signature.Inputs[0];
        var batch = new TensorBatch(spec.Name, spec.SampleShape, files.Count, null, spec.ElementType);
        var failed = new HeteroBatchException?[files.Count];
        Parallel.For(0, files.Count, new ParallelOptions { CancellationToken = _stop.Token }, i =>
        {
            try { ImageInput.Load(files[i].ToArray(), $"element {i}", batch, i, EncodedImageModel.Preprocessing); }
            catch (HeteroBatchException e) when (e.Kind == FailureKind.InvalidData) { failed[i] = e; }
        });
        if (Array.FindIndex(failed, e => e != null) is int bad and >= 0)
            throw InferenceProtocol.Invalid($"input '{name}' element {bad} is not an image this server decodes ({failed[bad]!.Message})");
        return Run(new List<TensorBatch> { batch }, files.Count);
    }

    /// <summary>The request's tensors as the model's inputs, each checked against it; and the samples they hold.</summary>
    private (List<TensorBatch> Inputs, int Count) Inputs(IReadOnlyList<InferenceProtocol.Tensor> tensors)
    {
        var inputs = new List<TensorBatch>();
        int count = -1;
        foreach (var spec in _signature.Inputs)
        {
            var t = tensors.FirstOrDefault(x => x.Name == spec.Name) ?? throw InferenceProtocol.Invalid($"no input '{spec.Name}'");
            if (InferenceProtocol.ElementTypeOf(t.DataType) != spec.ElementType || t.Shape.Length != spec.SampleShape.Length + 1 || !t.Shape.Skip(1).SequenceEqual(spec.SampleShape))
                throw InferenceProtocol.Invalid($"input '{spec.Name}' is {t.DataType} [{string.Join(",", t.Shape)}]; the model takes {InferenceProtocol.DataTypeOf(spec.ElementType)} [-1,{string.Join(",", spec.SampleShape)}]");
            if (count >= 0 && t.Shape[0] != count) throw InferenceProtocol.Invalid($"input '{spec.Name}' has {t.Shape[0]} samples, another {count}");
            long sampleBytes = spec.SampleShape.Aggregate(1L, (a, d) => a * d) * TensorBatch.ElementSize(spec.ElementType);
            if (t.Shape[0] < 0 || t.Shape[0] > int.MaxValue || t.Bytes.Length != t.Shape[0] * sampleBytes) // before anything is allocated for it
                throw InferenceProtocol.Invalid($"input '{spec.Name}' holds {t.Bytes.Length} bytes; [{string.Join(",", t.Shape)}] of {t.DataType} is not that");
            count = (int)t.Shape[0];
            var batch = new TensorBatch(spec.Name, spec.SampleShape, count, null, spec.ElementType);
            if (t.Bytes.Length != batch.Bytes(0, count).Length)
                throw InferenceProtocol.Invalid($"input '{spec.Name}' holds {t.Bytes.Length} bytes; [{string.Join(",", t.Shape)}] of {t.DataType} is {batch.Bytes(0, count).Length}");
            t.Bytes.Span.CopyTo(batch.Bytes(0, count));
            inputs.Add(batch);
        }
        if (count < 1) throw InferenceProtocol.Invalid("a request needs at least one sample");
        return (inputs, count);
    }

    private InferenceResult Run(List<TensorBatch> inputs, int count)
    {
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

    /// <summary>
    /// Stops taking requests: requests waiting or running are cancelled and answered whole (503 over
    /// REST, UNAVAILABLE over gRPC), given a few seconds to be written before connections close.
    /// </summary>
    public void Stop()
    {
        if (Interlocked.Exchange(ref _host, null) is not { } host) return;
        _stop.Cancel();
        host.Dispose();
    }

    public void Dispose()
    {
        Stop();
        _requestWork.CompleteAdding();
        _stop.Dispose();
        _context.Dispose();
    }

    public override string ToString() => $"{_model.Name} at {Url} ({(Running ? "running" : "stopped")}, {Requests} requests)";
}
