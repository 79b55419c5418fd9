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
            BestSingleUnit = plan.BestSingleUnit, Units = plan.Units,
        };
        int offset = 0;
        for (int i = 0; i < counts.Length; i++)
        {
            if (counts[i] == 0) continue;
            var s = plan.Shards[i];
            double perSample = s.PredictedMs / s.Count;
            scaled.Shards.Add(new PlanShard
            {
                UnitId = s.UnitId, Unit = s.Unit, Offset = offset, Count = counts[i],
                SubBatchSize = Math.Min(s.SubBatchSize, counts[i]), PredictedMs = perSample * counts[i],
            });
            offset += counts[i];
        }
        scaled.PredictedMs = scaled.Shards.Max(s => s.PredictedMs);
        scaled.BestSingleMs = plan.BestSingleMs * batch / plan.BatchSize;
        scaled.PredictedSpeedup = scaled.PredictedMs > 0 ? scaled.BestSingleMs / scaled.PredictedMs : 1;
        return scaled;
    }
}
