using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace HeteroBatch.Engine.Data;

/// <summary>NumPy .npy files (format 1.0-3.0, little-endian, C order): the first axis is the batch.</summary>
public static partial class Npy
{
    private static ReadOnlySpan<byte> Magic => new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y' };

    private static (string Descr, TensorElementType Type, int Size)[] Types =>
        new[]
        {
            ("<f4", TensorElementType.Float, 4), ("<f8", TensorElementType.Double, 8), ("<i8", TensorElementType.Int64, 8),
            ("<i4", TensorElementType.Int32, 4), ("|u1", TensorElementType.UInt8, 1),
        };

    /// <summary>What a .npy file's header says: element type, shape (first axis = samples), and where the data start.</summary>
    public sealed record Header(TensorElementType Type, long[] Dims, int DataStart)
    {
        public int Count => checked((int)Dims[0]);
        public long[] SampleShape => Dims[1..];
        public long SampleBytes => Dims.Skip(1).Aggregate(1L, (a, b) => a * b) * TensorBatch.ElementSize(Type);
    }

    /// <summary>Reads and checks a .npy file's header and its length, not its data. Throws NpyInvalid.</summary>
    public static Header ReadHeader(string path)
    {
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 4096);
            var head = new byte[(int)Math.Min(file.Length, 1 << 16)];
            file.ReadExactly(head);
            return ParseHeader(path, head, file.Length);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw Invalid(path, e.Message); }
    }

    private static Header ParseHeader(string path, byte[] bytes, long fileLength)
    {
        if (bytes.Length < 10 || !bytes.AsSpan(0, 6).SequenceEqual(Magic)) throw Invalid(path, "it does not start with the .npy magic bytes");
        int major = bytes[6];
        int headerLength, headerStart;
        if (major == 1) { headerLength = BitConverter.ToUInt16(bytes, 8); headerStart = 10; }
        else if (major is 2 or 3 && bytes.Length >= 12) { headerLength = (int)Math.Min(BitConverter.ToUInt32(bytes, 8), int.MaxValue - 12); headerStart = 12; }
        else throw Invalid(path, $"format version {major} is not supported");
        if (headerStart + headerLength > bytes.Length) throw Invalid(path, "the header is truncated");
        var header = Encoding.Latin1.GetString(bytes, headerStart, headerLength);
        var descr = DescrPattern().Match(header);
        var fortran = FortranPattern().Match(header);
        var shape = ShapePattern().Match(header);
        if (!descr.Success || !fortran.Success || !shape.Success) throw Invalid(path, $"the header '{header.Trim()}' is not understood");
        if (fortran.Groups[1].Value == "True") throw Invalid(path, "Fortran-ordered arrays are not supported; save it C-ordered");
        var type = Types.FirstOrDefault(t => t.Descr == descr.Groups[1].Value);
        if (type.Descr == null) throw Invalid(path, $"element type '{descr.Groups[1].Value}' is not supported (float32, float64, int64, int32 or uint8, little-endian)");
        var parts = shape.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var dims = new long[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!long.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out dims[i]))
                throw Invalid(path, $"dimension '{parts[i]}' of its shape is not a non-negative integer");
        if (dims.Length == 0) throw Invalid(path, "a scalar has no batch axis");
        long count = 1;
        foreach (var d in dims)
            if (d > 0 && count > (long)Array.MaxLength / d) throw Invalid(path, $"its shape ({string.Join(", ", dims)}) holds more values than one array can");
            else count *= d;
        long sampleValues = dims.Length == 1 ? 1 : count / Math.Max(1, dims[0]);
        if (dims[0] > int.MaxValue || sampleValues * type.Size > Array.MaxLength) throw Invalid(path, $"its shape ({string.Join(", ", dims)}) is larger than HeteroBatch reads into memory");
        int dataStart = headerStart + headerLength;
        if (fileLength - dataStart != count * type.Size) throw Invalid(path, $"it holds {fileLength - dataStart} data bytes; shape ({string.Join(", ", dims)}) needs {count * type.Size}");
        return new Header(type.Type, dims, dataStart);
    }

    /// <summary>Reads samples [first, first + count) of a .npy file into <paramref name="target"/> at <paramref name="at"/>; only those bytes are read.</summary>
    public static void ReadSamples(string path, Header header, int first, int count, TensorBatch target, int at)
    {
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            file.Position = header.DataStart + first * header.SampleBytes;
            file.ReadExactly(target.Bytes(at, count));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw Invalid(path, e.Message); }
    }

    /// <summary>Reads a whole .npy file: the array's first axis becomes the batch. Throws NpyInvalid.</summary>
    public static TensorBatch Read(string path, string tensorName)
    {
        var header = ReadHeader(path);
        if ((double)header.Count * header.SampleBytes > Array.MaxLength) throw Invalid(path, $"its shape ({string.Join(", ", header.Dims)}) is larger than HeteroBatch reads into memory at once");
        var batch = new TensorBatch(tensorName, header.SampleShape, header.Count, null, header.Type);
        ReadSamples(path, header, 0, header.Count, batch, 0);
        return batch;
    }

    /// <summary>Writes a batch as one .npy array (shape = [count, sample shape...]) through a temporary file.</summary>
    public static void Write(string path, TensorBatch batch)
    {
        var header = HeaderBytes(batch.ElementType, batch.SampleShape, batch.Count);
        Runtime.AtomicFile.Write(path, s =>
        {
            s.Write(header);
            s.Write(batch.Bytes(0, batch.Count));
        });
    }

    /// <summary>The magic, version and header of an array of <paramref name="count"/> samples, padded to 64 bytes.</summary>
    internal static byte[] HeaderBytes(TensorElementType elementType, long[] sampleShape, long count)
    {
        var type = Types.First(t => t.Type == elementType);
        var shape = string.Join(", ", new[] { count }.Concat(sampleShape).Select(d => d.ToString(CultureInfo.InvariantCulture)));
        if (sampleShape.Length == 0) shape += ",";
        var dict = $"{{'descr': '{type.Descr}', 'fortran_order': False, 'shape': ({shape}), }}";
        int unpadded = 10 + dict.Length + 1;
        var header = dict + new string(' ', (64 - unpadded % 64) % 64) + "\n";
        var bytes = new byte[10 + header.Length];
        Magic.CopyTo(bytes);
        bytes[6] = 1;
        BitConverter.TryWriteBytes(bytes.AsSpan(8), (ushort)header.Length);
        Encoding.Latin1.GetBytes(header, bytes.AsSpan(10));
        return bytes;
    }

    private static HeteroBatchException Invalid(string path, string why) =>
        new("NpyInvalid", FailureKind.InvalidData, $"{path} is not a usable .npy file: {why}.", path);

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")] private static partial Regex DescrPattern();
    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")] private static partial Regex FortranPattern();
    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")] private static partial Regex ShapePattern();
}

