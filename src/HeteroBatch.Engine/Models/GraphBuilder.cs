using HeteroBatch.Engine.Runtime;
using Google.Protobuf;
using Onnx;

namespace HeteroBatch.Engine.Models;

/// <summary>A feature map in a graph under construction: its name and per-sample shape (C, H, W; H = W = 0 for vectors).</summary>
internal readonly record struct Feature(string Name, int C, int H, int W);

/// <summary>
/// Writes CNNs as ONNX graphs (opset 17, symbolic batch dimension "N") with seeded weights,
/// tracking shapes, trainable parameters (batch-norm running statistics excluded, as the
/// reference counts do) and multiply-accumulates per sample.
/// </summary>
internal sealed class GraphBuilder
{
    public const int Opset = 17;
    private readonly GraphProto _graph = new();
    private readonly WeightGenerator _rng;
    private int _next;

    /// <summary>Counts parameters and operations without generating weights (for the catalogue).</summary>
    public bool CountOnly { get; init; }
    public long Parameters { get; private set; }
    public long MultiplyAccumulates { get; private set; }

    public GraphBuilder(string name, ulong seed)
    {
        _graph.Name = name;
        _rng = new WeightGenerator(seed);
    }

    private string Fresh(string op) => $"{op}_{_next++}";

    public Feature Input(string name, int c, int h, int w, long? fixedBatch = null)
    {
        _graph.Input.Add(h == 0 ? ValueInfo(name, fixedBatch, c) : ValueInfo(name, fixedBatch, c, h, w));
        return new Feature(name, c, h, w);
    }

    public void Output(Feature x, string name, long? fixedBatch = null)
    {
        Node("Identity", new[] { x.Name }, name);
        _graph.Output.Add(x.H == 0 ? ValueInfo(name, fixedBatch, x.C) : ValueInfo(name, fixedBatch, x.C, x.H, x.W));
    }

    private static ValueInfoProto ValueInfo(string name, long? fixedBatch, params int[] dims)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(fixedBatch is long b
            ? new TensorShapeProto.Types.Dimension { DimValue = b }
            : new TensorShapeProto.Types.Dimension { DimParam = "N" });
        foreach (var d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    private string Weight(string name, long[] dims, float center, float halfWidth, bool trainable = true)
    {
        long count = 1;
        foreach (var d in dims) count *= d;
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(dims);
        if (!CountOnly) t.RawData = UnsafeByteOperations.UnsafeWrap(_rng.RawFloats(count, center, halfWidth));
        _graph.Initializer.Add(t);
        if (trainable) Parameters += count;
        return name;
    }

    private NodeProto Node(string op, string[] inputs, string? output = null, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = Fresh(op) };
        node.Input.AddRange(inputs);
        node.Output.Add(output ?? node.Name);
        node.Attribute.AddRange(attributes);
        _graph.Node.Add(node);
        return node;
    }

