using System.Diagnostics;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Sessions;
using HeteroBatch.Engine.Units.Backends;

namespace HeteroBatch.Engine.Execution;

/// <summary>
/// A job over files, streamed: decoding threads fill blocks of inputs while the units run earlier
/// blocks on one board each, and a writer hands on and writes the finished ones, in input order.
/// A fixed number of blocks is in flight, so memory does not grow with the number of files. An
/// input that cannot be read is a failed sample (its row says why), not a failed job.
/// Threads: <see cref="Run"/> is the inference stage (it runs each block's board, in order); the
/// feeder, the decoders and the writer are threads of their own (see <see cref="JobStageThreads"/>).
/// </summary>
public static class FileJob
{
    internal const int BlocksInFlight = 4; // decoding, decoded, running, writing
    /// <summary>Blocks holding inputs at once: a block hands its inputs (decoded samples, file bytes) on once its units have run, so the one being written holds outputs only.</summary>
    internal const int InputsInFlight = BlocksInFlight - 1;

    /// <summary>
    /// Samples per block: the plan's batch, or fewer so that the blocks in flight fit
    /// <paramref name="budget"/> (<see cref="InputsInFlight"/> blocks' inputs, <see cref="BlocksInFlight"/>
    /// blocks' outputs). Where every unit decodes its own share a block's inputs are only file bytes
    /// (a failed unit's samples go to another that decodes). Where some unit is fed decoded inputs,
    /// any sample may need them (a decoding unit's failure sends its samples there), so a block
    /// counts decoded inputs for all its samples, and the bytes of the units' share. Where CPU threads help the
    /// decoding units (<paramref name="helpedShare"/> of a block, at most), a block also holds that many samples' pixels.
    /// </summary>
    public static int BlockSize(int batch, long decodedBytes, long outputBytes, long encodedBytes, double unitDecodedShare, long budget, double helpedShare = 0, long pixelBytes = 0)
    {
        double share = Math.Clamp(unitDecodedShare, 0, 1);
        double inputs = share >= 1 ? encodedBytes + Math.Clamp(helpedShare, 0, 1) * pixelBytes : decodedBytes + share * encodedBytes;
        double perSample = Math.Max(1, InputsInFlight * inputs + BlocksInFlight * (double)outputBytes);
        return (int)Math.Clamp((long)(budget / perSample), 1, batch);
    }

    /// <summary>The job's pipeline: each unit's rate from the plan, whether it decodes its own share, and what one CPU thread takes to read and decode the job's first files.</summary>
    private static PipelinePlan PlanPipeline(BatchPlan plan, UnitDecoding decoding, InputFiles files, RunSettings settings, int start)
    {
        var units = plan.Shards.Select(s =>
        {
            var backend = UnitBackends.For(s.Unit);
            bool decodes = decoding.Units.Contains(s.UnitId);
            return new PipelineUnit(s.UnitId, s.PredictedMs > 0 ? s.Count * 1000.0 / s.PredictedMs : 0, decodes,
                backend.ComputeProcessors(s.Unit).Count, NeedsHostThread: decodes && backend.NeedsFeeder);
        }).ToList();
        double decodeMs = units.Any(u => !u.DecodesOwnShare) ? ProbeDecodeMs(files, start, settings.Preprocessing) : 0;
        // the user's thread count keeps every unit of the plan
        return PipelinePlanner.Plan(units, decodeMs, FreeProcessors(plan).Count, mayLeaveOut: settings.DecodeThreads <= 0);
    }

    /// <summary>Milliseconds one thread takes to read and decode one of the job's samples: the mean over its next few (after one untimed, which pays for first use).</summary>
    internal static double ProbeDecodeMs(InputFiles files, int start, ImagePreprocessing preprocessing, int samples = 4)
    {
        var probe = new TensorBatch(files.Input.Name, files.Input.SampleShape, 1, null, files.Input.ElementType);
        int end = Math.Min(files.SampleCount, start + 1 + samples), timed = 0;
        double ms = 0;
        for (int i = start; i < end; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            try { files.Load(i, probe, 0, preprocessing); }
            catch (HeteroBatchException e) when (e is { Kind: FailureKind.InvalidData, StopsCommand: false }) { continue; }
            if (i == start) continue;
            ms += Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            timed++;
        }
        return timed == 0 ? 0 : ms / timed;
    }

    /// <summary>Room for the file bytes of a full block's samples that units decode: their share of the block at a quarter more than the files' mean (a file beyond it gets an array of its own).</summary>
    private static long ArenaBytes(JobLayout layout, UnitDecoding decoding, InputFiles files)
    {
        int samples = layout.PlanFor(layout.BlockSize).Shards.Where(s => decoding.Units.Contains(s.UnitId)).Sum(s => s.Count);
        return samples * ArenaBytesPerFile(files);
    }

