using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace HeteroBatch.Engine.Serving;

/// <summary>
/// Kestrel serving an <see cref="InferenceServer"/>'s <see cref="GrpcInferenceService"/> over
/// plain HTTP/2 (gRPC without TLS), with no limit on message sizes. Loaded only when a server
/// speaks gRPC (see <see cref="Runtime.SharedFrameworks"/>).
/// </summary>
internal sealed class GrpcHost : IDisposable
{
    private readonly WebApplication _app;
    private GrpcHost(WebApplication app) => _app = app;

    public static GrpcHost Start(InferenceServer server, IPAddress address, int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = null;
            k.Listen(address, port, o => o.Protocols = HttpProtocols.Http2);
        });
        builder.Services.AddGrpc(o => { o.MaxReceiveMessageSize = null; o.MaxSendMessageSize = null; });
        builder.Services.AddSingleton(new GrpcInferenceService(server));
        var app = builder.Build();
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
