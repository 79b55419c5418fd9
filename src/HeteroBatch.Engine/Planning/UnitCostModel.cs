using HeteroBatch.Engine.Profiling;
using HeteroBatch.Engine.Units;

namespace HeteroBatch.Engine.Planning;

/// <summary>
/// Predicted time for a unit to run b samples, from its profile: linear interpolation between
/// profiled batch sizes; a share above the largest batch that ran (or one that runs faster in
/// pieces) is run as several sub-batches. The model is made non-decreasing in b (a unit given
/// fewer samples is never predicted to take longer), which makes min-max planning exact.
/// </summary>
internal sealed class UnitCostModel
{
    public ComputeUnit Unit { get; }
    public UnitProfile Profile { get; }
    /// <summary>The largest batch size the unit runs in one go.</summary>
    public int MaxBatch { get; }
    private readonly (int B, double Ms)[] _points;

    /// <summary>What the profile's times are multiplied by: how runs of this unit compared with their predictions (1: the profile alone).</summary>
    public double Factor { get; }

    /// <param name="factor">Scales every profiled time: the calibration from observed runs (see <see cref="Calibration"/>).</param>
    public UnitCostModel(UnitProfile profile, double factor = 1)
    {
        Profile = profile;
        Unit = profile.Unit;
        Factor = factor > 0 && double.IsFinite(factor) ? factor : 1;
        var usable = profile.Table.Where(e => e.BatchSize >= 1 && e.MedianMs > 0 && double.IsFinite(e.MedianMs)).ToList();
        int limit = profile.FailedBatchSize is int f ? f - 1 : int.MaxValue;
        _points = usable.Where(e => e.BatchSize <= limit).GroupBy(e => e.BatchSize)
            .Select(g => (g.Key, g.Last().MedianMs * Factor)).OrderBy(p => p.Key).ToArray();
        if (_points.Length == 0)
            throw new HeteroBatchException("ProfileEmpty", FailureKind.InvalidData,
                $"The profile of '{profile.Model}' on unit '{profile.Unit.Id}' has no usable measurements.", profile.Unit.Id);
        MaxBatch = _points[^1].B;
        UniformShapes = Units.Backends.UnitBackends.For(Unit).KeepsOneShape;
    }

    /// <summary>Time of one run of b samples (1 ≤ b ≤ MaxBatch), interpolated between profiled sizes.</summary>
    public double Direct(int b)
    {
        if (b <= _points[0].B) return _points[0].Ms;
        int lo = 0, hi = _points.Length - 1;
        while (hi - lo > 1)
        {
            int mid = (lo + hi) / 2;
            if (_points[mid].B <= b) lo = mid; else hi = mid;
        }
        var (b0, t0) = _points[lo];
        var (b1, t1) = _points[hi];
        return b >= b1 ? t1 : t0 + (t1 - t0) * (b - b0) / (b1 - b0);
    }

    /// <summary>
    /// Units whose backend keeps one input shape run every sub-batch at that shape, so their share
    /// is split into equal runs (1000 samples with 512 the largest: two runs of 500, not 512 and a
    /// padded 488); others run a tail as it is.
    /// </summary>
    public bool UniformShapes { get; }

    /// <summary>How many runs of about <paramref name="subBatch"/> samples the profile kept in flight at once (its nearest measured size; 1 where it measured one at a time).</summary>
    public int InFlightAt(int subBatch) =>
        Math.Max(1, Profile.Table.Where(e => e.BatchSize >= 1).OrderBy(e => Math.Abs(e.BatchSize - subBatch)).ThenBy(e => e.BatchSize).Select(e => e.InFlight).FirstOrDefault(1));

    /// <summary>Samples per second at the profiled size that gives the most.</summary>
    public double BestThroughput => _points.Max(p => p.B * 1000.0 / p.Ms);

    /// <summary>
    /// The predicted cost of shares of 0, step, 2·step, ... samples up to the batch (index k holds
    /// min(k·step, batch) samples), and the sub-batch size each would run with. With step 1 that is
    /// every share size; a larger step keeps the table's memory bounded for huge batches.
    /// </summary>
    public CostTable Table(int batch, int step = 1)
    {
        step = Math.Max(1, step);
        int steps = (int)((batch + (long)step - 1) / step);
        var direct = new double[Math.Min(batch, MaxBatch) + 1];
        // walk the profiled points once: O(min(batch, largest profiled size))
        int k = 0;
        for (int b = 1; b < direct.Length; b++)
        {
            while (k + 1 < _points.Length && _points[k + 1].B <= b) k++;
            if (b <= _points[0].B) direct[b] = _points[0].Ms;
            else if (k + 1 >= _points.Length || _points[k].B == b) direct[b] = _points[k].Ms;
            else
            {
                var (b0, t0) = _points[k];
                var (b1, t1) = _points[k + 1];
                direct[b] = t0 + (t1 - t0) * (b - b0) / (b1 - b0);
            }
        }
        // candidate sub-batch sizes: the largest that ran, and the most efficient profiled size
        int best = MaxBatch;
        double bestRate = MaxBatch / _points[^1].Ms;
        foreach (var (b, ms) in _points)
            if (b <= batch && b / ms > bestRate) { best = b; bestRate = b / ms; }
        int[] chunks = best == MaxBatch ? new[] { MaxBatch } : new[] { MaxBatch, best };
        double[] chunkCost = chunks.Select(c => c < direct.Length ? direct[c] : Direct(c)).ToArray();

        var cost = new double[steps + 1];
        var sub = new int[steps + 1];
        for (int i = 1; i <= steps; i++)
        {
            int b = (int)Math.Min((long)i * step, batch);
            double c = b < direct.Length ? direct[b] : double.PositiveInfinity;
            int size = b;
            for (int j = 0; j < chunks.Length; j++)
            {
                int s = chunks[j];
                if (s >= b) continue;
                long q = b / s;
                int r = (int)(b - q * s);
                if (UniformShapes)
                {
                    // as many runs as chunks of s need, all of one size: the share split evenly (at most one sample padded a run)
                    long runs = q + (r > 0 ? 1 : 0);
                    int even = (int)((b + runs - 1) / runs);
                    double t = runs * direct[even];
                    if (t < c) { c = t; size = even; }
                }
                else
                {
                    double t = q * chunkCost[j] + direct[r];
                    if (t < c) { c = t; size = s; }
                }
            }
            cost[i] = Math.Max(c, cost[i - 1]);
            sub[i] = size;
        }
        return new CostTable(cost, sub, step);
    }
}

/// <summary>Predicted milliseconds for each share size (index k = k·Step samples, the last one the whole batch), and the sub-batch size it runs with.</summary>
internal sealed record CostTable(double[] Cost, int[] SubBatch, int Step = 1);
