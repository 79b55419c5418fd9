using Microsoft.ML.OnnxRuntime;
using HeteroBatch.Engine.Data;

namespace HeteroBatch.Engine.Sessions;

/// <summary>The inputs and outputs of a loaded model, with the batch on axis 0.</summary>
public sealed class ModelSignature
{
    public IReadOnlyList<TensorSpec> Inputs { get; }
    public IReadOnlyList<TensorSpec> Outputs { get; }
    /// <summary>The fixed batch size the graph was exported with (e.g. 1), or null if the batch axis is symbolic.</summary>
    public long? FixedBatch { get; }

    /// <summary>Bytes one sample takes in host memory: its inputs and its outputs.</summary>
    public long BytesPerSample => Inputs.Sum(t => t.SampleBytes) + OutputBytesPerSample;

    /// <summary>Bytes one sample's outputs take in host memory.</summary>
    public long OutputBytesPerSample => Outputs.Sum(t => t.SampleBytes);

    /// <summary>A signature read elsewhere (a remote server's model metadata); the batch axis is symbolic.</summary>
    public ModelSignature(IReadOnlyList<TensorSpec> inputs, IReadOnlyList<TensorSpec> outputs)
    {
        Inputs = inputs;
        Outputs = outputs;
    }

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
