using System.Diagnostics;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Sessions;
using HeteroBatch.Engine.Units;
using HeteroBatch.Engine.Units.Backends;
using Microsoft.ML.OnnxRuntime;

namespace HeteroBatch.Engine.Profiling;

/// <summary>How to measure: which batch sizes and how long to keep sampling each.</summary>
public sealed record ProfileSettings
{
    /// <summary>Explicit batch sizes; null for the default schedule up to <see cref="MaxBatchSize"/>.</summary>
    public int[]? BatchSizes { get; init; }
    /// <summary>Largest batch size of the default schedule; 0 for the unit kind's default.</summary>
    public int MaxBatchSize { get; init; }
    public int WarmupRuns { get; init; } = 2;
    public int MinSamples { get; init; } = 3;
    public int MaxSamples { get; init; } = 50;
    /// <summary>Stop sampling a batch size once this much time has gone into it (and MinSamples are in).</summary>
    public TimeSpan PointBudget { get; init; } = TimeSpan.FromSeconds(1.5);
    /// <summary>Stop sampling once the median's 95% confidence half-width is within this percentage.</summary>
    public double TargetCiPercent { get; init; } = 3;
    public ulong Seed { get; init; } = 1;
    /// <summary>The largest batch of a unit's default schedule, as its backend says.</summary>
    public static int DefaultMaxBatch(ComputeUnit unit) => UnitBackends.For(unit).DefaultMaxBatch;

    public int[] ScheduleFor(ComputeUnit unit) =>
        BatchSizes is { Length: > 0 } ? BatchSizes.Distinct().OrderBy(b => b).ToArray()
        : ProfileSchedule.Default(MaxBatchSize > 0 ? MaxBatchSize : DefaultMaxBatch(unit));
}

/// <summary>One step of a profiling run, for progress bars and -Verbose.</summary>
public sealed record ProfileProgress(string UnitId, int BatchSize, int Index, int Total, ProfileEntry? Entry, string? Failure);

/// <summary>
/// Measures a model on a unit at each batch size of a schedule. Measuring runs on the unit's own
/// worker thread; progress is reported from there (the caller queues it for its own thread).
/// </summary>
public static class Profiler
{
    /// <summary>
    /// Whether the next batch size fits in memory, judged from how the process grew on the sizes
    /// that ran: the peak resident memory above where profiling started, per sample, times the
    /// next size, against what this process may use (its memory limit, or the machine's memory).
    /// A size whose buffers alone cannot be one array is refused before anything is allocated.
    /// </summary>
    private sealed class MemoryGrowth
    {
        // the peak resident memory after the last size that ran, and the steepest growth per added sample seen so far
        private long _lastPeak = Libc.PeakResidentBytes() ?? Environment.WorkingSet;
        private int _lastBatch;
        private double _slope;

        public void Ran(int batch)
        {
            if (Libc.PeakResidentBytes() is not long peak) return;
            if (batch > _lastBatch && _lastBatch > 0) _slope = Math.Max(_slope, (double)(peak - _lastPeak) / (batch - _lastBatch));
            _lastPeak = Math.Max(_lastPeak, peak);
            _lastBatch = Math.Max(_lastBatch, batch);
        }

        public string? WhyNotFits(int batch, IModelSession model)
        {
            long bytesPerSample = model.Signature.BytesPerSample;
            if ((double)bytesPerSample * batch > Array.MaxLength)
                return $"batch {batch} needs {Format((double)bytesPerSample * batch)} of inputs and outputs, more than one array holds";
            long available = MemoryBudget.Available, limit = MemoryBudget.Limit(available);
            double perSample = Math.Max(_slope, 2.0 * bytesPerSample);
            double predicted = _lastPeak + perSample * Math.Max(0, batch - _lastBatch);
            return MemoryBudget.Fits(perSample * Math.Max(0, batch - _lastBatch), _lastPeak, available) ? null
                : $"batch {batch} would need about {Format(predicted)} of memory (growth {Format(perSample)} per sample on the sizes that ran), more than the {Format(limit)} this process may use";
        }

        private static string Format(double bytes) => bytes >= 1 << 30 ? $"{bytes / (1 << 30):F1} GiB" : bytes >= 1 << 20 ? $"{bytes / (1 << 20):F0} MiB" : $"{bytes / 1024:F0} KiB";
    }

    public static Task<UnitProfile> RunAsync(EngineContext context, ComputeUnit unit, ModelSource model, ProfileSettings settings,
        Action<ProfileProgress>? progress = null, CancellationToken cancel = default)
    {
        var worker = context.Workers.For(unit);
        return worker.Invoke(() => Measure(worker, model, settings, progress, cancel));
    }

