using System.Collections.Concurrent;
using System.Diagnostics;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Sessions;
using HeteroBatch.Engine.Units.Backends;

namespace HeteroBatch.Engine.Execution;

/// <summary>Where time went in a file job. Read and decode are summed over the decoding threads; the rest are wall time of one stage.</summary>
public sealed class JobStages
{
    public double ReadMs { get; set; }
    public double DecodeMs { get; set; }
    /// <summary>Wall time the units ran blocks.</summary>
    public double InferMs { get; set; }
    /// <summary>Wall time the units waited for decoded input.</summary>
    public double WaitForInputMs { get; set; }
    /// <summary>CPU threads decoding samples of the decoding units' shares for them (reading included), summed over the threads.</summary>
    public double HelpDecodeMs { get; set; }
    /// <summary>Wall time of making and writing rows (the writing thread).</summary>
    public double WriteMs { get; set; }
    /// <summary>Wall time of handing each block's rows on to whoever takes them (the command's pipeline), on the writing thread.</summary>
    public double HandOnMs { get; set; }
    /// <summary>Wall time of bringing written rows to disk and recording them in job.json (a thread of its own, beside the writer, where the OS allows).</summary>
    public double FlushMs { get; set; }

    public override string ToString() => $"read {ReadMs:F0} ms, decode {DecodeMs:F0} ms (threads summed){(HelpDecodeMs > 0 ? $", decode for the decoding units {HelpDecodeMs:F0} ms (threads summed)" : "")}, infer {InferMs:F0} ms, waited for input {WaitForInputMs:F0} ms, write {WriteMs:F0} ms{(HandOnMs > 0 ? $", hand on {HandOnMs:F0} ms" : "")}{(FlushMs > 0 ? $", flush to disk {FlushMs:F0} ms" : "")}";
}

/// <summary>What a file job did.</summary>
public sealed class JobSummary : RunReport
{
    public int Samples { get; set; }
    /// <summary>Samples this command ran (the others were done by an earlier, resumed run).</summary>
    public int SamplesRun { get; set; }
    public int SamplesResumed { get; set; }
    /// <summary>Samples whose input could not be read; they have a row with the error and NaN outputs.</summary>
    public int SamplesFailed { get; set; }
    /// <summary>Loading sessions and warming the units at the job's shapes, before <see cref="RunReport.WallMs"/> (which runs from the first block's decoding to the last block's rows written).</summary>
    public double SetupMs { get; set; }
    public double ImagesPerSecond => WallMs > 0 ? SamplesRun * 1000.0 / WallMs : 0;
    /// <summary>Samples per block: the plan's batch, or fewer so that the blocks in flight fit the memory budget.</summary>
    public int BlockSize { get; set; }
    public int Blocks { get; set; }
    public int DecodeThreads { get; set; }
    public string Preprocessing { get; set; } = "";
    public JobStages Stages { get; set; } = new();
    public string? OutputPath { get; set; }
    /// <summary>What limited the job, where the stage times show it.</summary>
    public string? Note { get; set; }
    public long PeakResidentBytes { get; set; }
    /// <summary>Bytes of the buffers the job's blocks hold for its whole run: decoded inputs and file bytes of the blocks being read, decoded and run; outputs of those and of the one being written.</summary>
    public long BlockBufferBytes { get; set; }
    /// <summary>Resident memory when the set-up ended (libraries, sessions and the blocks' buffers): what the job's streaming added is the peak less this.</summary>
    public long ResidentAfterSetupBytes { get; set; }
    /// <summary>Where images were decoded: per unit that decoded its own share, how many on the unit and how many it gave to the CPU; and why a unit that could not decoded nothing.</summary>
    public List<string> UnitDecoding { get; set; } = new();
    /// <summary>Per unit that decoded its own share in chunks beside inference (a GPU), what its chunks took: decoding, inference, waiting (also in <see cref="UnitDecoding"/>, as text).</summary>
    public Dictionary<string, Units.Backends.DecodingStages> DecodingStages { get; set; } = new();
    /// <summary>How the job's stages were planned together: who infers, how many threads decode, the predicted rate and its limit, and any CPU unit left out to decode.</summary>
    public string? Pipeline { get; set; }
    /// <summary>Samples of the decoding units' shares that CPU threads decoded for them (pixels the units copy in; a sample whose decoding failed is not counted).</summary>
    public int SamplesDecodedForUnits { get; set; }
    /// <summary>What CPU threads hand the units they feed, a sample: the model's input, or uint8 pixels the units normalise themselves; null where every unit decodes its own share.</summary>
    public string? FedInputs { get; set; }
    /// <summary>Each stage's rate: reading files, decoding on CPU threads, and each unit's inference (with its own decoding where it decodes its share).</summary>
    public List<string> StageRates { get; set; } = new();
    public override double InferenceWallMs => Stages.InferMs;

