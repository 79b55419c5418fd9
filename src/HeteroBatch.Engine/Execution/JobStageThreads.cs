using System.Collections.Concurrent;
using System.Diagnostics;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Planning;

namespace HeteroBatch.Engine.Execution;

/// <summary>
/// The stages of a file job around inference, each on threads of its own: the feeder hands out
/// free blocks, each with free inputs, and queues their samples, decoders load samples into blocks (on processors the
/// units leave free; more while the units wait for input, unless the user chose the number), the
/// writer writes finished blocks in order and frees them. The first failure of any stage cancels
/// them all; <see cref="Finish"/> joins every thread (the owner joins its own threads) and rethrows it.
/// </summary>
internal sealed class JobStageThreads : IDisposable
{
    private readonly JobLayout _layout;
    private readonly InputFiles _files;
    private readonly ImagePreprocessing _loadAs; // how CPU threads decode a sample (RGB where units take pixels)
    private readonly JobOutput? _output;
    private readonly JobSummary _summary;
    private readonly RunSettings _settings;
    private readonly IReadOnlyList<int> _free;
    private readonly Action<IReadOnlyList<SamplePrediction>>? _onBlock;
    private readonly CancellationTokenSource _failed;
    private readonly BlockingCollection<JobBlock> _slots = new();
    private readonly BlockingCollection<BlockInputs> _inputs = new(); // handed on by blocks whose units have run
    private readonly BlockingCollection<DecodeWork> _samples = new();
    private readonly BlockingCollection<DecodeWork> _helpWork = new(); // samples of decoding units' shares CPU threads may take (never completed: the job's end cancels)
    private readonly DecodingHelp? _help;
    private readonly ImagePreprocessing _pixelsAs; // how helping threads decode: RGB pixels, as the decoding units hold them
    private readonly BlockingCollection<JobBlock> _decoded = new();
    private readonly BlockingCollection<JobBlock> _ran = new(FileJob.BlocksInFlight);
    private readonly Dictionary<int, JobBlock> _early = new(); // decoded before the blocks ahead of them (inference stage only)
    private readonly List<Thread> _decoders = new(); // grown by the inference stage only
    private readonly int _mostDecoders;
    private Thread? _feeder, _writer;
    private Exception? _firstFailure;
    private long _readTicks, _decodeTicks, _helpTicks;
    private int _helped;
    private ProgressCounter? _progress;
    private readonly UnitDecoding _unitDecoding;
    private IReadOnlyCollection<string> _gone = Array.Empty<string>(); // written by the inference stage, read by the feeder

    public JobStageThreads(JobLayout layout, IEnumerable<JobBlock> slots, IEnumerable<BlockInputs> inputs, InputFiles files, ImagePreprocessing loadAs, JobOutput? output,
        JobSummary summary, RunSettings settings, IReadOnlyList<int> free, Action<IReadOnlyList<SamplePrediction>>? onBlock, CancellationToken cancel, UnitDecoding unitDecoding,
        DecodingHelp? help = null)
    {
        (_layout, _files, _loadAs, _output, _summary, _settings, _free, _onBlock) = (layout, files, loadAs, output, summary, settings, free, onBlock);
        _unitDecoding = unitDecoding;
        (_help, _pixelsAs) = (help, loadAs with { ChannelOrder = ChannelOrder.Rgb });
        _failed = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        foreach (var s in slots) _slots.Add(s);
        foreach (var i in inputs) _inputs.Add(i);
        _mostDecoders = Math.Max(summary.DecodeThreads, Environment.ProcessorCount);
    }

    /// <summary>Cancelled by the user or by the first failure of any stage.</summary>
    public CancellationToken Token => _failed.Token;

    public void Start()
    {
        _progress = new ProgressCounter(_settings.Progress, _summary.Samples, _summary.SamplesResumed);
        _feeder = Named(Feed, "HeteroBatch feeder");
        for (int d = 0; d < _summary.DecodeThreads; d++)
        {
            bool helps = _help != null && d < _help.Threads; // the others leave processors to the decoding units' own threads
            _decoders.Add(Named(() => Decode(pinned: _free.Count > 0, helps), $"HeteroBatch decoder {d}"));
        }
        _writer = Named(Write, "HeteroBatch writer");
        _feeder.Start();
        _decoders.ForEach(d => d.Start());
        _writer.Start();
    }

    /// <summary>Records the first failure and stops every stage.</summary>
    public void Fail(Exception e)
    {
        if (e is AggregateException { InnerExceptions.Count: > 0 } a) e = a.InnerExceptions[0];
        if (e is not OperationCanceledException) Interlocked.CompareExchange(ref _firstFailure, e, null);
        _failed.Cancel();
    }

