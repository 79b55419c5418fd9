using HeteroBatch.Engine.Runtime;
using SkiaSharp;

namespace HeteroBatch.Engine.Data;

/// <summary>
/// Decodes JPEG and PNG files (SkiaSharp), resizes them to the model's input (bilinear) and
/// lays them out as float CHW, normalised with the ImageNet mean and standard deviation.
/// </summary>
public static class ImageInput
{
    public static ReadOnlySpan<float> Mean => new[] { 0.485f, 0.456f, 0.406f };
    public static ReadOnlySpan<float> Std => new[] { 0.229f, 0.224f, 0.225f };

    public static bool IsImage(string path) =>
        Path.GetExtension(path).ToLowerInvariant() is ".jpg" or ".jpeg" or ".png";

    /// <summary>Writes one image into sample <paramref name="index"/> of a float batch of shape [C, H, W] (C = 3 or 1).</summary>
    public static void Load(string path, TensorBatch batch, int index)
    {
        NativeLibraries.Register();
        var shape = batch.SampleShape;
        if (batch.ElementType != Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float || shape.Length != 3 || shape[0] is not (1 or 3))
            throw new HeteroBatchException("ImageInputUnsupported", FailureKind.InvalidArgument,
                $"The model's input '{batch.Name}' is {batch.ElementType} [{string.Join(",", shape)}]; images need a float input of shape [3, H, W] or [1, H, W].", batch.Name);
        int channels = (int)shape[0], height = (int)shape[1], width = (int)shape[2];
        using var decoded = SKBitmap.Decode(path)
            ?? throw new HeteroBatchException("ImageUnreadable", FailureKind.InvalidData, $"{path} could not be decoded as a JPEG or PNG image.", path);
        using var resized = decoded.Resize(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul), new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.None))
            ?? throw new HeteroBatchException("ImageUnreadable", FailureKind.InvalidData, $"{path} could not be resized to {width}×{height}.", path);
        var pixels = resized.GetPixelSpan();
        var target = batch.Slice(index, 1).Span;
        int plane = width * height;
        for (int p = 0; p < plane; p++)
        {
            float r = pixels[p * 4] / 255f, g = pixels[p * 4 + 1] / 255f, b = pixels[p * 4 + 2] / 255f;
            if (channels == 3)
            {
                target[p] = (r - Mean[0]) / Std[0];
                target[plane + p] = (g - Mean[1]) / Std[1];
                target[2 * plane + p] = (b - Mean[2]) / Std[2];
            }
            else
            {
                target[p] = 0.299f * r + 0.587f * g + 0.114f * b;
            }
        }
    }
}
