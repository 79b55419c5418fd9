using System.Diagnostics;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using Microsoft.ML.OnnxRuntime;

namespace HeteroBatch.Engine.Execution;

public enum BalanceMode
{
    /// <summary>Each unit runs exactly its planned share (work moves only when a unit fails).</summary>
    Static,
    /// <summary>Units that finish early take sub-batches from the tail of slower units' shares.</summary>
    Dynamic,
}

public sealed record RunSettings
{
    public BalanceMode Balance { get; init; } = BalanceMode.Static;
    public ulong Seed { get; init; } = 1;
    public ProviderSettings Provider { get; init; } = ProviderSettings.Default;
    /// <summary>Test only: the unit with this id throws after this many sub-batches (see about_HeteroBatch).</summary>
    public (string UnitId, int AfterSubBatches)? InjectFailure { get; init; }
    /// <summary>Run the whole input this many times; the result's WallMs is the median.</summary>
    public int Repeat { get; init; } = 1;
    /// <summary>How many top classes each prediction lists.</summary>
    public int TopK { get; init; } = 5;

    /// <summary>Reads HETEROBATCH_TEST_FAIL_UNIT=unitId:k (test only).</summary>
    public static (string, int)? FailureFromEnvironment()
    {
        var v = Environment.GetEnvironmentVariable("HETEROBATCH_TEST_FAIL_UNIT");
        if (string.IsNullOrEmpty(v)) return null;
        var parts = v.Split(':');
        return parts.Length == 2 && int.TryParse(parts[1], out var k) ? (parts[0], k) : null;
    }
}

/// <summary>
/// Runs a plan: each unit's share on its own worker thread, every sub-batch a view into one
/// input buffer writing straight into one output buffer. A unit that fails hands its unfinished
/// samples to the others; every sample gets exactly one output or the run fails.
/// </summary>
public static class PartitionedRunner
{
    /// <summary>The model's inputs and outputs, from its session on the plan's first unit.</summary>
    public static ModelSignature Signature(BatchPlan plan, ModelSource model, ProviderSettings? provider = null)
    {
        var worker = WorkerPool.For(plan.Shards[0].Unit, provider);
        return LoadAll(new List<UnitWorker> { worker }, model)[0].Signature;
    }

