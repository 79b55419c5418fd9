using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace HeteroBatch.Engine.Data;

/// <summary>
/// The filter taps of one axis of a resize (source size, resized size, and the window of output
/// pixels wanted), padded so that every output pixel reads the same number of source pixels
/// <see cref="K"/>: where an output pixel's taps would run past the source's end, its window is
/// moved back and the extra taps weigh zero. Sums of the same products plus zeros are the same
/// sums, so the results stay those of <see cref="Resampler"/>. Immutable once built.
/// </summary>
internal sealed class AxisTaps
{
    public int InSize { get; }
    public int OutSize { get; }
    public int OutStart { get; }
    public int OutCount { get; }
    /// <summary>Source pixels read by each output pixel.</summary>
    public int K { get; }
    /// <summary>Per output pixel, the first source index it reads (First + K ≤ InSize).</summary>
    public int[] First { get; }
    /// <summary>OutCount × K fixed-point weights.</summary>
    public int[] Weights { get; }
    /// <summary>The weights four times over (OutCount × K × 4), one 128-bit load a tap for the four channels of a pixel.</summary>
    public int[] Replicated { get; }
    /// <summary>The source range [Min, End) that the window reads.</summary>
    public int Min { get; }
    public int End { get; }

    public AxisTaps(int inSize, int outSize, int outStart, int outCount)
    {
        (InSize, OutSize, OutStart, OutCount) = (inSize, outSize, outStart, outCount);
        var t = Resampler.Coefficients(inSize, outSize, outStart, outCount);
        int k = 1;
        for (int o = 0; o < outCount; o++) k = Math.Max(k, t.Count[o]);
        k = Math.Min(k, inSize);
        K = k;
        First = new int[outCount];
        Weights = new int[outCount * k];
        Replicated = new int[outCount * k * 4];
        int min = int.MaxValue, end = 0;
        for (int o = 0; o < outCount; o++)
        {
            int first = Math.Min(t.First[o], inSize - k);
            int shift = t.First[o] - first;
            for (int x = 0; x < t.Count[o]; x++) Weights[o * k + shift + x] = t.Weights[o * t.Width + x];
            First[o] = first;
            min = Math.Min(min, first);
            end = Math.Max(end, first + k);
        }
        for (int i = 0; i < Weights.Length; i++)
            for (int c = 0; c < 4; c++) Replicated[i * 4 + c] = Weights[i];
        (Min, End) = outCount == 0 ? (0, 0) : (min, end);
    }

    public bool Matches(int inSize, int outSize, int outStart, int outCount) =>
        InSize == inSize && OutSize == outSize && OutStart == outStart && OutCount == outCount;
}

/// <summary>
/// The two passes of <see cref="Resampler"/> with SSE4.1 and AVX2: the same 22-bit fixed-point
/// sums, rounded and clipped to 8 bits after each pass, so the pixels are equal value for value.
/// The horizontal pass takes one decoded RGBA row and writes three planes (R, G, B) of the
/// window's width; the vertical pass sums rows of a plane eight columns at a time and writes
/// either bytes or normalised floats straight into the tensor.
/// </summary>
internal static unsafe class VectorResampler
{
    private const int Shift = Resampler.PrecisionBits;
    private const int Half = 1 << (Shift - 1);

    /// <summary>True where the processor has what the passes use (x86 with AVX2); elsewhere <see cref="Resampler"/> runs.</summary>
    public static bool IsSupported => Avx2.IsSupported && Sse41.IsSupported;

    /// <summary>
    /// One source row: <paramref name="row"/> points at the RGBA pixel of column <paramref name="column0"/>;
    /// writes output pixels [0, taps.OutCount) of this row into <paramref name="r"/>, <paramref name="g"/>, <paramref name="b"/>.
    /// </summary>
    public static void Horizontal(byte* row, int column0, AxisTaps taps, byte* r, byte* g, byte* b)
    {
        int k = taps.K;
        var half = Vector128.Create(Half);
        fixed (int* weights = taps.Replicated)
        fixed (int* firsts = taps.First)
        {
            for (int o = 0; o < taps.OutCount; o++)
            {
                byte* p = row + (firsts[o] - column0) * 4;
                int* w = weights + o * k * 4;
                var sum = half;
                for (int x = 0; x < k; x++)
                    sum = Sse2.Add(sum, Sse41.MultiplyLow(Sse41.ConvertToVector128Int32(p + x * 4), Sse2.LoadVector128(w + x * 4)));
                // >> 22, then saturating packs clip to [0, 255]: RGBA as four bytes
                var shifted = Sse2.ShiftRightArithmetic(sum, Shift);
                var words = Sse2.PackSignedSaturate(shifted, shifted);
                uint rgba = Sse2.PackUnsignedSaturate(words, words).AsUInt32().ToScalar();
                r[o] = (byte)rgba;
                g[o] = (byte)(rgba >> 8);
                b[o] = (byte)(rgba >> 16);
            }
        }
    }

    /// <summary>
    /// Output row <paramref name="o"/> of one plane: <paramref name="plane"/> holds the horizontally resized rows
    /// from source row <paramref name="row0"/> on, <paramref name="width"/> bytes each. Writes bytes to
    /// <paramref name="bytes"/> when it is not null, else <c>value × scale + offset</c> to <paramref name="floats"/>.
    /// </summary>
    public static void Vertical(byte* plane, int width, int row0, AxisTaps taps, int o, byte* bytes, float* floats, float scale, float offset)
    {
        int k = taps.K;
        byte** rows = stackalloc byte*[k];
        int* w = stackalloc int[k];
        for (int y = 0; y < k; y++)
        {
            rows[y] = plane + (taps.First[o] - row0 + y) * width;
            w[y] = taps.Weights[o * k + y];
        }
        var half = Vector256.Create(Half);
        var vScale = Vector256.Create(scale);
        var vOffset = Vector256.Create(offset);
        int x = 0;
        for (; x + 8 <= width; x += 8)
        {
            var sum = half;
            for (int y = 0; y < k; y++)
                sum = Avx2.Add(sum, Avx2.MultiplyLow(Avx2.ConvertToVector256Int32(rows[y] + x), Vector256.Create(w[y])));
            var shifted = Avx2.ShiftRightArithmetic(sum, Shift);
            if (bytes != null)
            {
                // packs work within each 128-bit lane: bytes 0-3 of the low lane are columns 0-3, of the high lane 4-7
                var words = Avx2.PackSignedSaturate(shifted, shifted);
                var packed = Avx2.PackUnsignedSaturate(words, words).AsUInt32();
                *(uint*)(bytes + x) = packed.GetElement(0);
                *(uint*)(bytes + x + 4) = packed.GetElement(4);
            }
            else
            {
                var clipped = Avx2.Min(Avx2.Max(shifted, Vector256<int>.Zero), Vector256.Create(255));
                // a multiply then an add, not fused: the same float arithmetic as the scalar writer
                Avx.Store(floats + x, Avx.Add(Avx.Multiply(Avx.ConvertToVector256Single(clipped), vScale), vOffset));
            }
        }
        for (; x < width; x++)
        {
            int sum = Half;
            for (int y = 0; y < k; y++) sum += rows[y][x] * w[y];
            byte v = Clip8(sum);
            if (bytes != null) bytes[x] = v;
            else floats[x] = v * scale + offset;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte Clip8(int v)
    {
        int shifted = v >> Shift;
        return (byte)(shifted < 0 ? 0 : shifted > 255 ? 255 : shifted);
    }
}
