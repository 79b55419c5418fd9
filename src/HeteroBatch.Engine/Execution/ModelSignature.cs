using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace HeteroBatch.Engine.Execution;

/// <summary>One input or output of a model: name, element type and the shape of one sample (batch axis removed).</summary>
public sealed record TensorSpec(string Name, TensorElementType ElementType, long[] SampleShape)
{
    /// <summary>Elements per sample, or -1 where a non-batch dimension is symbolic.</summary>
    public long SampleElements => SampleShape.Any(d => d < 0) ? -1 : SampleShape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Throws unless a batch of this tensor can be held in memory: fixed per-sample shape, supported element type.</summary>
    public TensorSpec CheckUsable(bool isInput)
    {
        var role = isInput ? "Input" : "Output";
        if (SampleElements < 0)
            throw new HeteroBatchException(isInput ? "InputShapeDynamic" : "OutputShapeDynamic", FailureKind.InvalidData,
                $"{role} '{Name}' has a symbolic dimension besides the batch; HeteroBatch needs a fixed per-sample shape.", Name);
        if (!Data.TensorBatch.IsSupported(ElementType))
            throw new HeteroBatchException("ElementTypeUnsupported", FailureKind.InvalidData,
                $"{role} '{Name}' is {ElementType}; float, double, int64, int32 and uint8 tensors are supported.", Name);
        return this;
    }
}

/// <summary>The inputs and outputs of a loaded model, with the batch on axis 0.</summary>
public sealed class ModelSignature
{
    public IReadOnlyList<TensorSpec> Inputs { get; }
    public IReadOnlyList<TensorSpec> Outputs { get; }
    /// <summary>The fixed batch size the graph was exported with (e.g. 1), or null if the batch axis is symbolic.</summary>
    public long? FixedBatch { get; }

    public ModelSignature(InferenceSession session)
    {
        Inputs = session.InputMetadata.Select(kv => Spec(kv.Key, kv.Value)).ToList();
        Outputs = session.OutputMetadata.Select(kv => Spec(kv.Key, kv.Value)).ToList();
        var batchDims = session.InputMetadata.Select(kv => (kv.Key, Dim: (long)kv.Value.Dimensions[0])).ToList();
        var fixedDims = batchDims.Where(d => d.Dim > 0).Select(d => d.Dim).Distinct().ToList();
        if (fixedDims.Count > 1 || (fixedDims.Count == 1 && batchDims.Any(d => d.Dim <= 0)))
            throw new HeteroBatchException("BatchAxisUnknown", FailureKind.InvalidData,
                $"The inputs' first dimensions disagree ({string.Join(", ", batchDims.Select(d => $"{d.Key}: {(d.Dim > 0 ? d.Dim.ToString() : "symbolic")}"))}), so no batch axis can be identified; HeteroBatch splits batches along axis 0 of every input.");
        FixedBatch = fixedDims.Count == 1 ? fixedDims[0] : null;
    }

    private static TensorSpec Spec(string name, NodeMetadata meta)
    {
        if (!meta.IsTensor || meta.Dimensions.Length == 0)
            throw new HeteroBatchException("BatchAxisUnknown", FailureKind.InvalidData,
                $"'{name}' is not a tensor with a batch axis; HeteroBatch splits batches along axis 0 of every input and output.", name);
        return new TensorSpec(name, meta.ElementDataType, meta.Dimensions.Skip(1).Select(d => (long)d).ToArray());
    }
}