    /// <summary>
    /// Runs the plan over the inputs (seeded synthetic ones when null). More inputs than the plan's
    /// batch run as successive planned batches, the last one with the plan's shares scaled down.
    /// </summary>
    public static InferenceResult Run(BatchPlan plan, ModelSource model, InputSet? inputs, RunSettings settings, CancellationToken cancel = default)
    {
        if (plan.Shards.Count == 0)
            throw new HeteroBatchException("PlanEmpty", FailureKind.InvalidArgument, "The plan has no shards.");
        if (plan.Shards.Sum(s => s.Count) != plan.BatchSize)
            throw new HeteroBatchException("PlanInvalid", FailureKind.InvalidArgument, $"The plan's shards cover {plan.Shards.Sum(s => s.Count)} samples, not its batch size {plan.BatchSize}.");
        var workers = plan.Shards.Select(s => WorkerPool.For(s.Unit, settings.Provider)).ToList();

        // load (cached) sessions on every unit in parallel
        var loaded = LoadAll(workers, model);
        var signature = loaded[0].Signature;
        inputs ??= InputSet.Synthetic(signature, plan.BatchSize, settings.Seed);
        CheckInputs(inputs.Tensors, signature);
        int total = inputs.Count;
        var outputs = loaded[0].AllocateOutputs(total);

        // successive planned batches over the inputs
        var chunks = new List<(BatchPlan Plan, int Offset)>();
        for (int offset = 0; offset < total; offset += plan.BatchSize)
        {
            int n = Math.Min(plan.BatchSize, total - offset);
            chunks.Add((n == plan.BatchSize ? plan : PlanScaling.Scale(plan, n), offset));
        }

        // warm each unit at the shapes it is about to run (first runs at a shape allocate)
        var warmClock = Stopwatch.StartNew();
        foreach (var (chunkPlan, _) in chunks)
            Task.WaitAll(chunkPlan.Shards.Select(s => WorkerPool.For(s.Unit, settings.Provider)).Select((w, i) => w.Invoke(() =>
            {
                var s = chunkPlan.Shards[i];
                var lm = w.Load(model);
                using var ro = new RunOptions();
                var sizes = PadsToOneShape(s.Unit) ? new[] { Math.Min(s.SubBatchSize, s.Count) }
                    : new[] { Math.Min(s.SubBatchSize, s.Count), s.Count % Math.Max(1, s.SubBatchSize) };
                foreach (var size in sizes.Where(n => n > 0).Distinct())
                    if (lm.WarmedSizes.Add(size)) lm.Run(ro, inputs.Tensors, outputs, 0, size);
                return true;
            })).ToArray());
        double warmMs = warmClock.Elapsed.TotalMilliseconds;

        var runs = plan.Shards.Select(s => new UnitRun { UnitId = s.UnitId }).ToDictionary(r => r.UnitId);
        var walls = new List<double>();
        for (int repeat = 0; repeat < Math.Max(1, settings.Repeat); repeat++)
        {
            bool last = repeat == Math.Max(1, settings.Repeat) - 1;
            double wall = 0;
            foreach (var (chunkPlan, offset) in chunks)
            {
                var chunkRuns = RunChunk(chunkPlan, offset, model, inputs.Tensors, outputs, settings, cancel);
                wall += chunkRuns.Wall;
                if (!last) continue;
                foreach (var r in chunkRuns.Runs)
                {
                    var acc = runs[r.UnitId];
                    acc.PlannedCount += r.PlannedCount; acc.Count += r.Count; acc.SubBatches += r.SubBatches; acc.Ms += r.Ms;
                    acc.PredictedMs += r.PredictedMs; acc.TookOver += r.TookOver;
                    if (r.Failed) { acc.Failed = true; acc.Error = r.Error; }
                }
            }
            walls.Add(wall);
        }
        walls.Sort();

        var result = new InferenceResult
        {
            Plan = plan, Model = model.Name, BatchSize = total, Balance = settings.Balance.ToString(),
            WallMs = Profiling.Statistics.Quantile(walls, 0.5), RepeatWallMs = walls.ToArray(), WarmupMs = warmMs,
            PredictedMs = chunks.Sum(c => c.Plan.PredictedMs), Units = runs.Values.ToList(), Outputs = outputs.ToList(),
            InputNames = inputs.Names.ToArray(), Top1 = ArgMax(outputs[0]), Complete = true,
        };
        result.Predictions = Predictions(outputs[0], inputs.Names, settings.TopK);
        return result;
    }

    /// <summary>One planned batch at <paramref name="baseOffset"/> of the inputs; throws if samples stay without output.</summary>
    private static (double Wall, List<UnitRun> Runs) RunChunk(BatchPlan plan, int baseOffset, ModelSource model, IReadOnlyList<TensorBatch> inputs,
        IReadOnlyList<TensorBatch> outputs, RunSettings settings, CancellationToken cancel)
    {
        var workers = plan.Shards.Select(s => WorkerPool.For(s.Unit, settings.Provider)).ToList();
        var work = new WorkBoard(plan, settings.Balance, baseOffset);
        var runs = plan.Shards.Select(s => new UnitRun { UnitId = s.UnitId, PlannedCount = s.Count, PredictedMs = s.PredictedMs }).ToList();
        using var cancelBoard = cancel.Register(work.Cancel);
        var clock = Stopwatch.StartNew();
        var tasks = plan.Shards.Select((s, i) => workers[i].Invoke(() =>
        {
            int padTo = PadsToOneShape(s.Unit) ? Math.Min(s.SubBatchSize, s.Count) : 0;
            RunUnit(i, workers[i].Load(model), work, runs[i], inputs, outputs, settings, clock, padTo, cancel);
            return true;
        })).ToArray();
        try { Task.WaitAll(tasks); }
        catch (AggregateException) { /* each unit's failure is recorded on its run */ }
        var wall = clock.Elapsed.TotalMilliseconds;
        cancel.ThrowIfCancellationRequested();

        if (runs.All(r => r.Failed))
            throw new HeteroBatchException("AllUnitsFailed", FailureKind.ResourceUnavailable,
                "Every unit failed: " + string.Join("; ", runs.Select(r => $"{r.UnitId}: {r.Error}")));
        if (!work.AllDone)
            throw new HeteroBatchException("SamplesUnfinished", FailureKind.InvalidOperation,
                $"{work.Unfinished} samples got no output: " + string.Join("; ", runs.Where(r => r.Failed).Select(r => $"{r.UnitId}: {r.Error}")));
        return (wall, runs);
    }

