using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Profiling;
using HeteroBatch.Engine.Units;

namespace HeteroBatch.Engine.Tests;

/// <summary>Shared set-up: a private model cache and two single-core CPU units (or one unit twice on a one-core machine).</summary>
public static class TestModels
{
    public static readonly string Cache = Path.Combine(Path.GetTempPath(), "heterobatch-xunit-cache");

    public static ModelSource Tiny => ModelCatalog.Resolve("tinynet", Cache);

    public static IReadOnlyList<ComputeUnit> TwoCpuUnits()
    {
        return Units.Backends.CpuBackend.Units(new CpuGrouping(CpuGroupingMode.Count, 2), Runtime.OrtRuntime.Version);
    }

    public static UnitProfile FakeProfile(string unitId, string model, params (int B, double Ms)[] points) => new()
    {
        Unit = new ComputeUnit { Id = unitId, Name = unitId, RuntimeVersion = "test" },
        Model = model, ModelSha256 = "feedface" + model, MeasuredAt = DateTimeOffset.UtcNow,
        Table = points.Select(p => new ProfileEntry { BatchSize = p.B, MedianMs = p.Ms, Samples = 1 }).ToList(),
        MaxBatchSize = points.Max(p => p.B),
    };

    /// <summary>A loopback port free now (for a test's server).</summary>
    public static int FreePort()
    {
        var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        int port = ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    /// <summary>A manual plan of tinynet over these shares (unit, samples, sub-batch).</summary>
    public static Planning.BatchPlan Plan(params (ComputeUnit Unit, int Count, int Sub)[] shares) =>
        Planning.PlanLayout.Manual("tinynet", Tiny.Sha256, shares.Select(s => new Planning.ShareSpec(s.Unit, s.Count, s.Sub, 1)).ToList());
}
