using System.Collections.Frozen;
using Google.Protobuf;
using Onnx;

namespace HeteroBatch.Engine.Models;

/// <summary>
/// Writes a float32 ONNX model at half precision: weights and the float tensors between nodes in
/// fp16, the graph's inputs and outputs kept float32 with casts at the edges (so inputs, outputs
/// and every caller stay as they are), and ops that lose too much in fp16 (reductions, exp/log,
/// softmax over long axes, normalisations that accumulate) kept in fp32 between casts.
/// </summary>
internal static class PrecisionConverter
{
    private const int Float = (int)TensorProto.Types.DataType.Float;
    private const int Float16 = (int)TensorProto.Types.DataType.Float16;

    /// <summary>Ops run in fp32 inside an fp16 graph: they sum or exponentiate many values, where fp16's range or 11-bit mantissa loses the answer.</summary>
    public static readonly FrozenSet<string> KeptInFp32 = new[]
    {
        "ReduceSum", "ReduceSumSquare", "ReduceMean", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
        "Exp", "Log", "Pow", "Softmax", "LogSoftmax", "LayerNormalization", "InstanceNormalization", "CumSum", "Range",
        "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Einsum",
    }.ToFrozenSet();

    /// <summary>Ops whose outputs are not float whatever their inputs (indices, shapes, masks).</summary>
    private static readonly FrozenSet<string> NonFloatOutputs = new[]
    {
        "Shape", "Size", "ArgMax", "ArgMin", "NonZero", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
        "And", "Or", "Not", "Xor", "IsNaN", "IsInf",
    }.ToFrozenSet();

