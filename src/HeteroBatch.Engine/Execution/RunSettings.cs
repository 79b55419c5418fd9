using System.Diagnostics;
using HeteroBatch.Engine.Data;

namespace HeteroBatch.Engine.Execution;

public enum BalanceMode
{
    /// <summary>Each unit runs exactly its planned share (work moves only when a unit fails).</summary>
    Static,
    /// <summary>Units that finish early take sub-batches from the tail of slower units' shares.</summary>
    Dynamic,
}

/// <summary>Where a file job's images are decoded.</summary>
public enum DecodeOn
{
    /// <summary>Units that can decode their own share do (GPUs with nvJPEG: JPEG bytes to device memory; remote units whose server serves the model's encoded-image form: the files sent as BYTES); CPU threads decode the rest.</summary>
    Auto,
    /// <summary>CPU threads decode every image.</summary>
    Cpu,
}

/// <summary>How one run of a plan goes (what the user chose for this command): a batch in memory, a job over files or a served request.</summary>
public sealed record RunSettings
{
    public BalanceMode Balance { get; init; } = BalanceMode.Static;
    /// <summary>Seed of synthetic inputs (a batch run without inputs).</summary>
    public ulong Seed { get; init; } = 1;
    /// <summary>Test only: the unit with this id throws after this many sub-batches; default: the context's option.</summary>
    public (string UnitId, int AfterSubBatches)? InjectFailure { get; init; }
    /// <summary>Run the whole input this many times (a batch run); the result's WallMs is the median.</summary>
    public int Repeat { get; init; } = 1;
    /// <summary>How many top classes each prediction lists.</summary>
    public int TopK { get; init; } = 5;
    /// <summary>File jobs: how images become the model's input.</summary>
    public ImagePreprocessing Preprocessing { get; init; } = ImagePreprocessing.ImageNet;
    /// <summary>File jobs: threads that read and decode inputs; 0: one per processor the units leave free (at least 1), and one more each time the units wait for input, up to one per processor.</summary>
    public int DecodeThreads { get; init; }
    /// <summary>File jobs: where images are decoded (Auto: GPUs with nvJPEG decode their own share).</summary>
    public DecodeOn DecodeOn { get; init; } = DecodeOn.Auto;
    /// <summary>File jobs: bytes all blocks in flight may take together (inputs and outputs); blocks are the plan's batch or smaller to fit.</summary>
    public long MemoryBudget { get; init; } = 512L << 20;
    /// <summary>Called as samples finish, from an engine thread (never more often than every 100 ms for a batch, after each block for a job).</summary>
    public Action<RunProgress>? Progress { get; init; }
}

/// <summary>How far a run is: samples done and in all (over every repeat), the rate so far, and for file jobs where time went.</summary>
public sealed record RunProgress(long Done, long Total, double ImagesPerSecond, double SecondsLeft, JobStages? Stages = null)
{
    public int PercentComplete => (int)(100 * Done / Math.Max(1, Total));
}

/// <summary>Counts samples done from the units' threads and reports progress at most every 100 ms (and on <see cref="Report"/>).</summary>
internal sealed class ProgressCounter(Action<RunProgress>? report, long total, long alreadyDone = 0)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _done, _lastReportMs = -1000;

    public long Done => Interlocked.Read(ref _done);

    /// <summary>Samples finished (any thread).</summary>
    public void Add(int samples)
    {
        Interlocked.Add(ref _done, samples);
        long ms = _clock.ElapsedMilliseconds, last = Interlocked.Read(ref _lastReportMs);
        if (ms - last >= 100 && Interlocked.CompareExchange(ref _lastReportMs, ms, last) == last) Report();
    }

    /// <summary>Samples finished, without reporting (the caller reports next).</summary>
    public void Count(int samples) => Interlocked.Add(ref _done, samples);

    /// <summary>Reports now.</summary>
    public void Report(JobStages? stages = null)
    {
        if (report == null) return;
        long done = Done;
        double rate = done / Math.Max(1e-9, _clock.Elapsed.TotalSeconds);
        report(new RunProgress(alreadyDone + done, total, rate, rate > 0 ? (total - alreadyDone - done) / rate : double.NaN, stages));
    }
}
