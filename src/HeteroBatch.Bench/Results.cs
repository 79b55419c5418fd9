using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Units;

namespace HeteroBatch.Bench;

public sealed class BenchResults
{
    public static readonly JsonSerializerOptions Json = new() { WriteIndented = true, Converters = { new JsonStringEnumConverter() } };

    public MachineInfo Machine { get; set; } = new();
    public string Options { get; set; } = "";
    public DateTimeOffset StartedAt { get; set; }
    public DateTimeOffset FinishedAt { get; set; }
    public List<string> Units { get; set; } = new();
    public List<PlanningTime> Planning { get; set; } = new();
    public List<ProfileRow> Profiles { get; set; } = new();
    public List<RunRow> Runs { get; set; } = new();
    public List<OverheadRow> Overheads { get; set; } = new();
    public List<SweepRow> Sweeps { get; set; } = new();
}

public sealed class MachineInfo
{
    public string Host { get; set; } = "";
    public string Cpu { get; set; } = "";
    public int Processors { get; set; }
    public List<string> Gpus { get; set; } = new();
    public string OrtVersion { get; set; } = "";
    public string Os { get; set; } = "";
    public string Runtime { get; set; } = "";

    public static MachineInfo Read() => new()
    {
        Host = Environment.MachineName,
        Cpu = CpuTopology.ModelName(),
        Processors = CpuTopology.AllowedProcessors().Length,
        Gpus = UnitBackends.Cuda.Discover(new DiscoveryRequest(), OrtRuntime.Version).Where(u => u.Available).Select(u => $"{u.Id}: {u.Name}").ToList(),
        OrtVersion = OrtRuntime.Version,
        Os = RuntimeInformation.OSDescription,
        Runtime = RuntimeInformation.FrameworkDescription,
    };
}

public sealed record PlanningTime(int Units, int BatchSize, double OptimalMedianMs, double OptimalMaxMs, double GreedyMedianMs, double GreedyMaxMs);

public sealed record ProfilePoint(int BatchSize, double MedianMs, double P10Ms, double P90Ms, double ImagesPerSecond, double? TransferMs = null);

public sealed record ProfileRow(string Model, string Unit, double Seconds, int MaxBatchSize, int? FailedBatchSize, List<ProfilePoint> Points);

/// <summary>One configuration's measurements: a set of units, an algorithm, a balance mode.</summary>
public sealed class RunRow
{
    public string Model { get; set; } = "";
    public int BatchSize { get; set; }
    public string Units { get; set; } = "";
    public int UnitCount { get; set; }
    public string Algorithm { get; set; } = "";
    public string Balance { get; set; } = "";
    public string Split { get; set; } = "";
    public double PredictedMs { get; set; }
    public double MedianMs { get; set; }
    public double MinMs { get; set; }
    public double MaxMs { get; set; }
    /// <summary>B / Σ(each unit's measured throughput alone on this batch).</summary>
    public double IdealMs { get; set; }
    /// <summary>IdealMs / MedianMs.</summary>
    public double Efficiency { get; set; }
    public string BestSingleUnit { get; set; } = "";
    public double BestSingleMs { get; set; }
    /// <summary>BestSingleMs (measured) / MedianMs.</summary>
    public double Speedup { get; set; }
    /// <summary>(MedianMs - PredictedMs) / PredictedMs.</summary>
    public double PredictionError { get; set; }
    public double PlanningMs { get; set; }
    public double ImagesPerSecond => MedianMs > 0 ? BatchSize * 1000.0 / MedianMs : 0;
}

/// <summary>What the runner adds per sub-batch, against running the same sub-batches straight on the session.</summary>
public sealed record OverheadRow(string Model, string Unit, int SubBatches, int SubBatchSize, double DirectMs, double RunnerMs, double PerSubBatchMs);

/// <summary>A default profiling sweep timed twice: how long it takes and how stable its medians are.</summary>
public sealed record SweepRow(string Model, string Unit, double FirstSeconds, double SecondSeconds, int Sizes, double MedianAbsDiffPercent, double MaxAbsDiffPercent);
