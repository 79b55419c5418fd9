using HeteroBatch.Engine.Data;

namespace HeteroBatch.Engine.Execution;

/// <summary>Classes from classifier outputs (one float vector per sample).</summary>
public static class Predictions
{
    /// <summary>Top classes of each sample; empty for outputs that are not classifier vectors.</summary>
    public static List<SamplePrediction> TopK(TensorBatch output, IReadOnlyList<string> names, int k)
    {
        var list = new List<SamplePrediction>();
        if (output.Data is not float[] data || output.SampleShape.Length != 1 || output.SampleElements < 2 || k < 1) return list;
        int n = (int)output.SampleElements;
        for (int s = 0; s < output.Count; s++)
        {
            var row = new ArraySegment<float>(data, s * n, n);
            var top = Enumerable.Range(0, n).OrderByDescending(j => row[j]).ThenBy(j => j).Take(k).ToArray();
            list.Add(new SamplePrediction { Index = s, Input = names[s], Class = top[0], Score = row[top[0]], TopClasses = new(top), TopScores = new(top.Select(j => row[j])) });
        }
        return list;
    }

    /// <summary>Arg-max class of each sample (0 for outputs that are not float vectors).</summary>
    public static int[] ArgMax(TensorBatch output)
    {
        var top = new int[output.Count];
        int n = (int)output.SampleElements;
        if (n <= 1 || output.Data is not float[] data) return top;
        for (int s = 0; s < output.Count; s++)
        {
            var span = data.AsSpan(s * n, n);
            int best = 0;
            for (int j = 1; j < n; j++) if (span[j] > span[best]) best = j;
            top[s] = best;
        }
        return top;
    }
}
