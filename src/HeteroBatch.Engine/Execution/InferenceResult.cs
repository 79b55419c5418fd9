using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Planning;

namespace HeteroBatch.Engine.Execution;

/// <summary>What one unit did in a partitioned run.</summary>
public sealed class UnitRun
{
    public string UnitId { get; set; } = "";
    /// <summary>The arithmetic the unit ran in (Fp32, Tf32, Fp16).</summary>
    public Models.Precision Precision { get; set; } = Models.Precision.Fp32;
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

    /// <summary>Adds what the unit did on a later board of the same run (a file job's next block).</summary>
    public void Add(UnitRun later)
    {
        Count += later.Count;
        PlannedCount += later.PlannedCount;
        SubBatches += later.SubBatches;
        Ms += later.Ms;
        PredictedMs += later.PredictedMs;
        TookOver += later.TookOver;
        if (later.Failed)
        {
            Failed = true;
            Error = later.Error;
        }
    }
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

/// <summary>
/// What one run of a plan did, whichever way it ran (a batch in memory, a job over files, a served
/// request): the plan, what each unit did, the time it took and the time predicted, and where the
/// run was recorded for later plans.
/// </summary>
public abstract class RunReport
{
    public BatchPlan Plan { get; set; } = new();
    public string Model { get; set; } = "";
    /// <summary>Wall time of the run (after sessions were loaded and warmed).</summary>
    public double WallMs { get; set; }
    /// <summary>The time the plan predicted for the samples run.</summary>
    public double PredictedMs { get; set; }
    /// <summary>What each unit did (text: each unit's run, so that a CSV cell reads as them).</summary>
    public List<UnitRun> Units { get => _units; set => _units = ItemList<UnitRun>.Of(value); }
    private List<UnitRun> _units = new ItemList<UnitRun>();
    /// <summary>Wall time the units ran (a file job: without the time they waited for input); what calibration compares with the prediction.</summary>
    public virtual double InferenceWallMs => WallMs;
    /// <summary>The profile store this run's observations were recorded in; null when they were not (see <see cref="NotRecordedBecause"/>).</summary>
    public string? RecordedIn { get; set; }
    /// <summary>Why the run was not recorded (-NoCalibration, a unit failed, the store could not be written), or null.</summary>
    public string? NotRecordedBecause { get; set; }
    /// <summary>The share of the host's processors (0 to 1) that other processes used during the run (Runtime.HostLoad); null where not measured. A busy run counts less in calibration.</summary>
    public double? OtherLoad { get; set; }
}

/// <summary>The outcome of running a plan: timings, where every sample went, and the outputs in input order.</summary>
public sealed class InferenceResult : RunReport
{
    public int BatchSize { get; set; }
    public BalanceMode Balance { get; set; } = BalanceMode.Static;
    /// <summary>Time spent before the timed run warming sessions at shapes they had not run (first runs allocate and search kernels).</summary>
    public double WarmupMs { get; set; }
    /// <summary>Wall time of each repeat (-Repeat), ascending.</summary>
    public double[] RepeatWallMs { get; set; } = Array.Empty<double>();
    /// <summary>Where each sample came from, in input order.</summary>
    public string[] InputNames { get; set; } = Array.Empty<string>();
    /// <summary>Top classes per sample, for classifier outputs.</summary>
    public List<SamplePrediction> Predictions { get => _predictions; set => _predictions = ItemList<SamplePrediction>.Of(value); }
    private List<SamplePrediction> _predictions = new ItemList<SamplePrediction>();
    public double ImagesPerSecond => WallMs > 0 ? BatchSize * 1000.0 / WallMs : 0;
    /// <summary>(measured - predicted) / predicted.</summary>
    public double PredictionError => PredictedMs > 0 ? Math.Round((WallMs - PredictedMs) / PredictedMs, 4) : 0;
    /// <summary>Every output tensor for the whole batch, samples in input order.</summary>
    public List<TensorBatch> Outputs { get => _outputs; set => _outputs = ItemList<TensorBatch>.Of(value); }
    private List<TensorBatch> _outputs = new ItemList<TensorBatch>();
    /// <summary>Arg-max class of the first output for each sample (classifier outputs).</summary>
    public int[] Top1 { get; set; } = Array.Empty<int>();
    public string[] FailedUnits => Units.Where(u => u.Failed).Select(u => u.UnitId).ToArray();
    /// <summary>True when every sample has exactly one output.</summary>
    public bool Complete { get; set; }

    /// <summary>The first output's values for one sample.</summary>
    public float[] OutputOf(int sample) => Outputs[0].Sample(sample);

    public override string ToString() => $"{Model} ×{BatchSize} in {WallMs:F1} ms ({string.Join(" + ", Units.Select(u => $"{u.UnitId}:{u.Count}"))})";
}
