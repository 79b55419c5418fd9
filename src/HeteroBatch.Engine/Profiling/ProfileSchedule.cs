namespace HeteroBatch.Engine.Profiling;

/// <summary>Which batch sizes to measure: 1, 2, 3, then 2^n - 1, 2^n, 2^n + 1 (where efficiency changes most), up to a maximum.</summary>
internal static class ProfileSchedule
{
    public static int[] Default(int maxBatchSize)
    {
        if (maxBatchSize < 1) throw new ArgumentOutOfRangeException(nameof(maxBatchSize), "must be at least 1");
        var sizes = new SortedSet<int> { 1, 2, 3 };
        for (long p = 4; p - 1 <= maxBatchSize; p *= 2)
        {
            sizes.Add((int)(p - 1));
            if (p <= maxBatchSize) sizes.Add((int)p);
            if (p + 1 <= maxBatchSize) sizes.Add((int)(p + 1));
        }
        return sizes.Where(s => s <= maxBatchSize).ToArray();
    }
}
