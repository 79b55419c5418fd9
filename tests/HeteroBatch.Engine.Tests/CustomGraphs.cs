using Google.Protobuf;
using Onnx;

namespace HeteroBatch.Engine.Tests;

/// <summary>Small hand-written ONNX graphs for the cases the zoo does not cover.</summary>
public static class CustomGraphs
{
    private static ValueInfoProto Value(string name, TensorProto.Types.DataType type, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d < 0 ? new TensorShapeProto.Types.Dimension { DimParam = "N" } : new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }

    private static TensorProto Floats(string name, long[] dims, float scale)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(dims);
        long n = dims.Aggregate(1L, (a, b) => a * b);
        for (long i = 0; i < n; i++) t.FloatData.Add(scale * (float)Math.Sin(i * 0.37 + 0.1));
        return t;
    }

    private static NodeProto Node(string op, string[] inputs, string output, params AttributeProto[] attributes)
    {
        var n = new NodeProto { OpType = op, Name = output + "_node" };
        n.Input.AddRange(inputs);
        n.Output.Add(output);
        n.Attribute.AddRange(attributes);
        return n;
    }

    private static byte[] Model(GraphProto g)
    {
        var m = new ModelProto { IrVersion = 8, Graph = g, ProducerName = "tests" };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        return m.ToByteArray();
    }

    /// <summary>x float [N,4] and ids int64 [N,3] → y = Gemm(concat(x, float(ids))) [N,2], and ids passed through.</summary>
    public static byte[] TwoInputsWithInt64()
    {
        var g = new GraphProto { Name = "two-inputs" };
        g.Input.Add(Value("x", TensorProto.Types.DataType.Float, -1, 4));
        g.Input.Add(Value("ids", TensorProto.Types.DataType.Int64, -1, 3));
        g.Initializer.Add(Floats("w", new long[] { 2, 7 }, 0.5f));
        g.Initializer.Add(Floats("b", new long[] { 2 }, 0.1f));
        g.Node.Add(Node("Cast", new[] { "ids" }, "idsf", new AttributeProto { Name = "to", Type = AttributeProto.Types.AttributeType.Int, I = (long)TensorProto.Types.DataType.Float }));
        g.Node.Add(Node("Concat", new[] { "x", "idsf" }, "xc", new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 }));
        g.Node.Add(Node("Gemm", new[] { "xc", "w", "b" }, "y", new AttributeProto { Name = "transB", Type = AttributeProto.Types.AttributeType.Int, I = 1 }));
        g.Node.Add(Node("Identity", new[] { "ids" }, "ids_out"));
        g.Output.Add(Value("y", TensorProto.Types.DataType.Float, -1, 2));
        g.Output.Add(Value("ids_out", TensorProto.Types.DataType.Int64, -1, 3));
        return Model(g);
    }

    /// <summary>A fixed batch of 1 with the batch written into a Reshape: it cannot be made to batch.</summary>
    public static byte[] FixedBatchWithReshape()
    {
        var g = new GraphProto { Name = "fixed-reshape" };
        g.Input.Add(Value("x", TensorProto.Types.DataType.Float, 1, 3, 4, 4));
        var shape = new TensorProto { Name = "shape", DataType = (int)TensorProto.Types.DataType.Int64 };
        shape.Dims.Add(2);
        shape.Int64Data.AddRange(new long[] { 1, 48 });
        g.Initializer.Add(shape);
        g.Initializer.Add(Floats("w", new long[] { 5, 48 }, 0.2f));
        g.Initializer.Add(Floats("b", new long[] { 5 }, 0.1f));
        g.Node.Add(Node("Reshape", new[] { "x", "shape" }, "flat"));
        g.Node.Add(Node("Gemm", new[] { "flat", "w", "b" }, "y", new AttributeProto { Name = "transB", Type = AttributeProto.Types.AttributeType.Int, I = 1 }));
        g.Output.Add(Value("y", TensorProto.Types.DataType.Float, 1, 5));
        return Model(g);
    }

    /// <summary>Two inputs whose first dimensions disagree: no batch axis.</summary>
    public static byte[] NoBatchAxis()
    {
        var g = new GraphProto { Name = "no-batch-axis" };
        g.Input.Add(Value("a", TensorProto.Types.DataType.Float, 1, 4));
        g.Input.Add(Value("b", TensorProto.Types.DataType.Float, 2, 4));
        g.Node.Add(Node("ReduceSum", new[] { "b" }, "s", new AttributeProto { Name = "keepdims", Type = AttributeProto.Types.AttributeType.Int, I = 1 }));
        g.Node.Add(Node("Add", new[] { "a", "s" }, "y"));
        g.Output.Add(Value("y", TensorProto.Types.DataType.Float, 1, 4));
        return Model(g);
    }

    /// <summary>x float [N,8] → y = ReduceSum(Exp(x · 3), axis 1, keepdims) [N,1] + Gemm: a reduction and an exponential, kept in fp32 at fp16.</summary>
    public static byte[] SumOverFeatures()
    {
        var g = new GraphProto { Name = "sum-over-features" };
        g.Input.Add(Value("x", TensorProto.Types.DataType.Float, -1, 8));
        g.Initializer.Add(Floats("three", new long[] { 1 }, 3f));
        var axes = new TensorProto { Name = "axes", DataType = (int)TensorProto.Types.DataType.Int64 };
        axes.Dims.Add(1);
        axes.Int64Data.Add(1);
        g.Initializer.Add(axes);
        g.Initializer.Add(Floats("w", new long[] { 4, 8 }, 0.5f));
        g.Node.Add(Node("Mul", new[] { "x", "three" }, "x3"));
        g.Node.Add(Node("Exp", new[] { "x3" }, "e"));
        g.Node.Add(Node("ReduceSum", new[] { "e", "axes" }, "s", new AttributeProto { Name = "keepdims", Type = AttributeProto.Types.AttributeType.Int, I = 1 }));
        g.Node.Add(Node("Gemm", new[] { "x", "w" }, "h", new AttributeProto { Name = "transB", Type = AttributeProto.Types.AttributeType.Int, I = 1 }));
        g.Node.Add(Node("Add", new[] { "h", "s" }, "y"));
        g.Output.Add(Value("y", TensorProto.Types.DataType.Float, -1, 4));
        return Model(g);
    }

    /// <summary>A double-precision model (x double [N,2] → Relu): not converted to fp16.</summary>
    public static byte[] DoubleModel()
    {
        var g = new GraphProto { Name = "double" };
        g.Input.Add(Value("x", TensorProto.Types.DataType.Double, -1, 2));
        g.Node.Add(Node("Relu", new[] { "x" }, "y"));
        g.Output.Add(Value("y", TensorProto.Types.DataType.Double, -1, 2));
        return Model(g);
    }

    /// <summary>
    /// x float [N,16] → y = Gemm(x, w, b) [N,8] with w [8,16] and b [8] kept in external data: <paramref name="dataFile"/>
    /// (written here, beside the model's path) holds b then w. Returns the model's bytes.
    /// </summary>
    public static byte[] WithExternalData(string folder, string dataFile)
    {
        var g = new GraphProto { Name = "external-data" };
        g.Input.Add(Value("x", TensorProto.Types.DataType.Float, -1, 16));
        var w = Floats("w", new long[] { 8, 16 }, 0.3f);
        var b = Floats("b", new long[] { 8 }, 0.2f);
        using (var data = File.Create(Path.Combine(folder, dataFile)))
        {
            long offset = 0;
            foreach (var t in new[] { b, w })
            {
                var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(t.FloatData.ToArray().AsSpan()).ToArray();
                data.Write(bytes);
                t.FloatData.Clear();
                t.DataLocation = TensorProto.Types.DataLocation.External;
                t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = dataFile });
                t.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString() });
                t.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = bytes.Length.ToString() });
                offset += bytes.Length;
            }
        }
        g.Initializer.Add(w);
        g.Initializer.Add(b);
        g.Node.Add(Node("Gemm", new[] { "x", "w", "b" }, "y", new AttributeProto { Name = "transB", Type = AttributeProto.Types.AttributeType.Int, I = 1 }));
        g.Output.Add(Value("y", TensorProto.Types.DataType.Float, -1, 8));
        return Model(g);
    }

    /// <summary>x float [N,4] → y = ReduceSum(x, axis 0, keepdims) [1,4]: the output drops the batch axis (issue 25).</summary>
    public static byte[] SumOverTheBatch(bool declareBatch = false)
    {
        var g = new GraphProto { Name = "sum-over-batch" };
        g.Input.Add(Value("x", TensorProto.Types.DataType.Float, -1, 4));
        var axes = new TensorProto { Name = "axes", DataType = (int)TensorProto.Types.DataType.Int64 };
        axes.Dims.Add(1);
        axes.Int64Data.Add(0);
        g.Initializer.Add(axes);
        g.Node.Add(Node("ReduceSum", new[] { "x", "axes" }, "y", new AttributeProto { Name = "keepdims", Type = AttributeProto.Types.AttributeType.Int, I = 1 }));
        g.Output.Add(declareBatch ? Value("y", TensorProto.Types.DataType.Float, -1, 4) : Value("y", TensorProto.Types.DataType.Float, 1, 4));
        return Model(g);
    }

    /// <summary>x float [N,4] → y = x - ReduceMean(x, axis 0): each sample's output depends on the whole batch.</summary>
    public static byte[] CentredOverTheBatch()
    {
        var g = new GraphProto { Name = "centred" };
        g.Input.Add(Value("x", TensorProto.Types.DataType.Float, -1, 4));
        g.Node.Add(Node("ReduceMean", new[] { "x" }, "m",
            new AttributeProto { Name = "axes", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 0 } },
            new AttributeProto { Name = "keepdims", Type = AttributeProto.Types.AttributeType.Int, I = 1 }));
        g.Node.Add(Node("Sub", new[] { "x", "m" }, "y"));
        g.Output.Add(Value("y", TensorProto.Types.DataType.Float, -1, 4));
        return Model(g);
    }
}
