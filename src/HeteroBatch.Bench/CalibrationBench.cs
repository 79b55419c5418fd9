using System.Text.Json;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Profiling;
using HeteroBatch.Engine.Units;
using HeteroBatch.Engine.Units.Backends;

namespace HeteroBatch.Bench;

/// <summary>
/// Plans calibrated by runs, as the module does them: profile each unit alone, then plan and run
/// the same model and batch again and again, each run's observations recorded in a fresh store
/// and the next plan calibrated from them. Prediction error of the plan from profiles alone
/// (round 0) and after 1, 2, 3 calibrating runs, on every unit together.
/// </summary>
public static class CalibrationBench
{
    public sealed record Row(string Model, int Batch, int Round, string CostsFrom, string Split, double PredictedMs, double MeasuredMs, double PredictionError);

    public static async Task<List<Row>> Run(EngineContext context, BenchOptions options)
    {
        var rows = new List<Row>();
        var units = UnitDiscovery.Discover(new DiscoveryRequest { Grouping = options.CpuGrouping, Precision = options.Precision }).Where(u => u.Available).ToList();
        if (options.NoCpu) units = units.Where(u => u.Kind != UnitKind.Cpu).ToList();
        var storeFolder = Path.Combine(Path.GetTempPath(), $"hb-calibrate-{Environment.ProcessId}");
        var store = new ProfileStore(storeFolder);
        Console.WriteLine($"calibration bench: units {string.Join(", ", units.Select(u => u.Id))}, store {storeFolder}");
        foreach (var name in options.Models)
        {
            var model = ModelCatalog.Resolve(name);
            var profiles = new List<UnitProfile>();
            foreach (var unit in units)
                profiles.Add(await Profiler.RunAsync(context, unit, model, new ProfileSettings
                {
                    BatchSizes = ProfileSchedule.Default(unit.Kind == UnitKind.Cpu && options.MaxCpuBatch > 0 ? Math.Min(options.MaxCpuBatch, options.Batches.Max()) : options.Batches.Max()),
                    PointBudget = TimeSpan.FromSeconds(options.SecondsPerSize),
                }));
            foreach (var batch in options.Batches)
                for (int round = 0; round <= 3; round++)
                {
                    var (together, alone) = round == 0 ? (null, null) : RunObservations.Calibration(store, profiles);
                    var plan = Planner.Plan(profiles, batch, PlanAlgorithm.Optimal, together, alone);
                    var result = PartitionedRunner.Run(context, plan, model, null, new RunSettings { Repeat = Math.Max(1, options.Repeats) });
                    store.Record(RunObservations.From(result));
                    var row = new Row(model.Name, batch, round, plan.CostsFrom, plan.Split, Math.Round(result.PredictedMs, 2), Math.Round(result.WallMs, 2), result.PredictionError);
                    rows.Add(row);
                    Console.WriteLine($"{model.Name} ×{batch} round {round} ({row.CostsFrom}): {row.Split}, predicted {row.PredictedMs} ms, measured {row.MeasuredMs} ms, error {row.PredictionError:P1}");
                    Directory.CreateDirectory(options.Out);
                    File.WriteAllText(Path.Combine(options.Out, "calibration.json"), JsonSerializer.Serialize(rows, BenchResults.Json));
                }
        }
        Directory.Delete(storeFolder, recursive: true);
        return rows;
    }
}
