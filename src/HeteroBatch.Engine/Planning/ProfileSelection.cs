using HeteroBatch.Engine.Profiling;
using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Units;
using HeteroBatch.Engine.Units.Backends;

namespace HeteroBatch.Engine.Planning;

/// <summary>Chooses which stored profiles a plan is made from.</summary>
public static class ProfileSelection
{
    /// <summary>
    /// Stored profiles of a model for units present now. With unit ids, exactly those units
    /// (ProfileNotFound for any without a profile); without, the most recently measured set of
    /// units that do not share processors.
    /// </summary>
    /// <param name="presence">Which units are present here now (the context's).</param>
    public static IReadOnlyList<UnitProfile> Select(IReadOnlyList<UnitProfile> stored, string model, string modelSha, IReadOnlyCollection<string>? unitIds, UnitPresence presence)
    {
        var forModel = stored.Where(p => p.ModelSha256 == modelSha).ToList();
        var present = LatestPerUnit(forModel.Where(p => presence.WhyAbsent(p.Unit) == null));
        if (unitIds is { Count: > 0 })
        {
            var chosen = new List<UnitProfile>();
            foreach (var id in unitIds)
            {
                var match = present.Where(p => Wildcard.IsMatch(p.Unit.Id, id)).ToList();
                if (match.Count == 0 && !Wildcard.HasWildcards(id) && !IsUnitHere(id, presence) && !forModel.Any(p => Wildcard.IsMatch(p.Unit.Id, id)))
                    throw new HeteroBatchException("UnitNotFound", FailureKind.ObjectNotFound,
                        $"No unit '{id}' here (nor a stored profile of '{model}' for one).", id);
                if (match.Count == 0)
                    throw new HeteroBatchException("ProfileNotFound", FailureKind.ObjectNotFound,
                        $"No stored profile of '{model}' for unit '{id}' on this machine.", model);
                chosen.AddRange(match.Where(m => !chosen.Contains(m)));
            }
            CheckNoOverlap(chosen);
            return chosen;
        }
        if (present.Count == 0)
            throw new HeteroBatchException("ProfileNotFound", FailureKind.ObjectNotFound,
                $"No stored profile of '{model}' for any unit of this machine.", model);
        var set = new List<UnitProfile>();
        foreach (var p in present.OrderByDescending(p => p.MeasuredAt))
            if (!set.Any(s => UnitBackends.Overlap(s.Unit, p.Unit))) set.Add(p);
        return set.OrderBy(p => p.Unit.Id, StringComparer.Ordinal).ToList();
    }

    /// <summary>True if a unit of this id can exist here: the CPU (whole or a group) or an accelerator found here.</summary>
    private static bool IsUnitHere(string id, UnitPresence presence) =>
        id.Equals("cpu", StringComparison.OrdinalIgnoreCase)
        || (id.StartsWith("cpu", StringComparison.OrdinalIgnoreCase) && int.TryParse(id[3..], out var n) && n >= 0 && n < CpuTopology.AllowedProcessors().Length)
        || presence.Accelerators.Any(u => string.Equals(u.Id, id, StringComparison.OrdinalIgnoreCase));

    /// <summary>The latest measured profile of each unit (by id), in the order units first appear.</summary>
    public static List<UnitProfile> LatestPerUnit(IEnumerable<UnitProfile> profiles) =>
        profiles.GroupBy(p => p.Unit.Id).Select(g => g.OrderBy(p => p.MeasuredAt).Last()).ToList();

    public static void CheckNoOverlap(IReadOnlyList<UnitProfile> profiles) => CheckNoOverlap(profiles.Select(p => p.Unit).ToList());

    /// <summary>Throws UnitsOverlap if two units compute on a shared processor (two CPU units, or a CPU unit and OpenVINO's CPU device).</summary>
    public static void CheckNoOverlap(IReadOnlyList<ComputeUnit> units)
    {
        for (int i = 0; i < units.Count; i++)
            for (int j = i + 1; j < units.Count; j++)
                if (UnitBackends.Overlap(units[i], units[j]))
                    throw new HeteroBatchException("UnitsOverlap", FailureKind.InvalidArgument,
                        $"Units '{units[i].Id}' ({UnitBackends.For(units[i]).Name}) and '{units[j].Id}' ({UnitBackends.For(units[j]).Name}) share processors; use units of one grouping, and one kind of unit on any processor.");
    }
}
