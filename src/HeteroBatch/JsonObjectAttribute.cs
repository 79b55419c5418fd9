using System.Management.Automation;
using System.Text.Json;
using HeteroBatch.Engine.Profiling;

namespace HeteroBatch;

/// <summary>
/// Lets plans and profiles come back from files: a JSON string (Get-Content -Raw plan.json), an
/// object from ConvertFrom-Json, or a deserialized one from Import-Clixml becomes the engine type.
/// </summary>
public sealed class JsonObjectAttribute : ArgumentTransformationAttribute
{
    internal static readonly JsonSerializerOptions Options = new() { Converters = { new LenientEnumConverterFactory(), new LenientDateConverter() } };

    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
    {
        if (inputData is null) return null;
        if (inputData is System.Collections.IList list && inputData is not string)
        {
            var items = list.Cast<object?>().Select(i => i is PSObject p ? p.BaseObject : i).ToList();
            // the lines of a JSON file (-Plan (Get-Content plan.json)): one document
            if (items.Count > 1 && items.All(i => i is string))
                return TransformOne(engineIntrinsics, string.Join("\n", items));
            return list.Cast<object?>().Select(item => TransformOne(engineIntrinsics, item)).ToArray();
        }
        return TransformOne(engineIntrinsics, inputData);
    }

    private static object? TransformOne(EngineIntrinsics engine, object? item)
    {
        var value = item is PSObject ps ? ps.BaseObject : item;
        if (value is Engine.Planning.BatchPlan or UnitProfile) return value;
        string? json = value as string;
        if (json == null && item is PSObject pso)
        {
            // ConvertFrom-Json and Import-Clixml objects: back to JSON, then to the real type
            json = ToJson(engine, pso);
        }
        if (json == null) return item;
        try
        {
            using var doc = JsonDocument.Parse(json);
            // a JSON array of plans or profiles (ConvertTo-Json of several, saved to one file)
            if (doc.RootElement.ValueKind == JsonValueKind.Array)
                return doc.RootElement.EnumerateArray().Select(e => FromElement(e)).ToArray();
            return FromElement(doc.RootElement);
        }
        catch (JsonException e)
        {
            // one line that is not JSON by itself: most likely Get-Content without -Raw, line by line
            var hint = json.Contains('\n') ? "" : " If this is one line of a JSON file, read the file whole: Get-Content -Raw <file>, or pass -Plan (Get-Content <file>).";
            throw new ArgumentTransformationMetadataException($"Not a HeteroBatch plan or profile: {e.Message}{hint}", e);
        }
    }

    /// <summary>A deserialized object (Import-Clixml, ConvertFrom-Json, a job's output) as JSON, the way to its real type.</summary>
    internal static string? ToJson(EngineIntrinsics engine, PSObject o)
    {
        var result = engine.InvokeCommand.InvokeScript("param($o) $o | ConvertTo-Json -Depth 10 -Compress", false,
            System.Management.Automation.Runspaces.PipelineResultTypes.None, null, o);
        return result.Count > 0 ? result[0].BaseObject as string : null;
    }

    private static object? FromElement(JsonElement e)
    {
        bool isPlan = e.ValueKind == JsonValueKind.Object && e.TryGetProperty("Shards", out _);
        if (isPlan) return e.Deserialize<Engine.Planning.BatchPlan>(Options);
        // PowerShell's ConvertTo-Json names the table as the property is named (Table); stored files name it Entries
        if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("Table", out _) && !e.TryGetProperty("Entries", out _))
        {
            var node = System.Text.Json.Nodes.JsonNode.Parse(e.GetRawText())!.AsObject();
            var table = node["Table"];
            node.Remove("Table");
            node["Entries"] = table;
            return node.Deserialize<UnitProfile>(Options);
        }
        return e.Deserialize<UnitProfile>(Options);
    }
}

/// <summary>
/// Reads a date written as ISO text, or as PowerShell writes a deserialized DateTimeOffset or
/// DateTime ({"DateTime": ..., "UtcDateTime": ..., "Ticks": ..., ...} or {"value": ...}).
/// </summary>
internal sealed class LenientDateConverter : System.Text.Json.Serialization.JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.String && DateTimeOffset.TryParse(reader.GetString(), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.RoundtripKind, out var text))
            return text;
        if (reader.TokenType == JsonTokenType.StartObject)
        {
            using var doc = JsonDocument.ParseValue(ref reader);
            var o = doc.RootElement;
            if (o.TryGetProperty("UtcTicks", out var utc) && utc.TryGetInt64(out var ticks)) return new DateTimeOffset(ticks, TimeSpan.Zero);
            foreach (var name in new[] { "UtcDateTime", "value", "DateTime" })
                if (o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String
                    && DateTimeOffset.TryParse(v.GetString(), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var d))
                    return d;
        }
        throw new JsonException("not a date");
    }

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString("O"));
}

/// <summary>
/// Reads an enum written as a number, a name, or as PowerShell writes a deserialized enum
/// ({"value": 0, "Value": "Optimal"}).
/// </summary>
internal sealed class LenientEnumConverterFactory : System.Text.Json.Serialization.JsonConverterFactory
{
    public override bool CanConvert(Type t) => t.IsEnum;

    public override System.Text.Json.Serialization.JsonConverter CreateConverter(Type t, JsonSerializerOptions o) =>
        (System.Text.Json.Serialization.JsonConverter)Activator.CreateInstance(typeof(Converter<>).MakeGenericType(t))!;

    private sealed class Converter<T> : System.Text.Json.Serialization.JsonConverter<T> where T : struct, Enum
    {
        public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.Number:
                    return (T)Enum.ToObject(typeof(T), reader.GetInt32());
                case JsonTokenType.String:
                    return Enum.Parse<T>(reader.GetString()!, ignoreCase: true);
                case JsonTokenType.StartObject:
                    using (var doc = JsonDocument.ParseValue(ref reader))
                    {
                        foreach (var p in doc.RootElement.EnumerateObject())
                            if (p.Value.ValueKind == JsonValueKind.String && Enum.TryParse<T>(p.Value.GetString(), true, out var named)) return named;
                        foreach (var p in doc.RootElement.EnumerateObject())
                            if (p.Value.ValueKind == JsonValueKind.Number) return (T)Enum.ToObject(typeof(T), p.Value.GetInt32());
                    }
                    break;
            }
            throw new JsonException($"not a {typeof(T).Name}");
        }

        public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
    }
}
