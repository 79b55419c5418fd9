using HeteroBatch.Engine.Execution;

namespace HeteroBatch.Engine.Tests;

/// <summary>A row's top classes, skipping a vector's worth of values at a time, against the one-value-at-a-time pass it replaced.</summary>
public sealed class TopClassesTests
{
    /// <summary>The previous pass: one value at a time, k kept, largest first, ties to the lower index.</summary>
    private static int[] OneAtATime(float[] row, int k)
    {
        k = Math.Min(k, row.Length);
        var top = new int[k];
        int kept = 0;
        for (int j = 0; j < row.Length; j++)
        {
            float v = row[j];
            if (kept == k && !(v > row[top[k - 1]])) continue;
            int at = Math.Min(kept, k - 1);
            while (at > 0 && v > row[top[at - 1]]) { top[at] = top[at - 1]; at--; }
            top[at] = j;
            if (kept < k) kept++;
        }
        return top;
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 5)]
    [InlineData(8, 5)]
    [InlineData(9, 9)]
    [InlineData(17, 20)]
    [InlineData(1000, 1)]
    [InlineData(1000, 5)]
    [InlineData(1001, 64)]
    public void TheTopClassesAreThoseOfTheOneValueAtATimePassTiesAndNaNsIncluded(int length, int k)
    {
        var random = new Random(length * 31 + k);
        for (int round = 0; round < 50; round++)
        {
            // few distinct values (ties everywhere) in some rounds, NaNs and infinities in others
            var row = Enumerable.Range(0, length).Select(_ => round % 3 == 0 ? random.Next(4) : (float)random.NextDouble()).ToArray();
            if (round % 5 == 1) row[random.Next(length)] = float.NaN;
            if (round % 7 == 2) row[random.Next(length)] = float.PositiveInfinity;
            if (round % 11 == 3) Array.Fill(row, float.NegativeInfinity);
            Assert.Equal(OneAtATime(row, k), Predictions.Top(row, k));
        }
        Assert.Empty(Predictions.Top(Array.Empty<float>(), 5));
    }

    [Fact]
    public void ARowsLargestValueLateInTheRowIsFound()
    {
        var row = new float[1000];
        for (int i = 0; i < row.Length; i++) row[i] = i % 10;
        row[997] = 50;
        Assert.Equal(new[] { 997, 9, 19 }, Predictions.Top(row, 3));
    }
}
