using System.Security.Cryptography;
using System.Text;

namespace HeteroBatch.Engine.Data;

/// <summary>
/// The samples of a job that reads files: images (one sample each) and .npy files (one sample,
/// or a batch along the first axis), in order. Only names, sizes and .npy headers are held; a
/// sample's data are read when <see cref="Load"/> asks for it, so a job over any number of files
/// needs memory for its names only.
/// </summary>
public sealed class InputFiles
{
    /// <summary>One file: where its samples start in the job, how many it holds, and its .npy header.</summary>
    public sealed record Entry(string Path, long Length, DateTime Modified, int FirstSample, int Count, Npy.Header? Npy, bool NamedByIndex);

    public IReadOnlyList<Entry> Files { get; }
    public TensorSpec Input { get; }
    public int SampleCount { get; }

    /// <summary>Images that cannot be read, by their index in <see cref="Files"/>, and why: each is an error for its sample, not for the job.</summary>
    private readonly Dictionary<int, string> _refused;

    private InputFiles(IReadOnlyList<Entry> files, TensorSpec input, Dictionary<int, string> refused)
    {
        _refused = refused;
        Files = files;
        Input = input;
        SampleCount = files.Count == 0 ? 0 : files[^1].FirstSample + files[^1].Count;
    }

    /// <summary>Folders expand to their image and .npy files, sorted by name; files stay as given.</summary>
    public static IReadOnlyList<string> ExpandPaths(IEnumerable<string> paths)
    {
        var files = new List<string>();
        foreach (var p in paths)
        {
            if (Directory.Exists(p))
            {
                var inFolder = Directory.EnumerateFiles(p).Where(f => ImageInput.IsImage(f) || IsNpy(f)).OrderBy(f => f, StringComparer.Ordinal).ToList();
                if (inFolder.Count == 0)
                    throw new HeteroBatchException("InputFolderEmpty", FailureKind.ObjectNotFound, $"{p} holds no .jpg, .jpeg, .png or .npy file.", p);
                files.AddRange(inFolder);
            }
            else if (File.Exists(p)) files.Add(System.IO.Path.GetFullPath(p));
            else throw new HeteroBatchException("InputFileNotFound", FailureKind.ObjectNotFound, $"Input not found: {p}", p);
        }
        if (files.Count == 0) throw new HeteroBatchException("InputFolderEmpty", FailureKind.ObjectNotFound, "No input files were given.");
        return files;
    }

    private static bool IsNpy(string f) => System.IO.Path.GetExtension(f).Equals(".npy", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The samples of these files for a model with one input. Every .npy header is read and checked
    /// here, before anything runs; images are only checked when they are decoded.
    /// </summary>
    public static InputFiles For(IReadOnlyList<string> files, IReadOnlyList<TensorSpec> inputs)
    {
        if (inputs.Count != 1)
            throw new HeteroBatchException("InputFilesNeedOneInput", FailureKind.InvalidArgument,
                $"The model has {inputs.Count} inputs ({string.Join(", ", inputs.Select(i => i.Name))}); files can feed a model with one input.");
        var spec = inputs[0].CheckUsable(isInput: true);
        var entries = new List<Entry>(files.Count);
        var refused = new Dictionary<int, string>();
        long at = 0;
        bool imageChecked = false;
        foreach (var f in files)
        {
            var info = new FileInfo(f);
            // a name the file system holds but .NET cannot open (bytes that are not UTF-8 come back as U+FFFD), a file
            // gone since it was listed, a FIFO or a device named .jpg: an image is refused for its own sample when its turn
            // comes (the job goes on); a .npy, whose header is read now, stops the job here
            string? unusable = !info.Exists
                ? (f.Contains('\uFFFD') ? "its name is not valid UTF-8, and .NET cannot open such a name; rename it" : "it no longer exists")
                : Runtime.Libc.NotRegularFile(f) is { } kind ? $"it is {kind}, not a regular file" : null;
            long length = unusable == null ? info.Length : 0;
            var modified = unusable == null ? info.LastWriteTimeUtc : default;
            if (IsNpy(f))
            {
                if (unusable != null)
                    throw new HeteroBatchException("InputFileUnreadable", FailureKind.InvalidData, $"{f} could not be read: {unusable}.", f);
                var header = Npy.ReadHeader(f);
                if (header.Type != spec.ElementType)
                    throw new HeteroBatchException("InputTypeMismatch", FailureKind.InvalidData, $"{f} holds {header.Type}; the model's input '{spec.Name}' takes {spec.ElementType}.", f);
                bool oneSample = header.Dims.SequenceEqual(spec.SampleShape);
                if (!oneSample && !header.SampleShape.SequenceEqual(spec.SampleShape))
                    throw new HeteroBatchException("InputShapeMismatch", FailureKind.InvalidData,
                        $"{f} has shape ({string.Join(", ", header.Dims)}); the model's input '{spec.Name}' takes samples of [{string.Join(", ", spec.SampleShape)}], or a batch of them.", f);
                int count = oneSample ? 1 : header.Count;
                entries.Add(new Entry(f, length, modified, checked((int)at), count, oneSample ? header with { Dims = new[] { 1L }.Concat(header.Dims).ToArray() } : header, !oneSample));
                at += count;
            }
            else if (ImageInput.IsImage(f))
            {
                if (!imageChecked) { ImageInput.Layout(spec); imageChecked = true; }
                if (unusable != null) refused[entries.Count] = unusable;
                entries.Add(new Entry(f, length, modified, checked((int)at), 1, null, false));
                at++;
            }
            else throw new HeteroBatchException("InputFileUnsupported", FailureKind.InvalidArgument, $"{f} is neither an image (.jpg, .jpeg, .png) nor a .npy file.", f);
            if (at > int.MaxValue) throw new HeteroBatchException("InputTooMany", FailureKind.InvalidArgument, $"The inputs hold more than {int.MaxValue} samples.");
        }
        return new InputFiles(entries, spec, refused);
    }

    /// <summary>The file that holds sample <paramref name="sample"/>, and the sample's index within it.</summary>
    public (Entry File, int Within) Locate(int sample)
    {
        int at = FileOf(sample);
        return (Files[at], sample - Files[at].FirstSample);
    }

    /// <summary>The index in <see cref="Files"/> of the file that holds sample <paramref name="sample"/>.</summary>
    private int FileOf(int sample)
    {
        int lo = 0, hi = Files.Count - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (Files[mid].FirstSample <= sample) lo = mid; else hi = mid - 1;
        }
        return lo;
    }

