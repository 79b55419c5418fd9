using System.Runtime.InteropServices;
using Google.Protobuf;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Data.Gpu;
using HeteroBatch.Engine.Models;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace HeteroBatch.Engine.Tests;

/// <summary>What GPU decoding decides without a GPU: the resize's source mapping, the settings from a model input, and the device-input binding (run here on host memory).</summary>
public sealed class GpuDecodingTests
{
    [Fact]
    public void TheResizeMapsTheSourceOntoTorchvisionsCentreCrop()
    {
        var settings = new GpuDecodeSettings();
        // 500×375: torchvision resizes to 341×256 and crops at (58, 16) (58.5 rounds half to even)
        var (xf, yf, xs, ys) = GpuJpegDecoder.SourceMapping(500, 375, settings);
        Assert.Equal((341.0 / 500, 256.0 / 375, -58.0, -16.0), (xf, yf, xs, ys));
        // portrait: the axes swap
        Assert.Equal((256.0 / 375, 341.0 / 500, -16.0, -58.0), GpuJpegDecoder.SourceMapping(375, 500, settings));
        // the crop's edges in source pixels: inside the source, centred to within 1.5 resized pixels (torchvision truncates 341.33 to 341 and rounds 58.5 down to 58)
        double left = (0 - xs) / xf, right = (224 - xs) / xf;
        Assert.InRange(left, 85.0, 85.1);
        Assert.Equal(500 - right, left, 1.5 / xf);
        // stretch: the whole source onto the destination
        var stretch = settings with { Preprocessing = ImagePreprocessing.ImageNet with { Resize = ResizeMode.Stretch } };
        Assert.Equal((224.0 / 500, 224.0 / 375, 0.0, 0.0), GpuJpegDecoder.SourceMapping(500, 375, stretch));
        // a small image is enlarged (factor above 1): the decoder uses the bilinear filter there
        Assert.True(GpuJpegDecoder.SourceMapping(100, 80, settings).XFactor > 1);
    }

    [Fact]
    public void TheBatchedResizeTakesTheCropsSourceToTheNearestWholePixel()
    {
        var settings = new GpuDecodeSettings();
        // 500×375: exact edges x 85.04..413.49, y 23.44..351.56 (source pixels)
        Assert.Equal((85, 23, 328, 329), GpuJpegDecoder.SourceRegion(500, 375, settings));
        Assert.Equal((23, 85, 329, 328), GpuJpegDecoder.SourceRegion(375, 500, settings));
        // stretch: the whole image
        var stretch = settings with { Preprocessing = ImagePreprocessing.ImageNet with { Resize = ResizeMode.Stretch } };
        Assert.Equal((0, 0, 500, 375), GpuJpegDecoder.SourceRegion(500, 375, stretch));
        // every edge within half a source pixel of the exact mapping, inside the image, for many sizes
        foreach (var (w, h) in new[] { (640, 480), (4000, 3000), (225, 224), (1, 1), (3, 1000), (100, 80), (1024, 683) })
        {
            var (xf, yf, xs, ys) = GpuJpegDecoder.SourceMapping(w, h, settings);
            var (x, y, rw, rh) = GpuJpegDecoder.SourceRegion(w, h, settings);
            Assert.True(x >= 0 && y >= 0 && rw >= 1 && rh >= 1 && x + rw <= w && y + rh <= h, $"{w}×{h}: {(x, y, rw, rh)}");
            Assert.InRange(x - Math.Clamp(-xs / xf, 0, w), -0.5, 0.5);
            Assert.InRange(y - Math.Clamp(-ys / yf, 0, h), -0.5, 0.5);
            if (w > 1) Assert.InRange(x + rw - Math.Clamp((224 - xs) / xf, 0, w), -0.5, 0.5);
            if (h > 1) Assert.InRange(y + rh - Math.Clamp((224 - ys) / yf, 0, h), -0.5, 0.5);
        }
    }

    [Fact]
    public void SettingsComeFromTheModelsInputAsOnTheCpu()
    {
        var s = GpuDecodeSettings.ForInput(new TensorSpec("x", TensorElementType.Float, new long[] { 3, 160, 192 }), ImagePreprocessing.ImageNet, 64);
        Assert.Equal((192, 160, 64), (s.Width, s.Height, s.MaxBatch));
        var nhwc = GpuDecodeSettings.ForInput(new TensorSpec("x", TensorElementType.UInt8, new long[] { 224, 200, 3 }), ImagePreprocessing.ImageNet, 8);
        Assert.Equal((200, 224), (nhwc.Width, nhwc.Height));
        var gray = Assert.Throws<HeteroBatchException>(() => GpuDecodeSettings.ForInput(new TensorSpec("x", TensorElementType.Float, new long[] { 1, 32, 32 }), ImagePreprocessing.ImageNet, 8));
        Assert.Equal("ImageInputUnsupported", gray.ErrorId);
    }

    private static LoadedModel Open(byte[] model)
    {
        Runtime.OrtRuntime.Initialize();
        using var o = new SessionOptions { IntraOpNumThreads = 1, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
        return new LoadedModel(model, o);
    }

    private static OrtMemoryInfo Host() => new(OrtMemoryInfo.allocatorCPU, OrtAllocatorType.DeviceAllocator, 0, OrtMemType.Default);

    [Fact]
    public void ABatchBoundByAddressGivesTheOutputsOfAPlainRunInTheRowsAsked()
    {
        using var model = Open(InputPrefix.ToUint8(ModelZoo.Build("tinynet"), ImagePreprocessing.ImageNet).ToByteArray());
        var input = model.Signature.Inputs.Single();
        const int capacity = 5, count = 3, offset = 2;
        var pixels = new byte[capacity * 32 * 32 * 3];
        new Random(3).NextBytes(pixels);
        // the plain run of the same three samples
        var expected = model.AllocateOutputs(count);
        model.Run(new[] { new TensorBatch(input.Name, input.SampleShape, count, pixels[..(count * 32 * 32 * 3)], TensorElementType.UInt8) }, expected, 0, count);

        var outputs = model.AllocateOutputs(6);
        var handle = GCHandle.Alloc(pixels, GCHandleType.Pinned);
        try
        {
            using var runner = new Sessions.DeviceInputRunner(model, 0, Host());
            // padded to the batch's capacity, as a GPU keeps one shape; rows 2..4 of the outputs get the results
            runner.Run(handle.AddrOfPinnedObject(), TensorElementType.UInt8, count, outputs, offset, padTo: capacity);
            var wrongType = Assert.Throws<HeteroBatchException>(() => runner.Run(handle.AddrOfPinnedObject(), TensorElementType.Float, 1, outputs, 0));
            Assert.Equal("DeviceInputUnsupported", wrongType.ErrorId);
        }
        finally { handle.Free(); }
        var got = outputs[0].AsFloats();
        var want = expected[0].AsFloats();
        int row = (int)outputs[0].SampleElements;
        Assert.All(got[..(offset * row)], v => Assert.Equal(0f, v)); // rows before the offset untouched
        Assert.Equal(want, got[(offset * row)..((offset + count) * row)]);
        Assert.All(got[((offset + count) * row)..], v => Assert.Equal(0f, v)); // the padding's outputs are dropped
    }

    [Fact]
    public void AModelWithTwoInputsCannotTakeADeviceBatch()
    {
        using var model = Open(CustomGraphs.TwoInputsWithInt64());
        var e = Assert.Throws<HeteroBatchException>(() => new Sessions.DeviceInputRunner(model, 0, Host()));
        Assert.Equal("DeviceInputUnsupported", e.ErrorId);
    }
}
