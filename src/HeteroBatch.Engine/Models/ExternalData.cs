using Google.Protobuf;
using Onnx;

namespace HeteroBatch.Engine.Models;

/// <summary>
/// ONNX models may keep their weights outside the .onnx file ("external data": a tensor names a
/// file beside the model, an offset and a length). A model written somewhere else, or converted,
/// loses them unless they are read in: this reads every such tensor into the model itself, so
/// that what is written is whole wherever it goes.
/// </summary>
internal static class ExternalData
{
    /// <summary>The most a model written whole may hold: protobuf messages stop at 2 GiB.</summary>
    public const long MaxInlineBytes = int.MaxValue - (64L << 20);

    /// <summary>True where any initializer or constant of <paramref name="model"/> keeps its data outside the file.</summary>
    public static bool Uses(ModelProto model) => Tensors(model.Graph).Any(IsExternal);

    /// <summary>
    /// A copy of <paramref name="model"/> (or the model itself where nothing is external) with every external
    /// tensor's data read from <paramref name="folder"/> (the folder of the .onnx file) into the tensor. Throws
    /// ModelInvalid where a data file is missing, outside the folder or shorter than the tensor says, and
    /// PrecisionUnsupported where the whole would be over the 2 GiB a single ONNX file can hold.
    /// </summary>
    public static ModelProto Inline(ModelProto model, string folder, string what)
    {
        if (!Uses(model)) return model;
        var copy = model.Clone();
        long total = copy.CalculateSize();
        var root = Path.GetFullPath(folder);
        foreach (var t in Tensors(copy.Graph).Where(IsExternal))
        {
            string? location = null;
            long offset = 0, length = -1;
            foreach (var kv in t.ExternalData)
            {
                if (kv.Key == "location") location = kv.Value;
                else if (kv.Key == "offset" && !long.TryParse(kv.Value, out offset)) throw Invalid(what, $"tensor '{t.Name}' has an offset that is not a number");
                else if (kv.Key == "length" && !long.TryParse(kv.Value, out length)) throw Invalid(what, $"tensor '{t.Name}' has a length that is not a number");
            }
            if (string.IsNullOrEmpty(location)) throw Invalid(what, $"tensor '{t.Name}' is external but names no file");
            var file = Path.GetFullPath(Path.Combine(root, location));
            if (!file.StartsWith(root.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                throw Invalid(what, $"tensor '{t.Name}' names a data file outside the model's folder ({location})");
            if (!File.Exists(file)) throw Invalid(what, $"tensor '{t.Name}' keeps its data in {location}, which is not beside the model");
            long size = new FileInfo(file).Length;
            if (length < 0) length = size - offset;
            if (offset < 0 || length < 0 || offset + length > size) throw Invalid(what, $"tensor '{t.Name}' reads bytes {offset}..{offset + length} of {location}, which holds {size}");
            total += length;
            if (total > MaxInlineBytes)
                throw new HeteroBatchException("PrecisionUnsupported", FailureKind.InvalidData,
                    $"{what} keeps over 2 GiB of weights in external data; a model written as one file holds at most 2 GiB.", what);
            var bytes = new byte[length];
            using (var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read))
            {
                stream.Position = offset;
                stream.ReadExactly(bytes);
            }
            t.RawData = ByteString.CopyFrom(bytes);
            t.ExternalData.Clear();
            t.DataLocation = TensorProto.Types.DataLocation.Default;
        }
        return copy;
    }

    private static bool IsExternal(TensorProto t) => t.DataLocation == TensorProto.Types.DataLocation.External;

    /// <summary>The initializers and the tensors of Constant nodes (subgraphs included).</summary>
    private static IEnumerable<TensorProto> Tensors(GraphProto? graph)
    {
        if (graph == null) yield break;
        foreach (var t in graph.Initializer) yield return t;
        foreach (var n in graph.Node)
            foreach (var a in n.Attribute)
            {
                if (a.T != null) yield return a.T;
                foreach (var t in a.Tensors) yield return t;
                foreach (var t in Tensors(a.G)) yield return t;
                foreach (var g in a.Graphs)
                    foreach (var t in Tensors(g)) yield return t;
            }
    }

    private static HeteroBatchException Invalid(string what, string why) =>
        new("ModelInvalid", FailureKind.InvalidData, $"Not a usable ONNX model: {what}: {why}.", what);
}
