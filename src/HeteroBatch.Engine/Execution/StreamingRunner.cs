using System.Collections.Concurrent;
using System.Diagnostics;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Units.Backends;

namespace HeteroBatch.Engine.Execution;

/// <summary>How a file job goes (what the user chose for this command).</summary>
public sealed record StreamSettings
{
    public ImagePreprocessing Preprocessing { get; init; } = ImagePreprocessing.ImageNet;
    /// <summary>Threads that read and decode inputs; 0: one per processor the units leave free (at least 1), and one more each time the units wait for input, up to one per processor.</summary>
    public int DecodeThreads { get; init; }
    /// <summary>Bytes all blocks in flight may take together (inputs and outputs); blocks are the plan's batch or smaller to fit.</summary>
    public long MemoryBudget { get; init; } = 512L << 20;
    public BalanceMode Balance { get; init; } = BalanceMode.Static;
    public int TopK { get; init; } = 5;
    /// <summary>Called on the writing thread after each block is written.</summary>
    public Action<JobProgress>? Progress { get; init; }
    /// <summary>Test only: the unit with this id throws after this many sub-batches of each block.</summary>
    public (string UnitId, int AfterSubBatches)? InjectFailure { get; init; }
}

/// <summary>Where time went in a file job. Read and decode are summed over the decoding threads; the rest are wall time of one stage.</summary>
public sealed class JobStages
{
    public double ReadMs { get; set; }
    public double DecodeMs { get; set; }
    /// <summary>Wall time the units ran blocks.</summary>
    public double InferMs { get; set; }
    /// <summary>Wall time the units waited for decoded input.</summary>
    public double WaitForInputMs { get; set; }
    /// <summary>Wall time of writing rows and handing predictions on (the writing thread).</summary>
    public double WriteMs { get; set; }

    public override string ToString() => $"read {ReadMs:F0} ms, decode {DecodeMs:F0} ms (threads summed), infer {InferMs:F0} ms, waited for input {WaitForInputMs:F0} ms, write {WriteMs:F0} ms";
}

/// <summary>Progress of a file job after a block.</summary>
public sealed record JobProgress(int Done, int Total, int RunNow, double ImagesPerSecond, double SecondsLeft, JobStages Stages);

/// <summary>What a file job did.</summary>
public sealed class JobSummary
{
    public string Model { get; set; } = "";
    public int Samples { get; set; }
    /// <summary>Samples this command ran (the others were done by an earlier, resumed run).</summary>
    public int SamplesRun { get; set; }
    public int SamplesResumed { get; set; }
    /// <summary>Samples whose input could not be read; they have a row with the error and NaN outputs.</summary>
    public int SamplesFailed { get; set; }
    /// <summary>From the first block's decoding to the last block's rows written (after setup).</summary>
    public double WallMs { get; set; }
    /// <summary>Loading sessions and warming the units at the job's shapes, before <see cref="WallMs"/>.</summary>
    public double SetupMs { get; set; }
    public double ImagesPerSecond => WallMs > 0 ? SamplesRun * 1000.0 / WallMs : 0;
    /// <summary>Samples per block: the plan's batch, or fewer so that the blocks in flight fit the memory budget.</summary>
    public int BlockSize { get; set; }
    public int Blocks { get; set; }
    public int DecodeThreads { get; set; }
    public string Preprocessing { get; set; } = "";
    public JobStages Stages { get; set; } = new();
    public List<UnitRun> Units { get; set; } = new();
    public string? OutputPath { get; set; }
    public BatchPlan Plan { get; set; } = new();
    /// <summary>What limited the job, where the stage times show it.</summary>
    public string? Note { get; set; }
    public long PeakResidentBytes { get; set; }

    public override string ToString() => $"{Model}: {SamplesRun} samples in {WallMs:F0} ms ({ImagesPerSecond:F1}/s){(SamplesResumed > 0 ? $", {SamplesResumed} done before" : "")}";
}

/// <summary>
/// A job over files, streamed: decoding threads fill blocks of inputs while the units run earlier
/// blocks and a writer hands on and writes the finished ones, in input order. A fixed number of
/// blocks is in flight, so memory does not grow with the number of files. An input that cannot be
/// read is a failed sample (its row says why), not a failed job.
/// </summary>
public static class StreamingRunner
{
    private const int BlocksInFlight = 4; // decoding, decoded, running, writing

    private sealed class Block
    {
        public required TensorBatch Input;
        public required List<TensorBatch> Outputs;
        public required int[] RanBy;
        public required HeteroBatchException?[] Errors;
        public int Sequence, First, Count, Decoded;
    }

    /// <summary>Samples per block for this plan and model: the plan's batch, or fewer to keep the blocks in flight within the budget.</summary>
    public static int BlockSize(BatchPlan plan, long bytesPerSample, long budget) =>
        (int)Math.Clamp(budget / BlocksInFlight / Math.Max(1, bytesPerSample), 1, plan.BatchSize);

