using System.Management.Automation;
using HeteroBatch.Engine.Units;
using HeteroBatch.Engine.Units.Backends;

namespace HeteroBatch;

/// <summary>
/// Lets -Unit take unit ids as well as units: "cpu", "cpu0" (one unit per core), "gpu1". Units
/// pass through as they are; a unit back from a file or a job becomes one through JSON; any other
/// object with an Id (Select-Object Id, a row of Import-Csv) is the unit here with that id.
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
            string? id = value as string;
            if (item is PSObject shell && value is not string)
            {
                if (shell.Properties["Fingerprint"] != null && FromJson(engineIntrinsics, shell) is { } back)
                {
                    // a unit back from Import-Clixml, ConvertFrom-Json or a job: through JSON to the real type
                    units.Add(back);
                    continue;
                }
                // Select-Object Id, a CSV row (every value a string, so not a unit by JSON): the id is enough here
                id = shell.Properties["Id"]?.Value is { } idValue ? (idValue is PSObject p ? p.BaseObject : idValue) as string : null;
            }
            if (id == null) return inputData; // let the binder say what it cannot take
            // the whole CPU, one unit per core, and the accelerators found here
            here ??= UnitDiscovery.Discover(new DiscoveryRequest { ExecutionProviderLibraries = ModuleContext.Current.Options.ExecutionProviderLibraries }).Concat(CpuBackend.Units(new CpuGrouping(CpuGroupingMode.Core), Engine.Runtime.OrtRuntime.Version)).ToList();
            var match = here.FirstOrDefault(u => string.Equals(u.Id, id, StringComparison.OrdinalIgnoreCase))
                ?? throw new ArgumentTransformationMetadataException($"No unit '{id}' here; units: {string.Join(", ", here.Select(u => u.Id).Distinct())}.");
            units.Add(match);
        }
        return units.ToArray();
    }

    /// <summary>A deserialized unit as the real type, or null where its properties do not make one (strings from a CSV file).</summary>
    private static ComputeUnit? FromJson(EngineIntrinsics engine, PSObject o)
    {
        var json = JsonObjectAttribute.ToJson(engine, o);
        if (json == null) return null;
        try
        {
            var unit = System.Text.Json.JsonSerializer.Deserialize<ComputeUnit>(json, JsonObjectAttribute.Options);
            return unit != null && !string.IsNullOrEmpty(unit.Id) && !string.IsNullOrEmpty(unit.RuntimeVersion) ? unit : null;
        }
        catch (System.Text.Json.JsonException) { return null; }
    }
}