    private static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    private static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    private static AttributeProto Float(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    private static int OutSize(int size, int k, int s, int padBefore, int padAfter, bool ceil = false)
    {
        int span = size + padBefore + padAfter - k;
        int n = ceil ? (span + s - 1) / s + 1 : span / s + 1;
        if (ceil && (n - 1) * s >= size + padBefore) n--; // the last window must start inside the input
        return n;
    }

    /// <summary>2-D convolution; weights He-uniform for the fan-in.</summary>
    public Feature Conv(Feature x, int outC, int kh, int kw, int stride = 1, int ph = 0, int pw = 0, int groups = 1, bool bias = false, int strideW = 0)
    {
        int sw = strideW == 0 ? stride : strideW;
        int fanIn = x.C / groups * kh * kw;
        var name = Fresh("conv");
        var inputs = new List<string> { x.Name, Weight(name + ".w", new long[] { outC, x.C / groups, kh, kw }, 0, MathF.Sqrt(6f / fanIn)) };
        if (bias) inputs.Add(Weight(name + ".b", new long[] { outC }, 0, 0.05f));
        int oh = OutSize(x.H, kh, stride, ph, ph), ow = OutSize(x.W, kw, sw, pw, pw);
        var node = Node("Conv", inputs.ToArray(), null,
            Ints("kernel_shape", kh, kw), Ints("strides", stride, sw), Ints("pads", ph, pw, ph, pw), Int("group", groups));
        MultiplyAccumulates += (long)outC * oh * ow * fanIn;
        return new Feature(node.Output[0], outC, oh, ow);
    }

    /// <summary>Batch normalisation (inference form). gamma near <paramref name="gamma"/>, running statistics near 0 and 1.</summary>
    public Feature BatchNorm(Feature x, float epsilon = 1e-5f, float gamma = 1f)
    {
        var name = Fresh("bn");
        var inputs = new[]
        {
            x.Name,
            Weight(name + ".scale", new long[] { x.C }, gamma, 0.1f * gamma),
            Weight(name + ".bias", new long[] { x.C }, 0, 0.05f),
            Weight(name + ".mean", new long[] { x.C }, 0, 0.05f, trainable: false),
            Weight(name + ".var", new long[] { x.C }, 1f, 0.1f, trainable: false),
        };
        var node = Node("BatchNormalization", inputs, null, Float("epsilon", epsilon));
        return x with { Name = node.Output[0] };
    }

    public Feature Relu(Feature x) => x with { Name = Node("Relu", new[] { x.Name }).Output[0] };

    public Feature ConvBnRelu(Feature x, int outC, int kh, int kw, int stride = 1, int ph = 0, int pw = 0, int groups = 1, float epsilon = 1e-5f)
        => Relu(BatchNorm(Conv(x, outC, kh, kw, stride, ph, pw, groups), epsilon));

    public Feature MaxPool(Feature x, int k, int s, int p = 0, bool ceil = false)
    {
        var node = Node("MaxPool", new[] { x.Name }, null,
            Ints("kernel_shape", k, k), Ints("strides", s, s), Ints("pads", p, p, p, p), Int("ceil_mode", ceil ? 1 : 0));
        return new Feature(node.Output[0], x.C, OutSize(x.H, k, s, p, p, ceil), OutSize(x.W, k, s, p, p, ceil));
    }

    public Feature AvgPool(Feature x, int k, int s, int p = 0, bool countIncludePad = true)
    {
        var node = Node("AveragePool", new[] { x.Name }, null,
            Ints("kernel_shape", k, k), Ints("strides", s, s), Ints("pads", p, p, p, p), Int("count_include_pad", countIncludePad ? 1 : 0));
        return new Feature(node.Output[0], x.C, OutSize(x.H, k, s, p, p), OutSize(x.W, k, s, p, p));
    }

    /// <summary>Global average pooling followed by flattening to [N, C].</summary>
    public Feature GlobalAvgPoolFlatten(Feature x)
    {
        var pooled = Node("GlobalAveragePool", new[] { x.Name }).Output[0];
        var flat = Node("Flatten", new[] { pooled }, null, Int("axis", 1)).Output[0];
        return new Feature(flat, x.C, 0, 0);
    }

    public Feature Flatten(Feature x)
    {
        var flat = Node("Flatten", new[] { x.Name }, null, Int("axis", 1)).Output[0];
        return new Feature(flat, x.H == 0 ? x.C : x.C * x.H * x.W, 0, 0);
    }

    /// <summary>Fully connected layer with bias.</summary>
    public Feature Dense(Feature x, int outF)
    {
        if (x.H != 0) x = Flatten(x);
        var name = Fresh("fc");
        var w = Weight(name + ".w", new long[] { outF, x.C }, 0, MathF.Sqrt(6f / x.C));
        var b = Weight(name + ".b", new long[] { outF }, 0, 0.05f);
        var node = Node("Gemm", new[] { x.Name, w, b }, null, Int("transB", 1));
        MultiplyAccumulates += (long)x.C * outF;
        return new Feature(node.Output[0], outF, 0, 0);
    }

    public Feature Concat(params Feature[] xs)
    {
        var node = Node("Concat", xs.Select(f => f.Name).ToArray(), null, Int("axis", 1));
        return new Feature(node.Output[0], xs.Sum(f => f.C), xs[0].H, xs[0].W);
    }

    public Feature Add(Feature a, Feature b) => a with { Name = Node("Add", new[] { a.Name, b.Name }).Output[0] };

    public ModelProto Build(string producerVersion)
    {
        var model = new ModelProto
        {
            IrVersion = 8,
            ProducerName = "HeteroBatch",
            ProducerVersion = producerVersion,
            Graph = _graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        return model;
    }
}