    /// <summary>Top classes of each sample, for classifier outputs (one float vector per sample).</summary>
    private static List<SamplePrediction> Predictions(TensorBatch output, IReadOnlyList<string> names, int k)
    {
        var list = new List<SamplePrediction>();
        if (output.Data is not float[] data || output.SampleShape.Length != 1 || output.SampleElements < 2 || k < 1) return list;
        int n = (int)output.SampleElements;
        for (int s = 0; s < output.Count; s++)
        {
            var row = new ArraySegment<float>(data, s * n, n);
            var top = Enumerable.Range(0, n).OrderByDescending(j => row[j]).ThenBy(j => j).Take(k).ToArray();
            list.Add(new SamplePrediction { Index = s, Input = names[s], Class = top[0], Score = row[top[0]], TopClasses = top, TopScores = top.Select(j => row[j]).ToArray() });
        }
        return list;
    }

    private static List<LoadedModel> LoadAll(List<UnitWorker> workers, ModelSource model)
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

    private static void RunUnit(int me, LoadedModel model, WorkBoard work, UnitRun run, IReadOnlyList<TensorBatch> inputs,
        IReadOnlyList<TensorBatch> outputs, RunSettings settings, Stopwatch clock, int padTo, CancellationToken cancel)
    {
        using var runOptions = new RunOptions();
        using var stop = cancel.Register(() => runOptions.Terminate = true);
        double first = -1, last = 0;
        int done = 0;
        while (!cancel.IsCancellationRequested && work.Take(me) is { } range)
        {
            try
            {
                if (settings.InjectFailure is { } f && f.UnitId == run.UnitId && done >= f.AfterSubBatches)
                    throw new HeteroBatchException("InjectedFailure", FailureKind.InvalidOperation, $"test failure injected after {done} sub-batches");
                double t0 = clock.Elapsed.TotalMilliseconds;
                if (first < 0) first = t0;
                model.Run(runOptions, inputs, outputs, range.Offset, range.Count, padTo);
                last = clock.Elapsed.TotalMilliseconds;
                work.Done(me, range);
                done++;
                run.SubBatches++;
                run.Count += range.Count;
                if (range.Owner != me) run.TookOver += range.Count;
            }
            catch (Exception e)
            {
                run.Failed = true;
                run.Error = e.Message.Trim();
                work.Fail(me, range);
                break;
            }
        }
        run.Ms = first < 0 ? 0 : last - first;
    }

    /// <summary>Accelerators keep one input shape per plan (see LoadedModel.RunPadded).</summary>
    internal static bool PadsToOneShape(Units.ComputeUnit unit) => unit.Provider != Units.ExecutionProvider.CPU;

    private static int[] ArgMax(TensorBatch output)
    {
        var top = new int[output.Count];
        int n = (int)output.SampleElements;
        if (n <= 1 || output.Data is not float[] data) return top;
        for (int s = 0; s < output.Count; s++)
        {
            var span = data.AsSpan(s * n, n);
            int best = 0;
            for (int j = 1; j < n; j++) if (span[j] > span[best]) best = j;
            top[s] = best;
        }
        return top;
    }
}

/// <summary>A slice of the batch waiting to run, and the unit it was planned for.</summary>
internal readonly record struct WorkRange(int Offset, int Count, int Owner);

/// <summary>
/// The queue of sub-batches per unit. A unit takes from the front of its own queue; failed
/// units' work goes to a shared pool that the others drain; in dynamic mode an idle unit
/// takes the last sub-batch of the unit with the most queued.
/// </summary>
internal sealed class WorkBoard
{
    private readonly object _gate = new();
    private readonly LinkedList<WorkRange>[] _queues;
    private readonly Queue<WorkRange> _orphans = new();
    private readonly int[] _limits;
    private readonly bool[] _failed;
    private readonly bool[] _pads;
    private readonly double[] _perRunMs;
    private readonly double[] _perSampleMs;
    private readonly bool _dynamic;
    private int _running;
    private bool _cancelled;
    private int _unfinished;

