using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Data.Gpu;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Sessions;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace HeteroBatch.Engine.Units.Backends;

/// <summary>The encoded images of one block of a file job, as a unit that decodes them itself reads them.</summary>
/// <param name="Bytes">The file bytes of sample i of the block (empty where it could not be read).</param>
/// <param name="Name">The file of sample i, for errors.</param>
/// <param name="Errors">Set for sample i where it can be decoded neither on the unit nor on the CPU.</param>
public sealed record EncodedImages(Func<int, ReadOnlyMemory<byte>> Bytes, Func<int, string> Name, HeteroBatchException?[] Errors)
{
    /// <summary>Samples CPU threads may decode for the unit (from the back of its share, into pixels it copies in); null where none do.</summary>
    internal Data.PixelClaims? Claims { get; init; }
}

/// <summary>A session that takes encoded images (a block's JPEG bytes) and decodes them on its unit, instead of decoded tensors.</summary>
public interface IEncodedImageSession : IModelSession
{
    /// <summary>The block whose samples the next runs decode (set by the job between blocks, read by the unit's runs).</summary>
    EncodedImages? Source { get; set; }
    /// <summary>Samples the unit decoded, and those it gave to the CPU (not JPEG, or refused by the decoder), so far.</summary>
    (long OnUnit, long OnCpu) Decoded { get; }

    /// <summary>Sets the chunk it runs ranges in (at most the most it was opened for), and runs the model once at that shape (a first run plans its kernels), outside any timing.</summary>
    void Warm(int chunk);

    /// <summary>
    /// Where the unit's share of <see cref="Source"/> lies, and its share of the block after it where
    /// that block's bytes are read already (else null): a unit may decode its next range's first
    /// images while its current range's last ones infer. Set with <see cref="Source"/>, between blocks.
    /// </summary>
    void Ahead((int Offset, int Count) share, EncodedImages? next, (int Offset, int Count) nextShare) { }

    /// <summary>
    /// The job is done with <paramref name="source"/>'s block (its bytes go to a later block): whatever
    /// the unit decoded ahead from it and will not hand out is settled, so nothing reads those bytes
    /// any more. Between blocks, on the unit's thread.
    /// </summary>
    void Forget(EncodedImages source) { }

    /// <summary>Where the unit's time went so far, for sessions that decode in chunks beside inference (null for others).</summary>
    DecodingStages? Stages => null;

    /// <summary>Whether CPU threads may decode part of its share for it: it then copies their uint8 pixels (its model's input) in (see <see cref="EncodedImages"/>).</summary>
    bool TakesCpuPixels => false;
    /// <summary>Samples of its share whose pixels CPU threads decoded and it copied in, so far.</summary>
    long FromCpuThreads => 0;
    /// <summary>Threads of this host its decoding keeps busy besides its unit's worker (processors helping threads leave it).</summary>
    int HostThreads => 0;
}

