using HeteroBatch.Engine.Units;

namespace HeteroBatch.Engine.Planning;

/// <summary>One unit's share before it is laid out: how many samples, in sub-batches of what size (so many in flight at once), predicted to take how long.</summary>
public readonly record struct ShareSpec(ComputeUnit Unit, int Count, int SubBatchSize, double PredictedMs, int InFlight = 1);

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
                SubBatchSize = Math.Max(1, s.SubBatchSize), PredictedMs = s.PredictedMs, InFlight = Math.Max(1, s.InFlight),
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

    /// <summary>Throws PlanEmpty or PlanInvalid for a plan that cannot be run as it is (one read back from a file or edited by hand).</summary>
    public static void Validate(BatchPlan plan)
    {
        if (plan.Shards.Count == 0)
            throw new HeteroBatchException("PlanEmpty", FailureKind.InvalidArgument, "The plan has no shards.");
        if (plan.BatchSize < 1 || plan.Shards.Any(s => s.Count < 1 || s.SubBatchSize < 1 || s.Offset < 0))
            throw new HeteroBatchException("PlanInvalid", FailureKind.InvalidArgument, "Every shard of a plan needs at least one sample, a sub-batch size of at least one and an offset of zero or more.");
        if (plan.Shards.Any(s => s.Unit == null || string.IsNullOrEmpty(s.Unit.Id) || s.Unit.Id != s.UnitId))
            throw new HeteroBatchException("PlanInvalid", FailureKind.InvalidArgument, "A shard of the plan does not carry its unit (as Get-BatchPlan writes it); plan again.");
        if (plan.Shards.GroupBy(s => s.UnitId).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new HeteroBatchException("PlanInvalid", FailureKind.InvalidArgument, $"The plan names unit '{twice.Key}' in more than one shard.", twice.Key);
        long expected = 0;
        foreach (var shard in plan.Shards.OrderBy(s => s.Offset))
        {
            if (shard.Offset != expected)
                throw new HeteroBatchException("PlanInvalid", FailureKind.InvalidArgument, "The plan's shards overlap or leave gaps.");
            expected += shard.Count;
        }
        if (plan.Shards.Sum(s => (long)s.Count) != plan.BatchSize)
            throw new HeteroBatchException("PlanInvalid", FailureKind.InvalidArgument, $"The plan's shards cover {plan.Shards.Sum(s => (long)s.Count)} samples, not its batch size {plan.BatchSize}.");
    }
}
