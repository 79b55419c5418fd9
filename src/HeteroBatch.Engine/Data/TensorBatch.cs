namespace HeteroBatch.Engine.Data;

/// <summary>
/// One tensor for a whole batch, samples back to back along axis 0, in one array. Shards are
/// views into it (offset and count), never copies.
/// </summary>
public sealed class TensorBatch
{
    public string Name { get; }
    public long[] SampleShape { get; }
    public int Count { get; }
    public float[] Data { get; }
    public long SampleElements { get; }

    public TensorBatch(string name, long[] sampleShape, int count, float[]? data = null)
    {
        Name = name;
        SampleShape = sampleShape;
        Count = count;
        SampleElements = sampleShape.Aggregate(1L, (a, b) => a * b);
        long total = SampleElements * count;
        if (data != null && data.LongLength != total)
            throw new HeteroBatchException("TensorShapeMismatch", FailureKind.InvalidData,
                $"'{name}' holds {data.LongLength} values; {count} samples of shape [{string.Join(",", sampleShape)}] need {total}.", name);
        Data = data ?? new float[total];
    }

    /// <summary>The shape of a slice of <paramref name="count"/> samples.</summary>
    public long[] ShapeFor(int count) => new[] { (long)count }.Concat(SampleShape).ToArray();

    /// <summary>The values of one slice of samples, without copying.</summary>
    public Memory<float> Slice(int offset, int count) =>
        Data.AsMemory(checked((int)(offset * SampleElements)), checked((int)(count * SampleElements)));

    /// <summary>A copy of one sample's values.</summary>
    public float[] Sample(int index) => Slice(index, 1).ToArray();
}

/// <summary>Seeded inputs: the same seed gives the same values for sample i, whatever the batch size.</summary>
public static class SyntheticInput
{
    public static TensorBatch Create(string name, long[] sampleShape, int count, ulong seed)
    {
        var batch = new TensorBatch(name, sampleShape, count);
        var rng = new Models.WeightGenerator(Models.WeightGenerator.Mix(name, seed));
        rng.Fill(batch.Data, 0.5f, 0.5f);
        return batch;
    }
}
