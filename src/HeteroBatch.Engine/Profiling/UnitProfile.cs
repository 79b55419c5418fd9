using HeteroBatch.Engine.Units;

namespace HeteroBatch.Engine.Profiling;

/// <summary>One measured batch size: the performance table's row.</summary>
public sealed class ProfileEntry
{
    public int BatchSize { get; set; }
    public double MedianMs { get; set; }
    public double P10Ms { get; set; }
    public double P90Ms { get; set; }
    public double MinMs { get; set; }
    public int Samples { get; set; }
    /// <summary>Half-width of the median's 95% confidence interval, as a percentage of the median.</summary>
    public double Ci95Percent { get; set; }
    public double ImagesPerSecond => MedianMs > 0 ? BatchSize * 1000.0 / MedianMs : 0;
    /// <summary>GPUs: median time with inputs and outputs already on the device (compute only).</summary>
    public double? ComputeMs { get; set; }
    /// <summary>GPUs: MedianMs - ComputeMs, the host-to-device and device-to-host copies.</summary>
    public double? TransferMs { get; set; }
    /// <summary>
    /// Runs kept in flight at once when measured (remote units: requests); the times are then per
    /// run, the wall time of a round of InFlight runs divided by InFlight. 1: one at a time.
    /// </summary>
    public int InFlight { get; set; } = 1;

    public override string ToString() => $"batch {BatchSize}: {MedianMs:F2} ms";
}

/// <summary>The performance table of one model on one unit, with where and when it was measured.</summary>
public sealed class UnitProfile : System.Text.Json.Serialization.IJsonOnDeserialized
{
    public const int CurrentSchema = 1;
    public int SchemaVersion { get; set; } = CurrentSchema;
    public ComputeUnit Unit { get; set; } = new();
    public string Model { get; set; } = "";
    public string ModelSha256 { get; set; } = "";
    /// <summary>Where the model file was when measured (zoo models: the cache).</summary>
    public string? ModelPath { get; set; }
    /// <summary>How the model takes a batch: Native, Rewritten (a fixed batch made symbolic) or Fixed (pieces of its fixed batch).</summary>
    public Models.BatchMode BatchMode { get; set; } = Models.BatchMode.Native;
    /// <summary>The measurements, one per batch size, in ascending batch size ("Entries" in stored files).</summary>
    [System.Text.Json.Serialization.JsonPropertyName("Entries")]
    public List<ProfileEntry> Table { get => _table; set => _table = Data.ItemList<ProfileEntry>.Of(value); }
    private List<ProfileEntry> _table = new Data.ItemList<ProfileEntry>();
    /// <summary>The largest batch size that ran.</summary>
    public int MaxBatchSize { get; set; }
    /// <summary>The first batch size that failed (out of memory or otherwise), if any; profiling stopped growing there.</summary>
    public int? FailedBatchSize { get; set; }
    public string? FailureReason { get; set; }
    public DateTimeOffset MeasuredAt { get; set; }
    /// <summary>Units that ran at the same time while this one was measured (Invoke-Profile -Concurrent); empty when measured alone.</summary>
    public string[] MeasuredAlongside { get; set; } = Array.Empty<string>();
    public string Host { get; set; } = "";
    /// <summary>Units at a reduced precision: how their outputs agree with the fp32 model's on the same seeded inputs; null for Fp32 units.</summary>
    public Data.OutputAgreement? Agreement { get; set; }
    public string RuntimeVersion { get; set; } = "";

    public string UnitId => Unit.Id;

    /// <summary>The store folder this profile was read from or saved to (not stored in the file); plans made from it record their runs there.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string? StoredIn { get; set; }

    /// <summary>Files written by hand or by older versions may list sizes in any order; the table is kept ascending.</summary>
    public void OnDeserialized() => Table = (Table ?? new()).OrderBy(e => e.BatchSize).ToList();

    /// <summary>How many batch sizes the table holds.</summary>
    public int Sizes => Table.Count;

    /// <summary>Samples per second at the profiled size that gives the most.</summary>
    public double BestImagesPerSecond => Table.Count == 0 ? 0 : Table.Max(e => e.ImagesPerSecond);

    /// <summary>A deep copy: the engine hands out changed copies and never edits a profile a caller holds.</summary>
    public UnitProfile Copy() =>
        System.Text.Json.JsonSerializer.Deserialize<UnitProfile>(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(this, ProfileStore.Json), ProfileStore.Json)!;

    /// <summary>
    /// A copy with one batch size's time set by hand (an entry with no samples behind it); a
    /// failure at or below that size is cleared, since the size is now said to run.
    /// </summary>
    public UnitProfile WithEntry(int batchSize, double medianMs)
    {
        var p = Copy();
        var entry = new ProfileEntry { BatchSize = batchSize, MedianMs = medianMs, P10Ms = medianMs, P90Ms = medianMs, MinMs = medianMs, Samples = 0 };
        p.Table = p.Table.Where(e => e.BatchSize != batchSize).Append(entry).OrderBy(e => e.BatchSize).ToList();
        if (p.FailedBatchSize is int f && batchSize >= f) { p.FailedBatchSize = null; p.FailureReason = null; }
        p.MaxBatchSize = p.Table.Max(e => e.BatchSize);
        return p;
    }

    public override string ToString() => $"{Model} on {Unit.Id}";
}