    public override string ToString() => $"{Model}: {SamplesRun} samples in {WallMs:F0} ms ({ImagesPerSecond:F1}/s){(SamplesResumed > 0 ? $", {SamplesResumed} done before" : "")}";
}

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
        var help = fed == null ? decoding.CpuHelp(plan, context.Options, summary.DecodeThreads, Units.CpuTopology.PhysicalCores(free.Count > 0 ? free : Units.CpuTopology.AllowedProcessors())) : null;
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

/// <summary>How a job's samples fall into blocks, and the plan each block size runs.</summary>
internal sealed class JobLayout
{
    private readonly BatchPlan _plan;
    private readonly Dictionary<int, BatchPlan> _plans = new();

    public int BlockSize { get; }
    public List<(int First, int Count)> Blocks { get; } = new();
    /// <summary>Units that keep one shape run a short last block padded to the full block's shape (a new shape costs them a re-plan).</summary>
    public IReadOnlyDictionary<string, int> FullShape { get; }

    public JobLayout(BatchPlan plan, int start, int total, int blockSize)
    {
        _plan = plan;
        BlockSize = blockSize;
        for (int first = start; first < total; first += blockSize) Blocks.Add((first, Math.Min(blockSize, total - first)));
        FullShape = PlanFor(blockSize).Shards.ToDictionary(s => s.UnitId, s => Math.Min(s.SubBatchSize, s.Count));
    }

    /// <summary>The plan for a block of <paramref name="count"/> samples: the job's plan scaled down (cached per size).</summary>
    public BatchPlan PlanFor(int count) =>
        _plans.TryGetValue(count, out var p) ? p : _plans[count] = count == _plan.BatchSize ? _plan : PlanScaling.Scale(_plan, count);
}

/// <summary>
/// A block's inputs, reused for later blocks: its decoded samples and the file bytes of those that
/// units decode. A block holds them from its reading until its units have run.
/// </summary>
internal sealed class BlockInputs
{
    public required TensorBatch Decoded { get; init; }
    /// <summary>Where the file bytes of samples that units decode are read into (none when no unit decodes).</summary>
    public required ByteArena? Arena { get; init; }
    /// <summary>Where every unit decodes its own share and CPU threads help: which samples of the shares they took, their pixels in <see cref="Decoded"/>'s slots (else null).</summary>
    public PixelClaims? Claims { get; init; }
    public long BufferBytes => Decoded.ByteLength + (Arena?.Capacity ?? 0);

    /// <param name="samples">Samples of decoded input it holds: a block's size; the slots CPU threads help the decoding units with (<paramref name="blockSize"/> given); or 1 where every unit decodes its own share alone (never read).</param>
    /// <param name="blockSize">Where CPU threads help the decoding units: a block's size (the samples they may claim from); else 0.</param>
    public static BlockInputs Allocate(TensorSpec input, int samples, bool pinned, long arenaBytes, int blockSize = 0)
    {
        var decoded = pinned ? TensorBatch.AllocatePinned(input.Name, input.SampleShape, samples, input.ElementType)
            : new TensorBatch(input.Name, input.SampleShape, samples, null, input.ElementType);
        return new()
        {
            Arena = arenaBytes > 0 ? new ByteArena(arenaBytes) : null,
            Decoded = decoded,
            Claims = blockSize > 0 ? new PixelClaims(decoded, blockSize) : null,
        };
    }
}

/// <summary>One block's buffers, reused for later blocks: its inputs while it holds them, outputs, which unit ran each sample, which samples failed to load.</summary>
internal sealed class JobBlock
{
    private BlockInputs? _inputs;

