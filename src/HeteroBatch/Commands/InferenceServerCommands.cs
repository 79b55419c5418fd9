using System.Management.Automation;
using HeteroBatch.Engine;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Serving;
using HeteroBatch.Engine.Units;

namespace HeteroBatch.Commands;

/// <summary>The servers this session started, by id (the module's only state besides its engine context).</summary>
internal static class Servers
{
    private static readonly object Gate = new(); // guards List and _next
    private static readonly List<ServerInfo> List = new();
    private static int _next;

    public static ServerInfo Add(InferenceServer server)
    {
        lock (Gate)
        {
            var info = new ServerInfo(++_next, server);
            List.Add(info);
            return info;
        }
    }

    public static IReadOnlyList<ServerInfo> All() { lock (Gate) return List.ToList(); }

    public static void Remove(ServerInfo info) { lock (Gate) List.Remove(info); }

    /// <summary>When the module is removed: every server stops.</summary>
    public static void StopAll() { foreach (var s in All()) { s.Server.Dispose(); Remove(s); } }
}

/// <summary>A running (or stopped) inference server of this session, as Get-InferenceServer shows it.</summary>
public sealed class ServerInfo
{
    internal InferenceServer Server { get; }
    internal ServerInfo(int id, InferenceServer server) { Id = id; Server = server; }
    public int Id { get; }
    public string Url => Server.Url.ToString();
    public string Model => Server.Model;
    public string Units => string.Join(" + ", Server.Plan.Shards.Select(s => $"{s.UnitId}:{s.Count}"));
    public bool Running => Server.Running;
    public long Requests => Server.Requests;
    public long Samples => Server.Samples;
    public long Failures => Server.Failures;
    /// <summary>Infer requests received and not yet answered, now and at most so far.</summary>
    public int InFlight => Server.InFlight;
    public int PeakInFlight => Server.PeakInFlight;
    /// <summary>The largest request taken, and how many infer requests are held at once (later ones wait, their bodies read).</summary>
    public long MaxRequestBytes => Server.MaxRequestBytes;
    public int HandledAtOnce => Server.HandledAtOnce;
    public DateTimeOffset StartedAt => Server.StartedAt;
    public override string ToString() => Server.ToString();
}

/// <summary>Serves a plan's model over the Open Inference Protocol (REST or gRPC) from this machine's units: each request runs as a partitioned run of the plan.</summary>
[Cmdlet(VerbsLifecycle.Start, "InferenceServer")]
[OutputType(typeof(ServerInfo))]
public sealed class StartInferenceServerCommand : HeteroBatchCmdlet
{
    /// <summary>The plan each request runs (scaled to the request's samples), from Get-BatchPlan.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true)]
    [ValidateNotNull]
    [JsonObject]
    public BatchPlan? Plan { get; set; }

    /// <summary>The TCP port (default 8000).</summary>
    [Parameter]
    [ValidateRange(1, 65535)]
    public int Port { get; set; } = 8000;

    /// <summary>The address to listen on (default 127.0.0.1, this machine only; * for every address).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string Address { get; set; } = "127.0.0.1";

    /// <summary>REST (default) or gRPC (HTTP/2, needs the ASP.NET Core runtime beside .NET).</summary>
    [Parameter]
    public ServerProtocol Protocol { get; set; } = ServerProtocol.Rest;

    /// <summary>Require "Authorization: Bearer &lt;token&gt;" on every request but the health checks.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Token { get; set; }

    /// <summary>The largest request taken, in bytes (default 512 MiB; 1 KiB to 2 GiB - 1); the server holds as many such requests at once as fit in 4 GiB, 1 to 8.</summary>
    [Parameter]
    [ValidateRange(ServerSettings.MinRequestBytes, ServerSettings.MaxRequestBytesLimit)]
    public long MaxRequestBytes { get; set; } = new ServerSettings().MaxRequestBytes;

    /// <summary>Serve until Ctrl+C (or Stop-InferenceServer from elsewhere), then stop; without it the server runs in the background of this session.</summary>
    [Parameter]
    public SwitchParameter Wait { get; set; }

    protected override void ProcessRecord()
    {
        var plan = Plan!;
        // a plan to serve that cannot run here is bad set-up: the command stops
        Engine(() => { Context.Presence.Require(plan.Shards.Select(s => s.Unit), planned: true); return true; });
        var server = Engine(() =>
        {
            var s = new InferenceServer(Context, plan, Inference.ModelFor(plan), new ServerSettings { Port = Port, Address = Address, Token = Token, Protocol = Protocol, MaxRequestBytes = MaxRequestBytes });
            try { s.Start(); }
            catch { s.Dispose(); throw; }
            return s;
        });
        var info = Servers.Add(server);
        WriteVerbose($"serving {server.Model} at {server.Url} on {info.Units}{(Token != null ? ", token required" : "")}");
        WriteObject(info);
        if (!Wait) return;
        try { StopToken.WaitHandle.WaitOne(); }
        finally
        {
            server.Dispose();
            Servers.Remove(info);
        }
    }
}

/// <summary>Lists the inference servers this session started.</summary>
[Cmdlet(VerbsCommon.Get, "InferenceServer")]
[OutputType(typeof(ServerInfo))]
public sealed class GetInferenceServerCommand : HeteroBatchCmdlet
{
    /// <summary>Only the server with this id.</summary>
    [Parameter(Position = 0)]
    public int[]? Id { get; set; }

    protected override void EndProcessing()
    {
        if (PipelineBoundNothing) return;
        foreach (var s in Servers.All())
            if (Id == null || Id.Contains(s.Id)) WriteObject(s);
        foreach (var id in Id ?? Array.Empty<int>())
            if (Servers.All().All(s => s.Id != id))
                WriteFailure(new HeteroBatchException("ServerNotFound", FailureKind.ObjectNotFound, $"No inference server {id} in this session.", id));
    }
}

/// <summary>Stops inference servers this session started: requests running end, the port is released.</summary>
[Cmdlet(VerbsLifecycle.Stop, "InferenceServer", SupportsShouldProcess = true)]
[OutputType(typeof(void))]
public sealed class StopInferenceServerCommand : HeteroBatchCmdlet
{
    /// <summary>The servers to stop (from Get-InferenceServer or Start-InferenceServer).</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = "Server")]
    [ValidateNotNull]
    public ServerInfo[]? Server { get; set; }

    /// <summary>The ids of the servers to stop.</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = "Id")]
    public int[]? Id { get; set; }

    protected override void ProcessRecord()
    {
        var targets = Server ?? Servers.All().Where(s => Id!.Contains(s.Id)).ToArray();
        foreach (var id in Id ?? Array.Empty<int>())
            if (targets.All(s => s.Id != id))
                WriteFailure(new HeteroBatchException("ServerNotFound", FailureKind.ObjectNotFound, $"No inference server {id} in this session.", id));
        foreach (var s in targets)
            if (ShouldProcess(s.Url, "Stop inference server"))
            {
                s.Server.Dispose();
                Servers.Remove(s);
            }
    }
}
