using HeteroBatch.Engine.Runtime;

namespace HeteroBatch.Engine.Units;

/// <summary>Whether a unit (from a stored profile or a plan) exists on this machine now, as it was.</summary>
public static class UnitPresence
{
    private static readonly Lazy<IReadOnlyList<ComputeUnit>> Accelerators = new(() =>
        UnitDiscovery.CudaUnits(OrtRuntime.Version).Concat(UnitDiscovery.OpenVinoUnits(OrtRuntime.Version)).Where(u => u.Available).ToList());

    /// <summary>Null if present; otherwise why not.</summary>
    public static string? WhyAbsent(ComputeUnit unit)
    {
        if (unit.RuntimeVersion != OrtRuntime.Version)
            return $"it was found with ONNX Runtime {unit.RuntimeVersion}; this is {OrtRuntime.Version}";
        if (unit.Provider == ExecutionProvider.CPU)
        {
            if (unit.Name != CpuTopology.ModelName()) return $"this machine's CPU is not '{unit.Name}'";
            var allowed = new HashSet<int>(CpuTopology.AllowedProcessors());
            var missing = unit.Processors.Where(p => !allowed.Contains(p)).ToArray();
            return missing.Length == 0 ? null : $"processors {string.Join(",", missing)} are not available to this process";
        }
        return Accelerators.Value.Any(a => a.Fingerprint == unit.Fingerprint) ? null : $"no {unit.Provider} device '{unit.Name}' ({unit.Id}) runs here";
    }

    /// <summary>True if two CPU units share a processor (they would slow each other down).</summary>
    public static bool Overlap(ComputeUnit a, ComputeUnit b) =>
        a.Provider == ExecutionProvider.CPU && b.Provider == ExecutionProvider.CPU && a.Processors.Intersect(b.Processors).Any();
}
