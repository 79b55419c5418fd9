using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using HeteroBatch.Engine.Sessions;

namespace HeteroBatch.Bench;

/// <summary>
/// What one infer request's tensors cost to write and read, as binary tensor data and as the
/// protocol's JSON numbers, on this machine, one core: a request of squeezenet-sized inputs
/// (3x224x224 FP32 per sample) written by the client and read by the server, and its answer
/// (1000 FP32 per sample) written by the server and read by the client. JSON three ways: a document
/// of JSON nodes both ways; a writer given one number at a time and a token reader asked for one number at a
/// time (how the server wrote and read JSON before); and numbers formatted straight into UTF-8
/// (<see cref="InferenceProtocol.WriteJsonData(Utf8JsonWriter, string, string, ReadOnlySpan{byte})"/>) and read by
/// <see cref="InferenceProtocol.Decode"/> (tokens counted, then each number parsed from its UTF-8), as now.
/// </summary>
public static class TensorJsonBench
{
    public sealed record Row(int Samples, string Encoding, long RequestBytes, double WriteRequestMs, double ReadRequestMs, long AnswerBytes, double WriteAnswerMs, double ReadAnswerMs)
    {
        public double TotalMs => WriteRequestMs + ReadRequestMs + WriteAnswerMs + ReadAnswerMs;
    }

    public static List<Row> Run(BenchOptions options)
    {
        var rows = new List<Row>();
        var rng = new Random(1);
        foreach (int samples in new[] { 1, 16 })
        {
            // pixels as a normalised image holds them: about -2 to 2.6
            var input = new float[samples * 3 * 224 * 224];
            for (int i = 0; i < input.Length; i++) input[i] = (float)(rng.NextDouble() * 4.6 - 2);
            var answer = new float[samples * 1000];
            for (int i = 0; i < answer.Length; i++) answer[i] = (float)(rng.NextDouble() * 30 - 15);
            var inShape = new long[] { samples, 3, 224, 224 };
            var outShape = new long[] { samples, 1000 };
            int reps = Math.Max(3, options.Repeats);

            // binary: the header, then the bytes
            byte[] binReq = [], binAns = [];
            int reqHeader = 0, ansHeader = 0;
            double wReq = Median(reps, () => (binReq, reqHeader) = InferenceProtocol.Encode("inputs", new[] { T("input", inShape, input) }, "1", new[] { "output" }));
            double rReq = Median(reps, () => Check(InferenceProtocol.Decode(binReq, reqHeader, "inputs").Tensors[0], input));
            double wAns = Median(reps, () => (binAns, ansHeader) = InferenceProtocol.Encode("outputs", new[] { T("output", outShape, answer) }, "1"));
            double rAns = Median(reps, () => Check(InferenceProtocol.Decode(binAns, ansHeader, "outputs").Tensors[0], answer));
            rows.Add(new Row(samples, "binary", binReq.Length, wReq, rReq, binAns.Length, wAns, rAns));

            // JSON, a document of nodes both ways
            byte[] domReq = [], domAns = [];
            wReq = Median(reps, () => domReq = DomWrite("inputs", "input", inShape, input));
            rReq = Median(reps, () => Check(DomRead(domReq, "inputs"), input));
            wAns = Median(reps, () => domAns = DomWrite("outputs", "output", outShape, answer));
            rAns = Median(reps, () => Check(DomRead(domAns, "outputs"), answer));
            rows.Add(new Row(samples, "JSON document", domReq.Length, wReq, rReq, domAns.Length, wAns, rAns));

            // JSON, a writer given one number at a time; read by a token reader, number by number (both as before)
            byte[] oneReq = [], oneAns = [];
            wReq = Median(reps, () => oneReq = OneAtATime("inputs", "input", inShape, input));
            rReq = Median(reps, () => Check(TokenRead(oneReq, "inputs"), input));
            wAns = Median(reps, () => oneAns = OneAtATime("outputs", "output", outShape, answer));
            rAns = Median(reps, () => Check(TokenRead(oneAns, "outputs"), answer));
            rows.Add(new Row(samples, "JSON token by token (before)", oneReq.Length, wReq, rReq, oneAns.Length, wAns, rAns));

            // JSON, numbers formatted straight into UTF-8 (what a remote unit sends now); read as tokens
            byte[] rawReq = [], rawAns = [];
            wReq = Median(reps, () => rawReq = InferenceProtocol.EncodeJsonRequest(new List<(string, long[], string, ReadOnlyMemory<byte>)> { ("input", inShape, "FP32", Bytes(input)) }, "1", new[] { "output" }).ToArray());
            rReq = Median(reps, () => Check(InferenceProtocol.Decode(rawReq, null, "inputs").Tensors[0], input));
            wAns = Median(reps, () => rawAns = RawAnswer(outShape, answer));
            rAns = Median(reps, () => Check(InferenceProtocol.Decode(rawAns, null, "outputs").Tensors[0], answer));
            rows.Add(new Row(samples, "JSON straight (now)", rawReq.Length, wReq, rReq, rawAns.Length, wAns, rAns));
        }
        foreach (var r in rows)
            Console.WriteLine($"{r.Samples,3} samples  {r.Encoding,-30} request {r.RequestBytes,11:N0} B: write {r.WriteRequestMs,9:F2} ms, read {r.ReadRequestMs,9:F2} ms;  " +
                $"answer {r.AnswerBytes,9:N0} B: write {r.WriteAnswerMs,7:F2} ms, read {r.ReadAnswerMs,7:F2} ms;  total {r.TotalMs,9:F2} ms");
        Directory.CreateDirectory(options.Out);
        File.WriteAllText(Path.Combine(options.Out, "tensorjson.json"), JsonSerializer.Serialize(rows, BenchResults.Json));
        return rows;
    }

