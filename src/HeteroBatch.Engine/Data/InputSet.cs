

namespace HeteroBatch.Engine.Data;

/// <summary>The inputs of one run: a tensor per model input, all with the same number of samples, and a name per sample.</summary>
public sealed class InputSet
{
    public IReadOnlyList<TensorBatch> Tensors { get; }
    /// <summary>Where each sample came from: a file name, "file.npy[i]", or "synthetic[i]".</summary>
    public IReadOnlyList<string> Names { get; }
    public int Count => Tensors[0].Count;

    public InputSet(IReadOnlyList<TensorBatch> tensors, IReadOnlyList<string> names)
    {
        if (tensors.Count == 0 || tensors.Any(t => t.Count != tensors[0].Count) || names.Count != tensors[0].Count)
            throw new ArgumentException("every tensor and the names must hold the same number of samples");
        Tensors = tensors;
        Names = names;
    }

    /// <summary>Tensors already in memory; samples are named sample[i].</summary>
    public static InputSet Of(params TensorBatch[] tensors) =>
        new(tensors, Enumerable.Range(0, tensors[0].Count).Select(i => $"sample[{i}]").ToList());

    public static InputSet Synthetic(IReadOnlyList<TensorSpec> inputs, int count, ulong seed)
    {
        var tensors = inputs.Select(i => i.CheckUsable(isInput: true))
            .Select(i => SyntheticInput.Create(i.Name, i.SampleShape, count, seed, i.ElementType)).ToList();
        return new InputSet(tensors, Enumerable.Range(0, count).Select(i => $"synthetic[{i}]").ToList());
    }

    /// <summary>Expands folders into their image and .npy files (sorted by name) and keeps files as given.</summary>
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
            else if (File.Exists(p)) files.Add(Path.GetFullPath(p));
            else throw new HeteroBatchException("InputFileNotFound", FailureKind.ObjectNotFound, $"Input not found: {p}", p);
        }
        if (files.Count == 0) throw new HeteroBatchException("InputFolderEmpty", FailureKind.ObjectNotFound, "No input files were given.");
        return files;
    }

    private static bool IsNpy(string f) => Path.GetExtension(f).Equals(".npy", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Reads image and .npy files for a model with one input. An .npy file holds either one
    /// sample (the input's per-sample shape) or a batch (one more leading axis). Everything is
    /// checked before anything runs.
    /// </summary>
    public static InputSet FromFiles(IReadOnlyList<string> files, IReadOnlyList<TensorSpec> inputs)
    {
        if (inputs.Count != 1)
            throw new HeteroBatchException("InputFilesNeedOneInput", FailureKind.InvalidArgument,
                $"The model has {inputs.Count} inputs ({string.Join(", ", inputs.Select(i => i.Name))}); files can feed a model with one input.");
        var spec = inputs[0].CheckUsable(isInput: true);

        var npy = new Dictionary<string, TensorBatch>();
        var names = new List<string>();
        foreach (var f in files)
        {
            if (IsNpy(f))
            {
                var t = Npy.Read(f, spec.Name);
                if (t.ElementType != spec.ElementType)
                    throw new HeteroBatchException("InputTypeMismatch", FailureKind.InvalidData, $"{f} holds {t.ElementType}; the model's input '{spec.Name}' takes {spec.ElementType}.", f);
                var full = t.ShapeFor(t.Count);
                if (full.SequenceEqual(spec.SampleShape)) t = new TensorBatch(spec.Name, spec.SampleShape, 1, t.Data, t.ElementType);
                else if (!t.SampleShape.SequenceEqual(spec.SampleShape))
                    throw new HeteroBatchException("InputShapeMismatch", FailureKind.InvalidData,
                        $"{f} has shape ({string.Join(", ", full)}); the model's input '{spec.Name}' takes samples of [{string.Join(", ", spec.SampleShape)}], or a batch of them.", f);
                npy[f] = t;
                var file = Path.GetFileName(f);
                names.AddRange(t.Count == 1 && full.SequenceEqual(spec.SampleShape) ? new[] { file } : Enumerable.Range(0, t.Count).Select(i => $"{file}[{i}]"));
            }
            else if (ImageInput.IsImage(f)) names.Add(Path.GetFileName(f));
            else throw new HeteroBatchException("InputFileUnsupported", FailureKind.InvalidArgument, $"{f} is neither an image (.jpg, .jpeg, .png) nor a .npy file.", f);
        }
        var batch = new TensorBatch(spec.Name, spec.SampleShape, names.Count, null, spec.ElementType);
        int at = 0;
        foreach (var f in files)
        {
            if (npy.TryGetValue(f, out var t)) { t.CopyTo(0, t.Count, batch, at); at += t.Count; }
            else { ImageInput.Load(f, batch, at); at++; }
        }
        return new InputSet(new[] { batch }, names);
    }
}
