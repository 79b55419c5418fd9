using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Sessions;

namespace HeteroBatch.Engine.Units.Backends;

/// <summary>
/// A remote unit that decodes its own share of a file job: the server's encoded-image form of the model
/// (<see cref="EncodedImageModel"/>) is sent each run's image files as one BYTES tensor (an element a sample, the
/// file's bytes), so that the host reading the files decodes none of them, and the answers are written into the
/// run's rows. A request the server refuses (an image it cannot decode, or any other refusal) is sent again as
/// floats decoded here with the job's preprocessing; an image this host cannot decode either is a failed sample of
/// the block with its error. A server that has gone fails that float request too, and the unit fails as any
/// remote unit does (its share moves to the other units).
/// Threads: runs only on its unit's worker; <see cref="Source"/> is set between blocks.
/// </summary>
internal sealed class RemoteImageSession : IEncodedImageSession
{
    private readonly IRemoteSession _encoded, _floats;
    private readonly TensorSpec _bytesInput, _input;
    private readonly ImagePreprocessing _preprocessing;
    private long _onUnit, _onCpu;

    public ModelSignature Signature => _floats.Signature;
    public HashSet<int> WarmedSizes { get; } = new();
    public EncodedImages? Source { get; set; }
    public (long OnUnit, long OnCpu) Decoded => (Interlocked.Read(ref _onUnit), Interlocked.Read(ref _onCpu));
    /// <summary>Bytes of the requests of encoded images sent so far (as <see cref="IRemoteSession.BytesSent"/> counts them).</summary>
    public long EncodedBytesSent => _encoded.BytesSent;
    /// <summary>The name the server serves the encoded form under.</summary>
    public string EncodedModel { get; }

    private RemoteImageSession(IRemoteSession encoded, IRemoteSession floats, string encodedModel, TensorSpec bytesInput, TensorSpec input, ImagePreprocessing preprocessing)
    {
        (_encoded, _floats, EncodedModel, _bytesInput, _input, _preprocessing) = (encoded, floats, encodedModel, bytesInput, input, preprocessing);
    }

    /// <summary>
    /// The encoded-image form of <paramref name="model"/> at <paramref name="endpoint"/> (<paramref name="named"/>, else
    /// <see cref="EncodedImageModel.NameFor"/>), or null where the server has no model of the name the rule gives (the unit
    /// then runs floats as before; a model named by the user that is not there is RemoteModelNotFound). RemoteDecodeUnavailable where a model of that name is not
    /// the form (not one BYTES input, other outputs), or the job's preprocessing is not the one a HeteroBatch server
    /// decodes with; the errors of opening it (a server that answers 400 for an unknown model, as Triton's REST does) as they come.
    /// </summary>
    public static RemoteImageSession? Open(Func<string, IRemoteSession> open, Uri endpoint, string model, string? named, TensorSpec input, ImagePreprocessing preprocessing)
    {
        var name = named ?? EncodedImageModel.NameFor(model);
        IRemoteSession? encoded = null, floats = null;
        try
        {
            try { encoded = open(name); }
            catch (HeteroBatchException e) when (e.Kind == FailureKind.ObjectNotFound && named == null) { return null; }
            floats = open(model);
            var bytesInput = EncodedImageModel.InputOf(encoded.Signature, floats.Signature)
                ?? throw Unavailable(endpoint, name, "its metadata does not declare one BYTES input of shape [-1] or [-1,1] and the outputs of " +
                    $"'{model}' (names, data types, shapes)");
            if (!EncodedImageModel.SamePixels(preprocessing, EncodedImageModel.Preprocessing))
                throw Unavailable(endpoint, name, $"it decodes with ImageNet's preprocessing ({EncodedImageModel.Preprocessing}); this job's is {preprocessing}");
            return new RemoteImageSession(encoded, floats, name, bytesInput, input, preprocessing);
        }
        catch
        {
            encoded?.Dispose();
            floats?.Dispose();
            throw;
        }
    }

    private static HeteroBatchException Unavailable(Uri endpoint, string name, string why) => new("RemoteDecodeUnavailable", FailureKind.InvalidOperation,
        $"The server at {endpoint.GetLeftPart(UriPartial.Authority)} serves '{name}', but its images cannot be sent to it: {why}.", name);

    /// <summary>Sends samples [offset, offset + count) of <see cref="Source"/> as encoded images (the float inputs are not read), writing their outputs.</summary>
    public void Run(IReadOnlyList<TensorBatch> inputs, IReadOnlyList<TensorBatch> outputs, int offset, int count, int padTo = 0, CancellationToken cancel = default)
    {
        var source = Source ?? throw new InvalidOperationException("the image session has no block to send");
        // samples whose file could be read (the others are failed samples of the block already)
        var samples = Enumerable.Range(offset, count).Where(i => source.Errors[i] == null).ToList();
        if (samples.Count == 0) return;
        try
        {
            var files = samples.Select(i => source.Bytes(i)).ToList();
            long[] shape = _bytesInput.SampleShape.Length == 0 ? new long[] { files.Count } : new long[] { files.Count, 1 };
            Into(outputs, samples, direct: true, (o, at) => _encoded.RunBytes(_bytesInput.Name, shape, files, o, at, cancel));
            Interlocked.Add(ref _onUnit, samples.Count);
        }
        catch (HeteroBatchException) when (!cancel.IsCancellationRequested)
        {
            var batch = new TensorBatch(_input.Name, _input.SampleShape, samples.Count, null, _input.ElementType);
            var decoded = new List<int>();
            foreach (var i in samples)
            {
                try
                {
                    ImageInput.Load(source.Bytes(i).ToArray(), source.Name(i), batch, decoded.Count, _preprocessing);
                    decoded.Add(i);
                }
                catch (HeteroBatchException bad) when (bad is { Kind: FailureKind.InvalidData, StopsCommand: false }) { source.Errors[i] = bad; }
            }
            if (decoded.Count == 0) return;
            Into(outputs, decoded, direct: false, (o, at) => _floats.Run(new[] { batch }, o, 0, decoded.Count, cancel: cancel));
            Interlocked.Add(ref _onCpu, decoded.Count);
        }
    }

    /// <summary>
    /// Runs <paramref name="run"/> for the rows <paramref name="rows"/> of <paramref name="outputs"/>: straight into them where
    /// they are consecutive and <paramref name="direct"/>, else into buffers of their own (run at row 0) copied to each row after.
    /// </summary>
    private static void Into(IReadOnlyList<TensorBatch> outputs, List<int> rows, bool direct, Action<IReadOnlyList<TensorBatch>, int> run)
    {
        if (direct && rows[^1] - rows[0] + 1 == rows.Count)
        {
            run(outputs, rows[0]);
            return;
        }
        var own = outputs.Select(o => new TensorBatch(o.Name, o.SampleShape, rows.Count, null, o.ElementType)).ToList();
        run(own, 0);
        for (int k = 0; k < outputs.Count; k++)
            for (int j = 0; j < rows.Count; j++)
                own[k].Bytes(j, 1).CopyTo(outputs[k].Bytes(rows[j], 1));
    }

    /// <summary>Nothing to warm here: the server runs its own units warm (each run sends its whole range, whatever the chunk).</summary>
    public void Warm(int chunk) { }

    public void Dispose()
    {
        _encoded.Dispose();
        _floats.Dispose();
    }
}
