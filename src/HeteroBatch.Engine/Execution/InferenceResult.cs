using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Planning;

namespace HeteroBatch.Engine.Execution;

/// <summary>What one unit did in a partitioned run.</summary>
public sealed class UnitRun
{
    public string UnitId { get; set; } = "";
    /// <summary>The arithmetic the unit ran in (Fp32, Tf32, Fp16).</summary>
    public string Precision { get; set; } = "Fp32";
    public int PlannedCount { get; set; }
    /// <summary>Samples this unit produced outputs for.</summary>
    public int Count { get; set; }
    public int SubBatches { get; set; }
    /// <summary>
    /// From the run's start to this unit's last sub-batch ending: the time its share kept the run
    /// waiting, a late start included (what a plan predicts and calibration compares).
    /// </summary>
    public double Ms { get; set; }
    public double PredictedMs { get; set; }
    /// <summary>Samples planned for other units that this one ran (dynamic balance or fail-over).</summary>
    public int TookOver { get; set; }
    public bool Failed { get; set; }
    public string? Error { get; set; }
    public double ImagesPerSecond => Ms > 0 ? Count * 1000.0 / Ms : 0;

    public override string ToString() => Failed ? $"{UnitId}: {Count} samples, failed ({Error})" : $"{UnitId}: {Count} samples in {Ms:F1} ms";
}

/// <summary>One sample's result: its top classes (classifier outputs), the unit that ran it, or why it has none.</summary>
public sealed class SamplePrediction
{
    /// <summary>The sample's place in the input order (0-based).</summary>
    public int Index { get; set; }
    public string Input { get; set; } = "";
    /// <summary>Arg-max class (-1 where the output is not a classifier vector or the sample failed).</summary>
    public int Class { get; set; }
    public float Score { get; set; }
    public ValueList<int> TopClasses { get; set; } = new();
    public ValueList<float> TopScores { get; set; } = new();
    /// <summary>The unit that ran the sample (streamed file jobs).</summary>
    public string? Unit { get; set; }
    /// <summary>Why the sample has no output (an image that could not be read), else null.</summary>
    public string? Error { get; set; }
    /// <summary>The ErrorId of <see cref="Error"/> (ImageUnreadable, InputFileUnreadable, NpyInvalid).</summary>
    public string? ErrorId { get; set; }

    public override string ToString() => Error != null ? $"{Input}: failed ({Error})" : $"{Input}: class {Class} ({Score:G4})";
}

/// <summary>The outcome of running a plan: timings, where every sample went, and the outputs in input order.</summary>
public sealed class InferenceResult
{
    public BatchPlan Plan { get; set; } = new();
    public string Model { get; set; } = "";
    public int BatchSize { get; set; }
    public string Balance { get; set; } = "Static";
    /// <summary>Wall time of the partitioned run (after sessions were loaded and warmed).</summary>
    public double WallMs { get; set; }
    /// <summary>Time spent before the timed run warming sessions at shapes they had not run (first runs allocate and search kernels).</summary>
    public double WarmupMs { get; set; }
    /// <summary>Wall time of each repeat (-Repeat), ascending.</summary>
    public double[] RepeatWallMs { get; set; } = Array.Empty<double>();
    /// <summary>Where each sample came from, in input order.</summary>
    public string[] InputNames { get; set; } = Array.Empty<string>();
    /// <summary>Top classes per sample, for classifier outputs.</summary>
    public List<SamplePrediction> Predictions { get; set; } = new();
    public double PredictedMs { get; set; }
    /// <summary>The share of the host's processors (0 to 1) that other processes used during the timed run (Runtime.HostLoad); null where not measured.</summary>
    public double? OtherLoad { get; set; }
    public double ImagesPerSecond => WallMs > 0 ? BatchSize * 1000.0 / WallMs : 0;
    /// <summary>(measured - predicted) / predicted.</summary>
    public double PredictionError => PredictedMs > 0 ? Math.Round((WallMs - PredictedMs) / PredictedMs, 4) : 0;
    public List<UnitRun> Units { get; set; } = new();
    /// <summary>Every output tensor for the whole batch, samples in input order.</summary>
    public List<TensorBatch> Outputs { get; set; } = new();
    /// <summary>Arg-max class of the first output for each sample (classifier outputs).</summary>
    public int[] Top1 { get; set; } = Array.Empty<int>();
    public string[] FailedUnits => Units.Where(u => u.Failed).Select(u => u.UnitId).ToArray();
    /// <summary>True when every sample has exactly one output.</summary>
    public bool Complete { get; set; }

    /// <summary>The first output's values for one sample.</summary>
    public float[] OutputOf(int sample) => Outputs[0].Sample(sample);

    public override string ToString() => $"{Model} ×{BatchSize} in {WallMs:F1} ms ({string.Join(" + ", Units.Select(u => $"{u.UnitId}:{u.Count}"))})";
}
