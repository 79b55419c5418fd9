using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Sessions;
using HeteroBatch.Engine.Units.Backends;

namespace HeteroBatch.Engine.Execution;

/// <summary>How CPU decoding threads help the units that decode their own share (<see cref="UnitDecoding.CpuHelp"/>).</summary>
/// <param name="Most">The most of each helped unit's share they decode (from its back).</param>
/// <param name="Threads">Decoding threads that help (the rest only read files).</param>
/// <param name="Pixels">A sample's pixels as the helped units copy them in (their model's uint8 input).</param>
/// <param name="BlockShare">The most of a block they decode.</param>
/// <param name="Units">The helped units.</param>
internal sealed record DecodingHelp(double Most, int Threads, TensorSpec Pixels, double BlockShare, IReadOnlySet<string> Units);

/// <summary>
/// The units of a file job that decode their own share of the images (a GPU with nvJPEG): their
/// sessions, which samples of each block go to them as bytes, and what they decoded. Opened during
/// the job's set-up; a unit that cannot decode (no nvJPEG, a model that is not one image input)
/// runs decoded inputs from the CPU threads like any other, and the job says why.
/// Threads: opened and reported on the job's thread; <see cref="Mark"/> runs on the feeder,
/// <see cref="Feed"/> on the inference stage between blocks.
/// </summary>
internal sealed class UnitDecoding : IDisposable
{
    private readonly Dictionary<string, IEncodedImageSession> _sessions;
    private readonly Dictionary<string, Units.ComputeUnit> _units;

    internal UnitDecoding(Dictionary<string, IEncodedImageSession> sessions, Dictionary<string, Units.ComputeUnit>? units = null)
    {
        _sessions = sessions;
        _units = units ?? new();
        Sessions = sessions.Count == 0 ? null : sessions.ToDictionary(kv => kv.Key, kv => (IModelSession)kv.Value);
    }

    /// <summary>The sessions to run instead of the workers' (null when no unit decodes); the same for every block.</summary>
    public IReadOnlyDictionary<string, IModelSession>? Sessions { get; }

    /// <summary>The units that decode their own share.</summary>
    public IReadOnlyCollection<string> Units => _sessions.Keys;

    /// <summary>The model's signature as a decoding unit runs it (its outputs are the model's); null when no unit decodes.</summary>
    public ModelSignature? Signature => _sessions.Values.FirstOrDefault()?.Signature;

    /// <summary>The largest chunk a setting allows (<see cref="EngineOptions.GpuDecodeChunk"/>, bounded however it was set).</summary>
    internal static int LargestChunk(int setting) => Math.Clamp(setting, 1, EngineOptions.MaxGpuDecodeChunk);

    /// <summary>
    /// The chunk a decoding unit runs its ranges of <paramref name="sub"/> samples in: ranges split
    /// into equal chunks of at most <paramref name="maxChunk"/> (<see cref="EngineOptions.GpuDecodeChunk"/>),
    /// at least two where a range has 32 samples or more (the next chunk decodes while one infers), so a
    /// range wastes little on padding.
    /// </summary>
    public static int ChunkFor(int sub, int maxChunk = EngineOptions.DefaultGpuDecodeChunk)
    {
        maxChunk = LargestChunk(maxChunk);
        if (sub < 32) return Math.Clamp(sub, 1, maxChunk);
        int chunks = Math.Max(2, (sub + maxChunk - 1) / maxChunk);
        return (sub + chunks - 1) / chunks;
    }

    /// <summary>Opens the image session of every unit of <paramref name="plan"/> that decodes its own share (none with DecodeOn Cpu, or when an input is not an image).</summary>
    public static UnitDecoding Open(EngineContext context, BatchPlan plan, ModelSource model, InputFiles files, RunSettings settings, List<string> notes)
    {
        var sessions = new Dictionary<string, IEncodedImageSession>();
        var units = new Dictionary<string, Units.ComputeUnit>();
        if (settings.DecodeOn == DecodeOn.Cpu || !files.AllImages) return new UnitDecoding(sessions);
        try
        {
            foreach (var shard in plan.Shards)
            {
                try
                {
                    var session = context.Workers.For(shard.Unit).Invoke(() =>
                        UnitBackends.For(shard.Unit).OpenImageSession(shard.Unit, model, context.Options, files.Input, settings.Preprocessing, LargestChunk(context.Options.GpuDecodeChunk))).GetAwaiter().GetResult();
                    if (session != null) (sessions[shard.UnitId], units[shard.UnitId]) = (session, shard.Unit);
                }
                catch (HeteroBatchException e)
                {
                    notes.Add($"{shard.UnitId} decodes nothing ([{e.ErrorId}] {e.Message}); CPU threads decode its share");
                }
            }
        }
        catch
        {
            foreach (var s in sessions.Values) s.Dispose();
            throw;
        }
        return new UnitDecoding(sessions, units);
    }