    /// <summary>
    /// The fp16 form of <paramref name="model"/>. Throws PrecisionUnsupported when the model has
    /// no float32 tensor to convert or holds types this conversion does not handle (already fp16,
    /// double, subgraphs).
    /// </summary>
    public static ModelProto ToFloat16(ModelProto model)
    {
        var graph = model.Graph;
        if (ExternalData.Uses(model))
            throw Unsupported("its weights are kept in external data, which were not read in (ExternalData.Inline)");
        if (graph.Node.Any(n => n.Attribute.Any(a => a.G != null || a.Graphs.Count > 0)))
            throw Unsupported("it has subgraphs (If, Loop or Scan)");
        var initializerNames = new HashSet<string>(graph.Initializer.Select(i => i.Name));
        var inputs = graph.Input.Where(i => !initializerNames.Contains(i.Name)).ToList();
        int ElemOf(ValueInfoProto v) => v.Type?.TensorType?.ElemType ?? 0;
        if (graph.Input.Concat(graph.Output).Any(v => ElemOf(v) is Float16 or (int)TensorProto.Types.DataType.Double or (int)TensorProto.Types.DataType.Bfloat16)
            || graph.Initializer.Any(t => t.DataType is Float16 or (int)TensorProto.Types.DataType.Double))
            throw Unsupported("it already holds fp16, bf16 or double tensors");
        if (!inputs.Concat(graph.Output).Any(v => ElemOf(v) == Float) && !graph.Initializer.Any(t => t.DataType == Float))
            throw Unsupported("it has no float32 tensors");

        var copy = model.Clone();
        graph = copy.Graph;
        // which tensor names hold floats: float inputs and initializers, then forward through the nodes
        var floats = new HashSet<string>(inputs.Where(i => ElemOf(i) == Float).Select(i => i.Name));
        foreach (var t in graph.Initializer) if (t.DataType == Float) floats.Add(t.Name);
        foreach (var n in graph.Node)
        {
            if (n.OpType == "Constant") { if (n.Attribute.FirstOrDefault(a => a.Name == "value")?.T?.DataType == Float) floats.Add(n.Output[0]); continue; }
            if (n.OpType == "Cast") { if (n.Attribute.First(a => a.Name == "to").I == Float) floats.Add(n.Output[0]); continue; }
            if (NonFloatOutputs.Contains(n.OpType)) continue;
            if (n.Input.Any(floats.Contains))
            {
                // TopK, MaxPool with indices...: only the first output carries the values
                floats.Add(n.Output[0]);
                if (n.OpType is not ("TopK" or "MaxPool" or "MaxUnpool")) foreach (var o in n.Output.Skip(1)) floats.Add(o);
            }
        }

        var nodes = new List<NodeProto>();
        int counter = 0;
        string Fresh(string name, string suffix) => $"{name}__{suffix}{counter++}";
        NodeProto Cast(string from, string to, int type) => new()
        {
            OpType = "Cast", Name = Fresh(to, "cast"), Input = { from }, Output = { to },
            Attribute = { new AttributeProto { Name = "to", Type = AttributeProto.Types.AttributeType.Int, I = type } },
        };

        // graph inputs stay float32: a cast to fp16 right after each
        var rename = new Dictionary<string, string>();
        foreach (var input in inputs.Where(i => ElemOf(i) == Float))
        {
            var half = Fresh(input.Name, "fp16");
            nodes.Add(Cast(input.Name, half, Float16));
            rename[input.Name] = half;
        }
        // graph outputs stay float32: the node that made each writes an fp16 name, cast back at the end
        var outputCasts = new List<NodeProto>();
        var outputRename = new Dictionary<string, string>();
        foreach (var output in graph.Output.Where(o => ElemOf(o) == Float))
        {
            var half = Fresh(output.Name, "fp16");
            outputRename[output.Name] = half;
            outputCasts.Add(Cast(half, output.Name, Float));
        }

        foreach (var n in graph.Node)
        {
            for (int i = 0; i < n.Input.Count; i++)
                if (rename.TryGetValue(n.Input[i], out var r)) n.Input[i] = r;
                else if (outputRename.TryGetValue(n.Input[i], out var o)) n.Input[i] = o; // an output also used inside the graph
            for (int i = 0; i < n.Output.Count; i++)
                if (outputRename.TryGetValue(n.Output[i], out var o)) n.Output[i] = o;

            if (n.OpType == "Constant")
            {
                foreach (var a in n.Attribute.Where(a => a.T != null && a.T.DataType == Float)) a.T = Half(a.T);
                nodes.Add(n);
                continue;
            }
            if (n.OpType == "Cast")
            {
                var to = n.Attribute.First(a => a.Name == "to");
                if (to.I == Float) to.I = Float16;
                nodes.Add(n);
                continue;
            }
            if (KeptInFp32.Contains(n.OpType))
            {
                // fp16 in, fp32 inside, fp16 out
                for (int i = 0; i < n.Input.Count; i++)
                {
                    var original = OriginalName(n.Input[i], rename, outputRename);
                    if (n.Input[i].Length == 0 || !floats.Contains(original)) continue;
                    var wide = Fresh(n.Input[i], "fp32");
                    nodes.Add(Cast(n.Input[i], wide, Float));
                    n.Input[i] = wide;
                }
                var after = new List<NodeProto>();
                for (int i = 0; i < n.Output.Count; i++)
                {
                    var original = OriginalName(n.Output[i], rename, outputRename);
                    if (!floats.Contains(original)) continue;
                    var wide = Fresh(n.Output[i], "fp32");
                    after.Add(Cast(wide, n.Output[i], Float16));
                    n.Output[i] = wide;
                }
                nodes.Add(n);
                nodes.AddRange(after);
                continue;
            }
            foreach (var a in n.Attribute.Where(a => a.T != null && a.T.DataType == Float)) a.T = Half(a.T);
            nodes.Add(n);
        }
        nodes.AddRange(outputCasts);
        graph.Node.Clear();
        graph.Node.AddRange(nodes);

        // weights to fp16
        var initializers = graph.Initializer.ToList();
        graph.Initializer.Clear();
        foreach (var t in initializers)
            graph.Initializer.Add(t.DataType == Float ? Half(t) : t);
        // shapes inferred for fp32 no longer hold: ONNX Runtime infers them again
        graph.ValueInfo.Clear();
        return copy;
    }

    private static string OriginalName(string name, Dictionary<string, string> rename, Dictionary<string, string> outputRename)
    {
        foreach (var (k, v) in rename) if (v == name) return k;
        foreach (var (k, v) in outputRename) if (v == name) return k;
        return name;
    }

    /// <summary>An fp16 copy of a float32 tensor (values rounded to nearest; beyond ±65504 they saturate).</summary>
    public static TensorProto Half(TensorProto t)
    {
        float[] values = t.FloatData.Count > 0 ? t.FloatData.ToArray()
            : t.RawData.Length > 0 ? System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(t.RawData.Span).ToArray()
            : Array.Empty<float>();
        var bytes = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++)
        {
            float v = Math.Clamp(values[i], -65504f, 65504f);
            BitConverter.TryWriteBytes(bytes.AsSpan(2 * i), (Half)v);
        }
        var half = new TensorProto { Name = t.Name, DataType = Float16, RawData = ByteString.CopyFrom(bytes), DocString = t.DocString };
        half.Dims.AddRange(t.Dims);
        return half;
    }

    private static HeteroBatchException Unsupported(string why) =>
        new("PrecisionUnsupported", FailureKind.InvalidData, $"The model cannot be converted to fp16: {why}.");
}