    /// <summary>
    /// The processors decoding may use without slowing the units: those of this process that no
    /// CPU unit of the plan computes on and no accelerator's feeding thread is pinned to (empty
    /// when none is left: decoding then shares the units' processors).
    /// </summary>
    public static IReadOnlyList<int> FreeProcessors(BatchPlan plan)
    {
        var all = Runtime.Libc.CurrentThreadAffinity() ?? Enumerable.Range(0, Environment.ProcessorCount).ToArray();
        var busy = new HashSet<int>();
        foreach (var s in plan.Shards)
        {
            var backend = UnitBackends.For(s.Unit);
            busy.UnionWith(backend.ComputeProcessors(s.Unit));
            if (backend.NeedsFeeder && backend.WorkerProcessor(s.Unit) is int feeder) busy.Add(feeder);
        }
        return all.Where(p => !busy.Contains(p)).ToList();
    }

    /// <summary>
    /// Runs the plan over every sample of <paramref name="files"/> from <paramref name="output"/>'s
    /// resume point; <paramref name="onBlock"/> gets each block's predictions in input order (on the
    /// writing thread; the next block waits for it to return).
    /// </summary>
    public static JobSummary Run(EngineContext context, BatchPlan plan, ModelSource model, InputFiles files, JobOutput? output,
        StreamSettings settings, Action<IReadOnlyList<SamplePrediction>>? onBlock, CancellationToken cancel = default)
    {
        PlanLayout.Validate(plan);
        if (model.BatchMode == BatchMode.SamplesInteract)
            throw new HeteroBatchException("SamplesInteract", FailureKind.InvalidOperation,
                $"'{model.Name}' cannot run in blocks: {model.Note}.", model.Name);
        var setup = Stopwatch.StartNew();
        int start = output?.ResumedAt ?? 0, total = files.SampleCount;
        var workers = PartitionedRunner.Workers(context, plan);
        var signature = PartitionedRunner.LoadSessions(workers, model)[0].Signature;
        int blockSize = BlockSize(plan, signature.BytesPerSample, settings.MemoryBudget);
        var free = FreeProcessors(plan);
        int decodeThreads = settings.DecodeThreads > 0 ? settings.DecodeThreads : Math.Max(1, free.Count);
        var summary = new JobSummary
        {
            Model = model.Name, Samples = total, SamplesResumed = start, BlockSize = blockSize, DecodeThreads = decodeThreads,
            Preprocessing = settings.Preprocessing.ToString(), OutputPath = output?.Folder, Plan = plan,
        };
        if (start >= total) return summary;

        var blocks = new List<(int First, int Count)>();
        for (int first = start; first < total; first += blockSize) blocks.Add((first, Math.Min(blockSize, total - first)));
        var plans = new Dictionary<int, BatchPlan>();
        BatchPlan PlanFor(int count) => plans.TryGetValue(count, out var p) ? p : plans[count] = count == plan.BatchSize ? plan : PlanScaling.Scale(plan, count);
        // units that keep one shape run a short last block padded to the full block's shape (a new shape costs them a re-plan)
        var fullShape = PlanFor(blockSize).Shards.ToDictionary(s => s.UnitId, s => Math.Min(s.SubBatchSize, s.Count));

        var slots = new BlockingCollection<Block>();
        bool lockInputs = PartitionedRunner.WantsPageLockedInputs(context, plan);
        for (int i = 0; i < Math.Min(BlocksInFlight, blocks.Count); i++)
            slots.Add(new Block
            {
                Input = lockInputs ? TensorBatch.AllocatePinned(files.Input.Name, files.Input.SampleShape, blockSize, files.Input.ElementType)
                    : new TensorBatch(files.Input.Name, files.Input.SampleShape, blockSize, null, files.Input.ElementType),
                Outputs = signature.Outputs.Select(o => new TensorBatch(o.Name, o.SampleShape, blockSize, null, o.ElementType)).ToList(),
                RanBy = new int[blockSize], Errors = new HeteroBatchException?[blockSize],
            });
        var samples = new BlockingCollection<(Block Block, int Index)>();
        var decoded = new BlockingCollection<Block>();
        var ran = new BlockingCollection<Block>(BlocksInFlight);
        // GPUs copy blocks from page-locked memory; released when the job ends
        using var locked = lockInputs ? PageLockedBuffers.Lock(slots.Select(b => b.Input)) : null;
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var stop = failed.Token;
        var stages = summary.Stages;
        long readTicks = 0, decodeTicks = 0;
        Exception? firstFailure = null;
        void Fail(Exception e)
        {
            if (e is AggregateException { InnerExceptions.Count: > 0 } a) e = a.InnerExceptions[0];
            Interlocked.CompareExchange(ref firstFailure, e, null);
            failed.Cancel();
        }

        // warm every unit at the shapes it will run (a unit that keeps one shape runs only the full block's)
        PartitionedRunner.Warm(context, blocks.Select(b => b.Count).Distinct().Select(n => (PlanFor(n), 0)).ToList(), model,
            new[] { slots.First().Input }, slots.First().Outputs, fullShape);
        summary.SetupMs = setup.Elapsed.TotalMilliseconds;
        var wall = Stopwatch.StartNew();

        // the feeder hands out blocks as slots free up; decoders take their samples in order, on processors the units leave free
        var feeder = new Thread(() =>
        {
            try
            {
                for (int b = 0; b < blocks.Count; b++)
                {
                    var block = slots.Take(stop);
                    (block.Sequence, block.First, block.Count, block.Decoded) = (b, blocks[b].First, blocks[b].Count, 0);
                    Array.Clear(block.Errors);
                    for (int i = 0; i < block.Count; i++) samples.Add((block, i), stop);
                }
            }
            catch (OperationCanceledException) { }
            catch (Exception e) { Fail(e); }
            finally { samples.CompleteAdding(); }
        }) { IsBackground = true, Name = "HeteroBatch feeder" };
        Thread Decoder(int d, bool pinned) => new(() =>
        {
            if (pinned) Runtime.Libc.PinCurrentThread(free.ToArray());
            try
            {
                foreach (var (block, i) in samples.GetConsumingEnumerable(stop))
                {
                    long t0 = Stopwatch.GetTimestamp();
                    try { Interlocked.Add(ref readTicks, files.Load(block.First + i, block.Input, i, settings.Preprocessing)); }
                    catch (HeteroBatchException e) when (e.ErrorId is "ImageUnreadable" or "InputFileUnreadable" or "NpyInvalid")
                    {
                        block.Errors[i] = e;
                        block.Input.Bytes(i, 1).Clear();
                    }
                    Interlocked.Add(ref decodeTicks, Stopwatch.GetTimestamp() - t0);
                    if (Interlocked.Increment(ref block.Decoded) == block.Count) decoded.Add(block);
                }
            }
            catch (OperationCanceledException) { }
            catch (Exception e) { Fail(e); }
        }) { IsBackground = true, Name = $"HeteroBatch decoder {d}" };
        var decoders = Enumerable.Range(0, decodeThreads).Select(d => Decoder(d, free.Count > 0)).ToList();
        // unless the user chose the number: while the units wait for input, another decoder (on any processor, up to one per processor) helps more than it costs them
        bool grow = settings.DecodeThreads <= 0;
        int most = Math.Max(decodeThreads, Environment.ProcessorCount);

        int doneNow = 0;
        var writer = new Thread(() =>
        {
            try
            {
                foreach (var block in ran.GetConsumingEnumerable(stop))
                {
                    long t0 = Stopwatch.GetTimestamp();
                    for (int i = 0; i < block.Count; i++)
                        if (block.Errors[i] != null) FillMissing(block.Outputs, i);
                    var predictions = Predictions.Of(block.Outputs[0], 0, block.Count, block.First, files.NameOf,
                        i => block.Errors[i] == null ? plan.Shards[block.RanBy[i]].UnitId : null, i => block.Errors[i], settings.TopK);
                    summary.SamplesFailed += block.Errors.Take(block.Count).Count(e => e != null);
                    output?.Commit(block.First, block.Count, block.Outputs, predictions);
                    onBlock?.Invoke(predictions);
                    doneNow += block.Count;
                    stages.WriteMs += Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                    long read = Interlocked.Read(ref readTicks);
                    stages.ReadMs = Stopwatch.GetElapsedTime(0, read).TotalMilliseconds;
                    stages.DecodeMs = Stopwatch.GetElapsedTime(0, Interlocked.Read(ref decodeTicks) - read).TotalMilliseconds;
                    double seconds = wall.Elapsed.TotalSeconds, rate = doneNow / Math.Max(1e-9, seconds);
                    settings.Progress?.Invoke(new JobProgress(start + doneNow, total, doneNow, rate, rate > 0 ? (total - start - doneNow) / rate : double.NaN, stages));
                    slots.Add(block);
                }
            }
            catch (OperationCanceledException) { }
            catch (Exception e) { Fail(e); }
        }) { IsBackground = true, Name = "HeteroBatch writer" };

        feeder.Start();
        decoders.ForEach(d => d.Start());
        writer.Start();
        var runs = plan.Shards.Select(s => new UnitRun { UnitId = s.UnitId, Precision = s.Unit.Precision.ToString() }).ToDictionary(r => r.UnitId);
        var gone = new HashSet<string>();
        var runSettings = new RunSettings { Balance = settings.Balance, InjectFailure = settings.InjectFailure ?? context.InjectFailure };
        var early = new Dictionary<int, Block>(); // decoded before the blocks ahead of them
        try
        {
            for (int next = 0; next < blocks.Count; next++)
            {
                long w0 = Stopwatch.GetTimestamp();
                Block? block;
                while (!early.Remove(next, out block))
                {
                    var got = decoded.Take(stop);
                    early[got.Sequence] = got;
                }
                double waited = Stopwatch.GetElapsedTime(w0).TotalMilliseconds;
                stages.WaitForInputMs += waited;
                if (grow && next > 0 && decoders.Count < most && waited > 0.1 * stages.InferMs / next)
                {
                    var extra = Decoder(decoders.Count, pinned: false);
                    decoders.Add(extra);
                    extra.Start();
                }
                var blockPlan = PlanScaling.Without(PlanFor(block.Count), gone)
                    ?? throw new HeteroBatchException("AllUnitsFailed", FailureKind.ResourceUnavailable, "Every unit of the plan failed.") { StopsCommand = true };
                var (ms, unitRuns) = PartitionedRunner.RunBoard(context, blockPlan, new() { (blockPlan, 0) }, model,
                    new[] { block.Input }, block.Outputs, runSettings, stop, _ => { }, block.RanBy, gone.Count == 0 ? fullShape : null);
                // RanBy holds indexes into this block's plan; map them to the whole plan's shards
                var index = blockPlan.Shards.Select(s => plan.Shards.FindIndex(x => x.UnitId == s.UnitId)).ToArray();
                for (int i = 0; i < block.Count; i++) block.RanBy[i] = index[block.RanBy[i]];
                stages.InferMs += ms;
                foreach (var u in unitRuns) Add(runs[u.UnitId], u, gone);
                ran.Add(block, stop);
            }
        }
        catch (OperationCanceledException) when (firstFailure == null) { throw; }
        catch (OperationCanceledException) { }
        catch (Exception e) { Fail(e); }
        finally
        {
            ran.CompleteAdding();
            if (firstFailure != null) failed.Cancel();
            writer.Join();
            failed.Cancel(); // the feeder and decoders stop at their next sample
            feeder.Join();
            decoders.ForEach(d => d.Join());
        }
        if (firstFailure != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(firstFailure).Throw();
        cancel.ThrowIfCancellationRequested();

        summary.SamplesRun = doneNow;
        summary.DecodeThreads = decoders.Count;
        summary.Blocks = blocks.Count;
        summary.WallMs = wall.Elapsed.TotalMilliseconds;
        stages.ReadMs = Stopwatch.GetElapsedTime(0, readTicks).TotalMilliseconds;
        stages.DecodeMs = Stopwatch.GetElapsedTime(0, decodeTicks - readTicks).TotalMilliseconds;
        summary.Units = runs.Values.ToList();
        summary.PeakResidentBytes = Runtime.Libc.PeakResidentBytes() ?? 0;
        summary.Note = Bottleneck(summary);
        return summary;
    }

    private static void Add(UnitRun total, UnitRun block, HashSet<string> gone)
    {
        total.Count += block.Count;
        total.PlannedCount += block.PlannedCount;
        total.SubBatches += block.SubBatches;
        total.Ms += block.Ms;
        total.PredictedMs += block.PredictedMs;
        total.TookOver += block.TookOver;
        if (block.Failed)
        {
            total.Failed = true;
            total.Error = block.Error;
            gone.Add(block.UnitId);
        }
    }

    /// <summary>A failed sample's outputs: NaN for floating-point outputs, zero for integers.</summary>
    private static void FillMissing(IReadOnlyList<TensorBatch> outputs, int sample)
    {
        foreach (var o in outputs)
        {
            if (o.Data is float[] f) f.AsSpan(checked((int)(sample * o.SampleElements)), (int)o.SampleElements).Fill(float.NaN);
            else if (o.Data is double[] d) d.AsSpan(checked((int)(sample * o.SampleElements)), (int)o.SampleElements).Fill(double.NaN);
            else o.Bytes(sample, 1).Clear();
        }
    }

    private static string? Bottleneck(JobSummary s)
    {
        var st = s.Stages;
        if (s.WallMs <= 0) return null;
        if (st.WaitForInputMs > 0.2 * s.WallMs)
            return $"Decoding limited this job: the units waited {st.WaitForInputMs:F0} of {s.WallMs:F0} ms for input; decoding took {st.DecodeMs / Math.Max(1, s.SamplesRun):F2} ms a sample on {s.DecodeThreads} threads. More decoding threads (-DecodeThreads), or fewer CPU inference units, would feed them faster.";
        if (st.WriteMs > 0.5 * s.WallMs)
            return $"Writing limited this job: {st.WriteMs:F0} of {s.WallMs:F0} ms went to writing rows and handing on predictions.";
        return null;
    }
}