/// <summary>
/// A decoding unit's stages, summed over the chunks that ran: <paramref name="DecodeMs"/> decoding them on the
/// threads that hand them to the device (until their GPU work is queued; until done where an image fell back to the
/// CPU), <paramref name="InferMs"/> running the model on them, <paramref name="WaitMs"/> the unit's worker waiting for
/// decoding (a chunk not ready when the one before had run, the device finishing a resize, the end of a range waiting
/// for the guesses of the next, guesses that missed being dropped).
/// Of <paramref name="DecodeMs"/>, <paramref name="ParseMs"/> went to reading headers, <paramref name="SubmitMs"/> to
/// nvJPEG's calls, <paramref name="ResizeMs"/> to queueing the resizes; the rest to fetching the bytes, waiting for the
/// batch's last use, and CPU fallbacks. <paramref name="ResizedTogether"/> images were resized by batched calls (the rest one call each).
/// </summary>
public sealed record DecodingStages(int Chunks, long Images, double DecodeMs, double InferMs, double WaitMs, double ParseMs = 0, double SubmitMs = 0, double ResizeMs = 0, long ResizedTogether = 0)
{
    public override string ToString() =>
        $"{Chunks} chunks, {Images} images: decoding {Per(DecodeMs)} ms a chunk ({Rate(DecodeMs)} images/s on its thread; " +
        $"headers {Per(ParseMs)}, nvJPEG {Per(SubmitMs)}, resizes {Per(ResizeMs)}, {ResizedTogether} images resized in batched calls), inference {Per(InferMs)} ms a chunk ({Rate(InferMs)} images/s), waiting for decoding {WaitMs.ToString("F0", System.Globalization.CultureInfo.InvariantCulture)} ms";
    private string Per(double ms) => Chunks == 0 ? "-" : (ms / Chunks).ToString("F2", System.Globalization.CultureInfo.InvariantCulture);
    private string Rate(double ms) => ms <= 0 ? "-" : (Images * 1000.0 / ms).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>
/// A GPU that decodes its own share of a file job: nvJPEG (on the GPU's JPEG engines where it has
/// them) and NPP decode and resize each image of a range straight into a uint8 device batch, and
/// the model's uint8-input form (normalisation as a prefix of the graph) runs on that device
/// memory through IOBinding, so decoded pixels never cross PCIe. A range runs as chunks of a fixed
/// size (the GPU keeps one shape), the next chunk decoding while the current one infers. An image
/// the GPU cannot decode is decoded on the CPU to the same crop (uint8) and copied in; one neither
/// can decode is a failed sample of the block.
/// Threads: runs on its unit's worker, which queues the next chunks' decoding, each into a device batch of
/// its own, on threads of their own (<see cref="DecodeLanes"/>: <see cref="EngineOptions.GpuDecodeThreads"/>
/// at once, in order) and waits for each before it infers (a device batch is never used by two at once);
/// <see cref="Source"/> is set between blocks.
/// </summary>
internal sealed class CudaImageSession : IEncodedImageSession
{
    private readonly GpuJpegDecoder _decoder;
    private readonly DeviceImageBatch[] _batches;
    private readonly LoadedModel _model;
    private readonly DeviceInputRunner _runner;
    private int _chunk;
    private long _onUnit, _onCpu, _fromCpuThreads;
    private int _chunks;
    private long _images;
    private double _decodeMs, _inferMs, _waitMs, _parseMs, _submitMs, _resizeMs;
    private long _resizedTogether;

    public ModelSignature Signature => _model.Signature;
    public HashSet<int> WarmedSizes { get; } = new();
    public EncodedImages? Source { get; set; }
    private (int Offset, int End) _share;
    private EncodedImages? _next;
    private (int Offset, int Count) _nextShare;
    /// <summary>Which chunk decodes into which device batch, and when (chunks decoded ahead are counted and their errors marked only when they run).</summary>
    private readonly ChunkRing<Decoding> _ring;

    public void Forget(EncodedImages source) => _ring.Forget(source);
    public bool TakesCpuPixels => true;
    public long FromCpuThreads => Interlocked.Read(ref _fromCpuThreads);
    public int HostThreads => _lanes.Threads;
    /// <summary>The threads the ring's decodes run on, in the order queued (<see cref="EngineOptions.GpuDecodeThreads"/> at once).</summary>
    private readonly DecodeLanes _lanes;
    /// <summary>Images decoded for chunks that ran (not those decoded ahead for a range that has not run).</summary>
    public (long OnUnit, long OnCpu) Decoded => (Interlocked.Read(ref _onUnit), Interlocked.Read(ref _onCpu));
    /// <summary>Read between blocks (the worker writes them while a range runs).</summary>
    public DecodingStages Stages => new(_chunks, _images, _decodeMs, _inferMs, _waitMs, _parseMs, _submitMs, _resizeMs, _resizedTogether);

    private CudaImageSession(GpuJpegDecoder decoder, DeviceImageBatch[] batches, int threads, LoadedModel model, DeviceInputRunner runner, int chunk)
    {
        (_decoder, _batches, _model, _runner, _chunk) = (decoder, batches, model, runner, chunk);
        _lanes = new DecodeLanes(threads, $"gpu{decoder.DeviceId} decode");
        _ring = new ChunkRing<Decoding>(batches.Length, (source, first, n, b) => Decode(source, first, n, _batches[b]), b => _batches[b].Synchronize(),
            (_, work) => _lanes.Run(work));
    }

