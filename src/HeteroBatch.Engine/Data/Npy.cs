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

    /// <summary>Reads a whole .npy file: the array's first axis becomes the batch. Throws NpyInvalid.</summary>
    public static TensorBatch Read(string path, string tensorName)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (IOException e) { throw Invalid(path, e.Message); }
        if (bytes.Length < 10 || !bytes.AsSpan(0, 6).SequenceEqual(Magic)) throw Invalid(path, "it does not start with the .npy magic bytes");
        int major = bytes[6];
        int headerLength, headerStart;
        if (major == 1) { headerLength = BitConverter.ToUInt16(bytes, 8); headerStart = 10; }
        else if (major is 2 or 3 && bytes.Length >= 12) { headerLength = (int)BitConverter.ToUInt32(bytes, 8); headerStart = 12; }
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
        if (dims[0] > int.MaxValue || count * type.Size > Array.MaxLength) throw Invalid(path, $"its shape ({string.Join(", ", dims)}) is larger than HeteroBatch reads into memory");
        int dataStart = headerStart + headerLength;
        if (bytes.Length - dataStart != count * type.Size) throw Invalid(path, $"it holds {bytes.Length - dataStart} data bytes; shape ({string.Join(", ", dims)}) needs {count * type.Size}");
        var batch = new TensorBatch(tensorName, dims[1..], checked((int)dims[0]), null, type.Type);
        Buffer.BlockCopy(bytes, dataStart, batch.Data, 0, checked((int)(count * type.Size)));
        return batch;
    }

    /// <summary>Writes a batch as one .npy array (shape = [count, sample shape...]) through a temporary file.</summary>
    public static void Write(string path, TensorBatch batch)
    {
        var type = Types.First(t => t.Type == batch.ElementType);
        var shape = string.Join(", ", batch.ShapeFor(batch.Count).Select(d => d.ToString(CultureInfo.InvariantCulture)));
        if (batch.SampleShape.Length == 0) shape += ",";
        var dict = $"{{'descr': '{type.Descr}', 'fortran_order': False, 'shape': ({shape}), }}";
        int unpadded = 10 + dict.Length + 1;
        var header = dict + new string(' ', (64 - unpadded % 64) % 64) + "\n";
        Runtime.AtomicFile.Write(path, s =>
        {
            s.Write(Magic);
            s.WriteByte(1);
            s.WriteByte(0);
            s.Write(BitConverter.GetBytes((ushort)header.Length));
            s.Write(Encoding.Latin1.GetBytes(header));
            var raw = new byte[Buffer.ByteLength(batch.Data)];
            Buffer.BlockCopy(batch.Data, 0, raw, 0, raw.Length);
            s.Write(raw);
        });
    }

    private static HeteroBatchException Invalid(string path, string why) =>
        new("NpyInvalid", FailureKind.InvalidData, $"{path} is not a usable .npy file: {why}.", path);

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")] private static partial Regex DescrPattern();
    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")] private static partial Regex FortranPattern();
    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")] private static partial Regex ShapePattern();
}
