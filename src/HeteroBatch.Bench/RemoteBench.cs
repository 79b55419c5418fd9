using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Profiling;
using HeteroBatch.Serving;
using HeteroBatch.Engine.Units;
using HeteroBatch.Engine.Units.Backends;

namespace HeteroBatch.Bench;

/// <summary>
/// A loopback inference server as a unit: the last CPU unit serves the model (in this process,
/// through HTTP on 127.0.0.1), the others stay local. Measured in one run: the served unit used
/// directly and through the server (the difference per request is the protocol's cost), and a
/// batch split across the local units and the server against the local units alone.
/// </summary>
public static class RemoteBench
{
    public sealed record Row(string Model, int Batch, int SubBatch, double DirectMs, double RemoteMs, int Requests, double OverheadMsPerRequest,
        double LocalAloneMs, double SplitMs, string Split, double LocalImagesPerSecond, double SplitImagesPerSecond, double RemoteTwoInFlightMs = 0, string? Protocol = null);

    public static async Task<List<Row>> Run(BenchOptions options)
    {
        var rows = new List<Row>();
        var cpus = UnitDiscovery.Discover(new DiscoveryRequest { Grouping = options.CpuGrouping }).Where(u => u.Kind == UnitKind.Cpu && u.Available).ToList();
        if (cpus.Count < 2) throw new InvalidOperationException("the remote bench needs two CPU units (--cpu-group Core or 2)");
        var served = cpus[^1];
        var local = cpus[..^1];
        using var serverSide = new EngineContext(EngineOptions.FromEnvironment());
        using var clientSide = new EngineContext(EngineOptions.FromEnvironment());
        foreach (var name in options.Models)
        {
            var model = ModelCatalog.Resolve(name, clientSide.Options.ModelCacheFolder);
            foreach (var batch in options.Batches)
            {
                int sub = Math.Min(batch, options.MaxCpuBatch > 0 ? options.MaxCpuBatch : 16);
                var servedPlan = PlanLayout.Manual(model.Name, model.Sha256, new List<ShareSpec> { new(served, sub, sub, 1) });
                int port = FreePort();
                using var server = new InferenceServer(serverSide, servedPlan, model, new ServerSettings { Port = port, Protocol = options.Grpc ? ServerProtocol.Grpc : ServerProtocol.Rest });
                server.Start();
                var address = server.Url;
                var remote = UnitDiscovery.Discover(new DiscoveryRequest { Endpoints = new[] { address } }).Single();

                // the served core used directly, then through the server: the same sub-batches
                double direct = Median(clientSide, PlanLayout.Manual(model.Name, model.Sha256, new List<ShareSpec> { new(served, batch, sub, 1) }), model, options.Repeats);
                long before = server.Requests;
                double viaServer = Median(clientSide, PlanLayout.Manual(model.Name, model.Sha256, new List<ShareSpec> { new(remote, batch, sub, 1) }), model, options.Repeats);
                int requests = (int)((server.Requests - before) / Math.Max(1, options.Repeats));
                // the same requests, two in flight at once
                double twoInFlight = Median(clientSide, PlanLayout.Manual(model.Name, model.Sha256, new List<ShareSpec> { new(remote, batch, sub, 1, InFlight: 2) }), model, options.Repeats);

                // the local units alone, then with the server beside them, planned from profiles
                var settings = new ProfileSettings { BatchSizes = ProfileSchedule.Default(Math.Max(batch, 1)), PointBudget = TimeSpan.FromSeconds(options.SecondsPerSize) };
                var profiles = new List<UnitProfile>();
                foreach (var u in local.Append(remote)) profiles.Add(await Profiler.RunAsync(clientSide, u, model, settings));
                var alonePlan = Planner.Plan(profiles.Take(local.Count).ToList(), batch, PlanAlgorithm.Optimal);
                var splitPlan = Planner.Plan(profiles, batch, PlanAlgorithm.Optimal);
                double alone = Median(clientSide, alonePlan, model, options.Repeats);
                double split = Median(clientSide, splitPlan, model, options.Repeats);
                var row = new Row(model.Name, batch, sub, Math.Round(direct, 2), Math.Round(viaServer, 2), requests,
                    Math.Round((viaServer - direct) / Math.Max(1, requests), 3), Math.Round(alone, 2), Math.Round(split, 2), splitPlan.Split,
                    Math.Round(batch * 1000 / alone, 1), Math.Round(batch * 1000 / split, 1), Math.Round(twoInFlight, 2), options.Grpc ? "gRPC" : "REST");
                rows.Add(row);
                Console.WriteLine($"{model.Name} ×{batch} over {(options.Grpc ? "gRPC" : "REST")}: {served.Id} direct {row.DirectMs} ms, through the server {row.RemoteMs} ms in {requests} requests " +
                    $"({row.OverheadMsPerRequest} ms each; {row.RemoteTwoInFlightMs} ms with two in flight); local {string.Join("+", local.Select(u => u.Id))} alone {row.LocalAloneMs} ms, with the server {row.SplitMs} ms ({row.Split})");
                Directory.CreateDirectory(options.Out);
                File.WriteAllText(Path.Combine(options.Out, "remote.json"), JsonSerializer.Serialize(rows, BenchResults.Json));
            }
        }
        return rows;
    }

    private static double Median(EngineContext context, BatchPlan plan, ModelSource model, int repeats) =>
        PartitionedRunner.Run(context, plan, model, null, new RunSettings { Repeat = Math.Max(3, repeats) }).WallMs;

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }
}