    /// <summary>Opens decoding and the uint8 form of <paramref name="model"/> on the unit's GPU, for chunks of at most <paramref name="maxChunk"/> images (<see cref="Warm"/> sets the chunk). Throws GpuDecodeUnavailable, InputPrefixUnsupported or SessionFailed.</summary>
    public static CudaImageSession Open(ComputeUnit unit, ModelSource model, EngineOptions settings, TensorSpec input, ImagePreprocessing preprocessing, int maxChunk)
    {
        var decodeSettings = GpuDecodeSettings.ForInput(input, preprocessing, maxChunk) with { BatchedResize = settings.GpuBatchedResize };
        var decoder = new GpuJpegDecoder(unit.DeviceId, decodeSettings);
        var batches = new List<DeviceImageBatch>();
        LoadedModel? session = null;
        try
        {
            // one batch inferring, one decoded and waiting to (its GPU work finishing meanwhile), one decoding on each decoding thread
            int threads = Math.Clamp(settings.GpuDecodeThreads, 1, EngineOptions.MaxGpuDecodeThreads);
            for (int i = 0; i < threads + 2; i++) batches.Add(decoder.CreateBatch());
            using (var options = UnitBackends.Cuda.Options(unit, settings))
                session = new LoadedModel(InputPrefix.PathFor(model, unit.Precision, preprocessing), options);
            var runner = new DeviceInputRunner(session, unit.DeviceId);
            return new CudaImageSession(decoder, batches.ToArray(), threads, session, runner, maxChunk);
        }
        catch
        {
            session?.Dispose();
            batches.ForEach(b => b.Dispose());
            decoder.Dispose();
            throw;
        }
    }

    public void Ahead((int Offset, int Count) share, EncodedImages? next, (int Offset, int Count) nextShare)
    {
        _share = (share.Offset, share.Offset + share.Count);
        (_next, _nextShare) = (next, nextShare);
    }

    /// <summary>Decodes and runs samples [offset, offset + count) of <see cref="Source"/> (the float inputs are not read), writing their outputs.</summary>
    public void Run(IReadOnlyList<TensorBatch> inputs, IReadOnlyList<TensorBatch> outputs, int offset, int count, int padTo = 0, CancellationToken cancel = default)
    {
        var source = Source ?? throw new InvalidOperationException("the image session has no block to decode");
        cancel.ThrowIfCancellationRequested();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        // the next chunks decode on threads of their own (parsing on the CPU, decoding on the JPEG engines, each batch on its
        // own stream) while one infers: submitting a decode waits for parts of it, which would hold inference up
        foreach (var chunk in _ring.Chunks(source, offset, count, _chunk, i => Upcoming(source, offset + count, i)))
        {
            cancel.ThrowIfCancellationRequested();
            var batch = _batches[chunk.Batch];
            batch.Synchronize();
            _waitMs += clock.Elapsed.TotalMilliseconds; // inference waited for this chunk's decoding
            clock.Restart();
            _runner.Run(batch.Pointer, TensorElementType.UInt8, chunk.Count, outputs, chunk.First, padTo: _chunk);
            _inferMs += clock.Elapsed.TotalMilliseconds;
            // counted, and its failed samples marked, only once it ran: a range that fails is run again by another unit
            Apply(source, chunk.Decoded);
            (_chunks, _images) = (_chunks + 1, _images + chunk.Count);
            clock.Restart();
        }
        _waitMs += clock.Elapsed.TotalMilliseconds;
    }

    /// <summary>The i-th chunk of the range likely to come after one that ended at <paramref name="end"/>: the rest of this block's share, else the next block's share.</summary>
    private (EncodedImages Source, int First, int Count)? Upcoming(EncodedImages source, int end, int i)
    {
        if (end >= _share.Offset && end < _share.End)
        {
            int first = end + i * _chunk;
            return first < _share.End ? (source, first, Math.Min(_chunk, _share.End - first)) : null;
        }
        if (_next != null && _nextShare.Count > 0)
        {
            int first = _nextShare.Offset + i * _chunk, end2 = _nextShare.Offset + _nextShare.Count;
            return first < end2 ? (_next, first, Math.Min(_chunk, end2 - first)) : null;
        }
        return null;
    }

