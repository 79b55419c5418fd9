using System.Text.Json.Serialization;

namespace HeteroBatch.Engine;

/// <summary>
/// A bearer token for inference servers, held so that it is not shown or serialized in clear:
/// it has no public property, prints as "********", and JSON writes it as an empty object. Only
/// the engine reads the value (to put it in a request's Authorization header).
/// </summary>
[JsonConverter(typeof(BearerTokenJsonConverter))]
public sealed class BearerToken
{
    private readonly string _value;

    public BearerToken(string value)
    {
        if (string.IsNullOrEmpty(value))
            throw new HeteroBatchException("TokenEmpty", FailureKind.InvalidArgument, "A bearer token cannot be empty.");
        _value = value;
        Key = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(value)), 0, 8);
    }

    /// <summary>Tells tokens apart without holding their value (a worker per unit and token): part of a hash of the value, kept in memory only.</summary>
    internal string Key { get; }

    /// <summary>The token itself, for a request header.</summary>
    internal string Reveal() => _value;

    public override string ToString() => "********";
}

/// <summary>Writes a token as {} (never its value) and reads any JSON value as no token.</summary>
internal sealed class BearerTokenJsonConverter : JsonConverter<BearerToken?>
{
    public override BearerToken? Read(ref System.Text.Json.Utf8JsonReader reader, Type typeToConvert, System.Text.Json.JsonSerializerOptions options)
    {
        reader.Skip();
        return null;
    }

    public override void Write(System.Text.Json.Utf8JsonWriter writer, BearerToken? value, System.Text.Json.JsonSerializerOptions options)
    {
        writer.WriteStartObject();
        writer.WriteEndObject();
    }
}
