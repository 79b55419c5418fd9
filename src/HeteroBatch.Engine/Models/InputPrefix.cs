using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Google.Protobuf;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Runtime;
using Onnx;

namespace HeteroBatch.Engine.Models;

/// <summary>
/// Derives from an image model with one float32 input (NCHW or NHWC, 3 channels) a model that
/// takes the pixels themselves: uint8 [N, H, W, 3], RGB. The preprocessing the CPU path does per
/// sample (<see cref="ImagePreprocessing"/>: channel order, value × 1/(255·std) − mean/std, the
/// layout change) becomes a prefix of the graph (Gather for BGR, Cast, Transpose, Mul, Add), so
/// it runs on the unit, and images travel to a GPU as bytes (a quarter of float32's). The rest of
/// the graph is untouched: an fp16 form (whose inputs stay float32) takes the prefix as well.
/// Derived files are cached by the content hash of the model they came from, like the fp16 form.
/// </summary>
public static class InputPrefix
{
    private const int Float = (int)TensorProto.Types.DataType.Float;
    private const int UInt8 = (int)TensorProto.Types.DataType.Uint8;
    private const int Int64 = (int)TensorProto.Types.DataType.Int64;

    /// <summary>Bumped whenever the prefix changes; part of the derived files' names.</summary>
    public const int Version = 1;

