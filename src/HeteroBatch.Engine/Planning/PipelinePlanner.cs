namespace HeteroBatch.Engine.Planning;

/// <summary>One unit of a file job as the pipeline sees it: how fast it infers (the plan's prediction), whether it decodes its own share, and the processors it computes on (CPU units).</summary>
/// <param name="SamplesPerSecond">Its inference rate at the job's block, from the plan.</param>
/// <param name="DecodesOwnShare">It decodes its share itself (a GPU with nvJPEG): CPU threads only read its files.</param>
/// <param name="Processors">Processors it computes on, which decoding threads could use if it did not infer (CPU units; 0 for others).</param>
/// <param name="NeedsHostThread">Its own decoding runs a thread on this host (a GPU: parsing and submitting; not a remote server).</param>
internal sealed record PipelineUnit(string UnitId, double SamplesPerSecond, bool DecodesOwnShare, int Processors, bool NeedsHostThread = false);

/// <summary>What the pipeline planner decided for a file job: the units that infer, how many threads decode, and which stage limits the job.</summary>
/// <param name="Inferring">The units that infer (the others' processors decode).</param>
/// <param name="DecodeThreads">Decoding threads (at least 1).</param>
/// <param name="SamplesPerSecond">The job's predicted rate: the slower of inference and decoding.</param>
/// <param name="Limit">"inference" or "decoding".</param>
/// <param name="Dropped">CPU units left out because the job runs faster with their processors decoding (on threads that feed the other units, or as the decoding GPUs' own threads).</param>
internal sealed record PipelinePlan(IReadOnlyList<string> Inferring, int DecodeThreads, double SamplesPerSecond, string Limit, IReadOnlyList<string> Dropped)
{
    public override string ToString() =>
        $"pipeline: {string.Join(" + ", Inferring)} infer, {DecodeThreads} thread{(DecodeThreads == 1 ? "" : "s")} decode{(DecodeThreads == 1 ? "s" : "")}, {SamplesPerSecond:F1} samples/s predicted, limited by {Limit}" +
        (Dropped.Count > 0 ? $"; {string.Join(", ", Dropped)} left out: the job runs faster with {(Dropped.Count == 1 ? "its" : "their")} processors decoding for the others" : "");
}

/// <summary>
/// Plans a file job's stages together: decoding on CPU threads feeds the units that do not decode
/// their own share, and each unit that decodes its own share needs a processor for its decoding
/// thread, so a CPU unit's processors either infer or feed the others. For each choice of CPU units
/// to keep (the slowest left out first), the job runs as fast as its slower stage: the units that
/// decode their own share at their rate, the others at their rate or at the rate the decoding
/// threads feed them, whichever is lower. The fastest choice wins; on a tie, the one that keeps
/// more units. Pure: rates come from the plan and a probe of the job's own files.
/// </summary>
internal static class PipelinePlanner
{
    /// <param name="units">The plan's units.</param>
    /// <param name="decodeMsPerSample">CPU time one thread takes to read and decode one of the job's samples (measured on its first files).</param>
    /// <param name="freeProcessors">Processors no unit computes on (decoding threads run there).</param>
    /// <param name="mayLeaveOut">False: every unit infers (the user chose the decoding threads); the plan only predicts.</param>
    public static PipelinePlan Plan(IReadOnlyList<PipelineUnit> units, double decodeMsPerSample, int freeProcessors, bool mayLeaveOut = true)
    {
        if (units.Count == 0) throw new ArgumentException("a pipeline needs at least one unit", nameof(units));
        var cpuUnits = units.Where(u => u.Processors > 0).OrderBy(u => u.SamplesPerSecond).ToList();
        // a unit is left out only on evidence: every rate known, and other kinds of unit to feed (where all are CPU units,
        // decoding threads share their processors and grow while they wait)
        bool evidence = units.All(u => u.SamplesPerSecond > 0) && units.Any(u => u.Processors == 0);
        int most = mayLeaveOut && evidence ? cpuUnits.Count : 0;
        PipelinePlan? best = null;
        for (int drop = 0; drop <= most; drop++)
        {
            var dropped = cpuUnits.Take(drop).Select(u => u.UnitId).ToHashSet();
            var kept = units.Where(u => !dropped.Contains(u.UnitId)).ToList();
            if (kept.Count == 0) break;
            // processors no kept CPU unit computes on: first one each for the decoding units' own threads (a GPU's
            // decoding is parsed and submitted from the CPU), then the decoding threads; a decoding unit without a
            // processor of its own competes with the CPU units for one and slows down as much
            int spare = freeProcessors + cpuUnits.Take(drop).Sum(u => u.Processors);
            int decodingUnits = kept.Count(u => u.NeedsHostThread);
            double ownShare = decodingUnits == 0 ? 1 : Math.Min(1, Math.Max(0.5, spare) / decodingUnits);
            int threads = Math.Max(1, spare - Math.Min(spare, decodingUnits));
            double own = kept.Where(u => u.DecodesOwnShare).Sum(u => u.NeedsHostThread ? ownShare * u.SamplesPerSecond : u.SamplesPerSecond);
            double fedInference = kept.Where(u => !u.DecodesOwnShare).Sum(u => u.SamplesPerSecond);
            double decoding = decodeMsPerSample > 0 ? threads * 1000.0 / decodeMsPerSample : double.PositiveInfinity;
            double fed = Math.Min(fedInference, decoding);
            var candidate = new PipelinePlan(kept.Select(u => u.UnitId).ToList(), threads, own + fed,
                fedInference > decoding ? "decoding" : "inference", dropped.ToList());
            // leaving a unit out must pay clearly (the rates are predictions, the probe a few files)
            if (best == null || candidate.SamplesPerSecond > best.SamplesPerSecond * 1.05) best = candidate;
        }
        return best!;
    }
}
