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
/// plain HTTP/2 (gRPC without TLS): messages up to the server's request limit, at most
/// <see cref="ServerSettings.RequestsHeldAtOnce"/> infer calls handled at once (later ones wait before
/// their message is read). Loaded only when a server speaks gRPC (see <see cref="Runtime.SharedFrameworks"/>).
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
            using var place = await server.HandlerAsync(http.RequestAborted);
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

    /// <summary>Stops at once: calls running are cancelled (their clients see the server gone).</summary>
    public void Dispose()
    {
        try { _app.StopAsync(new CancellationToken(true)).GetAwaiter().GetResult(); }
        catch (OperationCanceledException) { }
        ((IDisposable)_app).Dispose();
    }
}
