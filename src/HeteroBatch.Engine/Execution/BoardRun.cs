using System.Diagnostics;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Sessions;
using HeteroBatch.Engine.Units.Backends;

namespace HeteroBatch.Engine.Execution;

/// <summary>
/// What one board runs: the units taking part (<see cref="Plan"/>), the planned batches over the
/// buffers (each with its offset into them), and where each sample's output goes.
/// </summary>
internal sealed record BoardWork(BatchPlan Plan, IReadOnlyList<(BatchPlan Plan, int Offset)> Chunks,
    IReadOnlyList<TensorBatch> Inputs, IReadOnlyList<TensorBatch> Outputs)
{
    /// <summary>Filled per sample with the index of the shard of the run's whole plan that ran it; null when not wanted.</summary>
    public int[]? RanBy { get; init; }
    /// <summary>The one batch size a unit that keeps one shape runs (a short range padded to it), where it is not its shard's sub-batch.</summary>
    public IReadOnlyDictionary<string, int>? PadTo { get; init; }
    /// <summary>Units that run their own session here instead of their worker's (a GPU that decodes its share of a file job).</summary>
    public IReadOnlyDictionary<string, IModelSession>? Sessions { get; init; }
    /// <summary>Called before a unit runs decoded inputs of a range that may not be decoded yet (a range a decoding unit was to decode, taken over); decodes what is missing.</summary>
    public Action<int, int>? EnsureDecoded { get; init; }
}

/// <summary>What one board did: its wall time and each unit's run.</summary>
internal sealed record BoardOutcome(double WallMs, List<UnitRun> Runs);

/// <summary>
/// The one way a plan's work is run, for a batch in memory, a block of a file job and a served
/// request alike: every unit takes ranges from one <see cref="WorkBoard"/> on its own worker
/// thread (and, for a unit with several runs in flight, on threads of its own beside it) until no
/// range is left for it; a unit that fails hands its ranges to the others.
/// Threads: <see cref="Run"/> blocks its caller; the units report only through the board, their own
/// UnitRun (under its lock) and the <c>ran</c> callback.
/// </summary>
internal sealed class BoardRun
{
    private readonly EngineContext _context;
    private readonly BatchPlan _whole;
    private readonly ModelSource _model;
    private readonly RunSettings _settings;

    /// <param name="whole">The run's whole plan: <see cref="BoardWork.RanBy"/> holds indexes into its shards.</param>
    public BoardRun(EngineContext context, BatchPlan whole, ModelSource model, RunSettings settings)
    {
        _context = context;
        _whole = whole;
        _model = model;
        _settings = settings;
    }

