using System.Runtime.InteropServices;

namespace HeteroBatch.Engine.Runtime;

/// <summary>
/// A seeded generator (xorshift64*) for model weights and synthetic inputs: the same seed gives
/// the same floats on every machine and .NET version.
/// </summary>
internal sealed class WeightGenerator
{
    private ulong _state;

    public WeightGenerator(ulong seed) => _state = seed == 0 ? 0x9E3779B97F4A7C15UL : seed;

    public static ulong Mix(string text, ulong salt = 0)
    {
        ulong h = 1469598103934665603UL ^ salt;
        foreach (var ch in text) { h ^= ch; h *= 1099511628211UL; }
        return h == 0 ? 1 : h;
    }

    /// <summary>Uniform in [0, 1).</summary>
    public float NextUnit()
    {
        _state ^= _state >> 12; _state ^= _state << 25; _state ^= _state >> 27;
        var r = _state * 2685821657736338717UL;
        return (r >> 40) * (1.0f / (1 << 24));
    }

    /// <summary>Fills the span with values uniform in [center - halfWidth, center + halfWidth).</summary>
    public void Fill(Span<float> values, float center, float halfWidth)
    {
        for (int i = 0; i < values.Length; i++)
            values[i] = center + (NextUnit() * 2f - 1f) * halfWidth;
    }

    /// <summary>Little-endian raw bytes of count floats (ONNX raw_data layout).</summary>
    public byte[] RawFloats(long count, float center, float halfWidth)
    {
        var bytes = new byte[checked(count * 4)];
        Fill(MemoryMarshal.Cast<byte, float>(bytes.AsSpan()), center, halfWidth);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts are not supported");
        return bytes;
    }
}