    public WorkBoard(BatchPlan plan, BalanceMode balance, int baseOffset = 0)
    {
        _dynamic = balance == BalanceMode.Dynamic;
        int k = plan.Shards.Count;
        _queues = new LinkedList<WorkRange>[k];
        _limits = new int[k];
        _failed = new bool[k];
        _pads = new bool[k];
        _perRunMs = new double[k];
        _perSampleMs = new double[k];
        for (int i = 0; i < k; i++)
        {
            var s = plan.Shards[i];
            _queues[i] = new LinkedList<WorkRange>();
            int size = Math.Max(1, s.SubBatchSize);
            // in dynamic mode, cut CPU shares into at least four pieces so that there is a tail to
            // take; accelerators keep their one shape
            if (_dynamic && !PartitionedRunner.PadsToOneShape(s.Unit)) size = Math.Max(1, Math.Min(size, (s.Count + 3) / 4));
            _limits[i] = Math.Max(1, Math.Min(s.SubBatchSize, s.Count));
            _pads[i] = PartitionedRunner.PadsToOneShape(s.Unit);
            _perRunMs[i] = s.PredictedMs / Math.Max(1, s.SubBatches);
            _perSampleMs[i] = s.PredictedMs / Math.Max(1, s.Count);
            for (int o = 0; o < s.Count; o += size)
                _queues[i].AddLast(new WorkRange(baseOffset + s.Offset + o, Math.Min(size, s.Count - o), i));
        }
        _unfinished = plan.BatchSize;
    }

    public bool AllDone { get { lock (_gate) return _unfinished == 0; } }
    public int Unfinished { get { lock (_gate) return _unfinished; } }

    /// <summary>The next range for unit <paramref name="me"/>, or null when there is nothing left it could do.</summary>
    public WorkRange? Take(int me)
    {
        lock (_gate)
        {
            while (true)
            {
                if (_failed[me] || _cancelled) return null;
                if (_queues[me].First is { } own) { _queues[me].RemoveFirst(); _running++; return own.Value; }
                if (_orphans.Count > 0) { _running++; return Fit(_orphans.Dequeue(), me, toOrphans: true); }
                if (_dynamic)
                {
                    // take the last queued sub-batch of the unit with the most predicted work left,
                    // but only if this unit would finish it before that one gets through its queue
                    var victim = Enumerable.Range(0, _queues.Length).Where(i => i != me && _queues[i].Count > 0)
                        .OrderByDescending(i => _queues[i].Sum(r => Cost(i, r))).FirstOrDefault(-1);
                    if (victim >= 0 && Cost(me, _queues[victim].Last!.Value) < _queues[victim].Sum(r => Cost(victim, r)))
                    {
                        var tail = _queues[victim].Last!.Value;
                        _queues[victim].RemoveLast();
                        _running++;
                        return Fit(tail, me, toOrphans: false, victim);
                    }
                }
                // nothing now; work can still appear while another live unit runs or has work queued (it may fail)
                if (_cancelled || (_running == 0 && _queues.All(q => q.Count == 0))) return null;
                Monitor.Wait(_gate);
            }
        }
    }

    /// <summary>Predicted time for unit <paramref name="i"/> to run a range: a padded run costs a whole run.</summary>
    private double Cost(int i, WorkRange r) =>
        _pads[i] ? _perRunMs[i] * Math.Ceiling((double)r.Count / _limits[i]) : _perSampleMs[i] * r.Count;

    /// <summary>Cuts a range to what unit <paramref name="me"/> runs at once; the rest goes back where it came from.</summary>
    private WorkRange Fit(WorkRange r, int me, bool toOrphans, int victim = -1)
    {
        if (r.Count <= _limits[me]) return r;
        var rest = new WorkRange(r.Offset + _limits[me], r.Count - _limits[me], r.Owner);
        if (toOrphans) _orphans.Enqueue(rest); else _queues[victim].AddLast(rest);
        return r with { Count = _limits[me] };
    }

    public void Cancel()
    {
        lock (_gate) { _cancelled = true; Monitor.PulseAll(_gate); }
    }

    public void Done(int me, WorkRange r)
    {
        lock (_gate) { _unfinished -= r.Count; _running--; Monitor.PulseAll(_gate); }
    }

    /// <summary>Unit <paramref name="me"/> failed on <paramref name="r"/>: it and everything still queued for the unit go to the others.</summary>
    public void Fail(int me, WorkRange r)
    {
        lock (_gate)
        {
            _failed[me] = true;
            _running--;
            _orphans.Enqueue(r);
            foreach (var q in _queues[me]) _orphans.Enqueue(q);
            _queues[me].Clear();
            Monitor.PulseAll(_gate);
        }
    }
}
