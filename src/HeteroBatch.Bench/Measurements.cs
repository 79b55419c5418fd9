using System.Diagnostics;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Profiling;
using HeteroBatch.Engine.Units;
using Microsoft.ML.OnnxRuntime;

namespace HeteroBatch.Bench;

public static class Measurements
{
    /// <summary>Each unit alone, then every subset (or just all units) with each algorithm and balance mode.</summary>
    public static IEnumerable<RunRow> RunAll(EngineContext context, ModelSource model, List<UnitProfile> profiles, int batch, BenchOptions options)
    {
        var rows = new List<RunRow>();
        // each unit alone at its best: the baseline and the ideal bound's inputs
        var alone = new Dictionary<string, double>();
        foreach (var p in profiles)
        {
            var plan = Planner.Plan(new[] { p }, batch, PlanAlgorithm.Single);
            var row = Measure(context, model, plan, BalanceMode.Static, options.Repeats);
            alone[p.Unit.Id] = row.MedianMs;
            rows.Add(row);
        }
        var subsets = new List<List<UnitProfile>>();
        if (options.AllSubsets)
        {
            for (int mask = 1; mask < 1 << profiles.Count; mask++)
                if (System.Numerics.BitOperations.PopCount((uint)mask) >= 2)
                    subsets.Add(profiles.Where((_, i) => (mask & (1 << i)) != 0).ToList());
        }
        else if (profiles.Count >= 2) subsets.Add(profiles);

        foreach (var subset in subsets)
            foreach (var algorithm in new[] { PlanAlgorithm.Optimal, PlanAlgorithm.Greedy, PlanAlgorithm.Proportional, PlanAlgorithm.Even })
                foreach (var balance in new[] { BalanceMode.Static, BalanceMode.Dynamic })
                {
                    var plan = Planner.Plan(subset, batch, algorithm);
                    rows.Add(Measure(context, model, plan, balance, options.Repeats));
                }

        foreach (var r in rows)
        {
            var ids = r.Units.Split('+');
            double throughput = ids.Sum(id => batch / alone[id]);
            r.IdealMs = batch / throughput;
            r.Efficiency = Math.Round(r.IdealMs / r.MedianMs, 4);
            var best = ids.MinBy(id => alone[id])!;
            r.BestSingleUnit = best;
            r.BestSingleMs = alone[best];
            r.Speedup = Math.Round(alone[best] / r.MedianMs, 4);
            Console.WriteLine($"{r.Model} B={batch} [{r.Units}] {r.Algorithm}/{r.Balance}: {r.MedianMs:F1} ms (pred {r.PredictedMs:F1}, ideal {r.IdealMs:F1}, eff {r.Efficiency:F3}, ×{r.Speedup:F3} vs {best}) split {r.Split}");
        }
        return rows;
    }

    private static RunRow Measure(EngineContext context, ModelSource model, BatchPlan plan, BalanceMode balance, int repeats)
    {
        var settings = new RunSettings { Balance = balance, Seed = 1 };
        PartitionedRunner.Run(context, plan, model, null, settings); // warm (sessions, shapes); not timed
        var walls = new List<double>();
        for (int i = 0; i < repeats; i++) walls.Add(PartitionedRunner.Run(context, plan, model, null, settings).WallMs);
        walls.Sort();
        return new RunRow
        {
            Model = model.Name, BatchSize = plan.BatchSize, Units = string.Join("+", plan.Units), UnitCount = plan.Units.Length,
            Algorithm = plan.Units.Length == 1 ? "Alone" : plan.Algorithm.ToString(), Balance = balance.ToString(), Split = plan.Split,
            PredictedMs = plan.PredictedMs, MedianMs = Statistics.Quantile(walls, 0.5), MinMs = walls[0], MaxMs = walls[^1],
            PredictionError = Math.Round((Statistics.Quantile(walls, 0.5) - plan.PredictedMs) / plan.PredictedMs, 4), PlanningMs = plan.PlanningMs,
        };
    }

