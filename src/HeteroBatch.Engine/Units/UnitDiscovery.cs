using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Units.Backends;

namespace HeteroBatch.Engine.Units;

/// <summary>Finds the compute units of this machine. A unit is listed as available only if a real session starts on it.</summary>
public static class UnitDiscovery
{
    /// <summary>
    /// Accelerators first (each backend probes its devices), then the CPU: one processor per
    /// working accelerator that needs a feeder is left out of the CPU units and given to it.
    /// </summary>
    public static IReadOnlyList<ComputeUnit> Discover(DiscoveryRequest request)
    {
        var version = OrtRuntime.Version;
        if (request.Endpoints.Count > 0)
            return UnitBackends.Remote.Discover(request, version).Where(u => u.Available || request.IncludeUnavailable).ToList();
        var found = UnitBackends.Accelerators.Select(b => (Backend: b, Units: b.Discover(request, version))).ToList();
        var allowed = CpuTopology.AllowedProcessors();
        var fed = found.Where(f => f.Backend.NeedsFeeder).SelectMany(f => f.Units).Where(u => u.Available).ToList();
        int reserve = fed.Count > 0 && allowed.Length > fed.Count + 1 ? fed.Count : 0;
        var feeders = allowed[^reserve..];
        for (int i = 0; i < reserve; i++) fed[i].FeederProcessor = feeders[i];

        var units = new List<ComputeUnit>(CpuBackend.Units(request.Grouping, version, allowed[..^reserve], feeders));
        foreach (var (_, list) in found)
            units.AddRange(list.Where(u => u.Available || request.IncludeUnavailable));
        return units;
    }

    /// <summary>Every accelerator device found here as it is by default (available or not): what presence checks compare with.</summary>
    public static IReadOnlyList<ComputeUnit> Accelerators() => Accelerators(new EngineOptions());

    /// <summary>Every accelerator device found here with these settings (their plugin libraries), available or not.</summary>
    public static IReadOnlyList<ComputeUnit> Accelerators(EngineOptions settings) =>
        UnitBackends.Accelerators.SelectMany(b => b.Discover(new DiscoveryRequest { ExecutionProviderLibraries = settings.ExecutionProviderLibraries }, OrtRuntime.Version)).ToList();
}
