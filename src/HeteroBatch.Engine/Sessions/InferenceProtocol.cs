using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using HeteroBatch.Engine.Data;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace HeteroBatch.Engine.Sessions;

/// <summary>
/// The Open Inference Protocol (KServe v2) over HTTP/REST, as its specification writes it: the
/// health, metadata and infer endpoints' JSON, and the binary tensor data extension (a JSON
/// header of Inference-Header-Content-Length bytes, then each binary tensor's bytes in order,
/// little-endian, row-major). Both HeteroBatch's client and its server use these.
/// </summary>
public static class InferenceProtocol
{
    public const string HeaderLengthHeader = "Inference-Header-Content-Length";
    public const string BinaryExtension = "binary_tensor_data";

    /// <summary>One tensor of a request or response: name, shape (batch first), data type and values as bytes (often a slice of the body they came in).</summary>
    public sealed record Tensor(string Name, long[] Shape, string DataType, ReadOnlyMemory<byte> Bytes);

    public static string DataTypeOf(TensorElementType t) => t switch
    {
        TensorElementType.Float => "FP32",
        TensorElementType.Double => "FP64",
        TensorElementType.Int64 => "INT64",
        TensorElementType.Int32 => "INT32",
        TensorElementType.UInt8 => "UINT8",
        TensorElementType.Float16 => "FP16",
        _ => throw new HeteroBatchException("ElementTypeUnsupported", FailureKind.InvalidData, $"{t} tensors have no protocol data type here."),
    };

    public static TensorElementType ElementTypeOf(string dataType) => dataType switch
    {
        "FP32" => TensorElementType.Float,
        "FP64" => TensorElementType.Double,
        "INT64" => TensorElementType.Int64,
        "INT32" => TensorElementType.Int32,
        "UINT8" => TensorElementType.UInt8,
        _ => throw Invalid($"data type '{dataType}' is not supported (FP32, FP64, INT64, INT32, UINT8)"),
    };

    public static HeteroBatchException Invalid(string why) => new("ProtocolInvalid", FailureKind.InvalidData, $"Open Inference Protocol: {why}.");

    /// <summary>Model metadata: {"name", "versions", "platform", "inputs": [{"name", "datatype", "shape"}], "outputs": [...]}, batch dimension -1.</summary>
    public static JsonObject ModelMetadata(string name, IReadOnlyList<TensorSpec> inputs, IReadOnlyList<TensorSpec> outputs) => new()
    {
        ["name"] = name,
        ["versions"] = new JsonArray("1"),
        ["platform"] = "onnxruntime_onnx",
        ["inputs"] = new JsonArray(inputs.Select(Spec).ToArray<JsonNode?>()),
        ["outputs"] = new JsonArray(outputs.Select(Spec).ToArray<JsonNode?>()),
    };

    private static JsonObject Spec(TensorSpec t) => new()
    {
        ["name"] = t.Name,
        ["datatype"] = DataTypeOf(t.ElementType),
        ["shape"] = new JsonArray(new long[] { -1 }.Concat(t.SampleShape).Select(d => (JsonNode?)d).ToArray()),
    };

    /// <summary>The inputs and outputs a model's metadata lists (per-sample shapes: the first dimension is the batch).</summary>
    public static (List<TensorSpec> Inputs, List<TensorSpec> Outputs) ReadModelMetadata(JsonNode metadata)
    {
        List<TensorSpec> Read(string key) => (metadata[key] as JsonArray ?? throw Invalid($"model metadata has no '{key}'"))
            .Select(n => new TensorSpec(
                n?["name"]?.GetValue<string>() ?? throw Invalid("a tensor without a name"),
                ElementTypeOf(n["datatype"]?.GetValue<string>() ?? ""),
                (n["shape"] as JsonArray ?? throw Invalid("a tensor without a shape")).Skip(1).Select(d => d!.GetValue<long>()).ToArray()))
            .ToList();
        return (Read("inputs"), Read("outputs"));
    }

    /// <summary>
    /// An infer request or response body with every tensor as binary data: the JSON header (inputs
    /// or outputs, each with parameters.binary_data_size), then the tensors' bytes; returns the body and the header's length.
    /// </summary>
    public static (byte[] Body, int HeaderLength) Encode(string tensorsKey, IReadOnlyList<Tensor> tensors, string? id = null, IReadOnlyList<string>? requestedOutputs = null, string? modelName = null)
    {
        var json = Header(tensorsKey, tensors.Select(t => (t.Name, t.Shape, t.DataType, (long)t.Bytes.Length)).ToList(), id, requestedOutputs, modelName);
        var body = new byte[json.Length + tensors.Sum(t => (long)t.Bytes.Length)];
        json.CopyTo(body, 0);
        int at = json.Length;
        foreach (var t in tensors) { t.Bytes.Span.CopyTo(body.AsSpan(at)); at += t.Bytes.Length; }
        return (body, json.Length);
    }