    /// <summary>Sets each decoding unit's chunk from its range in the job's full block and runs it once there.</summary>
    public void Warm(EngineContext context, JobLayout layout)
    {
        foreach (var shard in layout.PlanFor(layout.BlockSize).Shards)
            if (_sessions.TryGetValue(shard.UnitId, out var session))
            {
                int chunk = ChunkFor(layout.FullShape[shard.UnitId], context.Options.GpuDecodeChunk);
                context.Workers.For(shard.Unit).Invoke(() => { session.Warm(chunk); return true; }).GetAwaiter().GetResult();
            }
    }

    private DecodingHelp? _help;

    /// <summary>
    /// Whether CPU decoding threads help the decoding units, kept for <see cref="Mark"/> (where every unit of the job decodes its own share,
    /// so the threads only read files): those whose sessions take pixels decoded on the CPU, when
    /// <see cref="EngineOptions.CpuDecodeShare"/> is above 0 and threads are left once each unit's own decoding
    /// threads, the writer and the feeder have a processor; at most half the decoding threads and one a physical core of
    /// <paramref name="cores"/> (the free processors' physical cores where the OS says; asked only when threads would help), less one: the rest of the host's work needs processors too (on 2 x H200,
    /// 26 helping threads on 32 processors took 10.7-14.2 ms a sample against 6.5-6.8 for 12 on 16, and writing rows took
    /// up to twice as long; with 4 or 12 the jobs were faster than with 26). Null where they do not help.
    /// </summary>
    public DecodingHelp? CpuHelp(BatchPlan plan, EngineOptions options, int decodeThreads, Func<int?>? cores = null)
    {
        double most = Math.Clamp(options.CpuDecodeShare, 0, EngineOptions.MaxCpuDecodeShare);
        var helped = _sessions.Where(kv => kv.Value.TakesCpuPixels).Select(kv => kv.Key).ToHashSet();
        int threads = Math.Min(decodeThreads - _sessions.Values.Sum(s => s.HostThreads) - 2, decodeThreads / 2);
        if (!(most > 0) || helped.Count == 0 || threads < 1) return _help = null; // (NaN too)
        if (cores?.Invoke() is int physical) threads = Math.Min(threads, physical - 1); // read only where threads would help
        if (threads < 1) return _help = null;
        double blockShare = most * plan.Shards.Where(s => helped.Contains(s.UnitId)).Sum(s => s.Count) / plan.BatchSize;
        return _help = new DecodingHelp(most, threads, _sessions[helped.First()].Signature.Inputs[0], blockShare, helped);
    }

    /// <summary>Whether a decoding unit of <paramref name="plan"/> copies from host memory that should be page-locked (file bytes, pixels).</summary>
    public bool WantPageLocked(BatchPlan plan, EngineOptions options) =>
        plan.Shards.Any(s => _sessions.ContainsKey(s.UnitId) && UnitBackends.For(s.Unit).WantsPageLockedInputs(s.Unit, options));

    /// <summary>Feeder: marks the samples of <paramref name="block"/> that fall in a decoding unit's share of its plan, and opens the shares CPU threads may help with.</summary>
    public void Mark(JobBlock block, BatchPlan plan)
    {
        if (_sessions.Count == 0) return;
        var helped = new List<(int Offset, int Count)>();
        foreach (var shard in plan.Shards)
            if (_sessions.ContainsKey(shard.UnitId))
            {
                block.ForUnitDecoding.AsSpan(shard.Offset, shard.Count).Fill(true);
                if (_help?.Units.Contains(shard.UnitId) == true) helped.Add((shard.Offset, shard.Count));
            }
        block.Inputs.Claims?.Open(block.Sequence, block.Count, helped, _help?.Most ?? 0);
    }

