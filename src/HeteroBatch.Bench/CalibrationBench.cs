using System.Text.Json;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Profiling;
using HeteroBatch.Engine.Units;
using HeteroBatch.Engine.UseCases;
using HeteroBatch.Engine.Units.Backends;

namespace HeteroBatch.Bench;

/// <summary>
/// Plans calibrated by runs, as the module does them: profile each unit alone, run each unit alone
/// on the batch (its time, and the runs alone that a split is judged against), then for every set
/// of two or more units (every unit together with --no-subsets) plan and run the same model and
/// batch again and again, each run's observations recorded in one fresh store and the next plan
/// calibrated from them. Prediction error of the plan from profiles alone (round 0) and after 1,
/// 2, 3 calibrating runs; the last round held against the best unit alone and the ideal split.
/// </summary>
public static class CalibrationBench
{
    public const int Rounds = 3;

    public sealed record Row(string Model, int Batch, string Units, int Round, string CostsFrom, string Split, double PredictedMs, double MeasuredMs,
        double PredictionError, double? BestSingleMs = null, string? BestSingle = null, double? IdealMs = null, double? Efficiency = null, double? VersusBestSingle = null);

    public sealed record Summary(string Model, int Batch, int Subsets, double P90AbsError, double MaxVersusBestSingle, double MinEfficiency);

    public static async Task<List<Row>> Run(EngineContext context, BenchOptions options)
    {
        var rows = new List<Row>();
        var summaries = new List<Summary>();
        var units = UnitDiscovery.Discover(new DiscoveryRequest { Grouping = options.CpuGrouping, Precision = options.Precision }).Where(u => u.Available).ToList();
        if (options.NoCpu) units = units.Where(u => u.Kind != UnitKind.Cpu).ToList();
        var storeFolder = Path.Combine(Path.GetTempPath(), $"hb-calibrate-{Environment.ProcessId}");
        var store = new ProfileStore(storeFolder);
        Console.WriteLine($"calibration bench: units {string.Join(", ", units.Select(u => u.Id))}, store {storeFolder}");
        var sets = new List<int>();
        for (int mask = 1; mask < 1 << units.Count; mask++)
            if (System.Numerics.BitOperations.PopCount((uint)mask) >= 2 && (options.AllSubsets || mask == (1 << units.Count) - 1)) sets.Add(mask);
        void Save()
        {
            Directory.CreateDirectory(options.Out);
            File.WriteAllText(Path.Combine(options.Out, "calibration.json"), JsonSerializer.Serialize(new { rows, summaries }, BenchResults.Json));
        }
        foreach (var name in options.Models)
        {
            var model = ModelCatalog.Resolve(name, context.Options.ModelCacheFolder);
            var profiles = new List<UnitProfile>();
            foreach (var unit in units)
                profiles.Add(await Profiler.RunAsync(context, unit, model, new ProfileSettings
                {
                    BatchSizes = ProfileSchedule.Default(unit.Kind == UnitKind.Cpu && options.MaxCpuBatch > 0 ? Math.Min(options.MaxCpuBatch, options.Batches.Max()) : options.Batches.Max()),
                    PointBudget = TimeSpan.FromSeconds(options.SecondsPerSize),
                }));
            foreach (var batch in options.Batches)
            {
                Row RunOnce(IReadOnlyList<UnitProfile> set, int round, IReadOnlyDictionary<string, double>? aloneMs)
                {
                    var plan = Planner.Plan(set, batch, PlanAlgorithm.Optimal, round == 0 ? null : RunObservations.Calibration(store, set));
                    var result = new Inference(context).RunBatch(plan, null, new RunSettings { Repeat = Math.Max(1, options.Repeats) }, new RecordPolicy(true, store.Folder), model: model);
                    var row = new Row(model.Name, batch, string.Join("+", set.Select(p => p.Unit.Id)), round, plan.CostsFrom, plan.Split,
                        Math.Round(result.PredictedMs, 2), Math.Round(result.WallMs, 2), result.PredictionError);
                    if (aloneMs != null)
                    {
                        var best = set.MinBy(p => aloneMs[p.Unit.Id])!.Unit.Id;
                        // the ideal: every unit of the set busy the whole run at the rate it showed alone
                        double ideal = 1 / set.Sum(p => 1 / aloneMs[p.Unit.Id]);
                        row = row with { BestSingle = best, BestSingleMs = aloneMs[best], IdealMs = Math.Round(ideal, 2),
                            Efficiency = Math.Round(ideal / result.WallMs, 4), VersusBestSingle = Math.Round(result.WallMs / aloneMs[best], 4) };
                    }
                    rows.Add(row);
                    Console.WriteLine($"{model.Name} ×{batch} [{row.Units}] round {round} ({row.CostsFrom}): {row.Split}, predicted {row.PredictedMs} ms, measured {row.MeasuredMs} ms, error {row.PredictionError:P1}" +
                        (row.Efficiency is double e ? $", efficiency {e:F3}, ×{row.VersusBestSingle:F3} of {row.BestSingle} alone ({row.BestSingleMs} ms)" : ""));
                    Save();
                    return row;
                }
                // each unit alone: what a split must beat, and the runs alone the planner judges a split by
                var aloneMs = profiles.ToDictionary(p => p.Unit.Id, p => RunOnce(new[] { p }, 0, null).MeasuredMs);
                var last = new List<Row>();
                foreach (var mask in sets)
                {
                    var set = profiles.Where((_, i) => (mask & (1 << i)) != 0).ToList();
                    for (int round = 0; round <= Rounds; round++)
                    {
                        var row = RunOnce(set, round, aloneMs);
                        if (round == Rounds) last.Add(row);
                    }
                }
                if (last.Count == 0) continue;
                var errors = last.Select(r => Math.Abs(r.PredictionError)).OrderBy(e => e).ToList();
                var summary = new Summary(model.Name, batch, last.Count, Math.Round(HeteroBatch.Engine.Runtime.Statistics.Quantile(errors, 0.9), 4),
                    last.Max(r => r.VersusBestSingle!.Value), last.Min(r => r.Efficiency!.Value));
                summaries.Add(summary);
                Console.WriteLine($"{model.Name} ×{batch} after {Rounds} calibrating runs, {summary.Subsets} sets of units: p90 |prediction error| {summary.P90AbsError:P1}, " +
                    $"slowest against its best unit alone ×{summary.MaxVersusBestSingle:F3}, lowest efficiency {summary.MinEfficiency:F3}");
                Save();
            }
        }
        Directory.Delete(storeFolder, recursive: true);
        return rows;
    }
}