    /// <summary>The JSON header of a body whose tensors all follow as binary data of the given sizes.</summary>
    public static byte[] Header(string tensorsKey, IReadOnlyList<(string Name, long[] Shape, string DataType, long Size)> tensors, string? id = null,
        IReadOnlyList<string>? requestedOutputs = null, string? modelName = null)
    {
        var header = new JsonObject();
        if (modelName != null) header["model_name"] = modelName;
        if (id != null) header["id"] = id;
        header[tensorsKey] = new JsonArray(tensors.Select(t => (JsonNode?)new JsonObject
        {
            ["name"] = t.Name,
            ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode?)d).ToArray()),
            ["datatype"] = t.DataType,
            ["parameters"] = new JsonObject { ["binary_data_size"] = t.Size },
        }).ToArray());
        if (requestedOutputs != null)
            header["outputs"] = new JsonArray(requestedOutputs.Select(o => (JsonNode?)new JsonObject { ["name"] = o, ["parameters"] = new JsonObject { ["binary_data"] = true } }).ToArray());
        return Encoding.UTF8.GetBytes(header.ToJsonString());
    }

    /// <summary>
    /// Reads the tensors of a request ("inputs") or response ("outputs") body: binary ones from
    /// after the header (<paramref name="headerLength"/> bytes; null when the body is JSON alone), JSON ones from their "data".
    /// Returns the header too (for the id and the requested outputs).
    /// </summary>
    public static (JsonObject Header, List<Tensor> Tensors) Decode(byte[] body, int? headerLength, string tensorsKey)
    {
        int length = headerLength ?? body.Length;
        if (length < 0 || length > body.Length) throw Invalid($"{HeaderLengthHeader} is {length}, the body {body.Length} bytes");
        JsonObject header;
        try { header = JsonNode.Parse(body.AsSpan(0, length))?.AsObject() ?? throw Invalid("the body is not a JSON object"); }
        catch (JsonException e) { throw Invalid($"the JSON header does not parse: {e.Message}"); }
        catch (InvalidOperationException) { throw Invalid("the JSON header is not an object"); }
        var list = header[tensorsKey] as JsonArray ?? throw Invalid($"no '{tensorsKey}'");
        var tensors = new List<Tensor>();
        long at = length;
        foreach (var node in list)
        {
            var name = node?["name"]?.GetValue<string>() ?? throw Invalid("a tensor without a name");
            var type = node["datatype"]?.GetValue<string>() ?? throw Invalid($"'{name}' has no datatype");
            var shape = (node["shape"] as JsonArray ?? throw Invalid($"'{name}' has no shape")).Select(d => d!.GetValue<long>()).ToArray();
            int size = TensorBatch.ElementSize(ElementTypeOf(type));
            long values = shape.Aggregate(1L, (a, b) => b < 0 ? throw Invalid($"'{name}' has a negative dimension") : checked(a * b));
            if (values * size > Array.MaxLength) throw Invalid($"'{name}' is larger than one array holds");
            ReadOnlyMemory<byte> bytes;
            if (node["parameters"]?["binary_data_size"] is JsonNode sizeNode)
            {
                long n = sizeNode.GetValue<long>();
                if (n != values * size) throw Invalid($"'{name}' has binary_data_size {n}; shape [{string.Join(",", shape)}] of {type} needs {values * size}");
                if (at + n > body.Length) throw Invalid($"the body ends before '{name}''s {n} bytes");
                bytes = body.AsMemory((int)at, (int)n); // a slice of the body, not a copy
                at += n;
            }
            else if (node["data"] is JsonArray data)
                bytes = FromJsonData(name, data, type, values, size);
            else throw Invalid($"'{name}' has neither data nor binary_data_size");
            tensors.Add(new Tensor(name, shape, type, bytes));
        }
        return (header, tensors);
    }

    /// <summary>Values written as JSON numbers (flattened, row-major; nested arrays are flattened too).</summary>
    private static byte[] FromJsonData(string name, JsonArray data, string type, long values, int size)
    {
        var flat = new List<JsonNode>();
        void Flatten(JsonNode? n) { if (n is JsonArray a) foreach (var x in a) Flatten(x); else if (n != null) flat.Add(n); }
        Flatten(data);
        if (flat.Count != values) throw Invalid($"'{name}' has {flat.Count} values; its shape needs {values}");
        var bytes = new byte[values * size];
        var span = bytes.AsSpan();
        for (int i = 0; i < flat.Count; i++)
        {
            var v = flat[i];
            switch (type)
            {
                case "FP32": BinaryPrimitives.WriteSingleLittleEndian(span[(i * 4)..], v.GetValue<float>()); break;
                case "FP64": BinaryPrimitives.WriteDoubleLittleEndian(span[(i * 8)..], v.GetValue<double>()); break;
                case "INT64": BinaryPrimitives.WriteInt64LittleEndian(span[(i * 8)..], v.GetValue<long>()); break;
                case "INT32": BinaryPrimitives.WriteInt32LittleEndian(span[(i * 4)..], v.GetValue<int>()); break;
                case "UINT8": span[i] = v.GetValue<byte>(); break;
            }
        }
        return bytes;
    }

    /// <summary>A tensor's values as JSON numbers (for clients that did not ask for binary data).</summary>
    public static JsonArray ToJsonData(Tensor t)
    {
        var a = new JsonArray();
        var s = t.Bytes.Span;
        int size = TensorBatch.ElementSize(ElementTypeOf(t.DataType));
        for (int i = 0; i < t.Bytes.Length / size; i++)
            a.Add(t.DataType switch
            {
                "FP32" => JsonValue.Create(BinaryPrimitives.ReadSingleLittleEndian(s[(i * 4)..])),
                "FP64" => JsonValue.Create(BinaryPrimitives.ReadDoubleLittleEndian(s[(i * 8)..])),
                "INT64" => JsonValue.Create(BinaryPrimitives.ReadInt64LittleEndian(s[(i * 8)..])),
                "INT32" => JsonValue.Create(BinaryPrimitives.ReadInt32LittleEndian(s[(i * 4)..])),
                _ => JsonValue.Create(s[i]),
            });
        return a;
    }

    /// <summary>Parses the Inference-Header-Content-Length value; null when absent.</summary>
    public static int? HeaderLength(string? value) =>
        value == null ? null : int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : throw Invalid($"{HeaderLengthHeader} '{value}' is not a length");
}
