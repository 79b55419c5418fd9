using HeteroBatch.Engine.Units;

namespace HeteroBatch.Engine.Planning;

/// <summary>One unit's share before it is laid out: how many samples, in sub-batches of what size, predicted to take how long.</summary>
public readonly record struct ShareSpec(ComputeUnit Unit, int Count, int SubBatchSize, double PredictedMs);

/// <summary>The one place that turns shares into shards: consecutive offsets in the given order, empty shares left out.</summary>
public static class PlanLayout
{
    /// <summary>Replaces the plan's shards with <paramref name="shares"/> laid end to end, and sets its predicted time (the slowest shard's).</summary>
    public static BatchPlan Lay(BatchPlan plan, IReadOnlyList<ShareSpec> shares)
    {
        plan.Shards = new List<PlanShard>();
        int offset = 0;
        foreach (var s in shares)
        {
            if (s.Count <= 0) continue;
            plan.Shards.Add(new PlanShard
            {
                UnitId = s.Unit.Id, Unit = s.Unit, Offset = offset, Count = s.Count,
                SubBatchSize = Math.Max(1, s.SubBatchSize), PredictedMs = s.PredictedMs,
            });
            offset += s.Count;
        }
        plan.BatchSize = offset;
        plan.PredictedMs = plan.Shards.Count == 0 ? 0 : plan.Shards.Max(s => s.PredictedMs);
        return plan;
    }

    /// <summary>A plan of the given shares, for benchmarks and tests that split by hand.</summary>
    public static BatchPlan Manual(string model, string modelSha256, IReadOnlyList<ShareSpec> shares) =>
        Lay(new BatchPlan { Model = model, ModelSha256 = modelSha256 }, shares);
}
