using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Profiling;

namespace HeteroBatch.Engine.Execution;

/// <summary>
/// The closed loop between runs and plans: what each unit did in a run, as observations for the
/// store, and the calibration later plans take from a store's observations.
/// </summary>
public static class RunObservations
{
    /// <summary>Each unit that ran its whole planned share: its samples, time, and the time its profile alone predicted.</summary>
    public static List<Observation> From(InferenceResult result)
    {
        var plan = result.Plan;
        return result.Units.Where(u => !u.Failed && u.Count > 0 && u.Count == u.PlannedCount && u.Ms > 0).Select(u =>
        {
            var shard = plan.Shards.First(s => s.UnitId == u.UnitId);
            return new Observation
            {
                Model = plan.Model, ModelSha256 = plan.ModelSha256, UnitId = u.UnitId, UnitFingerprint = shard.Unit.Fingerprint,
                Samples = u.Count, SubBatchSize = shard.SubBatchSize, Ms = u.Ms,
                // against what the profile alone predicts: the calibration of this plan is taken out
                PredictedMs = u.PredictedMs / (shard.CostFactor > 0 ? shard.CostFactor : 1),
                Alongside = result.Units.Where(o => o.UnitId != u.UnitId && o.Count > 0).Select(o => o.UnitId).ToArray(),
                At = DateTimeOffset.UtcNow,
            };
        }).ToList();
    }

    /// <summary>
    /// Each profile's unit: how its observed runs of the model compare with its profile, beside other
    /// units and alone. Side by side, the runs beside exactly the other units being planned count
    /// when there are any (a GPU slows differently beside a busy CPU unit than beside another GPU);
    /// otherwise its runs beside any others do. Side by side the worst of the recent runs counts, so
    /// a share that once kept a run waiting is shrunk or dropped (the planner then weighs the split
    /// against the best unit alone, judged by the median of its runs alone): on 2 × H100 + CPU a CPU
    /// share slowed some runs beside a GPU by 30-50% and not others.
    /// </summary>
    public static (IReadOnlyDictionary<string, (double Factor, int Runs)> Together, IReadOnlyDictionary<string, (double Factor, int Runs)> Alone) Calibration(
        ProfileStore store, IReadOnlyList<UnitProfile> profiles)
    {
        var latest = ProfileSelection.LatestPerUnit(profiles).ToList();
        var seen = latest.ToDictionary(p => p.Unit.Id, p => store.Observations(p.Model, p.ModelSha256, p.Unit.Id, p.Unit.Fingerprint));
        var ids = latest.Select(p => p.Unit.Id).ToHashSet(StringComparer.Ordinal);
        (double, int) Beside(string unit, IReadOnlyList<Observation> observations)
        {
            var others = ids.Where(id => id != unit).ToHashSet(StringComparer.Ordinal);
            var sameCompany = observations.Where(o => o.Alongside.Length > 0 && others.SetEquals(o.Alongside)).ToList();
            return Profiling.Calibration.Worst(sameCompany.Count > 0 ? sameCompany : observations.Where(o => o.Alongside.Length > 0).ToList());
        }
        return (seen.ToDictionary(kv => kv.Key, kv => Beside(kv.Key, kv.Value)),
                seen.ToDictionary(kv => kv.Key, kv => Profiling.Calibration.Factor(kv.Value.Where(o => o.Alongside.Length == 0).ToList())));
    }
}