    public void Warm(int chunk)
    {
        _chunk = Math.Clamp(chunk, 1, _batches[0].Capacity);
        if (!WarmedSizes.Add(_chunk)) return;
        _batches[0].Synchronize();
        _runner.Run(_batches[0].Pointer, TensorElementType.UInt8, _chunk, _model.AllocateOutputs(_chunk), 0, padTo: _chunk);
    }

    /// <summary>What decoding a chunk did: images decoded on the GPU, on the CPU, copied in from CPU threads, and the samples neither could decode.</summary>
    private sealed record Decoding(long OnUnit, long OnCpu, IReadOnlyList<(int Sample, HeteroBatchException Error)> Errors, double Ms, (double Parse, double Submit, double Resize) Host, int ResizedTogether,
        long FromCpuThreads = 0);

    /// <summary>Counts a chunk's decoding and marks its failed samples (only for a chunk that runs).</summary>
    private void Apply(EncodedImages source, Decoding decoded)
    {
        Interlocked.Add(ref _onUnit, decoded.OnUnit);
        Interlocked.Add(ref _onCpu, decoded.OnCpu);
        Interlocked.Add(ref _fromCpuThreads, decoded.FromCpuThreads);
        _decodeMs += decoded.Ms;
        (_parseMs, _submitMs, _resizeMs) = (_parseMs + decoded.Host.Parse, _submitMs + decoded.Host.Submit, _resizeMs + decoded.Host.Resize);
        _resizedTogether += decoded.ResizedTogether;
        foreach (var (sample, error) in decoded.Errors) source.Errors[sample] = error;
    }

    private Decoding Decode(EncodedImages source, int first, int n, DeviceImageBatch into)
    {
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        var bytes = new ReadOnlyMemory<byte>[n];
        // a sample CPU threads took from the back of the share is theirs (its bytes are not decoded here); the rest the unit claims
        var claims = source.Claims;
        var byThreads = new bool[n];
        for (int i = 0; i < n; i++)
            if (claims == null || claims.ClaimForUnit(first + i)) bytes[i] = source.Bytes(first + i);
            else byThreads[i] = true;
        var status = _decoder.Decode(bytes, into);
        var (host, resizedTogether) = (into.LastTimes, into.ResizedTogether);
        long onUnit = 0, onCpu = 0, fromThreads = 0;
        var errors = new List<(int, HeteroBatchException)>();
        for (int i = 0; i < n; i++)
        {
            if (byThreads[i])
            {
                // copied in after the chunk's decoding, on its stream, from the block's page-locked pixels (they stay until the block's units have run)
                int slot = claims!.SlotWhenDecoded(first + i);
                if (source.Errors[first + i] != null) continue; // the threads could not decode it: a failed sample already
                into.QueueUpload(i, claims.Pixels.Bytes(slot, 1));
                fromThreads++;
                continue;
            }
            if (status[i] is GpuDecodeStatus.Decoded or GpuDecodeStatus.DecodedByFallback) { onUnit++; continue; }
            // not a JPEG, or one the GPU refused: the same crop from the CPU's decoder, copied in
            try
            {
                into.Upload(i, CpuCrop(bytes[i].ToArray(), source.Name(first + i)));
                onCpu++;
            }
            catch (HeteroBatchException e) when (e is { Kind: FailureKind.InvalidData, StopsCommand: false })
            {
                errors.Add((first + i, e));
            }
        }
        return new Decoding(onUnit, onCpu, errors, System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds, host, resizedTogether, fromThreads);
    }

    /// <summary>The image's resize and centre crop as uint8 RGB, decoded on the CPU (the exact mode's pixels).</summary>
    private byte[] CpuCrop(byte[] file, string path)
    {
        var s = _decoder.Settings;
        var (pixels, w, h) = ImageInput.Decode(file, path);
        var g = s.Preprocessing.Geometry(w, h, s.Width, s.Height);
        return Resampler.ResizeWindow(pixels, w, h, w * 4, 4, g.Width, g.Height, g.Left, g.Top, s.Width, s.Height);
    }

    public void Dispose()
    {
        _lanes.Dispose(); // lets a decode still queued end before its batch goes
        _runner.Dispose();
        _model.Dispose();
        foreach (var b in _batches) b.Dispose();
        _decoder.Dispose();
    }
}
