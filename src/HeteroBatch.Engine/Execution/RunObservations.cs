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
                RunId = runId, RunWallMs = result.InferenceWallMs, RunPredictedMs = result.PredictedMs,
                At = DateTimeOffset.UtcNow,
            };
        }).ToList();
    }

    /// <summary>How many of the latest runs of a set of units judge the set.</summary>
    public const int SetWindow = 3;

    /// <summary>
    /// What a store's observations teach a plan for these profiles' units. Per unit, the median of
    /// its last runs' measured over predicted time, alone and side by side (the runs beside exactly
    /// the other units being planned when there are any: a GPU slows differently beside a busy CPU
    /// unit than beside another GPU; otherwise its runs beside any others). For the set, the median
    /// of its last 3 whole runs' wall time over prediction: a split whose runs took so much longer
    /// than planned that the best unit alone would have finished sooner falls back to that unit.
    /// On 2 × H100 + CPU some runs of a CPU + GPU split took 30-50% longer than the same plan's
    /// previous run; per unit, one such run would skew every later split.
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
        // whole runs of exactly this set: one observation per run is enough (every unit of a run carries its wall time)
        var runs = seen.Values.SelectMany(o => o)
            .Where(o => o.RunId != null && o.RunWallMs > 0 && o.RunPredictedMs > 0 && ids.SetEquals(o.Alongside.Append(o.UnitId)))
            .GroupBy(o => o.RunId).Select(g => g.First()).OrderBy(o => o.At).TakeLast(SetWindow)
            .Select(o => o.RunWallMs / o.RunPredictedMs).OrderBy(r => r).ToList();
        var set = runs.Count == 0 || ids.Count < 2 ? (1.0, 0) : (Math.Clamp(Statistics.Quantile(runs, 0.5), 0.25, 4), runs.Count);
        return new PlanCalibration(
            seen.ToDictionary(kv => kv.Key, kv => Beside(kv.Key, kv.Value)),
            seen.ToDictionary(kv => kv.Key, kv => Profiling.Calibration.Factor(kv.Value.Where(o => o.Alongside.Length == 0).ToList())),
            set);
    }
}