    /// <summary>
    /// Measures every unit at the same time, as they will run in a plan: memory bandwidth, caches
    /// and the cores that feed GPUs are shared, and a unit measured alone is predicted too fast.
    /// A unit that finishes its schedule keeps running its largest batch as load until all are done.
    /// </summary>
    public static async Task<IReadOnlyList<UnitProfile>> RunConcurrentAsync(EngineContext context, IReadOnlyList<ComputeUnit> units, ModelSource model,
        Func<ComputeUnit, ProfileSettings> settingsFor, Action<ProfileProgress>? progress = null, CancellationToken cancel = default)
    {
        using var allDone = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var loads = new List<Task>();
        var tasks = units.Select(unit =>
        {
            var settings = settingsFor(unit);
            var worker = context.Workers.For(unit);
            return worker.Invoke(() => Measure(worker, model, settings, progress, cancel)).ContinueWith(t =>
            {
                if (t.IsCompletedSuccessfully && t.Result.Table.Count > 0)
                    lock (loads) loads.Add(worker.Invoke(() => KeepBusy(worker, model, t.Result.MaxBatchSize, allDone.Token)));
                return t;
            }, TaskScheduler.Default).Unwrap();
        }).ToList();
        try
        {
            var profiles = await Task.WhenAll(tasks).ConfigureAwait(false);
            foreach (var p in profiles)
                p.MeasuredAlongside = profiles.Where(o => o != p).Select(o => o.Unit.Id).ToArray();
            return profiles;
        }
        finally
        {
            allDone.Cancel();
            Task[] pending;
            lock (loads) pending = loads.ToArray();
            try { await Task.WhenAll(pending).ConfigureAwait(false); } catch (OperationCanceledException) { }
        }
    }

    /// <summary>Runs one batch size over and over until told to stop: load for units still being measured.</summary>
    private static bool KeepBusy(UnitWorker worker, ModelSource model, int batch, CancellationToken stop)
    {
        var loaded = worker.Load(model);
        bool pinned = UnitBackends.For(worker.Unit).WantsPageLockedInputs(worker.Unit, worker.Settings);
        var inputs = loaded.SyntheticInputs(batch, 1, pinned);
        using var locked = pinned ? PageLockedBuffers.Lock(inputs) : null;
        var outputs = loaded.AllocateOutputs(batch);
        try
        {
            while (!stop.IsCancellationRequested) loaded.Run(inputs, outputs, 0, batch, cancel: stop);
        }
        catch (Exception e) when (e is OnnxRuntimeException or OperationCanceledException && stop.IsCancellationRequested) { /* terminated mid-run */ }
        return true;
    }

    private static UnitProfile Measure(UnitWorker worker, ModelSource model, ProfileSettings settings, Action<ProfileProgress>? progress, CancellationToken cancel)
    {
        var unit = worker.Unit;
        var schedule = settings.ScheduleFor(unit);
        var profile = new UnitProfile
        {
            Unit = unit, Model = model.Name, ModelSha256 = model.Sha256, ModelPath = model.Path, BatchMode = model.BatchMode, MeasuredAt = DateTimeOffset.UtcNow,
            Host = Environment.MachineName, RuntimeVersion = unit.RuntimeVersion,
        };
        cancel.ThrowIfCancellationRequested();
        var loaded = worker.Load(model);
        var backend = UnitBackends.For(unit);
        // buffers grow with the sizes, in order: nothing is allocated for a size before the ones below it ran
        IReadOnlyList<TensorBatch> inputs = Array.Empty<TensorBatch>(), outputs = Array.Empty<TensorBatch>();
        int capacity = 0;
        // a GPU measures from page-locked inputs, as its runs copy from them
        bool pinned = backend.WantsPageLockedInputs(unit, worker.Settings);
        PageLockedBuffers? locked = null;
        var memory = new MemoryGrowth();

        try
        {
            for (int i = 0; i < schedule.Length; i++)
            {
                int b = schedule[i];
                cancel.ThrowIfCancellationRequested();
                if (memory.WhyNotFits(b, loaded) is { } tooBig)
                {
                    profile.FailedBatchSize = b;
                    profile.FailureReason = tooBig;
                    progress?.Invoke(new ProfileProgress(unit.Id, b, i + 1, schedule.Length, null, tooBig));
                    break;
                }
                try
                {
                    if (b > capacity)
                    {
                        locked?.Dispose();
                        inputs = Array.Empty<TensorBatch>(); outputs = Array.Empty<TensorBatch>(); // let the smaller ones go first
                        inputs = loaded.SyntheticInputs(b, settings.Seed, pinned);
                        locked = pinned ? PageLockedBuffers.Lock(inputs) : null;
                        outputs = loaded.AllocateOutputs(b);
                        capacity = b;
                    }
                    var entry = MeasureOne(loaded, inputs, outputs, b, settings, cancel);
                    // units that can keep several runs in flight: each count measured, the fastest per run kept (5% better to count)
                    for (int k = 2; k <= backend.MaxInFlight; k++)
                    {
                        var lanes = Enumerable.Range(0, k).Select(l => l == 0 ? outputs : loaded.AllocateOutputs(b)).ToList();
                        var concurrent = MeasureOne(loaded, inputs, lanes, b, settings, cancel);
                        if (concurrent.MedianMs < entry.MedianMs * 0.95) entry = concurrent;
                    }
                    memory.Ran(b);
                    if (worker.Settings.SplitTransfers && backend.ComputeOnlyMedianMs(loaded, unit, b, Math.Max(3, entry.Samples), cancel) is double compute)
                    {
                        entry.ComputeMs = compute;
                        entry.TransferMs = Math.Max(0, entry.MedianMs - compute);
                    }
                    profile.Table.Add(entry);
                    profile.MaxBatchSize = Math.Max(profile.MaxBatchSize, b);
                    progress?.Invoke(new ProfileProgress(unit.Id, b, i + 1, schedule.Length, entry, null));
                }
                catch (Exception e) when (e is not OperationCanceledException && !cancel.IsCancellationRequested)
                {
                    profile.FailedBatchSize = b;
                    profile.FailureReason = e.Message.Trim();
                    progress?.Invoke(new ProfileProgress(unit.Id, b, i + 1, schedule.Length, null, profile.FailureReason));
                    break; // out of memory or another failure: keep what ran, stop growing
                }
            }
        }
        finally { locked?.Dispose(); } // released however the loop ends, before the arrays can go back to the heap
        cancel.ThrowIfCancellationRequested();
        if (unit.Precision != Precision.Fp32 && profile.Table.Count > 0)
            profile.Agreement = AgreementWithFp32(loaded, model, Math.Min(8, profile.MaxBatchSize), settings.Seed);
        return profile;
    }