    private static long ArenaBytesPerFile(InputFiles files) => files.MeanFileBytes * 5 / 4;

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
        RunSettings settings, Action<IReadOnlyList<SamplePrediction>>? onBlock, CancellationToken cancel = default)
    {
        PlanLayout.Validate(plan);
        if (model.BatchMode == BatchMode.SamplesInteract)
            throw new HeteroBatchException("SamplesInteract", FailureKind.InvalidOperation,
                $"'{model.Name}' cannot run in blocks: {model.Note}.", model.Name);
        settings = settings with { InjectFailure = settings.InjectFailure ?? context.InjectFailure };
        var setup = Stopwatch.StartNew();
        int start = output?.ResumedAt ?? 0, total = files.SampleCount;
        var summary = new JobSummary
        {
            Plan = plan, Model = model.Name, Samples = total, SamplesResumed = start,
            Preprocessing = settings.Preprocessing.ToString(), OutputPath = output?.Folder,
        };
        if (start >= total) return summary;

        // units that decode their own share run their own sessions: the others' are loaded, warmed and fed decoded inputs
        using var decoding = UnitDecoding.Open(context, plan, model, files, settings, summary.UnitDecoding);
        // decoding and inference planned together: a CPU unit whose processors feed the other units faster by decoding is left out
        var pipeline = PlanPipeline(plan, decoding, files, settings, start);
        summary.Pipeline = pipeline.ToString();
        if (pipeline.Dropped.Count > 0 && PlanScaling.Without(plan, pipeline.Dropped) is { } kept)
            summary.Plan = plan = kept;
        var fed = PlanScaling.Without(plan, decoding.Units);
        var (fedModel, signature) = fed != null ? FedSessions(context, fed, model, files, settings, summary) : (model, decoding.Signature!);
        // what CPU threads decode into: the model's input, or uint8 RGB pixels where the units fed normalise them themselves
        var inputSpec = fedModel.PixelForm != null ? signature.Inputs[0] : files.Input;
        var loadAs = fedModel.PixelForm != null ? settings.Preprocessing with { ChannelOrder = ChannelOrder.Rgb } : settings.Preprocessing;
        if (fed != null)
            summary.FedInputs = $"{inputSpec.ElementType} [{string.Join(",", inputSpec.SampleShape)}]{(fedModel.PixelForm != null ? " pixels, normalised on the units" : "")}";
        double unitShare = plan.Shards.Where(s => decoding.Units.Contains(s.UnitId)).Sum(s => s.Count) / (double)plan.BatchSize;
        var free = FreeProcessors(plan);
        summary.DecodeThreads = settings.DecodeThreads > 0 ? settings.DecodeThreads : Math.Max(1, free.Count);
        // where every unit decodes its own share, CPU threads with time to spare decode the backs of the shares into pixels the units copy in
        var help = fed == null ? decoding.CpuHelp(plan, context.Options, summary.DecodeThreads, () => Units.CpuTopology.PhysicalCores(free.Count > 0 ? free : Units.CpuTopology.AllowedProcessors())) : null;
        var layout = new JobLayout(plan, start, total, BlockSize(plan.BatchSize, inputSpec.SampleBytes, signature.OutputBytesPerSample, ArenaBytesPerFile(files), unitShare,
            settings.MemoryBudget, help?.BlockShare ?? 0, help?.Pixels.SampleBytes ?? 0));
        summary.BlockSize = layout.BlockSize;
        if (help != null)
        {
            summary.Pipeline += $"; {help.Threads} of the decoding threads also decode, as they have time, up to {help.Most:P0} of each decoding unit's share (from its back, into {help.Pixels.ElementType} [{string.Join(",", help.Pixels.SampleShape)}] pixels the unit copies in)";
        }

        // GPUs fed decoded inputs copy them from page-locked memory (released when the job ends); a block's
        // inputs are touched only where CPU threads decode into them, so a job that units decode holds little
        bool lockInputs = fed != null ? PartitionedRunner.WantsPageLockedInputs(context, fed) : help != null && decoding.WantPageLocked(plan, context.Options);
        var slots = Enumerable.Range(0, Math.Min(BlocksInFlight, layout.Blocks.Count))
            .Select(_ => JobBlock.Allocate(signature, layout.BlockSize)).ToList();
        int helpSlots = help == null ? 0 : Math.Max(1, (int)Math.Ceiling(help.BlockShare * layout.BlockSize));
        var inputs = Enumerable.Range(0, Math.Min(InputsInFlight, layout.Blocks.Count))
            .Select(_ => help != null ? BlockInputs.Allocate(help.Pixels, helpSlots, lockInputs, ArenaBytes(layout, decoding, files), layout.BlockSize)
                : BlockInputs.Allocate(inputSpec, fed == null ? 1 : layout.BlockSize, lockInputs, ArenaBytes(layout, decoding, files))).ToList();
        summary.BlockBufferBytes = slots.Sum(b => b.BufferBytes) + inputs.Sum(i => i.BufferBytes);
        using var locked = lockInputs && help == null ? PageLockedBuffers.Lock(inputs.Select(i => i.Decoded)) : null;
        // the pixels CPU threads decode for the decoding units are copied by their sessions, asynchronously: page-locked
        // until the sessions are disposed (they settle every copy first), as the file bytes below
        if (lockInputs && help != null) decoding.HoldUntilDisposed(PageLockedBuffers.Lock(inputs.Select(i => i.Decoded)));
        // GPUs that decode their own share copy the file bytes to the device from the blocks' arenas: page-locked likewise
        // (released with the decoding sessions, after they have settled every copy from them)
        if (decoding.WantPageLocked(plan, context.Options))
            decoding.HoldUntilDisposed(PageLockedBuffers.Lock(inputs.Select(i => i.Arena).OfType<ByteArena>()));
        // warm every unit at the shapes it will run (a unit that keeps one shape runs only the full block's)
        if (fed != null)
            PartitionedRunner.Warm(context, layout.Blocks.Select(b => b.Count).Distinct().Select(n => layout.PlanFor(n))
                .Select(p => (p with { Shards = p.Shards.Where(s => !decoding.Units.Contains(s.UnitId)).ToList() }, 0)).ToList(), fedModel,
                new[] { inputs[0].Decoded }, slots[0].Outputs, layout.FullShape);
        decoding.Warm(context, layout);
        summary.SetupMs = setup.Elapsed.TotalMilliseconds;
        summary.ResidentAfterSetupBytes = Runtime.Libc.ResidentBytes() ?? 0;

        using var threads = new JobStageThreads(layout, slots, inputs, files, loadAs, output, summary, settings, free, onBlock, cancel, decoding, help);
        output?.OnFlushFailure(threads.Fail); // a block that cannot reach the disk stops the job at once
        var wall = Stopwatch.StartNew();
        var load = Runtime.HostLoad.Now(); // other processes' share of the host during the job marks it busy (calibration)
        threads.Start();
        var board = new BoardRun(context, plan, fedModel, settings);
        var runs = plan.Shards.ToDictionary(s => s.UnitId, s => new UnitRun { UnitId = s.UnitId, Precision = s.Unit.Precision });
        var gone = new HashSet<string>();
        try
        {
            for (int next = 0; next < layout.Blocks.Count; next++)
            {
                var block = threads.NextDecoded(next);
                var blockPlan = PlanScaling.Without(layout.PlanFor(block.Count), gone)
                    ?? throw new HeteroBatchException("AllUnitsFailed", FailureKind.ResourceUnavailable, "Every unit of the plan failed.") { StopsCommand = true };
                var upcoming = next + 1 < layout.Blocks.Count ? threads.PeekDecoded(next + 1) : null;
                decoding.Feed(block, blockPlan, upcoming, upcoming == null ? null : PlanScaling.Without(layout.PlanFor(upcoming.Count), gone), files);
                var outcome = board.Run(new BoardWork(blockPlan, new[] { (blockPlan, 0) }, new[] { block.Input }, block.Outputs)
                {
                    RanBy = block.RanBy, PadTo = gone.Count == 0 ? layout.FullShape : null,
                    Sessions = decoding.Sessions, EnsureDecoded = (offset, count) => threads.DecodeMissing(block, offset, count),
                }, threads.Token);
                summary.Stages.InferMs += outcome.WallMs;
                summary.PredictedMs += blockPlan.PredictedMs;
                foreach (var u in outcome.Runs)
                {
                    runs[u.UnitId].Add(u);
                    if (u.Failed && gone.Add(u.UnitId)) threads.Gone(gone);
                }
                decoding.Release(context, block);
                threads.Ran(block);
            }
        }
        catch (Exception e) { threads.Fail(e); }
        threads.Finish(); // rethrows the first failure of any stage
        cancel.ThrowIfCancellationRequested();
        output?.WaitForDisk();
        summary.Stages.FlushMs = output?.FlushMs ?? 0;

        summary.WallMs = wall.Elapsed.TotalMilliseconds;
        summary.OtherLoad = Runtime.HostLoad.OtherShare(load, Runtime.HostLoad.Now());
        summary.Blocks = layout.Blocks.Count;
        summary.Units = runs.Values.ToList();
        summary.PeakResidentBytes = Runtime.Libc.PeakResidentBytes() ?? 0;
        summary.Note = Bottleneck(summary);
        decoding.Report(summary);
        summary.StageRates = StageRates(summary, decoding.Units);
        return summary;
    }

    /// <summary>
    /// The model the units fed by CPU threads run, loaded on each, and its signature: its uint8-input
    /// form where the inputs are images and every such unit takes pixels (<see cref="IUnitBackend.TakesPixelInputs"/>),
    /// else the model itself (also where the model has no uint8 form; the summary says why).
    /// </summary>
    private static (ModelSource Model, ModelSignature Signature) FedSessions(EngineContext context, BatchPlan fed, ModelSource model, InputFiles files,
        RunSettings settings, JobSummary summary)
    {
        var workers = PartitionedRunner.Workers(context, fed);
        if (files.AllImages && fed.Shards.All(s => UnitBackends.For(s.Unit).TakesPixelInputs(s.Unit, context.Options)))
        {
            var pixels = model.AsPixelForm(settings.Preprocessing);
            try { return (pixels, PartitionedRunner.LoadSessions(workers, pixels)[0].Signature); }
            catch (HeteroBatchException e) when (e is { Kind: FailureKind.InvalidData }) // InputPrefixUnsupported: no uint8 form of this model
            {
                summary.UnitDecoding.Add($"units fed by CPU threads take the model's own input, not pixels ([{e.ErrorId}] {e.Message})");
            }
        }
        return (model, PartitionedRunner.LoadSessions(workers, model)[0].Signature);
    }

    /// <summary>Each stage's rate: reading and CPU decoding (per thread and together), and each unit's inference (with its own decoding, where it decodes).</summary>
    private static List<string> StageRates(JobSummary s, IReadOnlyCollection<string> decodingUnits)
    {
        var st = s.Stages;
        int threads = Math.Max(1, s.DecodeThreads);
        int cpuDecoded = s.SamplesRun - s.Units.Where(u => decodingUnits.Contains(u.UnitId)).Sum(u => u.Count - u.TookOver);
        var rates = new List<string>
        {
            $"read: {s.SamplesRun} files, {st.ReadMs / Math.Max(1, s.SamplesRun):F3} ms a file on a thread ({Rate(s.SamplesRun, st.ReadMs / threads)} files/s on {threads} thread{(threads == 1 ? "" : "s")})",
        };
        if (cpuDecoded > 0)
            rates.Add($"decode on CPU threads: {cpuDecoded} samples, {st.DecodeMs / cpuDecoded:F3} ms a sample on a thread ({Rate(cpuDecoded, st.DecodeMs / threads)}/s on {threads} thread{(threads == 1 ? "" : "s")})");
        if (s.SamplesDecodedForUnits > 0)
            rates.Add($"decode on CPU threads for the decoding units: {s.SamplesDecodedForUnits} samples, {st.HelpDecodeMs / s.SamplesDecodedForUnits:F3} ms a sample on a thread");
        foreach (var u in s.Units)
            rates.Add($"{u.UnitId}: {u.Count} samples, {Rate(u.Count, u.Ms)}/s while it ran ({(decodingUnits.Contains(u.UnitId) ? "decoding its own share" : "decoded inputs from CPU threads")}){(u.Failed ? $", failed: {u.Error}" : "")}");
        rates.Add($"job: {s.ImagesPerSecond:F1} samples/s; units ran {st.InferMs:F0} ms, waited for input {st.WaitForInputMs:F0} ms, writing {st.WriteMs:F0} ms, of {s.WallMs:F0} ms");
        return rates;
    }

    private static string Rate(int samples, double ms) => ms > 0 ? (samples * 1000.0 / ms).ToString("F1") : "-";

    internal static string? Bottleneck(JobSummary s)
    {
        var st = s.Stages;
        if (s.WallMs <= 0) return null;
        if (st.WaitForInputMs > 0.2 * s.WallMs)
            return $"Decoding limited this job: the units waited {st.WaitForInputMs:F0} of {s.WallMs:F0} ms for input; decoding took {st.DecodeMs / Math.Max(1, s.SamplesRun):F2} ms a sample on {s.DecodeThreads} threads. More decoding threads (-DecodeThreads), or fewer CPU inference units, would feed them faster.";
        if (st.HandOnMs > 0.5 * s.WallMs)
            return $"Taking the rows limited this job: handing them on to what takes the command's output took {st.HandOnMs:F0} of {s.WallMs:F0} ms.";
        if (st.WriteMs > 0.5 * s.WallMs)
            return $"Writing limited this job: {st.WriteMs:F0} of {s.WallMs:F0} ms went to making and writing rows.";
        return $"Inference limited this job: the units ran {st.InferMs:F0} of {s.WallMs:F0} ms and waited {st.WaitForInputMs:F0} ms for input.";
    }
}