    private static InferenceProtocol.Tensor T(string name, long[] shape, float[] values) => new(name, shape, "FP32", Bytes(values));
    private static byte[] Bytes(float[] values) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    private static void Check(InferenceProtocol.Tensor t, float[] expected)
    {
        if (!t.Bytes.Span.SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(expected.AsSpan())))
            throw new InvalidOperationException($"'{t.Name}' did not read back as written");
    }

    private static double Median(int reps, Action work)
    {
        var times = new List<double>();
        for (int i = 0; i < reps; i++)
        {
            var clock = Stopwatch.StartNew();
            work();
            times.Add(clock.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        return Math.Round(times[times.Count / 2], 2);
    }

    private static byte[] DomWrite(string key, string name, long[] shape, float[] values)
    {
        var data = new JsonArray();
        foreach (var v in values) data.Add(v);
        var body = new JsonObject
        {
            ["id"] = "1",
            [key] = new JsonArray(new JsonObject { ["name"] = name, ["shape"] = new JsonArray(shape.Select(d => (JsonNode?)d).ToArray()), ["datatype"] = "FP32", ["data"] = data }),
        };
        return Encoding.UTF8.GetBytes(body.ToJsonString());
    }

    private static InferenceProtocol.Tensor DomRead(byte[] body, string key)
    {
        var t = JsonNode.Parse(body)![key]![0]!;
        var data = t["data"]!.AsArray();
        var bytes = new byte[data.Count * 4];
        for (int i = 0; i < data.Count; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), data[i]!.GetValue<float>());
        return new InferenceProtocol.Tensor(t["name"]!.GetValue<string>(), t["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray(), "FP32", bytes);
    }

    /// <summary>A tensor's data read as the protocol's decoder read it before: a token reader over the data, each number asked for as a float.</summary>
    private static InferenceProtocol.Tensor TokenRead(byte[] body, string key)
    {
        var reader = new Utf8JsonReader(body);
        var values = new List<float>();
        bool inData = false;
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.PropertyName && reader.ValueTextEquals("data")) inData = true;
            else if (inData && reader.TokenType == JsonTokenType.Number) values.Add(reader.GetSingle());
            else if (inData && reader.TokenType == JsonTokenType.EndArray && reader.CurrentDepth <= 4) inData = false;
        }
        var bytes = new byte[values.Count * 4];
        for (int i = 0; i < values.Count; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        return new InferenceProtocol.Tensor(key == "inputs" ? "input" : "output", Array.Empty<long>(), "FP32", bytes);
    }

    private static byte[] OneAtATime(string key, string name, long[] shape, float[] values)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("id", "1");
            w.WriteStartArray(key);
            w.WriteStartObject();
            w.WriteString("name", name);
            w.WriteStartArray("shape");
            foreach (var d in shape) w.WriteNumberValue(d);
            w.WriteEndArray();
            w.WriteString("datatype", "FP32");
            w.WriteStartArray("data");
            foreach (var v in values) w.WriteNumberValue(v);
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }

    private static byte[] RawAnswer(long[] shape, float[] values)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("id", "1");
            w.WriteStartArray("outputs");
            w.WriteStartObject();
            w.WriteString("name", "output");
            w.WriteStartArray("shape");
            foreach (var d in shape) w.WriteNumberValue(d);
            w.WriteEndArray();
            w.WriteString("datatype", "FP32");
            w.WritePropertyName("data");
            InferenceProtocol.WriteJsonData(w, "output", "FP32", Bytes(values));
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }
}