    /// <summary>Inference stage, before a block's board: the decoding units read this block's bytes.</summary>
    public void Feed(JobBlock block, BatchPlan plan, JobBlock? upcoming, BatchPlan? upcomingPlan, InputFiles files)
    {
        if (_sessions.Count == 0) return;
        var source = SourceOf(block, files);
        var next = upcoming != null && upcomingPlan != null ? SourceOf(upcoming, files) : null;
        foreach (var (unit, session) in _sessions)
        {
            session.Source = source;
            session.Ahead(ShareOf(plan, unit), next, upcomingPlan == null ? (0, 0) : ShareOf(upcomingPlan, unit));
        }
    }

    private readonly Dictionary<int, EncodedImages> _sources = new(); // by block sequence, until the block is released

    // one source object per block, the same when it was the upcoming block and when it runs (a unit that decoded ahead knows it by it)
    private EncodedImages SourceOf(JobBlock block, InputFiles files)
    {
        if (_sources.TryGetValue(block.Sequence, out var known)) return known;
        var source = new EncodedImages(i => BytesOf(block, i, files), i => files.NameOf(block.First + i), block.Errors) { Claims = block.Inputs.Claims };
        _sources[block.Sequence] = source;
        return source;
    }

    /// <summary>
    /// Inference stage, once a block's units have run and before its inputs go to a later block: each decoding
    /// unit settles what it decoded ahead from the block and will not use (a share another unit took), on its
    /// own thread, so that nothing reads those bytes once they hold another block's.
    /// </summary>
    public void Release(EngineContext context, JobBlock block)
    {
        if (!_sources.Remove(block.Sequence, out var source)) return;
        foreach (var (unit, session) in _sessions)
            context.Workers.For(_units[unit]).Invoke(() => { session.Forget(source); return true; }).GetAwaiter().GetResult();
    }

    /// <summary>
    /// The file bytes of sample <paramref name="i"/> of <paramref name="block"/> for a unit that decodes: those read for it, or,
    /// for a sample CPU threads decoded for a unit that failed and a decoding unit took over, its file read again (empty,
    /// with the sample's error set, where it cannot be read).
    /// </summary>
    internal static ReadOnlyMemory<byte> BytesOf(JobBlock block, int i, InputFiles files)
    {
        if (!block.Bytes[i].IsEmpty || block.ForUnitDecoding[i] || block.Errors[i] != null) return block.Bytes[i];
        try { return files.ReadBytes(block.First + i, null); }
        catch (HeteroBatchException e) when (e is { Kind: FailureKind.InvalidData, StopsCommand: false })
        {
            block.Errors[i] = e;
            return ReadOnlyMemory<byte>.Empty;
        }
    }

    private static (int Offset, int Count) ShareOf(BatchPlan plan, string unit) =>
        plan.Shards.FirstOrDefault(s => s.UnitId == unit) is { } s ? (s.Offset, s.Count) : (0, 0);

    /// <summary>What each decoding unit decoded, and its stages where it has them, into the job's summary.</summary>
    public void Report(JobSummary summary)
    {
        foreach (var (unit, session) in _sessions)
        {
            summary.UnitDecoding.Add(session.TakesCpuPixels && _help != null
                ? $"{unit} decoded {session.Decoded.OnUnit} images itself, copied in {session.FromCpuThreads} that CPU threads decoded for it, and had {session.Decoded.OnCpu} decoded on the CPU (not JPEG, or refused)"
                : $"{unit} decoded {session.Decoded.OnUnit} images itself and had {session.Decoded.OnCpu} decoded on the CPU (not JPEG, or refused)");
            if (session.Stages is not { Chunks: > 0 } stages) continue;
            summary.UnitDecoding.Add($"{unit}: {stages}");
            summary.DecodingStages[unit] = stages;
        }
    }

    private readonly List<IDisposable> _held = new();

    /// <summary>Releases <paramref name="resource"/> (page-locked file bytes the sessions copy from) only once every session is disposed: a session settles its copies first.</summary>
    public void HoldUntilDisposed(IDisposable resource) => _held.Add(resource);

    public void Dispose()
    {
        foreach (var s in _sessions.Values) s.Dispose();
        foreach (var r in _held) r.Dispose();
        _held.Clear();
    }
}
