using System.Diagnostics;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Sessions;
using HeteroBatch.Engine.Units;
using HeteroBatch.Engine.Units.Backends;

namespace HeteroBatch.Engine.Execution;

/// <summary>
/// Runs a plan: each unit's share on its own worker thread, every sub-batch a view into one
/// input buffer writing straight into one output buffer. A unit that fails hands its unfinished
/// samples to the others; every sample gets exactly one output or the run fails.
/// Threads: <see cref="Run"/> is called on one thread and blocks; the units' work runs on their
/// workers and reports only through the <see cref="WorkBoard"/> and each unit's own UnitRun.
/// </summary>
public static class PartitionedRunner
{
    /// <summary>The model's inputs and outputs, from its session on the plan's first unit.</summary>
    public static ModelSignature Signature(EngineContext context, BatchPlan plan, ModelSource model) =>
        LoadSessions(Workers(context, plan), model)[0].Signature;

    /// <summary>
    /// Runs the plan over the inputs (seeded synthetic ones when null). More inputs than the plan's
    /// batch run as successive planned batches, the last one with the plan's shares scaled down.
    /// </summary>
    public static InferenceResult Run(EngineContext context, BatchPlan plan, ModelSource model, InputSet? inputs, RunSettings settings, CancellationToken cancel = default)
    {
        PlanLayout.Validate(plan);
        if (model.BatchMode == BatchMode.SamplesInteract && (plan.Shards.Count > 1 || plan.Shards[0].SubBatchSize < plan.Shards[0].Count || (inputs != null && inputs.Count != plan.BatchSize)))
            throw new HeteroBatchException("SamplesInteract", FailureKind.InvalidOperation,
                $"'{model.Name}' cannot be split: {model.Note}. Run the whole batch on one unit in one run.", model.Name);
        settings = settings with { InjectFailure = settings.InjectFailure ?? context.Options.InjectFailure };
        var workers = Workers(context, plan);
        var first = LoadSessions(workers, model)[0]; // read only for its signature here
        CheckFits(first.Signature, inputs?.Count ?? plan.BatchSize, inputs == null);
        bool lockInputs = WantsPageLockedInputs(context, plan);
        inputs ??= InputSet.Synthetic(first.Signature.Inputs, plan.BatchSize, settings.Seed, pinned: lockInputs);
        using var locked = lockInputs ? PageLockedBuffers.Lock(inputs.Tensors) : null;
        CheckInputs(inputs.Tensors, first.Signature);
        var outputs = first.AllocateOutputs(inputs.Count);
        var chunks = Chunks(plan, inputs.Count);
        double warmMs = Warm(context, chunks, model, inputs.Tensors, outputs);
        var load = HostLoad.Now(); // other processes' share of the host during the timed run marks it busy (calibration)
        var (walls, runs) = RunRepeats(context, plan, chunks, model, inputs.Tensors, outputs, settings, cancel);
        var result = Result(plan, model, inputs, outputs, chunks, walls, runs, warmMs, settings);
        result.OtherLoad = HostLoad.OtherShare(load, HostLoad.Now());
        return result;
    }

    /// <summary>Refuses, before allocating, a batch whose inputs and outputs would take more than half of the memory this process may use.</summary>
    private static void CheckFits(ModelSignature signature, int count, bool withInputs)
    {
        long perSample = withInputs ? signature.BytesPerSample
            : signature.Outputs.Sum(t => Math.Max(1, t.SampleElements) * TensorBatch.ElementSize(t.ElementType));
        long limit = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 2;
        double need = (double)perSample * count;
        if (need > limit || signature.Inputs.Concat(signature.Outputs).Any(t => (double)Math.Max(1, t.SampleElements) * count > Array.MaxLength))
            throw new HeteroBatchException("BatchTooLarge", FailureKind.InvalidArgument,
                $"A batch of {count} samples needs {need / (1 << 20):F0} MiB for its {(withInputs ? "inputs and outputs" : "outputs")}; this process may use {limit / (1 << 20)} MiB for them, about {Math.Max(1, limit / Math.Max(1, perSample))} samples.", count);
    }

