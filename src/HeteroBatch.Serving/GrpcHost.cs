using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using HeteroBatch.Engine;
using Runtime = HeteroBatch.Engine.Runtime;

namespace HeteroBatch.Serving;

/// <summary>
/// Kestrel serving an <see cref="InferenceServer"/>'s <see cref="GrpcInferenceService"/> over
/// plain HTTP/2 (gRPC without TLS): messages up to the server's request limit, taken from the
/// server's <see cref="MemoryBudget"/> (RESOURCE_EXHAUSTED at once where it has too little left), at most
/// <see cref="ServerSettings.RequestsHeldAtOnce"/> infer calls handled at once (later ones wait with
/// their message read). Loaded only when a server speaks gRPC (see <see cref="Runtime.SharedFrameworks"/>).
/// </summary>
internal sealed class GrpcHost : IDisposable
{
    private readonly WebApplication _app;
    private GrpcHost(WebApplication app) => _app = app;

    public static GrpcHost Start(InferenceServer server, IPAddress address, int port, long maxRequestBytes)
    {
        int maxMessage = (int)maxRequestBytes; // 2 GiB - 1 at most, as the settings check
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = null; // gRPC refuses a message over the limit from its length prefix, before reading it
            k.Listen(address, port, o => o.Protocols = HttpProtocols.Http2);
        });
        builder.Services.AddGrpc(o => { o.MaxReceiveMessageSize = maxMessage; o.MaxSendMessageSize = null; });
        builder.Services.AddSingleton(new GrpcInferenceService(server));
        var app = builder.Build();
        app.Use(async (http, next) =>
        {
            if (!http.Request.Path.Value!.EndsWith("/ModelInfer", StringComparison.Ordinal)) { await next(http); return; } // health, metadata: at once
            // the message's size from its length prefix (left unread for gRPC), taken from the server's budget before gRPC
            // reads it: the message, the run's copy of its tensors and the outputs (about as large again). The place among
            // the calls handled at once is taken later, by the service, once the message is read: a call waiting for one
            // never leaves its message half-read in the connection's flow-control window, where it would stall the others.
            using var held = server.Budget.Open();
            long? size = await PeekMessageLength(http.Request.BodyReader, http.RequestAborted);
            if (size is long n && n <= maxMessage)
            {
                try { held.Take(3 * n); }
                catch (HeteroBatchException e)
                {
                    server.CountFailure();
                    http.Response.ContentType = "application/grpc";
                    http.Response.Headers["grpc-status"] = ((int)Grpc.Core.StatusCode.ResourceExhausted).ToString();
                    http.Response.Headers["grpc-message"] = Uri.EscapeDataString(e.Message);
                    return;
                }
            }
            await next(http);
            // refused before the service saw it (a message over the limit): a failed request all the same
            string? status = http.Features.Get<IHttpResponseTrailersFeature>()?.Trailers["grpc-status"];
            if (string.IsNullOrEmpty(status)) status = http.Response.Headers["grpc-status"]; // a trailers-only answer
            if (status == ((int)Grpc.Core.StatusCode.ResourceExhausted).ToString()) server.CountFailure();
        });
        app.MapGrpcService<GrpcInferenceService>();
        try { app.StartAsync().GetAwaiter().GetResult(); }
        catch (Exception e) when (e is IOException or InvalidOperationException)
        {
            ((IDisposable)app).Dispose();
            throw new HeteroBatchException("ServerStartFailed", FailureKind.ResourceUnavailable, $"Could not listen on {address}:{port} for gRPC: {e.Message}", port, e);
        }
        return new GrpcHost(app);
    }

    /// <summary>The length in a gRPC message's 5-byte prefix, the bytes left in the pipe for gRPC to read; null when the body ends before it.</summary>
    private static async Task<long?> PeekMessageLength(System.IO.Pipelines.PipeReader reader, CancellationToken cancel)
    {
        var prefix = new byte[5];
        while (true)
        {
            var read = await reader.ReadAsync(cancel);
            var buffer = read.Buffer;
            if (buffer.Length >= 5)
            {
                System.Buffers.BuffersExtensions.CopyTo(buffer.Slice(0, 5), prefix);
                reader.AdvanceTo(buffer.Start); // nothing consumed, nothing examined: gRPC reads it all
                return System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(prefix.AsSpan(1));
            }
            if (read.IsCompleted) { reader.AdvanceTo(buffer.Start); return null; }
            reader.AdvanceTo(buffer.Start, buffer.End); // wait for more
        }
    }

    /// <summary>Stops at once: calls running are cancelled (their clients see the server gone).</summary>
    public void Dispose()
    {
        try { _app.StopAsync(new CancellationToken(true)).GetAwaiter().GetResult(); }
        catch (OperationCanceledException) { }
        ((IDisposable)_app).Dispose();
    }
}
