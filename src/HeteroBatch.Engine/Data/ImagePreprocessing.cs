using System.Globalization;

namespace HeteroBatch.Engine.Data;

/// <summary>How an image becomes the model's input size.</summary>
public enum ResizeMode
{
    /// <summary>torchvision's ImageNet evaluation: the shorter side to size / <see cref="ImagePreprocessing.CropFraction"/> (256 for 224), then the centre cut out.</summary>
    CenterCrop,
    /// <summary>Both sides straight to the input's size (the aspect ratio is not kept).</summary>
    Stretch,
}

public enum ChannelOrder { Rgb, Bgr }

/// <summary>How a JPEG is decoded before the resize.</summary>
public enum DecodeMode
{
    /// <summary>Every pixel at full size, then the resize: torchvision's pixels, value for value (the default).</summary>
    Exact,
    /// <summary>
    /// A JPEG at least twice the resize target on both sides is decoded at 1/2, 1/4 or 1/8 of its size in
    /// the DCT (the smallest that stays at or above the target; PIL's <c>draft</c> does the same), then
    /// resized exactly from there. Much faster on large photos, close to but not equal to Exact; smaller
    /// images and other formats decode as Exact.
    /// </summary>
    Fast,
}

/// <summary>
/// What happens to an image between the file and the model: resize, channel order, and for float
/// inputs value / 255 then (value - mean) / std per channel. The layout (channels first or last)
/// comes from the model's input shape; uint8 inputs get the resized pixels as they are.
/// </summary>
public sealed record ImagePreprocessing
{
    public ResizeMode Resize { get; init; } = ResizeMode.CenterCrop;
    /// <summary>The share of the resized shorter side the centre crop keeps (torchvision: 224 of 256).</summary>
    public double CropFraction { get; init; } = 0.875;
    public float[] Mean { get; init; } = { 0.485f, 0.456f, 0.406f };
    public float[] Std { get; init; } = { 0.229f, 0.224f, 0.225f };
    public ChannelOrder ChannelOrder { get; init; } = ChannelOrder.Rgb;
    /// <summary>Exact (the default) or Fast: reduced-scale JPEG decoding of large photos; see <see cref="Data.DecodeMode"/>.</summary>
    public DecodeMode DecodeMode { get; init; } = DecodeMode.Exact;

    /// <summary>ImageNet evaluation as torchvision does it (Resize(256), CenterCrop(224), ToTensor, Normalize).</summary>
    public static ImagePreprocessing ImageNet { get; } = new();

    /// <summary>Throws PreprocessingInvalid for settings that cannot work.</summary>
    public ImagePreprocessing Checked()
    {
        if (Mean.Length is not (1 or 3) || Std.Length is not (1 or 3))
            throw Invalid($"-Mean and -Std take 1 or 3 values (got {Mean.Length} and {Std.Length})");
        if (Std.Any(s => !(s > 0) || float.IsInfinity(s)))
            throw Invalid($"every -Std value must be above 0 (got {string.Join(", ", Std.Select(s => s.ToString(CultureInfo.InvariantCulture)))})");
        if (Mean.Any(m => !float.IsFinite(m)))
            throw Invalid("every -Mean value must be a finite number");
        if (!Enum.IsDefined(DecodeMode))
            throw Invalid($"the decode mode must be Exact or Fast (got {(int)DecodeMode})");
        if (!(CropFraction > 0 && CropFraction <= 1))
            throw Invalid($"the crop fraction must be in (0, 1] (got {CropFraction.ToString(CultureInfo.InvariantCulture)})");
        return this;
    }

    private static HeteroBatchException Invalid(string why) =>
        new("PreprocessingInvalid", FailureKind.InvalidArgument, $"Image preprocessing: {why}.");

    public override string ToString() =>
        $"{Resize}{(Resize == ResizeMode.CenterCrop ? $" {CropFraction.ToString(CultureInfo.InvariantCulture)}" : "")}, {ChannelOrder}, " +
        $"mean {string.Join(" ", Mean.Select(m => m.ToString(CultureInfo.InvariantCulture)))}, std {string.Join(" ", Std.Select(s => s.ToString(CultureInfo.InvariantCulture)))}" +
        (DecodeMode == DecodeMode.Fast ? ", fast decode (large JPEGs at 1/2-1/8 scale)" : "");