    /// <summary>True if a unit of the plan runs faster from page-locked inputs (a GPU).</summary>
    internal static bool WantsPageLockedInputs(EngineContext context, BatchPlan plan) =>
        plan.Shards.Any(s => UnitBackends.For(s.Unit).WantsPageLockedInputs(s.Unit, context.Options));

    internal static List<UnitWorker> Workers(EngineContext context, BatchPlan plan) =>
        plan.Shards.Select(s => context.Workers.For(s.Unit)).ToList();

    /// <summary>Loads (cached) sessions on every unit in parallel.</summary>
    internal static List<IModelSession> LoadSessions(List<UnitWorker> workers, ModelSource model)
    {
        var tasks = workers.Select(w => w.Invoke(() => w.Load(model))).ToArray();
        try { Task.WaitAll(tasks); }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            if (e.InnerExceptions[0] is HeteroBatchException h) throw h;
            throw;
        }
        return tasks.Select(t => t.Result).ToList();
    }

    /// <summary>Successive planned batches over the inputs: the plan as it is, the last one scaled down.</summary>
    internal static List<(BatchPlan Plan, int Offset)> Chunks(BatchPlan plan, int total)
    {
        var chunks = new List<(BatchPlan Plan, int Offset)>();
        for (int offset = 0; offset < total; offset += plan.BatchSize)
        {
            int n = Math.Min(plan.BatchSize, total - offset);
            chunks.Add((n == plan.BatchSize ? plan : PlanScaling.Scale(plan, n), offset));
        }
        return chunks;
    }

    /// <summary>
    /// Runs each unit once at each shape it is about to run (first runs at a shape allocate); returns
    /// the time it took. <paramref name="oneShape"/>: the one batch a unit that keeps one shape runs, where it is not its shard's sub-batch.
    /// </summary>
    internal static double Warm(EngineContext context, List<(BatchPlan Plan, int Offset)> chunks, ModelSource model,
        IReadOnlyList<TensorBatch> inputs, IReadOnlyList<TensorBatch> outputs, IReadOnlyDictionary<string, int>? oneShape = null)
    {
        var clock = Stopwatch.StartNew();
        foreach (var (chunkPlan, _) in chunks)
            Task.WaitAll(chunkPlan.Shards.Select(s =>
            {
                var w = context.Workers.For(s.Unit);
                return w.Invoke(() =>
                {
                    var session = w.Load(model);
                    int sub = Math.Min(s.SubBatchSize, s.Count);
                    var sizes = !UnitBackends.For(s.Unit).KeepsOneShape ? new[] { sub, s.Count % Math.Max(1, s.SubBatchSize) }
                        : new[] { oneShape != null && oneShape.TryGetValue(s.UnitId, out var shape) ? shape : sub };
                    foreach (var size in sizes.Where(n => n > 0).Distinct())
                        if (session.WarmedSizes.Add(size)) session.Run(inputs, outputs, 0, size);
                    return true;
                });
            }).ToArray());
        return clock.Elapsed.TotalMilliseconds;
    }

    /// <summary>
    /// Runs all the chunks, settings.Repeat times. Each repeat is one board: a unit goes on to its
    /// share of the next chunk without waiting for the others, so the run takes as long as the
    /// slowest unit's shares added up, as the plans predict.
    /// </summary>
    private static (List<double> Walls, Dictionary<string, UnitRun> Runs) RunRepeats(EngineContext context, BatchPlan plan,
        List<(BatchPlan Plan, int Offset)> chunks, ModelSource model, IReadOnlyList<TensorBatch> inputs, IReadOnlyList<TensorBatch> outputs,
        RunSettings settings, CancellationToken cancel)
    {
        var walls = new List<double>();
        Dictionary<string, UnitRun> runs = new();
        int repeats = Math.Max(1, settings.Repeat);
        long total = (long)repeats * chunks.Sum(c => c.Plan.BatchSize);
        for (int repeat = 0; repeat < repeats; repeat++)
        {
            long before = (long)repeat * chunks.Sum(c => c.Plan.BatchSize);
            var (wall, unitRuns) = RunBoard(context, plan, chunks, model, inputs, outputs, settings, cancel,
                done => settings.Progress?.Invoke(before + done, total));
            walls.Add(wall);
            runs = unitRuns.ToDictionary(r => r.UnitId); // the last repeat's
            settings.Progress?.Invoke(before + chunks.Sum(c => c.Plan.BatchSize), total);
        }
        walls.Sort();
        return (walls, runs);
    }

    /// <summary>Every chunk on one board; throws if samples stay without output.</summary>
    internal static (double Wall, List<UnitRun> Runs) RunBoard(EngineContext context, BatchPlan plan, List<(BatchPlan Plan, int Offset)> chunks,
        ModelSource model, IReadOnlyList<TensorBatch> inputs, IReadOnlyList<TensorBatch> outputs, RunSettings settings, CancellationToken cancel,
        Action<long> progress, int[]? ranBy = null, IReadOnlyDictionary<string, int>? padTo = null)
    {
        // samples done so far, reported from the workers at most every 100 ms
        long done = 0, lastReport = 0;
        var reportClock = Stopwatch.StartNew();
        void Ran(int samples)
        {
            long now = Interlocked.Add(ref done, samples);
            long ms = reportClock.ElapsedMilliseconds, last = Interlocked.Read(ref lastReport);
            if (ms - last >= 100 && Interlocked.CompareExchange(ref lastReport, ms, last) == last) progress(now);
        }
        var workers = Workers(context, plan);
        var work = new WorkBoard(plan, chunks, settings.Balance);
        var runs = plan.Shards.Select(s => new UnitRun
        {
            UnitId = s.UnitId, Precision = s.Unit.Precision.ToString(),
            PlannedCount = chunks.Sum(c => c.Plan.Shards.FirstOrDefault(x => x.UnitId == s.UnitId)?.Count ?? 0),
            PredictedMs = chunks.Sum(c => c.Plan.Shards.FirstOrDefault(x => x.UnitId == s.UnitId)?.PredictedMs ?? 0),
        }).ToList();
        using var cancelBoard = cancel.Register(work.Cancel);
        var clock = Stopwatch.StartNew();
        var tasks = plan.Shards.Select((s, i) => workers[i].Invoke(() =>
        {
            int pad = !UnitBackends.For(s.Unit).KeepsOneShape ? 0
                : padTo != null && padTo.TryGetValue(s.UnitId, out var shape) ? shape : Math.Min(s.SubBatchSize, s.Count);
            var session = workers[i].Load(model);
            // a unit with several runs in flight (a remote server): one taker per run, all on the same board
            var others = Enumerable.Range(1, Math.Max(1, s.InFlight) - 1)
                .Select(_ => BlockingWork.Start(() => RunUnit(i, session, work, runs[i], inputs, outputs, settings, clock, pad, cancel, Ran, ranBy))).ToArray();
            RunUnit(i, session, work, runs[i], inputs, outputs, settings, clock, pad, cancel, Ran, ranBy);
            Task.WaitAll(others);
            return true;
        })).ToArray();
        try { Task.WaitAll(tasks); }
        catch (AggregateException) { /* each unit's failure is recorded on its run */ }
        var wall = clock.Elapsed.TotalMilliseconds;
        cancel.ThrowIfCancellationRequested();

        if (runs.All(r => r.Failed))
            throw new HeteroBatchException("AllUnitsFailed", FailureKind.ResourceUnavailable,
                "Every unit failed: " + string.Join("; ", runs.Select(r => $"{r.UnitId}: {r.Error}"))) { StopsCommand = true };
        if (!work.AllDone)
            throw new HeteroBatchException("SamplesUnfinished", FailureKind.InvalidOperation,
                $"{work.Unfinished} samples got no output: " + string.Join("; ", runs.Where(r => r.Failed).Select(r => $"{r.UnitId}: {r.Error}"))) { StopsCommand = true };
        return (wall, runs);
    }

    /// <summary>On unit <paramref name="me"/>'s worker (and, with runs in flight, beside it): takes ranges from the board until none is left for it; the unit's run is updated under its lock.</summary>
    private static void RunUnit(int me, IModelSession model, WorkBoard work, UnitRun run, IReadOnlyList<TensorBatch> inputs,
        IReadOnlyList<TensorBatch> outputs, RunSettings settings, Stopwatch clock, int padTo, CancellationToken cancel, Action<int> ran, int[]? ranBy)
    {
        double last = 0;
        int done = 0;
        while (!cancel.IsCancellationRequested && work.Take(me) is { } range)
        {
            try
            {
                if (settings.InjectFailure is { } f && f.UnitId == run.UnitId && done >= f.AfterSubBatches)
                    throw new HeteroBatchException("InjectedFailure", FailureKind.InvalidOperation, $"test failure injected after {done} sub-batches");
                model.Run(inputs, outputs, range.Offset, range.Count, padTo, cancel);
                last = clock.Elapsed.TotalMilliseconds;
                work.Done(me, range);
                ranBy?.AsSpan(range.Offset, range.Count).Fill(me);
                ran(range.Count);
                done++;
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
                work.Fail(me, range);
                break;
            }
        }
        // counted from the run's start: a unit that starts late (a worker waking, a copy first) keeps the run waiting as long
        lock (run) run.Ms = Math.Max(run.Ms, last);
    }

    private static InferenceResult Result(BatchPlan plan, ModelSource model, InputSet inputs, IReadOnlyList<TensorBatch> outputs,
        List<(BatchPlan Plan, int Offset)> chunks, List<double> walls, Dictionary<string, UnitRun> runs, double warmMs, RunSettings settings) => new()
    {
        Plan = plan, Model = model.Name, BatchSize = inputs.Count, Balance = settings.Balance.ToString(),
        WallMs = Statistics.Quantile(walls, 0.5), RepeatWallMs = walls.ToArray(), WarmupMs = warmMs,
        PredictedMs = chunks.Sum(c => c.Plan.PredictedMs), Units = runs.Values.ToList(), Outputs = outputs.ToList(),
        InputNames = inputs.Names.ToArray(), Top1 = Predictions.ArgMax(outputs[0]), Complete = true,
        Predictions = Predictions.TopK(outputs[0], inputs.Names, settings.TopK),
    };

    private static void CheckInputs(IReadOnlyList<TensorBatch> inputs, ModelSignature signature)
    {
        int batch = inputs[0].Count;
        foreach (var spec in signature.Inputs)
        {
            var t = inputs.FirstOrDefault(i => i.Name == spec.Name)
                ?? throw new HeteroBatchException("InputMissing", FailureKind.InvalidArgument, $"No data for the model's input '{spec.Name}'.", spec.Name);
            if (t.Count != batch)
                throw new HeteroBatchException("InputCountMismatch", FailureKind.InvalidArgument, $"Input '{spec.Name}' has {t.Count} samples; input '{inputs[0].Name}' has {batch}.", spec.Name);
            if (t.ElementType != spec.ElementType)
                throw new HeteroBatchException("InputTypeMismatch", FailureKind.InvalidData,
                    $"Input '{spec.Name}' holds {t.ElementType} values; the model takes {spec.ElementType}.", spec.Name);
            if (!t.SampleShape.SequenceEqual(spec.SampleShape))
                throw new HeteroBatchException("InputShapeMismatch", FailureKind.InvalidData,
                    $"Input '{spec.Name}' samples are [{string.Join(",", t.SampleShape)}]; the model takes [{string.Join(",", spec.SampleShape)}].", spec.Name);
        }
    }
}
