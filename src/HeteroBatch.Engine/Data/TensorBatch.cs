using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace HeteroBatch.Engine.Data;

/// <summary>
/// One tensor for a whole batch, samples back to back along axis 0, in one array. Shards are
/// views into it (offset and count), never copies. Float, double, int64, int32 and uint8
/// elements are supported.
/// </summary>
public sealed class TensorBatch
{
    public string Name { get; }
    public TensorElementType ElementType { get; }
    public long[] SampleShape { get; }
    public int Count { get; }
    /// <summary>The values: float[], double[], long[], int[] or byte[] by <see cref="ElementType"/>.</summary>
    public Array Data { get; }
    public long SampleElements { get; }
    /// <summary>True when <see cref="Data"/> lives on the pinned object heap (never moved), so a GPU unit may page-lock it.</summary>
    public bool IsPinned { get; private init; }

    public TensorBatch(string name, long[] sampleShape, int count, Array? data = null, TensorElementType elementType = TensorElementType.Float)
    {
        Name = name;
        SampleShape = sampleShape;
        Count = count;
        ElementType = elementType;
        SampleElements = sampleShape.Aggregate(1L, (a, b) => a * b);
        long total = SampleElements * count;
        if (data != null && data.LongLength != total)
            throw new HeteroBatchException("TensorShapeMismatch", FailureKind.InvalidData,
                $"'{name}' holds {data.LongLength} values; {count} samples of shape [{string.Join(",", sampleShape)}] need {total}.", name);
        Data = data ?? Allocate(elementType, total);
        if (Data.GetType().GetElementType() != ClrType(elementType))
            throw new HeteroBatchException("ElementTypeMismatch", FailureKind.InvalidData, $"'{name}' is {elementType}, but its data are {Data.GetType().Name}.", name);
    }

    /// <summary>Bytes per element of a supported type.</summary>
    public static int ElementSize(TensorElementType t) => t switch
    {
        TensorElementType.Double or TensorElementType.Int64 => 8,
        TensorElementType.UInt8 => 1,
        TensorElementType.Float16 => 2,
        _ => 4,
    };

    public static bool IsSupported(TensorElementType t) => t is TensorElementType.Float or TensorElementType.Double
        or TensorElementType.Int64 or TensorElementType.Int32 or TensorElementType.UInt8;

    private static Type ClrType(TensorElementType t) => t switch
    {
        TensorElementType.Float => typeof(float),
        TensorElementType.Double => typeof(double),
        TensorElementType.Int64 => typeof(long),
        TensorElementType.Int32 => typeof(int),
        TensorElementType.UInt8 => typeof(byte),
        _ => throw new HeteroBatchException("ElementTypeUnsupported", FailureKind.InvalidData, $"{t} tensors are not supported; float, double, int64, int32 and uint8 are."),
    };

    private static Array Allocate(TensorElementType t, long n) => Array.CreateInstance(ClrType(t), n);

    /// <summary>The values as floats (float tensors only).</summary>
    /// <remarks>A method, not a property: as a property it would appear a second time beside Data in every serialized result.</remarks>
    /// <summary>Name, element type and shape with the batch first, e.g. "logits Float[64x1000]".</summary>
    public override string ToString() => $"{Name} {ElementType}[{string.Join("x", ShapeFor(Count))}]";

    public float[] AsFloats() => Data as float[] ?? throw new InvalidOperationException($"'{Name}' is {ElementType}, not float");

    /// <summary>The shape of a slice of <paramref name="count"/> samples.</summary>
    public long[] ShapeFor(int count) => new[] { (long)count }.Concat(SampleShape).ToArray();

    private int Start(int offset) => checked((int)(offset * SampleElements));
    private int Length(int count) => checked((int)(count * SampleElements));

    /// <summary>An OrtValue over samples [offset, offset + count): a view of this batch's memory, no copy.</summary>
    public OrtValue CreateValue(int offset, int count)
    {
        var shape = ShapeFor(count);
        var info = OrtMemoryInfo.DefaultInstance;
        int s = Start(offset), n = Length(count);
        return Data switch
        {
            float[] f => OrtValue.CreateTensorValueFromMemory(info, f.AsMemory(s, n), shape),
            double[] d => OrtValue.CreateTensorValueFromMemory(info, d.AsMemory(s, n), shape),
            long[] l => OrtValue.CreateTensorValueFromMemory(info, l.AsMemory(s, n), shape),
            int[] i => OrtValue.CreateTensorValueFromMemory(info, i.AsMemory(s, n), shape),
            byte[] b => OrtValue.CreateTensorValueFromMemory(info, b.AsMemory(s, n), shape),
            _ => throw new InvalidOperationException(),
        };
    }

