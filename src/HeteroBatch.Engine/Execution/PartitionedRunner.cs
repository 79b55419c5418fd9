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
        settings = settings with { InjectFailure = settings.InjectFailure ?? context.InjectFailure };
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
        var ranBy = new int[inputs.Count]; // the shard (unit) that ran each sample, for the predictions
        var load = HostLoad.Now(); // other processes' share of the host during the timed run marks it busy (calibration)
        var (walls, runs) = RunRepeats(context, plan, chunks, model, inputs.Tensors, outputs, settings, cancel, ranBy);
        var result = Result(plan, model, inputs, outputs, chunks, walls, runs, warmMs, settings, ranBy);
        result.OtherLoad = HostLoad.OtherShare(load, HostLoad.Now());
        return result;
    }

    /// <summary>Refuses, before allocating, a batch whose inputs and outputs do not fit beside what the process holds now (<see cref="MemoryBudget"/>).</summary>
    private static void CheckFits(ModelSignature signature, int count, bool withInputs)
    {
        long perSample = withInputs ? signature.BytesPerSample : signature.OutputBytesPerSample;
        long limit = MemoryBudget.Room(MemoryBudget.Resident, MemoryBudget.Available);
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
                    // a unit whose warm-up run fails (a remote server's bad answer, a lost device) fails again in the run, where its share moves to the others
                    try
                    {
                        foreach (var size in sizes.Where(n => n > 0).Distinct())
                            if (session.WarmedSizes.Add(size)) session.Run(inputs, outputs, 0, size);
                    }
                    catch (HeteroBatchException e) when (!e.StopsCommand) { }
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
        RunSettings settings, CancellationToken cancel, int[] ranBy)
    {
        var walls = new List<double>();
        Dictionary<string, UnitRun> runs = new();
        int repeats = Math.Max(1, settings.Repeat);
        var progress = new ProgressCounter(settings.Progress, (long)repeats * chunks.Sum(c => c.Plan.BatchSize));
        var board = new BoardRun(context, plan, model, settings);
        var work = new BoardWork(plan, chunks, inputs, outputs) { RanBy = ranBy };
        for (int repeat = 0; repeat < repeats; repeat++)
        {
            var outcome = board.Run(work, cancel, progress.Add);
            walls.Add(outcome.WallMs);
            runs = outcome.Runs.ToDictionary(r => r.UnitId); // the last repeat's
            progress.Report();
        }
        walls.Sort();
        return (walls, runs);
    }

    private static InferenceResult Result(BatchPlan plan, ModelSource model, InputSet inputs, IReadOnlyList<TensorBatch> outputs,
        List<(BatchPlan Plan, int Offset)> chunks, List<double> walls, Dictionary<string, UnitRun> runs, double warmMs, RunSettings settings, int[] ranBy) => new()
    {
        Plan = plan, Model = model.Name, BatchSize = inputs.Count, Balance = settings.Balance,
        WallMs = Statistics.Quantile(walls, 0.5), RepeatWallMs = walls.ToArray(), WarmupMs = warmMs,
        PredictedMs = chunks.Sum(c => c.Plan.PredictedMs), Units = runs.Values.ToList(), Outputs = outputs.ToList(),
        InputNames = inputs.Names.ToArray(), Top1 = Predictions.ArgMax(outputs[0]), Complete = true,
        Predictions = Predictions.TopK(outputs[0], inputs.Names, settings.TopK, s => plan.Shards[ranBy[s]].UnitId),
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