    /// <summary>Inference stage: the decoded block <paramref name="sequence"/>, waiting for it (and adding a decoder when the units wait, unless the user chose the number).</summary>
    public JobBlock NextDecoded(int sequence)
    {
        long w0 = Stopwatch.GetTimestamp();
        JobBlock? block;
        while (!_early.Remove(sequence, out block))
        {
            var got = _decoded.Take(Token);
            _early[got.Sequence] = got;
        }
        double waited = Stopwatch.GetElapsedTime(w0).TotalMilliseconds;
        var stages = _summary.Stages;
        stages.WaitForInputMs += waited;
        if (_settings.DecodeThreads <= 0 && sequence > 0 && _decoders.Count < _mostDecoders && waited > 0.1 * stages.InferMs / sequence)
        {
            // the units wait for input: another decoder (on any processor) helps more than it costs them
            var extra = Named(() => Decode(pinned: false, helps: false), $"HeteroBatch decoder {_decoders.Count}");
            _decoders.Add(extra);
            extra.Start();
        }
        return block;
    }

    /// <summary>Inference stage: the block <paramref name="sequence"/> if it is decoded already (it stays to be taken by <see cref="NextDecoded"/>), else null; does not wait.</summary>
    public JobBlock? PeekDecoded(int sequence)
    {
        while (_decoded.TryTake(out var got)) _early[got.Sequence] = got;
        return _early.GetValueOrDefault(sequence);
    }

    /// <summary>Inference stage: the units that failed so far; the feeder marks later blocks without them.</summary>
    public void Gone(IEnumerable<string> units) => Volatile.Write(ref _gone, units.ToHashSet());

    /// <summary>Inference stage: hands a block whose units have run to the writer, and its inputs to the feeder.</summary>
    public void Ran(JobBlock block)
    {
        _inputs.Add(block.HandOnInputs());
        _ran.Add(block, Token);
    }