    /// <summary>
    /// The size a JPEG of <paramref name="sourceWidth"/>×<paramref name="sourceHeight"/> is decoded at before a resize to
    /// <paramref name="targetWidth"/>×<paramref name="targetHeight"/> (<see cref="Geometry"/>'s Width and Height), and the
    /// DCT scale's denominator: 1 (full size) in Exact mode, and in Fast mode unless 1/2 of the source (rounded up, as
    /// libjpeg-turbo scales) still covers the target on both sides; then the largest of 2, 4, 8 that does.
    /// </summary>
    /// <remarks>
    /// In Exact mode too, a JPEG above <see cref="ReducedAbovePixels"/> (64 MP: above what cameras write; a
    /// decompression bomb's 16000×16000 is 256 MP) is decoded as Fast mode decodes it: its full-size pixels would be
    /// cut to a few hundred thousand at once, so decoding them all buys nothing but time and memory.
    /// </remarks>
    public (int Width, int Height, int Denominator) DecodeSize(int sourceWidth, int sourceHeight, int targetWidth, int targetHeight)
    {
        if (DecodeMode == DecodeMode.Fast || (long)sourceWidth * sourceHeight > ReducedAbovePixels)
            for (int d = 8; d >= 2; d /= 2)
            {
                int w = (sourceWidth + d - 1) / d, h = (sourceHeight + d - 1) / d;
                if (w >= targetWidth && h >= targetHeight) return (w, h, d);
            }
        return (sourceWidth, sourceHeight, 1);
    }

    /// <summary>Above this many pixels a JPEG is decoded at reduced DCT scale whatever the <see cref="DecodeMode"/> (see <see cref="DecodeSize"/>).</summary>
    public const long ReducedAbovePixels = 1L << 26;

    /// <summary>The region of the resized image that becomes the input: resized width and height, and the crop's left and top.</summary>
    public (int Width, int Height, int Left, int Top) Geometry(int sourceWidth, int sourceHeight, int width, int height)
    {
        if (Resize == ResizeMode.Stretch) return (width, height, 0, 0);
        // torchvision: the shorter side to the size, the longer one scaled and truncated; the crop centred, rounded half to even
        int size = (int)Math.Round(Math.Max(width, height) / CropFraction, MidpointRounding.ToEven);
        int w, h;
        if (sourceWidth <= sourceHeight) { w = size; h = (int)((long)size * sourceHeight / sourceWidth); }
        else { h = size; w = (int)((long)size * sourceWidth / sourceHeight); }
        w = Math.Max(w, width);
        h = Math.Max(h, height);
        int left = (int)Math.Round((w - width) / 2.0, MidpointRounding.ToEven);
        int top = (int)Math.Round((h - height) / 2.0, MidpointRounding.ToEven);
        return (w, h, left, top);
    }
}

/// <summary>
/// Resizes 8-bit RGB pixels with a triangle (bilinear) filter widened by the scale when shrinking
/// (antialiased), in 22-bit fixed point, horizontal pass then vertical, each rounded to 8 bits:
/// the arithmetic of the resize torchvision runs on PIL images. Only the output window asked for
/// is computed.
/// </summary>
internal static class Resampler
{
    internal const int PrecisionBits = 32 - 8 - 2;

    /// <summary>Filter taps of each output pixel along one axis: first source index, count, and fixed-point weights (<paramref name="Width"/> slots an output pixel).</summary>
    internal readonly record struct Taps(int[] First, int[] Count, int[] Weights, int Width);

