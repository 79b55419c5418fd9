using HeteroBatch.Engine.Data;

namespace HeteroBatch.Engine.Tests;

/// <summary>A block's file bytes are read into one reused buffer; what does not fit gets an array of its own.</summary>
public sealed class ByteArenaTests
{
    [Fact]
    public void SlicesDoNotOverlapAndWhatDoesNotFitGetsItsOwnArray()
    {
        var arena = new ByteArena(100);
        var a = arena.Take(60);
        var b = arena.Take(30);
        var c = arena.Take(20); // 110 > 100
        a.Span.Fill(1);
        b.Span.Fill(2);
        c.Span.Fill(3);
        Assert.All(a.ToArray(), v => Assert.Equal(1, v));
        Assert.All(b.ToArray(), v => Assert.Equal(2, v));
        Assert.Equal(20, c.Length);
        arena.Reset();
        var again = arena.Take(60);
        Assert.True(again.Span.Overlaps(a.Span), "after a reset the buffer is handed out again");
        Assert.False(c.Span.Overlaps(again.Span));
    }

    [Fact]
    public void TheRegionToPageLockIsTheWholeBufferTheSlicesComeFrom()
    {
        var arena = new ByteArena(4096);
        var (address, bytes) = arena.Region;
        Assert.Equal(4096, bytes);
        var first = arena.Take(100);
        var second = arena.Take(200);
        Assert.Equal(address, Address(first));
        Assert.Equal(address + 100, Address(second));
        GC.Collect(); // pinned: the address a GPU copies from does not move
        Assert.Equal(address, arena.Region.Address);
        Assert.Equal((IntPtr.Zero, 0L), new ByteArena(0).Region);
    }

    private static IntPtr Address(Memory<byte> slice) =>
        System.Runtime.InteropServices.MemoryMarshal.TryGetArray<byte>(slice, out var segment)
            ? System.Runtime.InteropServices.Marshal.UnsafeAddrOfPinnedArrayElement(segment.Array!, segment.Offset) : IntPtr.Zero;

    [Fact]
    public void AFileReadIntoTheArenaIsTheFilesBytes()
    {
        var dir = Directory.CreateTempSubdirectory("hb-arena-").FullName;
        try
        {
            var rng = new Random(5);
            var paths = new List<string>();
            for (int i = 0; i < 3; i++)
            {
                var bytes = new byte[1000 + 700 * i];
                rng.NextBytes(bytes);
                bytes[0] = 0xFF; bytes[1] = 0xD8; // a JPEG's start, enough to be listed as an image
                var path = Path.Combine(dir, $"f{i}.jpg");
                File.WriteAllBytes(path, bytes);
                paths.Add(path);
            }
            var files = InputFiles.For(paths, new[] { new TensorSpec("x", Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, new long[] { 3, 8, 8 }) });
            var arena = new ByteArena(2500); // the first two fit, the third does not
            for (int i = 0; i < 3; i++)
                Assert.Equal(File.ReadAllBytes(paths[i]), files.ReadBytes(i, arena).ToArray());
            var missing = Path.Combine(dir, "f1.jpg");
            File.Delete(missing);
            var e = Assert.Throws<HeteroBatchException>(() => files.ReadBytes(1, arena));
            Assert.Equal("InputFileUnreadable", e.ErrorId);
        }
        finally { Directory.Delete(dir, true); }
    }
}

/// <summary>A unit that decodes, taking over a range CPU threads decoded for a unit that failed, gets those samples' files.</summary>
public sealed class TakenOverBytesTests
{
    [Fact]
    public void ASampleDecodedOnTheCpuIsReadAgainForADecodingUnitThatTakesItOver()
    {
        var dir = Directory.CreateTempSubdirectory("hb-takeover-").FullName;
        try
        {
            var paths = Enumerable.Range(0, 4).Select(i =>
            {
                var path = Path.Combine(dir, $"f{i}.jpg");
                File.WriteAllBytes(path, new byte[] { 0xFF, 0xD8, (byte)i, 1, 2, 3 });
                return path;
            }).ToList();
            var files = InputFiles.For(paths, new[] { new TensorSpec("x", Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, new long[] { 3, 8, 8 }) });
            var block = Execution.JobBlock.Allocate(new Sessions.ModelSignature(new[] { files.Input }, new[] { files.Input }), 4);
            block.Reuse(0, (0, 4), Execution.BlockInputs.Allocate(files.Input, 4, pinned: false, arenaBytes: 0));
            block.ForUnitDecoding[0] = true;
            block.Bytes[0] = new byte[] { 9, 9 };           // read for the decoding unit: kept as read
            block.Errors[2] = new HeteroBatchException("ImageUnreadable", FailureKind.InvalidData, "x"); // failed on the CPU: nothing
            File.Delete(paths[3]);                          // gone since the CPU decoded it: a failed sample

            Assert.Equal(new byte[] { 9, 9 }, Execution.UnitDecoding.BytesOf(block, 0, files).ToArray());
            Assert.Equal(File.ReadAllBytes(paths[1]), Execution.UnitDecoding.BytesOf(block, 1, files).ToArray());
            Assert.True(Execution.UnitDecoding.BytesOf(block, 2, files).IsEmpty);
            Assert.True(Execution.UnitDecoding.BytesOf(block, 3, files).IsEmpty);
            Assert.Equal("InputFileUnreadable", block.Errors[3]!.ErrorId);
        }
        finally { Directory.Delete(dir, true); }
    }
}
