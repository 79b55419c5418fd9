using HeteroBatch.Engine.Runtime;
using Microsoft.ML.OnnxRuntime.Tensors;
using SkiaSharp;

namespace HeteroBatch.Engine.Data;

/// <summary>
/// JPEG and PNG files into one sample of a model's input: decoded (SkiaSharp), resized and cut
/// as <see cref="ImagePreprocessing"/> says (<see cref="Resampler"/>), laid out channels first
/// ([C, H, W]) or last ([H, W, C]) as the input's shape says, C = 3 or 1; float inputs normalised,
/// uint8 inputs as pixels.
/// </summary>
internal static class ImageInput
{
    public static bool IsImage(string path) =>
        Path.GetExtension(path).ToLowerInvariant() is ".jpg" or ".jpeg" or ".png";

    /// <summary>The input's layout: channels, height, width, and whether channels come first. Throws ImageInputUnsupported.</summary>
    public static (int Channels, int Height, int Width, bool ChannelsFirst) Layout(TensorSpec spec)
    {
        var s = spec.SampleShape;
        bool typeOk = spec.ElementType is TensorElementType.Float or TensorElementType.UInt8;
        if (typeOk && s.Length == 3 && s[0] is 1 or 3 && s[1] > 0 && s[2] > 0) return ((int)s[0], (int)s[1], (int)s[2], true);
        if (typeOk && s.Length == 3 && s[2] is 1 or 3 && s[0] > 0 && s[1] > 0) return ((int)s[2], (int)s[0], (int)s[1], false);
        throw new HeteroBatchException("ImageInputUnsupported", FailureKind.InvalidArgument,
            $"The model's input '{spec.Name}' is {spec.ElementType} [{string.Join(",", s)}]; images need a float or uint8 input of shape [3, H, W], [1, H, W], [H, W, 3] or [H, W, 1].", spec.Name);
    }