    /// <summary>The block's inputs, from <see cref="Reuse"/> until <see cref="HandOnInputs"/>.</summary>
    public BlockInputs Inputs => _inputs ?? throw new InvalidOperationException($"Block {Sequence} holds no inputs.");
    public TensorBatch Input => Inputs.Decoded;
    public ByteArena? Arena => Inputs.Arena;
    public required List<TensorBatch> Outputs { get; init; }
    public required int[] RanBy { get; init; }
    public required HeteroBatchException?[] Errors { get; init; }
    /// <summary>The file bytes of samples a unit decodes itself (empty for the others), in <see cref="Arena"/> or arrays of their own.</summary>
    public required ReadOnlyMemory<byte>[] Bytes { get; init; }
    /// <summary>Samples whose decoded input is not in <see cref="Input"/> (a unit decodes them from <see cref="Bytes"/>).</summary>
    public required bool[] Undecoded { get; init; }
    /// <summary>Samples that a unit decoding its own share takes as bytes (set by the feeder from the block's plan).</summary>
    public required bool[] ForUnitDecoding { get; init; }
    public int Sequence, First, Count, Decoded;

    public static JobBlock Allocate(Sessions.ModelSignature signature, int size) => new()
    {
        Outputs = signature.Outputs.Select(o => new TensorBatch(o.Name, o.SampleShape, size, null, o.ElementType)).ToList(),
        RanBy = new int[size], Errors = new HeteroBatchException?[size],
        Bytes = new ReadOnlyMemory<byte>[size], Undecoded = new bool[size], ForUnitDecoding = new bool[size],
    };

    public long BufferBytes => Outputs.Sum(o => o.ByteLength);

    /// <summary>Makes the buffers block <paramref name="sequence"/> of the job, reading into <paramref name="inputs"/>.</summary>
    public void Reuse(int sequence, (int First, int Count) range, BlockInputs inputs)
    {
        (Sequence, First, Count, Decoded) = (sequence, range.First, range.Count, 0);
        Array.Clear(Errors);
        Array.Clear(Bytes);
        Array.Clear(Undecoded);
        Array.Clear(ForUnitDecoding);
        inputs.Arena?.Reset();
        _inputs = inputs;
    }

    /// <summary>Once the block's units have run: its inputs, for a later block (the file bytes read into them are forgotten).</summary>
    public BlockInputs HandOnInputs()
    {
        var inputs = Inputs;
        inputs.Claims?.Close(); // CPU threads helping a decoding unit take nothing more of this block, and finish what they took
        Array.Clear(Bytes);
        _inputs = null;
        return inputs;
    }

    /// <summary>A failed sample's outputs: NaN for floating-point outputs, zero for integers.</summary>
    public void FillMissing(int sample)
    {
        foreach (var o in Outputs)
        {
            if (o.Data is float[] f) f.AsSpan(checked((int)(sample * o.SampleElements)), (int)o.SampleElements).Fill(float.NaN);
            else if (o.Data is double[] d) d.AsSpan(checked((int)(sample * o.SampleElements)), (int)o.SampleElements).Fill(double.NaN);
            else o.Bytes(sample, 1).Clear();
        }
    }
}

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
    /// <paramref name="cores"/> (where the OS says), less one: the rest of the host's work needs processors too (on 2 x H200,
    /// 26 helping threads on 32 processors took 10.7-14.2 ms a sample against 6.5-6.8 for 12 on 16, and writing rows took
    /// up to twice as long; with 4 or 12 the jobs were faster than with 26). Null where they do not help.
    /// </summary>
    public DecodingHelp? CpuHelp(BatchPlan plan, EngineOptions options, int decodeThreads, int? cores = null)
    {
        double most = Math.Clamp(options.CpuDecodeShare, 0, EngineOptions.MaxCpuDecodeShare);
        var helped = _sessions.Where(kv => kv.Value.TakesCpuPixels).Select(kv => kv.Key).ToHashSet();
        int threads = Math.Min(decodeThreads - _sessions.Values.Sum(s => s.HostThreads) - 2, decodeThreads / 2);
        if (cores is int physical) threads = Math.Min(threads, physical - 1);
        if (!(most > 0) || helped.Count == 0 || threads < 1) return _help = null; // (NaN too)
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
