

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

    /// <param name="pinned">Put the values on the pinned object heap (for units that page-lock their inputs).</param>
    public static InputSet Synthetic(IReadOnlyList<TensorSpec> inputs, int count, ulong seed, bool pinned = false)
    {
        var tensors = inputs.Select(i => i.CheckUsable(isInput: true))
            .Select(i => SyntheticInput.Create(i.Name, i.SampleShape, count, seed, i.ElementType, pinned: pinned)).ToList();
        return new InputSet(tensors, Enumerable.Range(0, count).Select(i => $"synthetic[{i}]").ToList());
    }

    /// <summary>
    /// Every sample of these files in memory at once (for small jobs and tests; a job over many
    /// files streams them instead). Everything is read before anything runs.
    /// </summary>
    public static InputSet FromFiles(InputFiles files, ImagePreprocessing preprocessing)
    {
        var batch = new TensorBatch(files.Input.Name, files.Input.SampleShape, files.SampleCount, null, files.Input.ElementType);
        for (int i = 0; i < files.SampleCount; i++) files.Load(i, batch, i, preprocessing);
        return new InputSet(new[] { batch }, Enumerable.Range(0, files.SampleCount).Select(files.NameOf).ToList());
    }
}