    /// <summary>Planning time on random tables: 2, 4 and 8 units; batches up to 4096.</summary>
    public static List<PlanningTime> PlanningTimes()
    {
        var rng = new Random(1);
        var rows = new List<PlanningTime>();
        foreach (var k in new[] { 2, 4, 8 })
            foreach (var batch in new[] { 100, 1000, 4096 })
            {
                var profiles = Enumerable.Range(0, k).Select(i =>
                {
                    double overhead = rng.NextDouble() * 5, per = 0.2 + rng.NextDouble() * 3;
                    var max = 1 << rng.Next(5, 11);
                    return new UnitProfile
                    {
                        Unit = new ComputeUnit { Id = $"u{i}", Name = $"u{i}" }, Model = "m", ModelSha256 = "m", MaxBatchSize = max,
                        Table = ProfileSchedule.Default(max).Select(b => new ProfileEntry { BatchSize = b, MedianMs = overhead + per * b * (0.8 + 0.4 * rng.NextDouble()) }).ToList(),
                    };
                }).ToList();
                double Time(PlanAlgorithm a, out double max)
                {
                    for (int w = 0; w < 5; w++) Planner.Plan(profiles, batch, a);
                    var t = Enumerable.Range(0, 51).Select(_ => Planner.Plan(profiles, batch, a).PlanningMs).OrderBy(x => x).ToList();
                    max = t[^1];
                    return t[t.Count / 2];
                }
                var opt = Time(PlanAlgorithm.Optimal, out var optMax);
                var greedy = Time(PlanAlgorithm.Greedy, out var greedyMax);
                rows.Add(new PlanningTime(k, batch, opt, optMax, greedy, greedyMax));
            }
        return rows;
    }

    /// <summary>
    /// The runner's cost per sub-batch: 64 single-sample sub-batches through the runner, against
    /// the same 64 runs straight on the unit's session, on the same worker thread.
    /// </summary>
    public static OverheadRow DispatchOverhead(EngineContext context, ModelSource model, ComputeUnit unit, int repeats)
    {
        const int n = 64;
        var plan = PlanLayout.Manual(model.Name, model.Sha256, new[] { new ShareSpec(unit, n, 1, 1) });
        plan.Units = new[] { unit.Id };
        var worker = context.Workers.For(unit);
        PartitionedRunner.Run(context, plan, model, null, new RunSettings());
        var direct = new List<double>();
        var runner = new List<double>();
        for (int r = 0; r < Math.Max(3, repeats); r++)
        {
            direct.Add(worker.Invoke(() =>
            {
                var loaded = worker.Load(model);
                var inputs = loaded.SyntheticInputs(n, 1);
                var outputs = loaded.AllocateOutputs(n);
                var clock = Stopwatch.StartNew();
                for (int i = 0; i < n; i++) loaded.Run(inputs, outputs, i, 1);
                return clock.Elapsed.TotalMilliseconds;
            }).Result);
            runner.Add(PartitionedRunner.Run(context, plan, model, null, new RunSettings()).WallMs);
        }
        double d = Median(direct), w = Median(runner);
        var row = new OverheadRow(model.Name, unit.Id, n, 1, d, w, (w - d) / n);
        Console.WriteLine($"dispatch overhead on {unit.Id} ({model.Name}): direct {d:F2} ms, runner {w:F2} ms for {n} sub-batches → {row.PerSubBatchMs * 1000:F1} µs per sub-batch");
        return row;
    }

    /// <summary>Times the default profiling sweep of a model on one CPU unit twice and compares the medians.</summary>
    public static async Task<SweepRow> SweepTwice(EngineContext context, string modelName, ComputeUnit unit)
    {
        var model = ModelCatalog.Resolve(modelName, context.Options.ModelCacheFolder);
        var settings = new ProfileSettings();
        var c1 = Stopwatch.StartNew();
        var first = await Profiler.RunAsync(context, unit, model, settings);
        double s1 = c1.Elapsed.TotalSeconds;
        var c2 = Stopwatch.StartNew();
        var second = await Profiler.RunAsync(context, unit, model, settings);
        double s2 = c2.Elapsed.TotalSeconds;
        var diffs = first.Table.Join(second.Table, e => e.BatchSize, e => e.BatchSize, (a, b) => Math.Abs(a.MedianMs - b.MedianMs) / a.MedianMs * 100).OrderBy(x => x).ToList();
        var row = new SweepRow(model.Name, unit.Id, s1, s2, first.Table.Count, Math.Round(Median(diffs), 2), Math.Round(diffs.Max(), 2));
        Console.WriteLine($"default sweep of {model.Name} on {unit.Id}: {s1:F1} s and {s2:F1} s for {row.Sizes} sizes; medians differ by {row.MedianAbsDiffPercent}% (median), {row.MaxAbsDiffPercent}% (max)");
        return row;
    }

    private static double Median(List<double> values)
    {
        var s = values.OrderBy(v => v).ToList();
        return Statistics.Quantile(s, 0.5);
    }
}