    /// <summary>Reads, decodes and preprocesses one image file into sample <paramref name="index"/> of <paramref name="batch"/>.</summary>
    public static void Load(string path, TensorBatch batch, int index, ImagePreprocessing preprocessing)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HeteroBatchException("InputFileUnreadable", FailureKind.InvalidData, $"{path} could not be read: {e.Message}", path, e);
        }
        Load(bytes, path, batch, index, preprocessing);
    }

    /// <summary>
    /// Decodes and preprocesses one image file's bytes into sample <paramref name="index"/> of <paramref name="batch"/>:
    /// on processors with AVX2 through this thread's <see cref="ImageDecoder"/> (vectorised, only the window decoded),
    /// elsewhere through <see cref="LoadReference"/>; the same pixels either way.
    /// </summary>
    public static void Load(byte[] bytes, string path, TensorBatch batch, int index, ImagePreprocessing preprocessing)
    {
        if (VectorResampler.IsSupported) ImageDecoder.ForThisThread.Load(bytes, path, batch, index, preprocessing);
        else LoadReference(bytes, path, batch, index, preprocessing);
    }

    /// <summary>As <see cref="Load(byte[], string, TensorBatch, int, ImagePreprocessing)"/>, from bytes held elsewhere (a slice of a job's buffer): copied only on the plain path.</summary>
    internal static void Load(ReadOnlySpan<byte> bytes, string path, TensorBatch batch, int index, ImagePreprocessing preprocessing)
    {
        if (VectorResampler.IsSupported) ImageDecoder.ForThisThread.Load(bytes, path, batch, index, preprocessing);
        else LoadReference(bytes.ToArray(), path, batch, index, preprocessing);
    }

    /// <summary>
    /// The plain form: the whole image decoded at full size, <see cref="Resampler.ResizeWindow"/>, then the writer,
    /// one pixel at a time. The reference the vectorised path is tested against; <see cref="DecodeMode"/> is not used.
    /// </summary>
    internal static void LoadReference(byte[] bytes, string path, TensorBatch batch, int index, ImagePreprocessing preprocessing)
    {
        var (channels, height, width, channelsFirst) = Layout(new TensorSpec(batch.Name, batch.ElementType, batch.SampleShape));
        byte[] pixels;
        int w, h;
        long sourcePixels = 0;
        NativeLibraries.Register();
        using (var data = SKData.CreateCopy(bytes))
        using (var probe = SKCodec.Create(data))
            if (probe != null) sourcePixels = (long)probe.Info.Width * probe.Info.Height;
        using (DecodeBudget.Shared.Take(sourcePixels)) // large images take their pixels from the process's budget, as ImageDecoder's do
            (pixels, w, h) = Decode(bytes, path);
        var g = preprocessing.Geometry(w, h, width, height);
        var rgb = Resampler.ResizeWindow(pixels, w, h, w * 4, 4, g.Width, g.Height, g.Left, g.Top, width, height);
        Write(rgb, width * height, channels, channelsFirst, preprocessing, batch, index);
    }

    /// <summary>Decodes a JPEG or PNG to 8-bit RGBA (alpha not premultiplied, so it can be dropped). Throws ImageUnreadable, also for a file cut short.</summary>
    public static (byte[] Pixels, int Width, int Height) Decode(byte[] bytes, string path) => Decode(bytes.AsSpan(), path);

    /// <summary>As <see cref="Decode(byte[], string)"/>, from bytes held elsewhere.</summary>
    internal static (byte[] Pixels, int Width, int Height) Decode(ReadOnlySpan<byte> bytes, string path)
    {
        NativeLibraries.Register();
        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data)
            ?? throw new HeteroBatchException("ImageUnreadable", FailureKind.InvalidData, $"{path} could not be decoded as a JPEG or PNG image.", path);
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        CheckSize(info.Width, info.Height, path);
        var pixels = new byte[info.BytesSize];
        var result = codec.GetPixels(info, pixels);
        if (result == SKCodecResult.IncompleteInput) throw Incomplete(path);
        if (result != SKCodecResult.Success)
            throw new HeteroBatchException("ImageUnreadable", FailureKind.InvalidData, $"{path} could not be decoded ({result}).", path);
        return (pixels, info.Width, info.Height);
    }

    /// <summary>ImageUnreadable for a file that ends before its image data does (cut short by a copy or download).</summary>
    internal static HeteroBatchException Incomplete(string path) =>
        new("ImageUnreadable", FailureKind.InvalidData, $"{path} is incomplete: the file ends before the image's data do (a copy or download cut short?).", path);

    /// <summary>Throws ImageUnreadable for an image of no pixels or more than 2^28.</summary>
    internal static void CheckSize(int width, int height, string path)
    {
        if (width <= 0 || height <= 0 || (long)width * height > 1L << 28)
            throw new HeteroBatchException("ImageUnreadable", FailureKind.InvalidData, $"{path} is {width}×{height} pixels; images up to 2^28 pixels are read.", path);
    }

    /// <summary>The resized pixels as three planes (R, G, B) into sample <paramref name="index"/>, as <see cref="Write"/> writes packed RGB.</summary>
    internal static void WritePlanes(ReadOnlySpan<byte> red, ReadOnlySpan<byte> green, ReadOnlySpan<byte> blue, int channels, bool channelsFirst,
        ImagePreprocessing p, TensorBatch batch, int index) =>
        WritePixels(red, green, blue, 1, red.Length, channels, channelsFirst, p, batch, index);

    private static void Write(byte[] rgb, int plane, int channels, bool channelsFirst, ImagePreprocessing p, TensorBatch batch, int index) =>
        WritePixels(rgb.AsSpan(0), rgb.AsSpan(1), rgb.AsSpan(2), 3, plane, channels, channelsFirst, p, batch, index);

    /// <summary>
    /// <paramref name="plane"/> pixels, the i-th's channels at <c>red[i * stride]</c>, <c>green[i * stride]</c>,
    /// <c>blue[i * stride]</c> (planes: stride 1; packed RGB: three views of one buffer, stride 3), into sample
    /// <paramref name="index"/>: uint8 as they are, floats normalised, in the model's channel order and layout.
    /// </summary>
    private static void WritePixels(ReadOnlySpan<byte> red, ReadOnlySpan<byte> green, ReadOnlySpan<byte> blue, int stride, int plane,
        int channels, bool channelsFirst, ImagePreprocessing p, TensorBatch batch, int index)
    {
        bool bgr = p.ChannelOrder == ChannelOrder.Bgr;
        if (batch.Data is byte[] bytes)
        {
            var target = bytes.AsSpan(index * plane * channels, plane * channels);
            for (int i = 0; i < plane; i++)
            {
                byte r = red[i * stride], g = green[i * stride], b = blue[i * stride];
                if (channels == 1) target[i] = (byte)Math.Clamp((int)Math.Round(0.299 * r + 0.587 * g + 0.114 * b), 0, 255);
                else
                {
                    var (c0, c2) = bgr ? (b, r) : (r, b);
                    if (channelsFirst) { target[i] = c0; target[plane + i] = g; target[2 * plane + i] = c2; }
                    else { target[i * 3] = c0; target[i * 3 + 1] = g; target[i * 3 + 2] = c2; }
                }
            }
            return;
        }
        var floats = batch.Slice(index, 1).Span;
        // per output channel: scale and offset so that value = byte * scale + offset = (byte / 255 - mean) / std
        Span<float> scale = stackalloc float[3], offset = stackalloc float[3];
        for (int c = 0; c < 3; c++)
        {
            float mean = p.Mean[Math.Min(c, p.Mean.Length - 1)], std = p.Std[Math.Min(c, p.Std.Length - 1)];
            scale[c] = 1f / 255f / std;
            offset[c] = -mean / std;
        }
        for (int i = 0; i < plane; i++)
        {
            float r = red[i * stride], g = green[i * stride], b = blue[i * stride];
            if (channels == 1)
            {
                floats[i] = (0.299f * r + 0.587f * g + 0.114f * b) * scale[0] + offset[0];
                continue;
            }
            var (c0, c2) = bgr ? (b, r) : (r, b);
            float v0 = c0 * scale[0] + offset[0], v1 = g * scale[1] + offset[1], v2 = c2 * scale[2] + offset[2];
            if (channelsFirst) { floats[i] = v0; floats[plane + i] = v1; floats[2 * plane + i] = v2; }
            else { floats[i * 3] = v0; floats[i * 3 + 1] = v1; floats[i * 3 + 2] = v2; }
        }
    }
}