    /// <summary>Bytes its data takes.</summary>
    public long ByteLength => Data.LongLength * ElementSize(ElementType);

    /// <summary>The bytes of samples [offset, offset + count), without copying.</summary>
    public Span<byte> Bytes(int offset, int count)
    {
        int s = Start(offset), n = Length(count);
        return Data switch
        {
            float[] f => System.Runtime.InteropServices.MemoryMarshal.AsBytes(f.AsSpan(s, n)),
            double[] d => System.Runtime.InteropServices.MemoryMarshal.AsBytes(d.AsSpan(s, n)),
            long[] l => System.Runtime.InteropServices.MemoryMarshal.AsBytes(l.AsSpan(s, n)),
            int[] i => System.Runtime.InteropServices.MemoryMarshal.AsBytes(i.AsSpan(s, n)),
            byte[] b => b.AsSpan(s, n),
            _ => throw new InvalidOperationException(),
        };
    }

    /// <summary>Copies samples [offset, offset + count) into another batch of the same type at <paramref name="targetOffset"/>.</summary>
    public void CopyTo(int offset, int count, TensorBatch target, int targetOffset) =>
        Array.Copy(Data, Start(offset), target.Data, target.Start(targetOffset), Length(count));

    /// <summary>The values of one slice of float samples, without copying.</summary>
    public Memory<float> Slice(int offset, int count) => AsFloats().AsMemory(Start(offset), Length(count));

    /// <summary>A copy of one sample's values (float tensors).</summary>
    public float[] Sample(int index) => Slice(index, 1).ToArray();

    /// <summary>A batch of the same tensor's shape and type with room for <paramref name="count"/> samples.</summary>
    public TensorBatch EmptyLike(int count) => new(Name, SampleShape, count, null, ElementType);

    /// <summary>A batch whose values live on the pinned object heap (an address that never moves), for units that page-lock their inputs.</summary>
    public static TensorBatch AllocatePinned(string name, long[] sampleShape, int count, TensorElementType type)
    {
        long n = sampleShape.Aggregate(1L, (a, b) => a * b) * count;
        Array data = type switch
        {
            TensorElementType.Float => GC.AllocateArray<float>(checked((int)n), pinned: true),
            TensorElementType.Double => GC.AllocateArray<double>(checked((int)n), pinned: true),
            TensorElementType.Int64 => GC.AllocateArray<long>(checked((int)n), pinned: true),
            TensorElementType.Int32 => GC.AllocateArray<int>(checked((int)n), pinned: true),
            TensorElementType.UInt8 => GC.AllocateArray<byte>(checked((int)n), pinned: true),
            _ => Allocate(type, n), // throws ElementTypeUnsupported
        };
        return new TensorBatch(name, sampleShape, count, data, type) { IsPinned = true };
    }
}

/// <summary>Seeded inputs: the same seed gives the same values for sample i, whatever the batch size.</summary>
public static class SyntheticInput
{
    /// <summary>Floats uniform in [0, 1); integers uniform in [0, <paramref name="integerRange"/>).</summary>
    public static TensorBatch Create(string name, long[] sampleShape, int count, ulong seed, TensorElementType type = TensorElementType.Float, int integerRange = 10, bool pinned = false)
    {
        var batch = pinned ? TensorBatch.AllocatePinned(name, sampleShape, count, type) : new TensorBatch(name, sampleShape, count, null, type);
        var rng = new Runtime.WeightGenerator(Runtime.WeightGenerator.Mix(name, seed));
        switch (batch.Data)
        {
            case float[] f: rng.Fill(f, 0.5f, 0.5f); break;
            case double[] d: for (int i = 0; i < d.Length; i++) d[i] = rng.NextUnit(); break;
            case long[] l: for (int i = 0; i < l.Length; i++) l[i] = (long)(rng.NextUnit() * integerRange); break;
            case int[] n: for (int i = 0; i < n.Length; i++) n[i] = (int)(rng.NextUnit() * integerRange); break;
            case byte[] b: for (int i = 0; i < b.Length; i++) b[i] = (byte)(rng.NextUnit() * 256); break;
        }
        return batch;
    }
}
