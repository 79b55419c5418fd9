using Google.Protobuf;
using Onnx;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Models;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using SkiaSharp;
using Xunit.Abstractions;

namespace HeteroBatch.Engine.Tests;

/// <summary>The uint8 input prefix: a model fed pixels equals the float model fed the CPU path's preprocessing of the same pixels.</summary>
public sealed class InputPrefixTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hb-prefix-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static LoadedModel Open(byte[] model)
    {
        Runtime.OrtRuntime.Initialize();
        using var o = new SessionOptions { IntraOpNumThreads = 1, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
        return new LoadedModel(model, o);
    }

    /// <summary>Seeded RGB pixels, n images of height × width.</summary>
    private static byte[] Pixels(int n, int height, int width, int seed)
    {
        var bytes = new byte[n * height * width * 3];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>The CPU path's float input for the same pixels: each image through a lossless PNG and ImageInput.Load (stretch to its own size: the resize keeps every pixel).</summary>
    private static TensorBatch CpuPreprocessed(byte[] pixels, int n, int height, int width, ImagePreprocessing preprocessing, TensorSpec input)
    {
        var batch = new TensorBatch(input.Name, input.SampleShape, n);
        for (int i = 0; i < n; i++)
        {
            using var bmp = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
            var rgba = new byte[width * height * 4];
            for (int p = 0; p < width * height; p++)
            {
                int s = (i * width * height + p) * 3;
                rgba[p * 4] = pixels[s]; rgba[p * 4 + 1] = pixels[s + 1]; rgba[p * 4 + 2] = pixels[s + 2]; rgba[p * 4 + 3] = 255;
            }
            System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bmp.GetPixels(), rgba.Length);
            using var png = bmp.Encode(SKEncodedImageFormat.Png, 100);
            ImageInput.Load(png.ToArray(), $"image{i}.png", batch, i, preprocessing with { Resize = ResizeMode.Stretch });
        }
        return batch;
    }

    /// <summary>Runs the float model on the CPU path's floats and the prefixed model on the pixels; returns both first outputs.</summary>
    private (TensorBatch Float, TensorBatch Pixels) RunBoth(ModelProto floatModel, ImagePreprocessing preprocessing, int n)
    {
        var prefixed = InputPrefix.ToUint8(floatModel, preprocessing);
        using var a = Open(floatModel.ToByteArray());
        using var b = Open(prefixed.ToByteArray());
        var floatInput = a.Signature.Inputs.Single();
        var byteInput = b.Signature.Inputs.Single();
        Assert.Equal(floatInput.Name, byteInput.Name);
        Assert.Equal(TensorElementType.UInt8, byteInput.ElementType);
        var (_, height, width, channelsFirst) = ImageInput.Layout(floatInput);
        Assert.Equal(new long[] { height, width, 3 }, byteInput.SampleShape);

        var pixels = Pixels(n, height, width, seed: 5);
        var floats = CpuPreprocessed(pixels, n, height, width, preprocessing, floatInput);
        var bytes = new TensorBatch(byteInput.Name, byteInput.SampleShape, n, pixels, TensorElementType.UInt8);
        var ra = a.AllocateOutputs(n);
        var rb = b.AllocateOutputs(n);
        a.Run(new[] { floats }, ra, 0, n);
        b.Run(new[] { bytes }, rb, 0, n);
        return (ra[0], rb[0]);
    }

    private void AssertSame(TensorBatch reference, TensorBatch actual, double tolerance)
    {
        var agreement = OutputAgreement.Compare(reference, actual);
        output.WriteLine(agreement.ToString());
        Assert.True(agreement.MaxAbsDifference <= tolerance * Math.Max(1, agreement.MaxAbsReference), agreement.ToString());
        Assert.True(agreement.MinCosine >= 0.999999, agreement.ToString());
    }

    [Theory]
    [InlineData("tinynet")]
    [InlineData("tinynet-224")]
    [InlineData("squeezenet_v1.1")]
    public void PixelsThroughThePrefixGiveTheFloatModelsOutputsOnTheCpuPathsFloats(string name)
    {
        var (reference, actual) = RunBoth(ModelZoo.Build(name), ImagePreprocessing.ImageNet, 3);
        AssertSame(reference, actual, 1e-5);
    }

    [Fact]
    public void TheFp16FormTakesThePrefixToo()
    {
        var fp16 = PrecisionConverter.ToFloat16(ModelZoo.Build("tinynet"));
        var (reference, actual) = RunBoth(fp16, ImagePreprocessing.ImageNet, 4);
        // both run the same fp16 graph on the same float32 values: only the prefix's arithmetic could differ
        AssertSame(reference, actual, 1e-3);
    }

    [Fact]
    public void BgrOrderAndOtherMeansAreAppliedOnTheUnit()
    {
        var preprocessing = new ImagePreprocessing { ChannelOrder = ChannelOrder.Bgr, Mean = new[] { 0.5f }, Std = new[] { 0.25f, 0.5f, 0.75f } };
        var model = ModelZoo.Build("tinynet");
        var (reference, actual) = RunBoth(model, preprocessing, 3);
        AssertSame(reference, actual, 1e-5);
        // and the order matters: the RGB prefix on the same pixels gives other outputs
        var (_, rgb) = RunBoth(model, preprocessing with { ChannelOrder = ChannelOrder.Rgb }, 3);
        Assert.True(OutputAgreement.Compare(actual, rgb).MaxAbsDifference > 1e-4);
    }

    [Fact]
    public void AModelThatIsNotOneFloatImageIsRefused()
    {
        var e = Assert.Throws<HeteroBatchException>(() => InputPrefix.ToUint8(ModelProto.Parser.ParseFrom(CustomGraphs.TwoInputsWithInt64()), ImagePreprocessing.ImageNet));
        Assert.Equal("InputPrefixUnsupported", e.ErrorId);
    }

    [Fact]
    public void TheDerivedFileIsCachedByContentAndRebuiltWhenDamaged()
    {
        var source = ModelCatalog.Resolve("tinynet", _dir);
        var first = InputPrefix.PathFor(source, Precision.Fp32, ImagePreprocessing.ImageNet);
        var written = File.GetLastWriteTimeUtc(first);
        Assert.Equal(first, InputPrefix.PathFor(source, Precision.Fp32, ImagePreprocessing.ImageNet));
        Assert.Equal(written, File.GetLastWriteTimeUtc(first));
        // other values, another file; the fp16 form, another file
        var other = InputPrefix.PathFor(source, Precision.Fp32, ImagePreprocessing.ImageNet with { Mean = new[] { 0.5f } });
        var half = InputPrefix.PathFor(source, Precision.Fp16, ImagePreprocessing.ImageNet);
        Assert.Equal(3, new[] { first, other, half }.Distinct().Count());
        using (var m = Open(File.ReadAllBytes(half))) Assert.Equal(TensorElementType.UInt8, m.Signature.Inputs.Single().ElementType);
        // a damaged file is made again
        File.WriteAllBytes(first, new byte[] { 1, 2, 3 });
        Assert.Equal(first, InputPrefix.PathFor(source, Precision.Fp32, ImagePreprocessing.ImageNet));
        using var again = Open(File.ReadAllBytes(first));
        Assert.Equal(TensorElementType.UInt8, again.Signature.Inputs.Single().ElementType);
    }
}