/// <summary>
/// A .npy file of a known number of samples written in pieces, at any sample offset: its full
/// length is laid out when it is created, so a job can write rows as they finish and, after a
/// crash, open it again and go on.
/// </summary>
internal sealed class NpyWriter : IDisposable
{
    private readonly FileStream _file;
    private readonly long _dataStart, _sampleBytes;
    public string Path { get; }
    public long Count { get; }

    private NpyWriter(string path, FileStream file, long dataStart, long sampleBytes, long count)
    {
        Path = path; _file = file; _dataStart = dataStart; _sampleBytes = sampleBytes; Count = count;
        Handle = file.SafeFileHandle;
    }

    /// <summary>The file's handle, to bring what was handed to the OS to disk from another thread (<see cref="Runtime.Libc.FlushToDisk"/>).</summary>
    public Microsoft.Win32.SafeHandles.SafeFileHandle Handle { get; }

    /// <summary>Creates (or replaces) the file with room for <paramref name="count"/> samples.</summary>
    public static NpyWriter Create(string path, TensorElementType type, long[] sampleShape, long count)
    {
        var header = Npy.HeaderBytes(type, sampleShape, count);
        var file = new FileStream(path, FileMode.Create, FileAccess.ReadWrite, FileShare.Read, 1 << 16);
        file.Write(header);
        long sampleBytes = sampleShape.Aggregate(1L, (a, b) => a * b) * TensorBatch.ElementSize(type);
        file.SetLength(header.Length + sampleBytes * count);
        return new NpyWriter(path, file, header.Length, sampleBytes, count);
    }

    /// <summary>Opens a file <see cref="Create"/> made, checking that its header is the one this job would write; null when it is not.</summary>
    public static NpyWriter? Reopen(string path, TensorElementType type, long[] sampleShape, long count)
    {
        if (!File.Exists(path)) return null;
        var expected = Npy.HeaderBytes(type, sampleShape, count);
        var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, 1 << 16);
        var head = new byte[expected.Length];
        long sampleBytes = sampleShape.Aggregate(1L, (a, b) => a * b) * TensorBatch.ElementSize(type);
        if (file.Length != expected.Length + sampleBytes * count || file.Read(head) != head.Length || !head.AsSpan().SequenceEqual(expected))
        {
            file.Dispose();
            return null;
        }
        return new NpyWriter(path, file, expected.Length, sampleBytes, count);
    }

    /// <summary>Writes samples [offset, offset + count) of <paramref name="source"/> as rows starting at <paramref name="row"/>.</summary>
    public void Write(long row, TensorBatch source, int offset, int count)
    {
        if (row < 0 || row + count > Count) throw new ArgumentOutOfRangeException(nameof(row));
        _file.Position = _dataStart + row * _sampleBytes;
        _file.Write(source.Bytes(offset, count));
    }

    /// <summary>Everything written so far on disk.</summary>
    public void Flush() => _file.Flush(flushToDisk: true);

    /// <summary>Everything written so far handed to the OS (on disk once <see cref="Handle"/> is flushed).</summary>
    public void HandToSystem() => _file.Flush(flushToDisk: false);

    public void Dispose() => _file.Dispose();
}
