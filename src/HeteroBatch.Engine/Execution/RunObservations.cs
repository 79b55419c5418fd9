using HeteroBatch.Engine.Runtime;
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
    public static List<Observation> From(RunReport result)
    {
        var plan = result.Plan;
        var runId = Guid.NewGuid().ToString("N");
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
                RunId = runId, RunWallMs = result.InferenceWallMs, RunPredictedMs = result.PredictedMs, OtherLoad = result.OtherLoad,
                At = DateTimeOffset.UtcNow,
            };
        }).ToList();
    }

    /// <summary>
    /// What a store's observations teach a plan for these profiles' units (each by the rule of
    /// <see cref="Profiling.Calibration"/>). Per unit, its factor side by side (the runs beside exactly
    /// the other units being planned when there are any: a GPU slows differently beside a busy CPU
    /// unit than beside another GPU; otherwise its runs beside any others) and alone (its runs alone,
    /// starting from its factor side by side: a first run alone does not take the unit back to its
    /// profile). For the set, its whole runs: each run's wall time over its slowest unit's time in it,
    /// which is what the units' own factors cannot explain (the gather, threads waking), so that a
    /// unit that ran slow is not counted against the split a second time; when such runs agree that a
    /// split takes longer than its units, the split is judged with that against the best unit alone.
    /// A run counts for the set only when every unit of it left an observation.
    /// </summary>
    public static PlanCalibration Calibration(ProfileStore store, IReadOnlyList<UnitProfile> profiles)
    {
        var latest = ProfileSelection.LatestPerUnit(profiles).ToList();
        var seen = latest.ToDictionary(p => p.Unit.Id, p => store.Observations(p.Model, p.ModelSha256, p.Unit.Id, p.Unit.Fingerprint));
        var ids = latest.Select(p => p.Unit.Id).ToHashSet(StringComparer.Ordinal);
        (double, int) Beside(string unit, IReadOnlyList<Observation> observations)
        {
            var others = ids.Where(id => id != unit).ToHashSet(StringComparer.Ordinal);
            var sameCompany = observations.Where(o => o.Alongside.Length > 0 && others.SetEquals(o.Alongside)).ToList();
            return Profiling.Calibration.Factor(sameCompany.Count > 0 ? sameCompany : observations.Where(o => o.Alongside.Length > 0).ToList());
        }
        var together = seen.ToDictionary(kv => kv.Key, kv => Beside(kv.Key, kv.Value));
        var runs = seen.Values.SelectMany(o => o)
            .Where(o => o.RunId != null && o.RunWallMs > 0 && o.Ms > 0 && ids.SetEquals(o.Alongside.Append(o.UnitId)))
            .GroupBy(o => o.RunId).Where(g => g.Count() == ids.Count)
            .OrderBy(g => g.Max(o => o.At))
            .Select(g => new Profiling.Calibration.Evidence(g.First().RunWallMs / g.Max(o => o.Ms), g.First().OtherLoad))
            .ToList();
        var set = ids.Count < 2 ? (1.0, 0) : Profiling.Calibration.Estimate(runs);
        return new PlanCalibration(together,
            seen.ToDictionary(kv => kv.Key, kv => Profiling.Calibration.Factor(kv.Value.Where(o => o.Alongside.Length == 0).ToList(), together[kv.Key].Item1)),
            set);
    }
}