    /// <summary>The unit's outputs against the fp32 model's on the CPU provider, on the same seeded inputs.</summary>
    private static OutputAgreement? AgreementWithFp32(IModelSession reduced, ModelSource model, int n, ulong seed)
    {
        if (reduced.Signature.Outputs[0].ElementType != Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float) return null;
        using var options = new SessionOptions { IntraOpNumThreads = 1, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
        using var reference = new LoadedModel(model.Path, options);
        var inputs = reference.SyntheticInputs(n, seed + 7919);
        var expected = reference.AllocateOutputs(n);
        var actual = reduced.AllocateOutputs(n);
        reference.Run(inputs, expected, 0, n);
        reduced.Run(inputs, actual, 0, n);
        return OutputAgreement.Compare(expected[0], actual[0]);
    }

    private static ProfileEntry MeasureOne(IModelSession loaded, IReadOnlyList<TensorBatch> inputs,
        IReadOnlyList<TensorBatch> outputs, int b, ProfileSettings settings, CancellationToken cancel) =>
        MeasureOne(loaded, inputs, new[] { outputs }, b, settings, cancel);

    /// <summary>
    /// One batch size, measured until its median is steady: each sample is a round of one run per
    /// lane (lanes in flight at once, each with its own outputs), its wall time divided by the lanes.
    /// </summary>
    private static ProfileEntry MeasureOne(IModelSession loaded, IReadOnlyList<TensorBatch> inputs,
        IReadOnlyList<IReadOnlyList<TensorBatch>> lanes, int b, ProfileSettings settings, CancellationToken cancel)
    {
        void Round()
        {
            if (lanes.Count == 1) { loaded.Run(inputs, lanes[0], 0, b, cancel: cancel); return; }
            var others = lanes.Skip(1).Select(o => BlockingWork.Start(() => loaded.Run(inputs, o, 0, b, cancel: cancel))).ToArray();
            try { loaded.Run(inputs, lanes[0], 0, b, cancel: cancel); }
            finally { try { Task.WaitAll(others); } catch (AggregateException e) { throw e.InnerExceptions[0]; } }
        }
        for (int w = 0; w < settings.WarmupRuns; w++)
        {
            cancel.ThrowIfCancellationRequested();
            Round();
        }
        var times = new List<double>();
        var budget = Stopwatch.StartNew();
        while (true)
        {
            cancel.ThrowIfCancellationRequested();
            long t0 = Stopwatch.GetTimestamp();
            Round();
            times.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds / lanes.Count);
            if (times.Count < settings.MinSamples) continue;
            if (times.Count >= settings.MaxSamples || budget.Elapsed >= settings.PointBudget) break;
            if (Statistics.MedianCiPercent(times) <= settings.TargetCiPercent) break;
        }
        var sorted = times.OrderBy(t => t).ToArray();
        return new ProfileEntry
        {
            BatchSize = b,
            MedianMs = Statistics.Quantile(sorted, 0.5),
            P10Ms = Statistics.Quantile(sorted, 0.1),
            P90Ms = Statistics.Quantile(sorted, 0.9),
            MinMs = sorted[0],
            Samples = sorted.Length,
            Ci95Percent = Math.Round(Statistics.MedianCiPercent(times), 2),
            InFlight = lanes.Count,
        };
    }
}
