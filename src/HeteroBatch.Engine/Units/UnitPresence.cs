using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Units.Backends;

namespace HeteroBatch.Engine.Units;

/// <summary>
/// Whether a unit (from a stored profile or a plan) exists on this machine now, as it was.
/// Accelerators are discovered once per presence (one per engine context) and compared by
/// device through their backend, so math modes such as TF32 do not make a unit absent.
/// </summary>
public sealed class UnitPresence
{
    private readonly Lazy<IReadOnlyList<ComputeUnit>> _accelerators;

    /// <param name="accelerators">The accelerator devices found here; default: discovered on first use.</param>
    public UnitPresence(Func<IReadOnlyList<ComputeUnit>>? accelerators = null) =>
        _accelerators = new Lazy<IReadOnlyList<ComputeUnit>>(accelerators ?? UnitDiscovery.Accelerators, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The accelerator devices found here (discovered on first use).</summary>
    public IReadOnlyList<ComputeUnit> Accelerators => _accelerators.Value;

    /// <summary>Null if present; otherwise why not.</summary>
    public string? WhyAbsent(ComputeUnit unit)
    {
        if (string.IsNullOrEmpty(unit.RuntimeVersion))
            return "it does not say which ONNX Runtime found it (pass units from Get-ComputeUnit, or their ids)";
        if (unit.RuntimeVersion != OrtRuntime.Version)
            return $"it was found with ONNX Runtime {unit.RuntimeVersion}; this is {OrtRuntime.Version}";
        return UnitBackends.For(unit).WhyAbsent(unit, _accelerators.Value);
    }

    /// <summary>Null if the unit can run here; otherwise why not: it was found unavailable (its reason), or it is not here now as it was.</summary>
    public string? WhyUnusable(ComputeUnit unit) =>
        unit.Available ? WhyAbsent(unit) : unit.Reason ?? "it is not available";

    /// <summary>
    /// The UnitUnavailable error for a unit that cannot run here (<see cref="WhyUnusable"/>), or null.
    /// <paramref name="planned"/>: the unit is one a plan gives samples to, and the message says so.
    /// Callers decide whether it stops the command (a plan to serve) or only skips an item (one unit of many to profile).
    /// </summary>
    public HeteroBatchException? Unavailable(ComputeUnit unit, bool planned = false) =>
        WhyUnusable(unit) is not { } why ? null
        : new HeteroBatchException("UnitUnavailable", FailureKind.ResourceUnavailable,
            planned ? $"The plan gives samples to unit '{unit.Id}', which cannot run here: {why}" : $"Unit '{unit.Id}' cannot run here: {why}", unit.Id);

    /// <summary>Throws UnitUnavailable for the first of <paramref name="units"/> that cannot run here.</summary>
    public void Require(IEnumerable<ComputeUnit> units, bool planned = false)
    {
        foreach (var unit in units)
            if (Unavailable(unit, planned) is { } e) throw e;
    }
}
