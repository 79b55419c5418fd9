using HeteroBatch.Engine.Data;
using Microsoft.ML.OnnxRuntime.Tensors;
using Xunit.Abstractions;

namespace HeteroBatch.Engine.Tests;

/// <summary>
/// Our image preprocessing against torchvision's on the same JPEG files: the references in
/// tests/fixtures/torchvision were made on the GPU machine by tools/gpu/torchvision_fixtures.py
/// (PIL decode, Resize(256) + CenterCrop(224), and Resize((224, 224))), as uint8 HWC pixels.
/// </summary>
public sealed class PreprocessingTests(ITestOutputHelper log)
{
    private static string Fixtures
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "tests", "fixtures", "torchvision");
                if (Directory.Exists(candidate)) return candidate;
            }
            throw new DirectoryNotFoundException("tests/fixtures/torchvision");
        }
    }

    [Theory]
    [InlineData("wide", ResizeMode.CenterCrop)]
    [InlineData("tall", ResizeMode.CenterCrop)]
    [InlineData("square", ResizeMode.CenterCrop)]
    [InlineData("small", ResizeMode.CenterCrop)]
    [InlineData("wide", ResizeMode.Stretch)]
    [InlineData("tall", ResizeMode.Stretch)]
    [InlineData("square", ResizeMode.Stretch)]
    [InlineData("small", ResizeMode.Stretch)]
    public void PixelsAgreeWithTorchvisionOnTheSameFile(string name, ResizeMode mode)
    {
        var reference = Npy.Read(Path.Combine(Fixtures, $"{name}.{mode.ToString().ToLowerInvariant()}.npy"), "reference");
        Assert.Equal(new long[] { 224, 3 }, reference.SampleShape); // (224, 224, 3): 224 rows of 224 × 3
        var expected = (byte[])reference.Data;
        // a uint8 input laid out [H, W, C] gets the resized pixels as they are
        var ours = new TensorBatch("input", new long[] { 224, 224, 3 }, 1, null, TensorElementType.UInt8);
        ImageInput.Load(Path.Combine(Fixtures, $"{name}.jpg"), ours, 0, new ImagePreprocessing { Resize = mode });
        var actual = (byte[])ours.Data;
        int maxDiff = 0, exact = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            int d = Math.Abs(expected[i] - actual[i]);
            maxDiff = Math.Max(maxDiff, d);
            if (d == 0) exact++;
        }
        double share = (double)exact / expected.Length;
        log.WriteLine($"{name} {mode}: {share:P2} of values equal, max |difference| {maxDiff} of 255");
        // measured: every value of all eight cases equal (PIL's fixed-point resample, reproduced; the same libjpeg-turbo decode)
        Assert.Equal(0, maxDiff);

        // the float input: torchvision's ToTensor then Normalize of the same pixels, channels first
        var floats = new TensorBatch("input", new long[] { 3, 224, 224 }, 1);
        ImageInput.Load(Path.Combine(Fixtures, $"{name}.jpg"), floats, 0, new ImagePreprocessing { Resize = mode });
        var mean = ImagePreprocessing.ImageNet.Mean;
        var std = ImagePreprocessing.ImageNet.Std;
        double worst = 0;
        for (int p = 0; p < 224 * 224; p++)
            for (int c = 0; c < 3; c++)
                worst = Math.Max(worst, Math.Abs((expected[p * 3 + c] / 255f - mean[c]) / std[c] - floats.AsFloats()[c * 224 * 224 + p]));
        log.WriteLine($"{name} {mode}: normalised floats within {worst:G3}");
        Assert.True(worst < 1e-5, $"normalised values differ by {worst}");
    }
}
