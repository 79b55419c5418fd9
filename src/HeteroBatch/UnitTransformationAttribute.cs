using System.Management.Automation;
using HeteroBatch.Engine.Units;
using HeteroBatch.Engine.Units.Backends;

namespace HeteroBatch;

/// <summary>
/// Lets -Unit take unit ids as well as units: "cpu", "cpu0" (one unit per core), "gpu1". Units
/// pass through as they are.
/// </summary>
public sealed class UnitTransformationAttribute : ArgumentTransformationAttribute
{
    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
    {
        if (inputData is null) return null;
        var items = inputData is System.Collections.IList list && inputData is not string ? list.Cast<object?>() : new[] { inputData };
        IReadOnlyList<ComputeUnit>? here = null;
        var units = new List<ComputeUnit>();
        foreach (var item in items)
        {
            var value = item is PSObject ps ? ps.BaseObject : item;
            if (value is ComputeUnit unit) { units.Add(unit); continue; }
            if (item is PSObject deserialized && value is not string && deserialized.Properties["Fingerprint"] != null)
            {
                // a unit back from Import-Clixml, ConvertFrom-Json or a job: through JSON to the real type
                var json = JsonObjectAttribute.ToJson(engineIntrinsics, deserialized);
                units.Add(System.Text.Json.JsonSerializer.Deserialize<ComputeUnit>(json!, JsonObjectAttribute.Options)!);
                continue;
            }
            if (value is not string id) return inputData; // let the binder say what it cannot take
            // the whole CPU, one unit per core, and the accelerators found here
            here ??= UnitDiscovery.Discover(new DiscoveryRequest()).Concat(CpuBackend.Units(new CpuGrouping(CpuGroupingMode.Core), Engine.Runtime.OrtRuntime.Version)).ToList();
            var match = here.FirstOrDefault(u => string.Equals(u.Id, id, StringComparison.OrdinalIgnoreCase))
                ?? throw new ArgumentTransformationMetadataException($"No unit '{id}' here; units: {string.Join(", ", here.Select(u => u.Id).Distinct())}.");
            units.Add(match);
        }
        return units.ToArray();
    }
}
