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
    /// <summary>
    /// The protocol's data type of variable-length byte strings (an encoded image each, here). In binary data (REST's
    /// binary tensor data, gRPC's raw_input_contents) each element is a 4-byte little-endian length, then its bytes;
    /// in JSON each is a string (see <see cref="WriteJsonData"/>). Its element type here is <see cref="TensorElementType.String"/>.
    /// </summary>
    public const string BytesType = "BYTES";
    /// <summary>The tensor parameter that marks a JSON BYTES tensor whose strings are base64 ("content_type": "base64", as MLServer writes it).</summary>
    public const string ContentTypeParameter = "content_type";

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
        TensorElementType.String => BytesType,
        _ => throw new HeteroBatchException("ElementTypeUnsupported", FailureKind.InvalidData, $"{t} tensors have no protocol data type here."),
    };

    public static TensorElementType ElementTypeOf(string dataType) => dataType switch
    {
        "FP32" => TensorElementType.Float,
        "FP64" => TensorElementType.Double,
        "INT64" => TensorElementType.Int64,
        "INT32" => TensorElementType.Int32,
        "UINT8" => TensorElementType.UInt8,
        BytesType => TensorElementType.String,
        _ => throw Invalid($"data type '{dataType}' is not supported (FP32, FP64, INT64, INT32, UINT8, BYTES)"),
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

    /// <summary>The "extensions" a server's metadata (GET /v2) lists; null where it lists none (no such key, or it is not an array of strings).</summary>
    public static IReadOnlyList<string>? Extensions(ReadOnlySpan<byte> serverMetadata)
    {
        try
        {
            return JsonNode.Parse(serverMetadata)?["extensions"] is JsonArray a && a.All(e => e is JsonValue v && v.TryGetValue<string>(out _))
                ? a.Select(e => e!.GetValue<string>()).ToList() : null;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException) { return null; }
    }

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
    /// The JSON is read as a stream of tokens, never as a document: a tensor's values are counted
    /// first, checked against its shape, then written once into an array of their binary size
    /// (<paramref name="reserve"/> is told that size before it is allocated, and may throw to refuse it).
    /// Returns the header's "id" and requested "outputs" (each with name and parameters.binary_data).
    /// Every malformed body is ProtocolInvalid.
    /// </summary>
    public static (JsonObject Header, List<Tensor> Tensors) Decode(byte[] body, int? headerLength, string tensorsKey, Action<long>? reserve = null)
    {
        int length = headerLength ?? body.Length;
        if (length < 0 || length > body.Length) throw Invalid($"{HeaderLengthHeader} is {length}, the body {body.Length} bytes");
        var header = new JsonObject();
        var found = new List<TensorHeader>();
        try
        {
            var reader = new Utf8JsonReader(body.AsSpan(0, length), new JsonReaderOptions { MaxDepth = 64 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) throw Invalid("the body is not a JSON object");
            bool sawTensors = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var key = reader.GetString()!;
                reader.Read();
                if (key == tensorsKey)
                {
                    if (reader.TokenType != JsonTokenType.StartArray) throw Invalid($"'{tensorsKey}' is not an array");
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray) found.Add(ReadTensorHeader(ref reader, reserve, body.Length));
                    sawTensors = true;
                }
                else if (key == "id") header["id"] = reader.TokenType == JsonTokenType.String ? reader.GetString() : throw Invalid("'id' is not a string");
                else if (key == "outputs") header["outputs"] = ReadRequestedOutputs(ref reader);
                else reader.Skip();
            }
            if (!sawTensors) throw Invalid($"no '{tensorsKey}'");
        }
        catch (JsonException e) { throw Invalid($"the JSON header does not parse (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1})"); }
        catch (InvalidOperationException) { throw Invalid("the JSON header holds a value of the wrong kind"); }

        var tensors = new List<Tensor>();
        long at = length;
        foreach (var t in found)
        {
            var name = t.Name ?? throw Invalid("a tensor without a name");
            var type = t.DataType ?? throw Invalid($"'{name}' has no datatype");
            var shape = t.Shape ?? throw Invalid($"'{name}' has no shape");
            if (type == BytesType)
            {
                tensors.Add(new Tensor(name, shape, type, ReadBytesTensor(t, body, ref at)));
                continue;
            }
            if (t.Strings != null) throw Invalid($"'{name}''s data holds a string; only numbers are {type} values");
            int size = TensorBatch.ElementSize(ElementTypeOf(type));
            long values = 1;
            foreach (var d in shape)
            {
                if (d < 0) throw Invalid($"'{name}' has a negative dimension");
                if (d != 0 && values > Array.MaxLength / d) throw Invalid($"'{name}' [{string.Join(",", shape)}] is larger than one array holds");
                values *= d;
            }
            if (values * size > Array.MaxLength) throw Invalid($"'{name}' [{string.Join(",", shape)}] is larger than one array holds");
            ReadOnlyMemory<byte> bytes;
            if (t.BinarySize is long n)
            {
                if (n != values * size) throw Invalid($"'{name}' has binary_data_size {n}; shape [{string.Join(",", shape)}] of {type} needs {values * size}");
                if (at + n > body.Length) throw Invalid($"the body ends before '{name}''s {n} bytes");
                bytes = body.AsMemory((int)at, (int)n); // a slice of the body, not a copy
                at += n;
            }
            else if (t.DataEnd > t.DataStart)
            {
                if (t.DataCount != values) throw Invalid($"'{name}' has {t.DataCount} values; its shape needs {values}");
                if (t.Parsed != null) bytes = t.Parsed; // read, and reserved, as the header was
                else
                {
                    reserve?.Invoke(values * size);
                    bytes = FromJsonData(name, body.AsSpan(t.DataStart, t.DataEnd - t.DataStart), type, values, size);
                }
            }
            else throw Invalid($"'{name}' has neither data nor binary_data_size");
            tensors.Add(new Tensor(name, shape, type, bytes));
        }
        return (header, tensors);
    }

    /// <summary>
    /// A BYTES tensor's elements in their binary form (4-byte little-endian length, then the bytes, each): a slice of the
    /// body where they came as binary data (checked to hold the shape's number of elements, and to end where its size says),
    /// else made from the JSON strings (base64-decoded where the tensor's content_type parameter says "base64").
    /// </summary>
    private static ReadOnlyMemory<byte> ReadBytesTensor(TensorHeader t, byte[] body, ref long at)
    {
        var name = t.Name!;
        long values = ValuesOf(t.Shape!);
        if (values < 0) throw Invalid($"'{name}' [{string.Join(",", t.Shape!)}] is not a shape of BYTES elements here");
        if (t.BinarySize is long n)
        {
            if (at + n > body.Length) throw Invalid($"the body ends before '{name}''s {n} bytes");
            var bytes = body.AsMemory((int)at, (int)n);
            at += n;
            SplitBytes(name, bytes, values); // throws where the elements do not fill its size exactly
            return bytes;
        }
        if (t.DataEnd <= t.DataStart) throw Invalid($"'{name}' has neither data nor binary_data_size");
        if (t.DataCount > 0) throw Invalid($"'{name}''s data holds numbers; BYTES elements are strings");
        var strings = t.Strings ?? new List<byte[]>();
        if (strings.Count != values) throw Invalid($"'{name}' has {strings.Count} elements; its shape needs {values}");
        if (t.ContentType == "base64")
            strings = strings.Select((s, i) =>
            {
                var decoded = new byte[System.Buffers.Text.Base64.GetMaxDecodedFromUtf8Length(s.Length)];
                if (System.Buffers.Text.Base64.DecodeFromUtf8(s, decoded, out _, out int written) != System.Buffers.OperationStatus.Done)
                    throw Invalid($"'{name}' element {i} is not base64 (its content_type says it is)");
                return decoded[..written];
            }).ToList();
        else if (t.ContentType != null && t.ContentType != "str") throw Invalid($"'{name}' has content_type '{t.ContentType}'; BYTES strings here are plain (\"str\") or \"base64\"");
        return SerializeBytes(strings.Select(s => (ReadOnlyMemory<byte>)s).ToList());
    }

    /// <summary>BYTES elements in their binary form: each a 4-byte little-endian length, then its bytes.</summary>
    public static byte[] SerializeBytes(IReadOnlyList<ReadOnlyMemory<byte>> elements)
    {
        var body = new byte[SerializedLength(elements)];
        SerializeBytes(elements, body);
        return body;
    }

    /// <summary>Bytes of the binary form of BYTES <paramref name="elements"/> (<see cref="SerializeBytes(IReadOnlyList{ReadOnlyMemory{byte}})"/>).</summary>
    public static long SerializedLength(IReadOnlyList<ReadOnlyMemory<byte>> elements) => checked(elements.Sum(e => 4L + e.Length));

    /// <summary>Writes the binary form of BYTES <paramref name="elements"/> at the start of <paramref name="into"/> (at least <see cref="SerializedLength"/> long).</summary>
    public static void SerializeBytes(IReadOnlyList<ReadOnlyMemory<byte>> elements, Span<byte> into)
    {
        int at = 0;
        foreach (var e in elements)
        {
            BinaryPrimitives.WriteInt32LittleEndian(into[at..], e.Length);
            e.Span.CopyTo(into[(at + 4)..]);
            at += 4 + e.Length;
        }
    }

    /// <summary>
    /// The <paramref name="count"/> elements of a BYTES tensor's binary form, as slices of it (no copies). ProtocolInvalid
    /// where a length runs past the end, or the elements are more or fewer than <paramref name="count"/>.
    /// </summary>
    public static List<ReadOnlyMemory<byte>> SplitBytes(string name, ReadOnlyMemory<byte> serialized, long count)
    {
        var elements = new List<ReadOnlyMemory<byte>>((int)Math.Min(count, 1 << 16));
        var s = serialized.Span;
        int at = 0;
        while (at < s.Length)
        {
            if (s.Length - at < 4) throw Invalid($"'{name}' ends inside the length of element {elements.Count}");
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(s[at..]);
            if (length > s.Length - at - 4) throw Invalid($"'{name}' element {elements.Count} says it holds {length} bytes; {s.Length - at - 4} are left");
            if (elements.Count == count) throw Invalid($"'{name}' holds more than the {count} elements its shape says");
            elements.Add(serialized.Slice(at + 4, (int)length));
            at += 4 + (int)length;
        }
        if (elements.Count != count) throw Invalid($"'{name}' holds {elements.Count} elements; its shape says {count}");
        return elements;
    }

    /// <summary>
    /// One tensor's header as read: its "data" located and counted (DataStart..DataEnd, bytes of the body), and read
    /// into <see cref="Parsed"/> where its shape and datatype came before it (as the protocol's examples write them).
    /// </summary>
    private sealed record TensorHeader(string? Name, string? DataType, long[]? Shape, long? BinarySize, int DataStart, int DataEnd, long DataCount, byte[]? Parsed)
    {
        /// <summary>The strings of its "data" (unescaped UTF-8), where it holds any: a BYTES tensor's elements.</summary>
        public List<byte[]>? Strings { get; init; }
        /// <summary>Its "content_type" parameter, where it has one.</summary>
        public string? ContentType { get; init; }
    }

    /// <summary>
    /// One tensor's header. Where "shape" and "datatype" come before "data", the values are read as they are counted,
    /// in this one pass, into an array of the shape's size (<paramref name="reserve"/> told first), so long as the
    /// body is long enough to hold that many numbers (two bytes each at least); otherwise they are only counted here.
    /// </summary>
    private static TensorHeader ReadTensorHeader(ref Utf8JsonReader reader, Action<long>? reserve, long bodyLength)
    {
        if (reader.TokenType != JsonTokenType.StartObject) throw Invalid("a tensor is not a JSON object");
        string? name = null, type = null;
        long[]? shape = null;
        long? binarySize = null;
        int start = 0, end = 0;
        long count = 0;
        byte[]? parsed = null;
        List<byte[]>? strings = null;
        string? contentType = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var key = reader.GetString()!;
            reader.Read();
            switch (key)
            {
                case "name": name = reader.TokenType == JsonTokenType.String ? reader.GetString() : throw Invalid("a tensor's name is not a string"); break;
                case "datatype": type = reader.TokenType == JsonTokenType.String ? reader.GetString() : throw Invalid("a tensor's datatype is not a string"); break;
                case "shape":
                    if (reader.TokenType != JsonTokenType.StartArray) throw Invalid("a tensor's shape is not an array");
                    var dims = new List<long>();
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out var d)) throw Invalid("a tensor's shape holds something other than whole numbers");
                        if (dims.Count == 32) throw Invalid("a tensor's shape has more than 32 dimensions");
                        dims.Add(d);
                    }
                    shape = dims.ToArray();
                    break;
                case "parameters":
                    if (reader.TokenType != JsonTokenType.StartObject) throw Invalid("a tensor's parameters are not an object");
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        var p = reader.GetString();
                        reader.Read();
                        if (p == "binary_data_size")
                            binarySize = reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var n) && n >= 0 ? n : throw Invalid("binary_data_size is not a size");
                        else if (p == ContentTypeParameter)
                            contentType = reader.TokenType == JsonTokenType.String ? reader.GetString() : throw Invalid("content_type is not a string");
                        else reader.Skip();
                    }
                    break;
                case "data":
                    if (reader.TokenType != JsonTokenType.StartArray) throw Invalid($"'{name ?? "a tensor"}''s data is not an array");
                    start = (int)reader.TokenStartIndex;
                    count = 0;
                    int size = type switch { "FP32" or "INT32" => 4, "FP64" or "INT64" => 8, "UINT8" => 1, _ => 0 };
                    long expected = size > 0 && binarySize == null && shape != null ? ValuesOf(shape) : -1;
                    parsed = null;
                    if (expected >= 0 && expected * size <= Array.MaxLength && expected <= (bodyLength - start) / 2 + 1)
                    {
                        reserve?.Invoke(expected * size);
                        parsed = new byte[expected * size];
                    }
                    for (int depth = 1; depth > 0 && reader.Read();)
                    {
                        switch (reader.TokenType)
                        {
                            case JsonTokenType.StartArray: depth++; break;
                            case JsonTokenType.EndArray: depth--; break;
                            case JsonTokenType.Number:
                                if (parsed != null && count < parsed.Length / size && !TryStore(ref reader, type!, parsed, count))
                                    throw Invalid($"'{name}' value {count} ({Encoding.UTF8.GetString(reader.ValueSpan[..Math.Min(reader.ValueSpan.Length, 40)])}) is not a finite {type} value");
                                count++;
                                break;
                            case JsonTokenType.String:
                                // a BYTES element (checked against the datatype once the whole tensor is read)
                                var text = new byte[reader.HasValueSequence ? reader.ValueSequence.Length : reader.ValueSpan.Length];
                                reserve?.Invoke(text.Length + 4);
                                (strings ??= new()).Add(text[..reader.CopyString(text)]);
                                break;
                            default: throw Invalid($"'{name ?? "a tensor"}''s data holds a {reader.TokenType switch { JsonTokenType.String => "string", JsonTokenType.True or JsonTokenType.False => "boolean", JsonTokenType.Null => "null", _ => "object" }}; only numbers are tensor values");
                        }
                    }
                    end = (int)reader.BytesConsumed;
                    break;
                default: reader.Skip(); break;
            }
        }
        return new TensorHeader(name, type, shape, binarySize, start, end, count, parsed) { Strings = strings, ContentType = contentType };
    }

    /// <summary>The values a shape holds; -1 for a negative dimension or more than one array holds.</summary>
    private static long ValuesOf(long[] shape)
    {
        long values = 1;
        foreach (var d in shape)
        {
            if (d < 0 || (d != 0 && values > Array.MaxLength / d)) return -1;
            values *= d;
        }
        return values;
    }

    /// <summary>Writes the reader's number as value <paramref name="i"/> of <paramref name="type"/> into <paramref name="bytes"/>; false where it does not fit the type (or is not finite).</summary>
    private static bool TryStore(ref Utf8JsonReader reader, string type, Span<byte> bytes, long i)
    {
        switch (type)
        {
            case "FP32": if (reader.TryGetSingle(out var f) && float.IsFinite(f)) { BinaryPrimitives.WriteSingleLittleEndian(bytes[(int)(i * 4)..], f); return true; } return false;
            case "FP64": if (reader.TryGetDouble(out var d) && double.IsFinite(d)) { BinaryPrimitives.WriteDoubleLittleEndian(bytes[(int)(i * 8)..], d); return true; } return false;
            case "INT64": if (reader.TryGetInt64(out var l)) { BinaryPrimitives.WriteInt64LittleEndian(bytes[(int)(i * 8)..], l); return true; } return false;
            case "INT32": if (reader.TryGetInt32(out var n)) { BinaryPrimitives.WriteInt32LittleEndian(bytes[(int)(i * 4)..], n); return true; } return false;
            case "UINT8": if (reader.TryGetByte(out var b)) { bytes[(int)i] = b; return true; } return false;
            default: return false;
        }
    }

    /// <summary>The "outputs" of a request: [{"name", "parameters": {"binary_data"}}], kept as that much JSON.</summary>
    private static JsonArray ReadRequestedOutputs(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartArray) throw Invalid("'outputs' is not an array");
        var list = new JsonArray();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartObject) throw Invalid("a requested output is not an object");
            string? name = null;
            bool? binary = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var key = reader.GetString();
                reader.Read();
                if (key == "name") name = reader.TokenType == JsonTokenType.String ? reader.GetString() : throw Invalid("a requested output's name is not a string");
                else if (key == "parameters" && reader.TokenType == JsonTokenType.StartObject)
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        var p = reader.GetString();
                        reader.Read();
                        if (p == "binary_data") binary = reader.TokenType is JsonTokenType.True ? true : reader.TokenType is JsonTokenType.False ? false : throw Invalid("binary_data is not true or false");
                        else reader.Skip();
                    }
                else reader.Skip();
            }
            if (list.Count == 4096) throw Invalid("more than 4096 outputs are asked for");
            var o = new JsonObject { ["name"] = name ?? throw Invalid("a requested output without a name") };
            if (binary != null) o["parameters"] = new JsonObject { ["binary_data"] = binary.Value };
            list.Add(o);
        }
        return list;
    }

    /// <summary>Values written as JSON numbers (flattened, row-major; nested arrays are flattened too), already counted: each must fit its data type.</summary>
    private static byte[] FromJsonData(string name, ReadOnlySpan<byte> data, string type, long values, int size)
    {
        var bytes = new byte[values * size];
        var span = bytes.AsSpan();
        var reader = new Utf8JsonReader(data, new JsonReaderOptions { MaxDepth = 64 });
        int i = 0;
        while (reader.Read())
        {
            if (reader.TokenType != JsonTokenType.Number) continue;
            bool ok;
            switch (type)
            {
                case "FP32": ok = reader.TryGetSingle(out var f) && float.IsFinite(f); if (ok) BinaryPrimitives.WriteSingleLittleEndian(span[(i * 4)..], f); break;
                case "FP64": ok = reader.TryGetDouble(out var d) && double.IsFinite(d); if (ok) BinaryPrimitives.WriteDoubleLittleEndian(span[(i * 8)..], d); break;
                case "INT64": ok = reader.TryGetInt64(out var l); if (ok) BinaryPrimitives.WriteInt64LittleEndian(span[(i * 8)..], l); break;
                case "INT32": ok = reader.TryGetInt32(out var n); if (ok) BinaryPrimitives.WriteInt32LittleEndian(span[(i * 4)..], n); break;
                case "UINT8": ok = reader.TryGetByte(out var b); if (ok) span[i] = b; break;
                default: ok = false; break;
            }
            if (!ok) throw Invalid($"'{name}' value {i} ({Encoding.UTF8.GetString(reader.ValueSpan[..Math.Min(reader.ValueSpan.Length, 40)])}) is not a finite {type} value");
            i++;
        }
        return bytes;
    }

    /// <summary>One tensor of a request's inputs or an answer's outputs as the protocol's JSON object: name, shape, datatype and its values as numbers.</summary>
    public static void WriteJsonTensor(Utf8JsonWriter writer, string name, long[] shape, string dataType, ReadOnlySpan<byte> values)
    {
        writer.WriteStartObject();
        writer.WriteString("name", name);
        writer.WriteStartArray("shape");
        foreach (var d in shape) writer.WriteNumberValue(d);
        writer.WriteEndArray();
        writer.WriteString("datatype", dataType);
        if (dataType == BytesType)
        {
            WriteJsonStrings(writer, values);
            writer.WriteEndObject();
            return;
        }
        writer.WritePropertyName("data");
        WriteJsonData(writer, name, dataType, values);
        writer.WriteEndObject();
    }

    /// <summary>
    /// A BYTES tensor's "data" (its binary form given, as <see cref="SerializeBytes"/> writes it): one JSON string per element.
    /// Where every element is UTF-8 text, the strings are that text (as Triton reads them); where any is not (an image
    /// file), every element is written base64 and the tensor says so in its parameters ("content_type": "base64", as
    /// MLServer reads it): JSON strings are text and cannot carry arbitrary bytes as they are.
    /// </summary>
    private static void WriteJsonStrings(Utf8JsonWriter writer, ReadOnlySpan<byte> serialized)
    {
        bool text = true;
        for (int at = 0; at < serialized.Length;)
        {
            int length = BinaryPrimitives.ReadInt32LittleEndian(serialized[at..]);
            text &= System.Text.Unicode.Utf8.IsValid(serialized.Slice(at + 4, length));
            at += 4 + length;
        }
        if (!text)
        {
            writer.WriteStartObject("parameters");
            writer.WriteString(ContentTypeParameter, "base64");
            writer.WriteEndObject();
        }
        writer.WriteStartArray("data");
        for (int at = 0; at < serialized.Length;)
        {
            int length = BinaryPrimitives.ReadInt32LittleEndian(serialized[at..]);
            var element = serialized.Slice(at + 4, length);
            if (text) writer.WriteStringValue(element);
            else writer.WriteBase64StringValue(element);
            at += 4 + length;
        }
        writer.WriteEndArray();
    }

    /// <summary>
    /// Values (little-endian <paramref name="dataType"/>) as one flat JSON array: each number formatted straight into
    /// UTF-8 (shortest form that reads back to the same value), the array handed to the writer whole, unchecked.
    /// ProtocolInvalid for NaN or infinities, which JSON cannot carry.
    /// </summary>
    public static void WriteJsonData(Utf8JsonWriter writer, string name, string dataType, ReadOnlySpan<byte> values)
    {
        int size = TensorBatch.ElementSize(ElementTypeOf(dataType));
        int count = values.Length / size;
        // the longest a value takes: "-1.17549435E-38" (15) for FP32, 24 for FP64, 20 for INT64; a comma each
        int widest = dataType switch { "FP32" => 16, "FP64" => 26, "INT64" => 21, "INT32" => 12, _ => 4 };
        long capacity = 2 + (long)count * widest;
        if (capacity > Array.MaxLength) throw Invalid($"'{name}' holds more values than one JSON array here takes");
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent((int)capacity);
        try
        {
            var o = buffer.AsSpan();
            o[0] = (byte)'[';
            int at = 1, written;
            var invariant = CultureInfo.InvariantCulture;
            for (int i = 0; i < count; i++)
            {
                if (i > 0) o[at++] = (byte)',';
                bool ok;
                switch (dataType)
                {
                    case "FP32":
                        var f = BinaryPrimitives.ReadSingleLittleEndian(values[(i * 4)..]);
                        if (!float.IsFinite(f)) throw Invalid($"'{name}' holds {f}, which JSON cannot carry; use binary_data");
                        ok = f.TryFormat(o[at..], out written, default, invariant); break;
                    case "FP64":
                        var d = BinaryPrimitives.ReadDoubleLittleEndian(values[(i * 8)..]);
                        if (!double.IsFinite(d)) throw Invalid($"'{name}' holds {d}, which JSON cannot carry; use binary_data");
                        ok = d.TryFormat(o[at..], out written, default, invariant); break;
                    case "INT64": ok = BinaryPrimitives.ReadInt64LittleEndian(values[(i * 8)..]).TryFormat(o[at..], out written, default, invariant); break;
                    case "INT32": ok = BinaryPrimitives.ReadInt32LittleEndian(values[(i * 4)..]).TryFormat(o[at..], out written, default, invariant); break;
                    default: ok = values[i].TryFormat(o[at..], out written, default, invariant); break;
                }
                if (!ok) throw new InvalidOperationException($"a {dataType} value took more than {widest - 1} characters");
                at += written;
            }
            o[at++] = (byte)']';
            writer.WriteRawValue(o[..at], skipInputValidation: true);
        }
        finally { System.Buffers.ArrayPool<byte>.Shared.Return(buffer); }
    }

    /// <summary>
    /// An infer request with every tensor's values as JSON numbers ("data"), for servers that do not offer the
    /// binary tensor data extension; the outputs named are asked for without binary_data, so they come back as JSON too.
    /// </summary>
    public static ReadOnlyMemory<byte> EncodeJsonRequest(IReadOnlyList<(string Name, long[] Shape, string DataType, ReadOnlyMemory<byte> Values)> inputs, string? id, IReadOnlyList<string> requestedOutputs)
    {
        var body = new System.Buffers.ArrayBufferWriter<byte>(checked((int)Math.Min(Array.MaxLength, 256 + inputs.Sum(t => (long)t.Values.Length * 4))));
        using (var w = new Utf8JsonWriter(body, new JsonWriterOptions { SkipValidation = true }))
        {
            w.WriteStartObject();
            if (id != null) w.WriteString("id", id);
            w.WriteStartArray("inputs");
            foreach (var t in inputs) WriteJsonTensor(w, t.Name, t.Shape, t.DataType, t.Values.Span);
            w.WriteEndArray();
            w.WriteStartArray("outputs");
            foreach (var o in requestedOutputs) { w.WriteStartObject(); w.WriteString("name", o); w.WriteEndObject(); }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return body.WrittenMemory;
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

    /// <summary>
    /// Throws RemoteUnitFailed (so that the unit's share moves to the others) where a server's answer put NaN or an
    /// infinity into <paramref name="output"/>'s rows <paramref name="offset"/>.. (floating-point outputs only).
    /// </summary>
    public static void CheckFinite(TensorBatch output, int offset, int count, Uri endpoint)
    {
        var rows = output.Bytes(offset, count);
        int bad = output.ElementType switch
        {
            TensorElementType.Float => FirstNotFinite<float>(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(rows)),
            TensorElementType.Double => FirstNotFinite<double>(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(rows)),
            _ => -1,
        };
        if (bad >= 0)
            throw new HeteroBatchException("RemoteUnitFailed", FailureKind.ResourceUnavailable,
                $"The server at {endpoint.GetLeftPart(UriPartial.Authority)} answered NaN or infinite values in output '{output.Name}' (sample {offset + bad / Math.Max(1, output.SampleElements)}); its share moves to the other units.", endpoint.ToString());
    }

    private static int FirstNotFinite<T>(ReadOnlySpan<T> values) where T : System.Numerics.IFloatingPointIeee754<T>
    {
        for (int i = 0; i < values.Length; i++) if (!T.IsFinite(values[i])) return i;
        return -1;
    }

    /// <summary>Parses the Inference-Header-Content-Length value; null when absent.</summary>
    public static int? HeaderLength(string? value) =>
        value == null ? null : int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : throw Invalid($"{HeaderLengthHeader} '{value}' is not a length");
}