    internal static Taps Coefficients(int inSize, int outSize, int outStart, int outCount)
    {
        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(scale, 1.0);
        double support = filterScale; // the triangle filter's support is 1
        int width = (int)Math.Ceiling(support) * 2 + 1;
        var first = new int[outCount];
        var count = new int[outCount];
        var weights = new int[outCount * width];
        var k = new double[width];
        for (int o = 0; o < outCount; o++)
        {
            double center = (outStart + o + 0.5) * scale;
            int min = Math.Max((int)(center - support + 0.5), 0);
            int max = Math.Min((int)(center + support + 0.5), inSize) - min;
            double sum = 0;
            for (int x = 0; x < max; x++)
            {
                double t = Math.Abs((x + min - center + 0.5) / filterScale);
                k[x] = t < 1 ? 1 - t : 0;
                sum += k[x];
            }
            for (int x = 0; x < max; x++)
            {
                double w = sum != 0 ? k[x] / sum : 0;
                weights[o * width + x] = (int)(w * (1 << PrecisionBits) + (w < 0 ? -0.5 : 0.5));
            }
            first[o] = min;
            count[o] = max;
        }
        return new Taps(first, count, weights, width);
    }

    private static byte Clip8(int v)
    {
        int shifted = v >> PrecisionBits;
        return (byte)(shifted < 0 ? 0 : shifted > 255 ? 255 : shifted);
    }

    /// <summary>
    /// Resizes an RGB image (<paramref name="stride"/> bytes a row, 3 or 4 bytes a pixel) to
    /// <paramref name="outWidth"/>×<paramref name="outHeight"/> and returns the window at
    /// (<paramref name="left"/>, <paramref name="top"/>) of <paramref name="cropWidth"/>×<paramref name="cropHeight"/>
    /// as packed RGB bytes.
    /// </summary>
    /// <remarks>Sums fit in 32 bits: 8-bit pixels times weights that add up to 2^22 (the triangle filter has no negative lobe).</remarks>
    public static byte[] ResizeWindow(ReadOnlySpan<byte> source, int width, int height, int stride, int bytesPerPixel,
        int outWidth, int outHeight, int left, int top, int cropWidth, int cropHeight)
    {
        var horizontal = Coefficients(width, outWidth, left, cropWidth);
        var vertical = Coefficients(height, outHeight, top, cropHeight);
        // the source rows the window's vertical taps read
        int rowFirst = int.MaxValue, rowEnd = 0;
        for (int o = 0; o < cropHeight; o++)
        {
            rowFirst = Math.Min(rowFirst, vertical.First[o]);
            rowEnd = Math.Max(rowEnd, vertical.First[o] + vertical.Count[o]);
        }
        int rows = rowEnd - rowFirst;
        int midStride = cropWidth * 3;
        var mid = new byte[rows * midStride];
        const int half = 1 << (PrecisionBits - 1);
        var hw = horizontal.Weights.AsSpan();
        for (int y = 0; y < rows; y++)
        {
            var row = source.Slice((rowFirst + y) * stride, width * bytesPerPixel);
            var target = mid.AsSpan(y * midStride, midStride);
            for (int o = 0; o < cropWidth; o++)
            {
                int r = half, g = half, b = half;
                int n = horizontal.Count[o];
                var weights = hw.Slice(o * horizontal.Width, n);
                var pixels = row.Slice(horizontal.First[o] * bytesPerPixel);
                for (int x = 0, p = 0; x < weights.Length; x++, p += bytesPerPixel)
                {
                    int w = weights[x];
                    r += pixels[p] * w; g += pixels[p + 1] * w; b += pixels[p + 2] * w;
                }
                target[o * 3] = Clip8(r); target[o * 3 + 1] = Clip8(g); target[o * 3 + 2] = Clip8(b);
            }
        }
        var output = new byte[cropHeight * midStride];
        var sums = new int[midStride];
        var vw = vertical.Weights.AsSpan();
        for (int o = 0; o < cropHeight; o++)
        {
            sums.AsSpan().Fill(half);
            int start = vertical.First[o] - rowFirst;
            var weights = vw.Slice(o * vertical.Width, vertical.Count[o]);
            for (int y = 0; y < weights.Length; y++)
            {
                int w = weights[y];
                var line = mid.AsSpan((start + y) * midStride, midStride);
                for (int c = 0; c < line.Length; c++) sums[c] += line[c] * w;
            }
            var target = output.AsSpan(o * midStride, midStride);
            for (int c = 0; c < target.Length; c++) target[c] = Clip8(sums[c]);
        }
        return output;
    }
}
