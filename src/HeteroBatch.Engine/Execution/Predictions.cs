using HeteroBatch.Engine.Data;

namespace HeteroBatch.Engine.Execution;

/// <summary>Classes from classifier outputs (one float vector per sample).</summary>
public static class Predictions
{
    /// <summary>Top classes of each sample (and the unit that ran it, where <paramref name="unitOf"/> says); empty for outputs that are not classifier vectors.</summary>
    public static List<SamplePrediction> TopK(TensorBatch output, IReadOnlyList<string> names, int k, Func<int, string?>? unitOf = null) =>
        IsClassifier(output) && k >= 1 ? Of(output, 0, output.Count, 0, i => names[i], unitOf, null, k) : new();

    /// <summary>True for outputs of one float vector (2 or more values) per sample.</summary>
    public static bool IsClassifier(TensorBatch output) => output.Data is float[] && output.SampleShape.Length == 1 && output.SampleElements >= 2;

    /// <summary>
    /// One prediction for each of samples [offset, offset + count) of <paramref name="output"/>, numbered
    /// from <paramref name="firstIndex"/>: top classes for classifier outputs, the unit that ran it, and
    /// its error where it failed (no classes then).
    /// </summary>
    public static List<SamplePrediction> Of(TensorBatch output, int offset, int count, int firstIndex, Func<int, string> nameOf,
        Func<int, string?>? unitOf, Func<int, HeteroBatchException?>? errorOf, int k)
    {
        var list = new List<SamplePrediction>(count);
        bool classifier = IsClassifier(output) && k >= 1;
        int n = (int)output.SampleElements;
        var data = output.Data as float[];
        for (int s = 0; s < count; s++)
        {
            var error = errorOf?.Invoke(s);
            var p = new SamplePrediction { Index = firstIndex + s, Input = nameOf(firstIndex + s), Class = -1, Unit = unitOf?.Invoke(s), Error = error?.Message, ErrorId = error?.ErrorId };
            if (classifier && p.Error == null)
            {
                var row = new ReadOnlySpan<float>(data!, (offset + s) * n, n);
                var top = Top(row, k);
                var scores = new float[top.Length];
                for (int i = 0; i < top.Length; i++) scores[i] = row[top[i]];
                p.Class = top[0];
                p.Score = scores[0];
                p.TopClasses = new(top);
                p.TopScores = new(scores);
            }
            list.Add(p);
        }
        return list;
    }

    /// <summary>
    /// The indices of the k largest values, largest first, ties to the lower index (one pass, k kept). Once k are
    /// kept, a vector's worth of values none of which beats the k-th is passed over at once (most of a classifier's
    /// outputs): 1024 rows of 1000 take a fraction of the time one value at a time did.
    /// </summary>
    internal static int[] Top(ReadOnlySpan<float> row, int k)
    {
        k = Math.Min(k, row.Length);
        var top = new int[k];
        if (k == 0) return top;
        var values = new float[k];
        int kept = 0, j = 0, width = System.Numerics.Vector<float>.Count;
        if (System.Numerics.Vector.IsHardwareAccelerated)
            for (; j + width <= row.Length; j += width)
            {
                // NaN beats nothing: a vector of NaNs is passed over as one value at a time would pass it
                if (kept == k && !System.Numerics.Vector.GreaterThanAny(new System.Numerics.Vector<float>(row.Slice(j, width)), new System.Numerics.Vector<float>(values[k - 1])))
                    continue;
                for (int i = j; i < j + width; i++) Keep(row[i], i);
            }
        for (; j < row.Length; j++) Keep(row[j], j);
        return top;

        void Keep(float v, int index)
        {
            if (kept == k && !(v > values[k - 1])) return;
            int at = Math.Min(kept, k - 1);
            while (at > 0 && v > values[at - 1])
            {
                (top[at], values[at]) = (top[at - 1], values[at - 1]);
                at--;
            }
            (top[at], values[at]) = (index, v);
            if (kept < k) kept++;
        }
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