    /// <summary>
    /// The uint8-input form of <paramref name="model"/> for <paramref name="preprocessing"/>'s mean,
    /// std and channel order. Throws InputPrefixUnsupported for models whose input is not one
    /// float32 image of 3 channels with a known height and width.
    /// </summary>
    public static ModelProto ToUint8(ModelProto model, ImagePreprocessing preprocessing)
    {
        preprocessing.Checked();
        var graph = model.Graph;
        var initializers = new HashSet<string>(graph.Initializer.Select(i => i.Name));
        var inputs = graph.Input.Where(i => !initializers.Contains(i.Name)).ToList();
        if (inputs.Count != 1) throw Unsupported($"it has {inputs.Count} inputs; the prefix feeds a model with one image input");
        var input = inputs[0];
        var tensor = input.Type?.TensorType;
        if (tensor == null || tensor.ElemType != Float) throw Unsupported($"its input '{input.Name}' is not float32");
        var dims = tensor.Shape?.Dim;
        if (dims == null || dims.Count != 4) throw Unsupported($"its input '{input.Name}' is not a batch of images (rank 4)");
        bool Known(int i) => dims[i].ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && dims[i].DimValue > 0;
        bool channelsFirst;
        if (Known(1) && dims[1].DimValue == 3 && Known(2) && Known(3)) channelsFirst = true;
        else if (Known(3) && dims[3].DimValue == 3 && Known(1) && Known(2)) channelsFirst = false;
        else throw Unsupported($"its input '{input.Name}' is not [N, 3, H, W] or [N, H, W, 3] with a known height and width");
        long height = channelsFirst ? dims[2].DimValue : dims[1].DimValue;
        long width = channelsFirst ? dims[3].DimValue : dims[2].DimValue;

        var copy = model.Clone();
        graph = copy.Graph;
        var name = input.Name;
        string Fresh(string suffix) => $"{name}__prefix_{suffix}";
        var floatName = Fresh("float");
        foreach (var n in graph.Node)
            for (int i = 0; i < n.Input.Count; i++)
                if (n.Input[i] == name) n.Input[i] = floatName;
        foreach (var o in graph.Output.Where(o => o.Name == name))
            throw Unsupported($"its input '{name}' is also an output");

        // the new input: uint8 pixels, the batch dimension as the model had it
        var batchDim = dims[0].Clone();
        var uint8Input = new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = UInt8, Shape = new TensorShapeProto() } },
        };
        uint8Input.Type.TensorType.Shape.Dim.Add(batchDim);
        foreach (var d in new[] { height, width, 3L }) uint8Input.Type.TensorType.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        int position = graph.Input.IndexOf(graph.Input.First(i => i.Name == name));
        graph.Input[position] = uint8Input;

        // per model channel c: value = byte × 1/(255·std[c]) − mean[c]/std[c], the CPU path's arithmetic
        var scale = new float[3];
        var offset = new float[3];
        for (int c = 0; c < 3; c++)
        {
            float mean = preprocessing.Mean[Math.Min(c, preprocessing.Mean.Length - 1)], std = preprocessing.Std[Math.Min(c, preprocessing.Std.Length - 1)];
            scale[c] = 1f / 255f / std;
            offset[c] = -mean / std;
        }
        long[] constantShape = channelsFirst ? new long[] { 1, 3, 1, 1 } : new long[] { 1, 1, 1, 3 };
        graph.Initializer.Add(FloatTensor(Fresh("scale"), scale, constantShape));
        graph.Initializer.Add(FloatTensor(Fresh("offset"), offset, constantShape));

        var prefix = new List<NodeProto>();
        var current = name;
        if (preprocessing.ChannelOrder == ChannelOrder.Bgr)
        {
            var order = new TensorProto { Name = Fresh("bgr_order"), DataType = Int64, Dims = { 3 } };
            order.Int64Data.AddRange(new long[] { 2, 1, 0 });
            graph.Initializer.Add(order);
            prefix.Add(Node("Gather", Fresh("bgr"), new[] { current, order.Name }, Fresh("bgr"), new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 3 }));
            current = Fresh("bgr");
        }
        prefix.Add(Node("Cast", Fresh("cast"), new[] { current }, Fresh("cast"), new AttributeProto { Name = "to", Type = AttributeProto.Types.AttributeType.Int, I = Float }));
        current = Fresh("cast");
        if (channelsFirst)
        {
            var perm = new AttributeProto { Name = "perm", Type = AttributeProto.Types.AttributeType.Ints };
            perm.Ints.AddRange(new long[] { 0, 3, 1, 2 });
            prefix.Add(Node("Transpose", Fresh("nchw"), new[] { current }, Fresh("nchw"), perm));
            current = Fresh("nchw");
        }
        prefix.Add(Node("Mul", Fresh("scaled"), new[] { current, Fresh("scale") }, Fresh("scaled")));
        prefix.Add(Node("Add", Fresh("normalised"), new[] { Fresh("scaled"), Fresh("offset") }, floatName));
        var nodes = prefix.Concat(graph.Node).ToList();
        graph.Node.Clear();
        graph.Node.AddRange(nodes);
        return copy;
    }

    private static NodeProto Node(string op, string nodeName, string[] inputs, string output, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = nodeName, Output = { output } };
        node.Input.AddRange(inputs);
        node.Attribute.AddRange(attributes);
        return node;
    }

    private static TensorProto FloatTensor(string name, float[] values, long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = Float };
        t.Dims.AddRange(dims);
        t.FloatData.AddRange(values);
        return t;
    }

    /// <summary>
    /// The uint8-input form of the model file at <paramref name="modelPath"/> (any precision's form
    /// of it, as <see cref="ModelCatalog.PathFor"/> gives), written once into
    /// <paramref name="cacheFolder"/>/uint8 under the source file's content hash and the
    /// preprocessing's values, and checked against the hash recorded beside it. Throws
    /// InputPrefixUnsupported or ModelInvalid.
    /// </summary>
    public static string PathFor(string modelPath, ImagePreprocessing preprocessing, string cacheFolder)
    {
        preprocessing.Checked();
        var sourceHash = ModelCatalog.HashOf(modelPath);
        var key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(KeyOf(preprocessing)))).ToLowerInvariant()[..8];
        var file = Path.Combine(cacheFolder, "uint8", $"{sourceHash[..Math.Min(16, sourceHash.Length)]}.{key}.v{Version}.onnx");
        var sidecar = file + ".sha256";
        if (File.Exists(file) && RecordedHash(file) is { } recorded && ModelCatalog.HashOf(file) == recorded) return file;
        ModelProto source;
        try { source = ModelProto.Parser.ParseFrom(File.ReadAllBytes(modelPath)); }
        catch (InvalidProtocolBufferException e) { throw new HeteroBatchException("ModelInvalid", FailureKind.InvalidData, $"Not a valid ONNX model: {modelPath}: {e.Message}", modelPath, e); }
        var derived = ToUint8(source, preprocessing);
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        // two writers make the same bytes; each replaces the file atomically
        var hash = AtomicFile.Write(file, s => derived.WriteTo(s));
        AtomicFile.WriteText(sidecar, hash);
        return file;
    }

    /// <summary>The uint8-input form of <paramref name="model"/> at <paramref name="precision"/> (its fp16 form for Fp16), in the model's cache.</summary>
    public static string PathFor(ModelSource model, Precision precision, ImagePreprocessing preprocessing) =>
        PathFor(ModelCatalog.PathFor(model, precision), preprocessing, model.CacheFolder ?? ModelCatalog.PlatformCacheFolder());

    /// <summary>What of <paramref name="p"/> the uint8-input form depends on: channel order, mean and std.</summary>
    public static string KeyOf(ImagePreprocessing p) => string.Create(CultureInfo.InvariantCulture,
        $"{p.ChannelOrder};{string.Join(",", p.Mean.Select(m => m.ToString("R", CultureInfo.InvariantCulture)))};{string.Join(",", p.Std.Select(s => s.ToString("R", CultureInfo.InvariantCulture)))}");

    private static string? RecordedHash(string file)
    {
        try { return File.Exists(file + ".sha256") ? File.ReadAllText(file + ".sha256").Trim() : null; }
        catch (IOException) { return null; }
    }

    private static HeteroBatchException Unsupported(string why) =>
        new("InputPrefixUnsupported", FailureKind.InvalidData, $"The model cannot take uint8 pixels: {why}.");
}