    /// <summary>Ends the stages (after the last block, or on failure), joins their threads and rethrows the first failure.</summary>
    public void Finish()
    {
        _ran.CompleteAdding();
        if (_firstFailure != null) _failed.Cancel();
        _writer?.Join();
        _failed.Cancel(); // the feeder and decoders stop at their next sample
        _feeder?.Join();
        _decoders.ForEach(d => d.Join());
        _summary.DecodeThreads = _decoders.Count;
        UpdateDecodeStages();
        if (_firstFailure != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(_firstFailure).Throw();
    }

    public void Dispose()
    {
        _failed.Cancel();
        _failed.Dispose();
    }

    private static Thread Named(Action body, string name) => new(() => body()) { IsBackground = true, Name = name };

    /// <summary>Stage body: runs until done, cancelled, or failed (the failure goes to every stage).</summary>
    private void Guarded(Action body)
    {
        try { body(); }
        catch (OperationCanceledException) { }
        catch (Exception e) { Fail(e); }
    }

    // the feeder: hands out blocks as slots free up; decoders take their samples in order
    private void Feed() => Guarded(() =>
    {
        try
        {
            for (int b = 0; b < _layout.Blocks.Count; b++)
            {
                var block = _slots.Take(Token);
                block.Reuse(b, _layout.Blocks[b], _inputs.Take(Token));
                // as the blocks will run: without the units that failed (blocks marked before a failure are decoded where they run)
                var plan = _layout.PlanFor(block.Count);
                _unitDecoding.Mark(block, Volatile.Read(ref _gone) is { Count: > 0 } gone ? PlanScaling.Without(plan, gone) ?? plan : plan);
                for (int i = 0; i < block.Count; i++) _samples.Add(new DecodeWork(block, i), Token);
            }
        }
        finally { _samples.CompleteAdding(); }
    });

    /// <summary>A decoder's work: sample <paramref name="Index"/> of a block; or, with <paramref name="Claims"/>, a sample from the back of the block's decoding share <paramref name="Index"/>, if it is still free.</summary>
    private readonly record struct DecodeWork(JobBlock Block, int Index, PixelClaims? Claims = null, int Generation = 0);

    // a decoder: loads samples into their block; an input that cannot be read is a failed sample. One that helps the decoding
    // units takes samples from the backs of their shares when no block's sample waits (blocks being read come first)
    private void Decode(bool pinned, bool helps) => Guarded(() =>
    {
        if (pinned) Runtime.Libc.PinCurrentThread(_free.ToArray());
        var from = new[] { _samples, _helpWork };
        while (true)
        {
            DecodeWork work;
            if (!helps) { if (!_samples.TryTake(out work, Timeout.Infinite, Token)) return; }
            else BlockingCollection<DecodeWork>.TakeFromAny(from, out work, Token);
            if (work.Claims != null)
            {
                Help(work);
                continue;
            }
            var (block, i) = (work.Block, work.Index);
            long t0 = Stopwatch.GetTimestamp();
            if (block.ForUnitDecoding[i]) ReadForUnit(block, i);
            else Load(block, i);
            Interlocked.Add(ref _decodeTicks, Stopwatch.GetTimestamp() - t0);
            if (Interlocked.Increment(ref block.Decoded) == block.Count)
            {
                OfferHelp(block);
                _decoded.Add(block);
            }
        }
    });

    // a block whose files are read: the samples of its decoding shares CPU threads may take, the shares' turns interleaved
    private void OfferHelp(JobBlock block)
    {
        if (_help == null || block.Inputs.Claims is not { Shares: > 0 } claims) return;
        int most = Enumerable.Range(0, claims.Shares).Max(claims.RoomOf);
        for (int k = 0; k < most; k++)
            for (int share = 0; share < claims.Shares; share++)
                if (k < claims.RoomOf(share)) _helpWork.Add(new DecodeWork(block, share, claims, block.Sequence));
    }

    // a sample from the back of a decoding unit's share, decoded here from the bytes read for the unit into pixels the unit
    // copies in (if the unit has not reached it); one whose file could not be read is left to the unit, which fails it
    private void Help(DecodeWork work)
    {
        var claims = work.Claims!;
        if (claims.ClaimFromBack(work.Generation, work.Index, work.Block.Errors) is not var (sample, slot)) return;
        long t0 = Stopwatch.GetTimestamp();
        var block = work.Block;
        bool decoded = false;
        try
        {
            ImageInput.Load(block.Bytes[sample].Span, _files.NameOf(block.First + sample), claims.Pixels, slot, _pixelsAs);
            decoded = true;
        }
        catch (HeteroBatchException e) when (e is { Kind: FailureKind.InvalidData, StopsCommand: false }) { block.Errors[sample] = e; }
        finally
        {
            claims.Decoded(sample); // also where it failed: the unit must not wait for it
            Interlocked.Add(ref _helpTicks, Stopwatch.GetTimestamp() - t0);
            if (decoded) Interlocked.Increment(ref _helped);
        }
    }

    // a sample decoded here into the block's input; one that cannot be read is a failed sample
    private void Load(JobBlock block, int i)
    {
        try { Interlocked.Add(ref _readTicks, _files.Load(block.First + i, block.Input, i, _loadAs)); }
        catch (HeteroBatchException e) when (e is { Kind: FailureKind.InvalidData, StopsCommand: false })
        {
            block.Errors[i] = e;
            block.Input.Bytes(i, 1).Clear();
        }
    }

    // a sample a unit decodes itself: only its file's bytes are read here (its input stays undecoded)
    private void ReadForUnit(JobBlock block, int i)
    {
        block.Undecoded[i] = true;
        long t0 = Stopwatch.GetTimestamp();
        try { block.Bytes[i] = _files.ReadBytes(block.First + i, block.Arena); }
        catch (HeteroBatchException e) when (e is { Kind: FailureKind.InvalidData, StopsCommand: false }) { block.Errors[i] = e; }
        Interlocked.Add(ref _readTicks, Stopwatch.GetTimestamp() - t0);
    }

    /// <summary>On a unit's thread: decodes the samples of [offset, offset + count) that were left to a decoding unit (its range, taken over by a unit that runs decoded inputs).</summary>
    public void DecodeMissing(JobBlock block, int offset, int count)
    {
        for (int i = offset; i < offset + count; i++)
            if (block.Undecoded[i] && block.Errors[i] == null)
            {
                Load(block, i);
                block.Undecoded[i] = false;
            }
    }

    // the writer: rows and outputs of each finished block, in order; then the block's buffers are free again
    private void Write() => Guarded(() =>
    {
        var plan = _summary.Plan;
        foreach (var block in _ran.GetConsumingEnumerable(Token))
        {
            long t0 = Stopwatch.GetTimestamp();
            for (int i = 0; i < block.Count; i++)
                if (block.Errors[i] != null) block.FillMissing(i);
            var predictions = Predictions.Of(block.Outputs[0], 0, block.Count, block.First, _files.NameOf,
                i => block.Errors[i] == null ? plan.Shards[block.RanBy[i]].UnitId : null, i => block.Errors[i], _settings.TopK);
            _summary.SamplesFailed += block.Errors.Take(block.Count).Count(e => e != null);
            _output?.Commit(block.First, block.Count, block.Outputs, predictions);
            long h0 = Stopwatch.GetTimestamp();
            _onBlock?.Invoke(predictions);
            double handOn = Stopwatch.GetElapsedTime(h0).TotalMilliseconds;
            _summary.Stages.HandOnMs += handOn;
            _summary.SamplesRun += block.Count;
            _summary.Stages.WriteMs += Stopwatch.GetElapsedTime(t0).TotalMilliseconds - handOn;
            UpdateDecodeStages();
            _progress!.Count(block.Count);
            _progress.Report(_summary.Stages);
            _slots.Add(block);
        }
    });

    private void UpdateDecodeStages()
    {
        long read = Interlocked.Read(ref _readTicks);
        _summary.Stages.ReadMs = Stopwatch.GetElapsedTime(0, read).TotalMilliseconds;
        _summary.Stages.DecodeMs = Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _decodeTicks) - read).TotalMilliseconds;
        _summary.Stages.HelpDecodeMs = Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _helpTicks)).TotalMilliseconds;
        _summary.SamplesDecodedForUnits = Volatile.Read(ref _helped);
    }
}
