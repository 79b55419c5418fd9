using System.Diagnostics;
using System.Net;
using HeteroBatch.Engine.Sessions;

namespace HeteroBatch.Engine.Tests;

/// <summary>
/// An inference server whose pace the test sets: it stands in front of a real one and holds each
/// infer request until a second one is in flight too (then both go on at once) or until
/// <c>alone</c> has passed. So one request at a time takes at least <c>alone</c> a run however busy
/// the machine is, and two sent together take only as long as the second takes to arrive: which
/// of the two is faster is the test's choice, by a margin no machine load closes.
/// Other requests (metadata, readiness) pass straight through.
/// </summary>
internal sealed class PairingProxy : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly HttpClient _client = new();
    private readonly Uri _target;
    private readonly TimeSpan _alone;
    private readonly Thread _accept;
    private readonly object _gate = new(); // guards _waiting, _round, _pairs, _alones
    private int _waiting;
    private long _round;
    private int _pairs, _alones;

    public Uri Url { get; }

    /// <summary>Infer requests that went on as a pair, and those that went on alone after waiting <c>alone</c>.</summary>
    public (int Pairs, int Alone) Released { get { lock (_gate) return (_pairs, _alones); } }

    public PairingProxy(Uri target, TimeSpan alone, int port)
    {
        _target = target;
        _alone = alone;
        Url = new Uri($"http://127.0.0.1:{port}/");
        _listener.Prefixes.Add(Url.ToString());
        _listener.Start();
        _accept = new Thread(Accept) { IsBackground = true, Name = "pairing proxy" };
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

    /// <summary>Holds the caller until another caller comes (both go on) or until <see cref="_alone"/> has passed.</summary>
    private void Pace()
    {
        lock (_gate)
        {
            if (++_waiting == 2)
            {
                _waiting = 0;
                _round++;
                _pairs += 2;
                Monitor.PulseAll(_gate);
                return;
            }
            long round = _round;
            var clock = Stopwatch.StartNew();
            while (round == _round)
            {
                var left = _alone - clock.Elapsed;
                if (left <= TimeSpan.Zero)
                {
                    _waiting--;
                    _alones++;
                    return;
                }
                Monitor.Wait(_gate, left);
            }
        }
    }

    private void Serve(HttpListenerContext context)
    {
        try
        {
            var request = context.Request;
            using var body = new MemoryStream();
            request.InputStream.CopyTo(body);
            if (request.HttpMethod == "POST" && request.Url!.AbsolutePath.EndsWith("/infer", StringComparison.Ordinal)) Pace();
            using var forward = new HttpRequestMessage(new HttpMethod(request.HttpMethod), new Uri(_target, request.Url!.PathAndQuery.TrimStart('/')));
            if (request.HttpMethod == "POST")
            {
                forward.Content = new ByteArrayContent(body.ToArray());
                if (request.ContentType != null) forward.Content.Headers.TryAddWithoutValidation("Content-Type", request.ContentType);
                if (request.Headers[InferenceProtocol.HeaderLengthHeader] is { } length) forward.Content.Headers.Add(InferenceProtocol.HeaderLengthHeader, length);
            }
            if (request.Headers["Authorization"] is { } auth) forward.Headers.TryAddWithoutValidation("Authorization", auth);
            using var response = _client.Send(forward);
            var reply = response.Content.ReadAsByteArrayAsync().GetAwaiter().GetResult();
            context.Response.StatusCode = (int)response.StatusCode;
            if (response.Content.Headers.ContentType is { } type) context.Response.ContentType = type.ToString();
            if (response.Headers.TryGetValues(InferenceProtocol.HeaderLengthHeader, out var h) || response.Content.Headers.TryGetValues(InferenceProtocol.HeaderLengthHeader, out h))
                context.Response.Headers[InferenceProtocol.HeaderLengthHeader] = h.First();
            context.Response.ContentLength64 = reply.Length;
            context.Response.OutputStream.Write(reply);
            context.Response.Close();
        }
        catch (Exception)
        {
            context.Response.Abort();
        }
    }

    public void Dispose()
    {
        _listener.Close();
        _accept.Join();
        _client.Dispose();
    }
}
