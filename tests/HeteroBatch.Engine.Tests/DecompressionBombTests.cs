using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Runtime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Xunit.Abstractions;

namespace HeteroBatch.Engine.Tests;

/// <summary>
/// Issue 25, "Decompression bombs under the pixel cap": a JPEG of many pixels in few bytes is decoded at
/// reduced DCT scale when the model's input is small, and the pixels decoded at once across decoding
/// threads are bounded by a budget the decoders take from.
/// </summary>
public sealed class DecompressionBombTests(ITestOutputHelper log)
{
    /// <summary>
    /// A valid baseline greyscale JPEG of <paramref name="width"/>×<paramref name="height"/> (multiples of 8), every
    /// pixel 128: Huffman tables of one 1-bit code each (DC difference 0, end of block), so a block is 2 bits and the
    /// file is width·height/256 bytes. 16000×16000 is 256 MP (under the 2^28 cap) in 1 MB.
    /// </summary>
    internal static byte[] Bomb(int width, int height)
    {
        var s = new MemoryStream();
        void Marker(int m, params byte[] body)
        {
            s.WriteByte(0xFF); s.WriteByte((byte)m);
            int length = body.Length + 2;
            s.WriteByte((byte)(length >> 8)); s.WriteByte((byte)length);
            s.Write(body);
        }
        s.WriteByte(0xFF); s.WriteByte(0xD8);
        Marker(0xDB, new byte[] { 0x00 }.Concat(Enumerable.Repeat((byte)1, 64)).ToArray());
        Marker(0xC0, 8, (byte)(height >> 8), (byte)height, (byte)(width >> 8), (byte)width, 1, 1, 0x11, 0);
        var oneCode = new byte[17]; oneCode[0] = 1; // one code of length 1
        Marker(0xC4, new byte[] { 0x00 }.Concat(oneCode[..16]).Concat(new byte[] { 0 }).ToArray()); // DC table 0: symbol 0
        Marker(0xC4, new byte[] { 0x10 }.Concat(oneCode[..16]).Concat(new byte[] { 0 }).ToArray()); // AC table 0: symbol 0 (EOB)
        Marker(0xDA, 1, 1, 0x00, 0, 63, 0);
        long blocks = (long)(width / 8) * (height / 8);
        long bits = 2 * blocks;
        s.Write(new byte[bits / 8]);
        if (bits % 8 != 0) s.WriteByte((byte)(0xFF >> (int)(bits % 8)));
        s.WriteByte(0xFF); s.WriteByte(0xD9);
        return s.ToArray();
    }

    private static TensorBatch Batch() => new("input", new long[] { 3, 224, 224 }, 1, null, TensorElementType.Float);

    [Fact]
    public void ABombIsDecodedAtReducedScaleInExactModeWithTheSamePixelsItHolds()
    {
        NativeLibraries.Register();
        var bomb = Bomb(16000, 16000);
        log.WriteLine($"16000×16000 in {bomb.Length} bytes");
        foreach (var turbo in new[] { true, false })
        {
            var decoder = new ImageDecoder { UseTurboJpeg = turbo, Budget = new DecodeBudget(1L << 28) };
            var batch = Batch();
            Libc.ResetPeakResident();
            long before = Libc.PeakResidentBytes() ?? 0;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            decoder.Load(bomb, "bomb.jpg", batch, 0, ImagePreprocessing.ImageNet);
            log.WriteLine($"TurboJPEG {(turbo && TurboJpeg.IsAvailable ? "on" : "off")}: decoded at {decoder.LastDecoded}, {clock.Elapsed.TotalMilliseconds:F0} ms, peak resident +{((Libc.PeakResidentBytes() ?? 0) - before) >> 20} MiB");
            // 1/8 of 16000 is 2000, still above the 256-pixel resize: the whole 256 MP are never decoded
            Assert.Equal((2000, 2000), decoder.LastDecoded);
            var f = (float[])batch.Data;
            var mean = ImagePreprocessing.ImageNet.Mean;
            var std = ImagePreprocessing.ImageNet.Std;
            for (int c = 0; c < 3; c++)
                Assert.Equal((128f / 255f - mean[c]) / std[c], f[c * 224 * 224 + 1000], 4);
        }
        // an ordinary photo's size is not reduced in Exact mode (the torchvision fixtures pin its pixels)
        Assert.Equal((8000, 6000, 1), ImagePreprocessing.ImageNet.DecodeSize(8000, 6000, 341, 256));
        Assert.Equal((1125, 1125, 8), ImagePreprocessing.ImageNet.DecodeSize(9000, 9000, 256, 256)); // 81 MP: reduced
    }

    [Fact]
    public void TheBudgetHoldsBackWhatDoesNotFit_AndAnImageLargerThanItDecodesAlone()
    {
        var budget = new DecodeBudget(20_000_000);
        Assert.Equal(0, budget.Taken);
        Assert.NotNull(budget.TryTake(100)); // small images take nothing
        Assert.Equal(0, budget.Taken);
        var first = budget.TryTake(12_000_000);
        Assert.NotNull(first);
        Assert.Null(budget.TryTake(12_000_000)); // 24 MP would be in flight
        var second = budget.TryTake(8_000_000); // 20 MP: fits exactly
        Assert.NotNull(second);
        Assert.Null(budget.TryTake(5_000_000));
        second!.Dispose();
        first!.Dispose();
        first.Dispose(); // given back once only
        Assert.Equal(20_000_000, budget.Peak);
        var alone = budget.TryTake(50_000_000); // larger than the budget: decodes when nothing else does
        Assert.NotNull(alone);
        Assert.Null(budget.TryTake(5_000_000));
        alone!.Dispose();
        Assert.NotNull(budget.TryTake(5_000_000));
    }

    [Fact]
    public void DecodersOnManyThreadsTakeFromOneBudgetAndNeverHoldMoreThanIt()
    {
        NativeLibraries.Register();
        var image = Bomb(2400, 2400); // 5.76 MP: above the 4 MP that take nothing
        var budget = new DecodeBudget(2400L * 2400 + 1); // one image at a time
        var threads = Enumerable.Range(0, 4).Select(_ => new Thread(() =>
        {
            var decoder = new ImageDecoder { Budget = budget };
            for (int i = 0; i < 3; i++) decoder.Load(image, "big.jpg", Batch(), 0, ImagePreprocessing.ImageNet);
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Equal(12, budget.Taken);
        Assert.Equal(2400L * 2400, budget.Peak);
    }
}
