namespace HeteroBatch.Engine.Data;

/// <summary>
/// How closely outputs at a reduced precision follow the fp32 model's on the same inputs:
/// per-sample cosine similarity and largest absolute difference (top-1 agreement says little
/// on random-weight networks, which give nearly the same class for every input).
/// </summary>
public sealed class OutputAgreement
{
    /// <summary>Samples compared.</summary>
    public int Samples { get; set; }
    /// <summary>The lowest per-sample cosine similarity between the two outputs.</summary>
    public double MinCosine { get; set; }
    /// <summary>The mean per-sample cosine similarity.</summary>
    public double MeanCosine { get; set; }
    /// <summary>The largest |difference| of any output value.</summary>
    public double MaxAbsDifference { get; set; }
    /// <summary>The largest |value| of the reference output (to judge MaxAbsDifference against).</summary>
    public double MaxAbsReference { get; set; }

    /// <summary>Compares two float outputs of the same shape, sample by sample.</summary>
    public static OutputAgreement Compare(TensorBatch reference, TensorBatch actual)
    {
        if (reference.Count != actual.Count || reference.SampleElements != actual.SampleElements)
            throw new ArgumentException("the outputs differ in shape");
        var a = reference.AsFloats();
        var b = actual.AsFloats();
        int n = (int)reference.SampleElements;
        double minCos = 1, sumCos = 0, maxDiff = 0, maxRef = 0;
        for (int s = 0; s < reference.Count; s++)
        {
            double dot = 0, na = 0, nb = 0;
            for (int j = s * n; j < (s + 1) * n; j++)
            {
                dot += (double)a[j] * b[j];
                na += (double)a[j] * a[j];
                nb += (double)b[j] * b[j];
                maxDiff = Math.Max(maxDiff, Math.Abs((double)a[j] - b[j]));
                maxRef = Math.Max(maxRef, Math.Abs((double)a[j]));
            }
            double cos = na == 0 && nb == 0 ? 1 : na == 0 || nb == 0 ? 0 : dot / Math.Sqrt(na * nb);
            minCos = Math.Min(minCos, cos);
            sumCos += cos;
        }
        return new OutputAgreement
        {
            Samples = reference.Count, MinCosine = minCos, MeanCosine = reference.Count == 0 ? 1 : sumCos / reference.Count,
            MaxAbsDifference = maxDiff, MaxAbsReference = maxRef,
        };
    }

    public override string ToString() => $"cosine ≥ {MinCosine:F6} over {Samples} samples, max |diff| {MaxAbsDifference:G4} (max |ref| {MaxAbsReference:G4})";
}
