using Microsoft.ML.OnnxRuntime.Tensors;

namespace HeteroBatch.Engine.Data;

/// <summary>One input or output of a model: name, element type and the shape of one sample (batch axis removed).</summary>
public sealed record TensorSpec(string Name, TensorElementType ElementType, long[] SampleShape)
{
    /// <summary>Elements per sample, or -1 where a non-batch dimension is symbolic.</summary>
    public long SampleElements => SampleShape.Any(d => d < 0) ? -1 : SampleShape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Bytes one sample takes in host memory (counted as one element where the shape has none or is symbolic).</summary>
    public long SampleBytes => Math.Max(1, SampleElements) * TensorBatch.ElementSize(ElementType);

    /// <summary>Throws unless a batch of this tensor can be held in memory: fixed per-sample shape, supported element type.</summary>
    public TensorSpec CheckUsable(bool isInput)
    {
        var role = isInput ? "Input" : "Output";
        if (SampleElements < 0)
            throw new HeteroBatchException(isInput ? "InputShapeDynamic" : "OutputShapeDynamic", FailureKind.InvalidData,
                $"{role} '{Name}' has a symbolic dimension besides the batch; HeteroBatch needs a fixed per-sample shape.", Name);
        if (!TensorBatch.IsSupported(ElementType))
            throw new HeteroBatchException("ElementTypeUnsupported", FailureKind.InvalidData,
                $"{role} '{Name}' is {ElementType}; float, double, int64, int32 and uint8 tensors are supported.", Name);
        return this;
    }
}
