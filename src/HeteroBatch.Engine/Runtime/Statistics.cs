namespace HeteroBatch.Engine.Runtime;

/// <summary>Order statistics of timing samples.</summary>
internal static class Statistics
{
    /// <summary>Linear-interpolated quantile of sorted values.</summary>
    public static double Quantile(IReadOnlyList<double> sorted, double q)
    {
        if (sorted.Count == 0) return double.NaN;
        double pos = q * (sorted.Count - 1);
        int lo = (int)Math.Floor(pos), hi = (int)Math.Ceiling(pos);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
    }

    /// <summary>
    /// Half-width of a distribution-free 95% confidence interval of the median (order statistics
    /// n/2 ± 0.98·√n), as a percentage of the median.
    /// </summary>
    public static double MedianCiPercent(IReadOnlyList<double> values)
    {
        var s = values.OrderBy(v => v).ToArray();
        int n = s.Length;
        if (n < 2) return double.PositiveInfinity;
        int lo = Math.Max(0, (int)Math.Floor(n / 2.0 - 0.98 * Math.Sqrt(n)));
        int hi = Math.Min(n - 1, (int)Math.Ceiling(n / 2.0 + 0.98 * Math.Sqrt(n)));
        double median = Quantile(s, 0.5);
        return median <= 0 ? double.PositiveInfinity : (s[hi] - s[lo]) / 2 / median * 100;
    }
}
