using HeteroBatch.Engine.Units;

namespace HeteroBatch.Engine.Planning;

public enum PlanAlgorithm
{
    /// <summary>Exact min-max on the cost model (binary search on the makespan).</summary>
    Optimal,
    /// <summary>The seed's greedy: each next sample goes to the unit that would finish it soonest.</summary>
    Greedy,
    /// <summary>Shares proportional to each unit's best measured throughput.</summary>
    Proportional,
    /// <summary>Equal shares, as data-parallel frameworks do.</summary>
    Even,
    /// <summary>The whole batch on the best single unit.</summary>
    Single,
}

/// <summary>One unit's share of a batch: samples [Offset, Offset + Count).</summary>
public sealed class PlanShard
{
    public string UnitId { get; set; } = "";
    public ComputeUnit Unit { get; set; } = new();
    public int Offset { get; set; }
    public int Count { get; set; }
    /// <summary>Samples per run; a share larger than this runs as several sub-batches.</summary>
    public int SubBatchSize { get; set; }
    public int SubBatches => SubBatchSize <= 0 ? 0 : (Count + SubBatchSize - 1) / SubBatchSize;
    public double PredictedMs { get; set; }
    /// <summary>What the unit's profiled times were multiplied by for this plan (1: the profile alone; see CostsFrom).</summary>
    public double CostFactor { get; set; } = 1;
    /// <summary>Sub-batches the unit runs at once (remote units whose profile measured more requests in flight as faster); 1 for the others.</summary>
    public int InFlight { get; set; } = 1;

    public override string ToString() => $"{UnitId}: samples {Offset}..{Offset + Count - 1}";
}

/// <summary>
/// How a batch is split across units, and what that is predicted to cost. A record, so that a
/// changed plan is a copy made with <c>with</c>, which carries every property (a new one too);
/// the copy is shallow: give it its own <see cref="Shards"/> (PlanLayout.Lay does) before changing them.
/// </summary>
public sealed record BatchPlan
{
    public string Model { get; set; } = "";
    public string ModelSha256 { get; set; } = "";
    public string? ModelPath { get; set; }
    public int BatchSize { get; set; }
    public PlanAlgorithm Algorithm { get; set; }
    /// <summary>The units' shares (text: each share, so that a CSV cell reads as the shares).</summary>
    public List<PlanShard> Shards { get => _shards; set => _shards = Data.ItemList<PlanShard>.Of(value); }
    private List<PlanShard> _shards = new Data.ItemList<PlanShard>();
    /// <summary>Predicted time until the last unit finishes.</summary>
    public double PredictedMs { get; set; }
    public string BestSingleUnit { get; set; } = "";
    public double BestSingleMs { get; set; }
    /// <summary>BestSingleMs / PredictedMs.</summary>
    public double PredictedSpeedup { get; set; }
    /// <summary>Units that were considered and given nothing.</summary>
    public string[] UnusedUnits { get; set; } = Array.Empty<string>();
    /// <summary>True when the algorithm's own split predicted worse than the best single unit, so that unit got the batch.</summary>
    public bool FellBackToSingle { get; set; }
    /// <summary>The units the plan was made for (used or not).</summary>
    public string[] Units { get; set; } = Array.Empty<string>();
    public double PlanningMs { get; set; }
    /// <summary>What the predicted costs came from: the profiles alone, or calibrated by observed runs (each unit's factor and how many runs).</summary>
    public string CostsFrom { get; set; } = "profiles";
    /// <summary>
    /// Whether runs changed the plan: "no" (the profiles alone, or runs that agree with them), "N runs"
    /// (some unit's costs scaled by what its last N runs showed: see CostsFrom), or "fell back" (runs
    /// showed a split slower than the best unit alone, which got the batch: see Note).
    /// </summary>
    public string Calibrated { get; set; } = "no";
    /// <summary>Why the plan is as it is, where that is not plain (a split that runs showed slower than one unit alone).</summary>
    public string? Note { get; set; }
    /// <summary>How the model takes a batch (a model whose samples interact runs whole, on one unit).</summary>
    public Models.BatchMode BatchMode { get; set; } = Models.BatchMode.Native;
    /// <summary>The profile store the plan's profiles came from (a full path; null when they came from elsewhere): its runs are recorded there.</summary>
    public string? ProfileFolder { get; set; }

    public string Split => string.Join(" + ", Shards.Select(s => $"{s.UnitId}:{s.Count}"));

    /// <summary>True when the plan's units run at different precisions (say, CPU units at Fp32 and GPUs at Fp16).</summary>
    public bool MixedPrecision => Shards.Select(s => s.Unit.Precision).Distinct().Count() > 1;

    /// <summary>Each used unit's precision: "cpu:Fp32 gpu0:Fp16".</summary>
    public string Precisions => string.Join(" ", Shards.Select(s => $"{s.UnitId}:{s.Unit.Precision}"));

    public override string ToString() => $"{Model} ×{BatchSize} [{Split}]";
}

/// <summary>
/// What runs taught the planner (see Execution.RunObservations): per unit its factor beside other
/// units and alone, and for the whole set of units planned, how its runs compared with their plans.
/// </summary>
public sealed record PlanCalibration(
    IReadOnlyDictionary<string, (double Factor, int Runs)> Together,
    IReadOnlyDictionary<string, (double Factor, int Runs)> Alone,
    (double Factor, int Runs) Set);
