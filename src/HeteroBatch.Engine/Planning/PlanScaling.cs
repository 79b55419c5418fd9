namespace HeteroBatch.Engine.Planning;

/// <summary>A plan for fewer samples than it was made for: its shares scaled down (largest remainder), offsets laid out again.</summary>
public static class PlanScaling
{
    public static BatchPlan Scale(BatchPlan plan, int batch)
    {
        if (batch < 1) throw new HeteroBatchException("BatchSizeInvalid", FailureKind.InvalidArgument, $"The batch size must be at least 1 (got {batch}).", batch);
        var exact = plan.Shards.Select(s => (double)s.Count * batch / plan.BatchSize).ToArray();
        var counts = exact.Select(e => (int)Math.Floor(e)).ToArray();
        foreach (var i in Enumerable.Range(0, counts.Length).OrderByDescending(i => exact[i] - counts[i]).Take(batch - counts.Sum())) counts[i]++;
        var scaled = new BatchPlan
        {
            Model = plan.Model, ModelSha256 = plan.ModelSha256, ModelPath = plan.ModelPath, BatchSize = batch, Algorithm = plan.Algorithm,
            BestSingleUnit = plan.BestSingleUnit, Units = plan.Units, CostsFrom = plan.CostsFrom, Calibrated = plan.Calibrated,
        };
        PlanLayout.Lay(scaled, plan.Shards.Select((s, i) =>
            new ShareSpec(s.Unit, counts[i], Math.Min(s.SubBatchSize, counts[i]), s.PredictedMs / s.Count * counts[i], s.InFlight)).ToList());
        foreach (var shard in scaled.Shards) shard.CostFactor = plan.Shards.First(s => s.UnitId == shard.UnitId).CostFactor;
        scaled.BestSingleMs = plan.BestSingleMs * batch / plan.BatchSize;
        scaled.PredictedSpeedup = scaled.PredictedMs > 0 ? scaled.BestSingleMs / scaled.PredictedMs : 1;
        return scaled;
    }

    /// <summary>The plan without some units: the others' shares grown in proportion to take the whole batch (null when no unit is left).</summary>
    public static BatchPlan? Without(BatchPlan plan, IReadOnlyCollection<string> unitIds)
    {
        var kept = plan.Shards.Where(s => !unitIds.Contains(s.UnitId)).ToList();
        if (kept.Count == plan.Shards.Count) return plan;
        if (kept.Count == 0 || kept.Sum(s => s.Count) == 0) return null;
        var smaller = new BatchPlan
        {
            Model = plan.Model, ModelSha256 = plan.ModelSha256, ModelPath = plan.ModelPath, BatchSize = kept.Sum(s => s.Count), Algorithm = plan.Algorithm,
            BestSingleUnit = plan.BestSingleUnit, Units = plan.Units, CostsFrom = plan.CostsFrom, Calibrated = plan.Calibrated,
            BestSingleMs = plan.BestSingleMs * kept.Sum(s => s.Count) / plan.BatchSize,
        };
        PlanLayout.Lay(smaller, kept.Select(s => new ShareSpec(s.Unit, s.Count, s.SubBatchSize, s.PredictedMs, s.InFlight)).ToList());
        foreach (var shard in smaller.Shards) shard.CostFactor = kept.First(s => s.UnitId == shard.UnitId).CostFactor;
        return Scale(smaller, plan.BatchSize);
    }
}