    /// <summary>Runs every chunk of <paramref name="work"/> on one board; throws AllUnitsFailed or SamplesUnfinished if samples stay without output.</summary>
    /// <param name="ran">Called from the units' threads with the samples of each range done.</param>
    public BoardOutcome Run(BoardWork work, CancellationToken cancel, Action<int>? ran = null)
    {
        var plan = work.Plan;
        var board = new WorkBoard(plan, work.Chunks, _settings.Balance);
        var runs = plan.Shards.Select(s => new UnitRun
        {
            UnitId = s.UnitId, Precision = s.Unit.Precision,
            PlannedCount = work.Chunks.Sum(c => c.Plan.Shards.FirstOrDefault(x => x.UnitId == s.UnitId)?.Count ?? 0),
            PredictedMs = work.Chunks.Sum(c => c.Plan.Shards.FirstOrDefault(x => x.UnitId == s.UnitId)?.PredictedMs ?? 0),
        }).ToList();
        // the shard of the whole plan each of this board's units is
        var wholeIndex = plan.Shards.Select(s => _whole.Shards.FindIndex(x => x.UnitId == s.UnitId)).ToArray();
        using var cancelBoard = cancel.Register(board.Cancel);
        var clock = Stopwatch.StartNew();
        var tasks = plan.Shards.Select((s, i) =>
        {
            var worker = _context.Workers.For(s.Unit);
            return worker.Invoke(() =>
            {
                int pad = !UnitBackends.For(s.Unit).KeepsOneShape ? 0
                    : work.PadTo != null && work.PadTo.TryGetValue(s.UnitId, out var shape) ? shape : Math.Min(s.SubBatchSize, s.Count);
                var session = work.Sessions != null && work.Sessions.TryGetValue(s.UnitId, out var own) ? own : worker.Load(_model);
                var taker = new UnitTaker(i, wholeIndex[i], session, board, runs[i], work, _settings, clock, pad, ran);
                // a unit with several runs in flight (a remote server): one taker per run, all on the same board
                // (a session that decodes on its unit runs one range at a time: its device batches are its own)
                int inFlight = session is IEncodedImageSession ? 1 : Math.Max(1, s.InFlight);
                var others = Enumerable.Range(1, inFlight - 1).Select(_ => BlockingWork.Start(() => taker.TakeUntilDone(cancel))).ToArray();
                taker.TakeUntilDone(cancel);
                Task.WaitAll(others);
                return true;
            });
        }).ToArray();
        try { Task.WaitAll(tasks); }
        catch (AggregateException) { /* each unit's failure is recorded on its run */ }
        var wall = clock.Elapsed.TotalMilliseconds;
        cancel.ThrowIfCancellationRequested();

        if (runs.All(r => r.Failed))
            throw new HeteroBatchException("AllUnitsFailed", FailureKind.ResourceUnavailable,
                "Every unit failed: " + string.Join("; ", runs.Select(r => $"{r.UnitId}: {r.Error}"))) { StopsCommand = true };
        if (!board.AllDone)
            throw new HeteroBatchException("SamplesUnfinished", FailureKind.InvalidOperation,
                $"{board.Unfinished} samples got no output: " + string.Join("; ", runs.Where(r => r.Failed).Select(r => $"{r.UnitId}: {r.Error}"))) { StopsCommand = true };
        return new BoardOutcome(wall, runs);
    }

    /// <summary>One unit's taking of ranges from the board (on its worker, and beside it for runs in flight); its run is updated under the run's lock.</summary>
    private sealed class UnitTaker(int me, int wholeIndex, IModelSession session, WorkBoard board, UnitRun run, BoardWork work,
        RunSettings settings, Stopwatch clock, int padTo, Action<int>? ran)
    {
        private int _done;

        public void TakeUntilDone(CancellationToken cancel)
        {
            double last = 0;
            while (!cancel.IsCancellationRequested && board.Take(me) is { } range)
            {
                try
                {
                    if (settings.InjectFailure is { } f && f.UnitId == run.UnitId && Volatile.Read(ref _done) >= f.AfterSubBatches)
                        throw new HeteroBatchException("InjectedFailure", FailureKind.InvalidOperation, $"test failure injected after {_done} sub-batches");
                    if (session is not IEncodedImageSession) work.EnsureDecoded?.Invoke(range.Offset, range.Count);
                    session.Run(work.Inputs, work.Outputs, range.Offset, range.Count, padTo, cancel);
                    last = clock.Elapsed.TotalMilliseconds;
                    board.Done(me, range);
                    work.RanBy?.AsSpan(range.Offset, range.Count).Fill(wholeIndex);
                    ran?.Invoke(range.Count);
                    Interlocked.Increment(ref _done);
                    lock (run)
                    {
                        run.SubBatches++;
                        run.Count += range.Count;
                        if (range.Owner != me) run.TookOver += range.Count;
                    }
                }
                catch (OperationCanceledException) when (cancel.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception e)
                {
                    lock (run)
                    {
                        run.Failed = true;
                        run.Error ??= e.Message.Trim();
                    }
                    board.Fail(me, range);
                    break;
                }
            }
            // counted from the run's start: a unit that starts late (a worker waking, a copy first) keeps the run waiting as long
            lock (run) run.Ms = Math.Max(run.Ms, last);
        }
    }
}