    /// <summary>A sample's name: the file's name, or "file.npy[i]" for a sample of a batch file.</summary>
    public string NameOf(int sample)
    {
        var (file, within) = Locate(sample);
        var name = System.IO.Path.GetFileName(file.Path);
        return file.NamedByIndex ? $"{name}[{within}]" : name;
    }

    /// <summary>
    /// Identifies this job's inputs for a resumed run: every file's path, length, modification time
    /// and sample count, in order (a file changed since is a different job).
    /// </summary>
    public string Identity()
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var f in Files)
            sha.AppendData(Encoding.UTF8.GetBytes($"{f.Path}\n{f.Length}\n{f.Modified.Ticks}\n{f.Count}\n"));
        return Convert.ToHexString(sha.GetHashAndReset()).ToLowerInvariant();
    }

    /// <summary>True when every file is an image (one sample each): a unit may then decode the images itself.</summary>
    public bool AllImages => Files.All(f => f.Npy == null && f.Count == 1);

    /// <summary>The files' mean length in bytes (what a sample takes as encoded bytes).</summary>
    public long MeanFileBytes => Files.Count == 0 ? 0 : (long)Files.Average(f => f.Length);

    /// <summary>The bytes of an image sample's file (InputFileUnreadable where it cannot be read).</summary>
    public byte[] ReadBytes(int sample)
    {
        var bytes = ReadBytes(sample, null);
        // read into an array of its own: that array, unless the file came up short
        return System.Runtime.InteropServices.MemoryMarshal.TryGetArray(bytes, out var whole) && whole.Offset == 0 && whole.Count == whole.Array!.Length
            ? whole.Array : bytes.ToArray();
    }

    /// <summary>The bytes of an image sample's file, read into a slice of <paramref name="arena"/> (an array of their own without one; InputFileUnreadable where it cannot be read).</summary>
    internal ReadOnlyMemory<byte> ReadBytes(int sample, ByteArena? arena)
    {
        var file = CheckReadable(FileOf(sample));
        try
        {
            using var handle = File.OpenHandle(file.Path);
            long length = RandomAccess.GetLength(handle);
            if (length > Array.MaxLength) throw new IOException($"it is {length} bytes, more than one image may hold");
            var bytes = arena?.Take((int)length) ?? new byte[length];
            int got = 0;
            while (got < bytes.Length && RandomAccess.Read(handle, bytes.Span[got..], got) is var n and > 0) got += n;
            return bytes[..got]; // a file cut short while it was read is what it held then
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HeteroBatchException("InputFileUnreadable", FailureKind.InvalidData, $"{file.Path} could not be read: {e.Message}", file.Path, e);
        }
    }

    /// <summary>
    /// File <paramref name="at"/>, or InputFileUnreadable where it was refused when listed, or is no longer a regular
    /// file (checked again: it may have been replaced since; a FIFO would block its reader for ever).
    /// </summary>
    private Entry CheckReadable(int at, bool regularFile = true)
    {
        var file = Files[at];
        if (_refused.TryGetValue(at, out var why))
            throw new HeteroBatchException("InputFileUnreadable", FailureKind.InvalidData, $"{file.Path} could not be read: {why}.", file.Path);
        if (regularFile && Runtime.Libc.NotRegularFile(file.Path) is { } kind)
            throw new HeteroBatchException("InputFileUnreadable", FailureKind.InvalidData, $"{file.Path} could not be read: it is {kind}, not a regular file.", file.Path);
        return file;
    }

    /// <summary>Reads sample <paramref name="sample"/> into sample <paramref name="index"/> of <paramref name="batch"/>; returns the Stopwatch ticks spent reading the file (the rest was decoding).</summary>
    /// <remarks>Throws InputFileUnreadable for an image that is not a regular file (checked again here: it may have been replaced since it was listed) or whose name cannot be opened.</remarks>
    public long Load(int sample, TensorBatch batch, int index, ImagePreprocessing preprocessing)
    {
        int at = FileOf(sample);
        var (file, within) = (Files[at], sample - Files[at].FirstSample);
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        if (file.Npy is { } header)
        {
            CheckReadable(at, regularFile: false);
            Npy.ReadSamples(file.Path, header, within, 1, batch, index);
            return System.Diagnostics.Stopwatch.GetTimestamp() - start;
        }
        var bytes = ReadBytes(sample); // checked to be a regular file, as listed
        long read = System.Diagnostics.Stopwatch.GetTimestamp() - start;
        ImageInput.Load(bytes, file.Path, batch, index, preprocessing);
        return read;
    }
}
