using System.Globalization;
using System.Text;

namespace HeteroBatch.Bench;

/// <summary>Writes report.md and its plots from the results of one run.</summary>
public static class Report
{
    private static string F(double v, string format = "F1") => v.ToString(format, CultureInfo.InvariantCulture);
    private static string Pct(double v) => (v * 100).ToString("F1", CultureInfo.InvariantCulture) + "%";

    public static void Write(BenchResults r, string folder)
    {
        Directory.CreateDirectory(folder);
        var plots = Plots.Write(r, folder);
        var md = new StringBuilder();
        var m = r.Machine;
        md.AppendLine("# HeteroBatch benchmark report").AppendLine();
        md.AppendLine($"- Machine: `{m.Host}`, {m.Cpu}, {m.Processors} processors; GPUs: {(m.Gpus.Count == 0 ? "none" : string.Join("; ", m.Gpus))}");
        md.AppendLine($"- Software: ONNX Runtime {m.OrtVersion}, {m.Runtime}, {m.Os}");
        md.AppendLine($"- Run: {r.StartedAt:u} to {r.FinishedAt:u}; {r.Options}");
        md.AppendLine($"- Units: {string.Join("; ", r.Units)}");
        md.AppendLine("- Times are wall-clock milliseconds for the whole batch: median of the repeats (min-max beside), after a warm-up run. Inputs are seeded synthetic tensors; models have seeded random weights.");
        md.AppendLine("- Ideal = B / Σ(each unit's measured throughput alone on the same batch); efficiency = ideal / measured; speedup = best unit alone / measured; prediction error = (measured - predicted) / predicted.").AppendLine();

        md.AppendLine("## Targets").AppendLine();
        foreach (var line in Targets(r)) md.AppendLine($"- {line}");
        md.AppendLine();

        md.AppendLine("## The seed's table: time reduction against the fastest unit alone").AppendLine();
        md.AppendLine("Optimal plan, static balance. Each column is a set of units; the fastest single unit is the baseline (0%).").AppendLine();
        foreach (var group in r.Runs.GroupBy(x => x.BatchSize).OrderBy(g => g.Key))
        {
            var sets = group.Where(x => x.Algorithm is "Alone" or "Optimal" && x.Balance == "Static").Select(x => x.Units).Distinct().ToList();
            md.AppendLine($"Batch {group.Key}:").AppendLine();
            md.AppendLine("| model | fastest alone | " + string.Join(" | ", sets) + " |");
            md.AppendLine("|---|---|" + string.Concat(sets.Select(_ => "---|")));
            foreach (var model in group.GroupBy(x => x.Model))
            {
                var fastest = model.Where(x => x.Algorithm == "Alone").MinBy(x => x.MedianMs)!;
                var cells = sets.Select(s =>
                {
                    var row = model.FirstOrDefault(x => x.Units == s && x.Algorithm is "Alone" or "Optimal" && x.Balance == "Static");
                    return row == null ? "" : $"{F(row.MedianMs)} ms ({Pct(1 - row.MedianMs / fastest.MedianMs)})";
                });
                md.AppendLine($"| {model.Key} | {fastest.Units} {F(fastest.MedianMs)} ms | " + string.Join(" | ", cells) + " |");
            }
            md.AppendLine();
        }

        md.AppendLine("## Every configuration").AppendLine();
        md.AppendLine("| model | B | units | algorithm | balance | split | predicted ms | measured ms (min-max) | ideal ms | efficiency | speedup | prediction error | planning ms |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var x in r.Runs)
            md.AppendLine($"| {x.Model} | {x.BatchSize} | {x.Units} | {x.Algorithm} | {x.Balance} | {x.Split} | {F(x.PredictedMs)} | {F(x.MedianMs)} ({F(x.MinMs)}-{F(x.MaxMs)}) | {F(x.IdealMs)} | {F(x.Efficiency, "F3")} | {F(x.Speedup, "F3")} | {Pct(x.PredictionError)} | {F(x.PlanningMs, "F3")} |");
        md.AppendLine();

        md.AppendLine("## Profiling").AppendLine();
        md.AppendLine("| model | unit | seconds | sizes | largest batch that ran | failed at | best samples/s |");
        md.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var p in r.Profiles)
            md.AppendLine($"| {p.Model} | {p.Unit} | {F(p.Seconds)} | {p.Points.Count} | {p.MaxBatchSize} | {(p.FailedBatchSize?.ToString() ?? "")} | {F(p.Points.Max(x => x.ImagesPerSecond))} |");
        md.AppendLine();
        var transfers = r.Profiles.Where(p => p.Points.Any(x => x.TransferMs != null)).ToList();
        if (transfers.Count > 0)
        {
            md.AppendLine("Transfer vs compute on GPUs (host buffers vs inputs and outputs resident on the device), at the largest batch that ran:").AppendLine();
            md.AppendLine("| model | unit | batch | total ms | transfer ms | transfer share |");
            md.AppendLine("|---|---|---|---|---|---|");
            foreach (var p in transfers)
            {
                var x = p.Points.Where(q => q.TransferMs != null).MaxBy(q => q.BatchSize)!;
                md.AppendLine($"| {p.Model} | {p.Unit} | {x.BatchSize} | {F(x.MedianMs, "F2")} | {F(x.TransferMs!.Value, "F2")} | {Pct(x.TransferMs.Value / x.MedianMs)} |");
            }
            md.AppendLine();
        }
        foreach (var s in r.Sweeps)
            md.AppendLine($"Default sweep of {s.Model} on {s.Unit} ({s.Sizes} sizes), timed twice: {F(s.FirstSeconds)} s and {F(s.SecondSeconds)} s; the two sweeps' medians differ by {F(s.MedianAbsDiffPercent, "F2")}% at the median size and {F(s.MaxAbsDiffPercent, "F2")}% at most.").AppendLine();

        md.AppendLine("## Planning time").AppendLine();
        md.AppendLine("Random tables, 51 plans each after 5 warm-up plans.").AppendLine();
        md.AppendLine("| units | batch | Optimal median ms | Optimal max ms | Greedy median ms | Greedy max ms |");
        md.AppendLine("|---|---|---|---|---|---|");
        foreach (var p in r.Planning)
            md.AppendLine($"| {p.Units} | {p.BatchSize} | {F(p.OptimalMedianMs, "F4")} | {F(p.OptimalMaxMs, "F4")} | {F(p.GreedyMedianMs, "F4")} | {F(p.GreedyMaxMs, "F4")} |");
        md.AppendLine();

        md.AppendLine("## Dispatch overhead").AppendLine();
        md.AppendLine("| model | unit | sub-batches | direct session runs ms | through the runner ms | per sub-batch µs |");
        md.AppendLine("|---|---|---|---|---|---|");
        foreach (var o in r.Overheads)
            md.AppendLine($"| {o.Model} | {o.Unit} | {o.SubBatches} × {o.SubBatchSize} | {F(o.DirectMs, "F2")} | {F(o.RunnerMs, "F2")} | {F(o.PerSubBatchMs * 1000)} |");
        md.AppendLine();

        md.AppendLine("## Plots").AppendLine();
        foreach (var (title, file) in plots) md.AppendLine($"### {title}").AppendLine().AppendLine($"![{title}]({file})").AppendLine();
        File.WriteAllText(Path.Combine(folder, "report.md"), md.ToString());
    }

    /// <summary>The targets of the benchmark issue, each with whether it was met and by how much.</summary>
    public static IEnumerable<string> Targets(BenchResults r)
    {
        var full = r.Runs.Where(x => x.Algorithm == "Optimal" && x.Balance == "Static").ToList();
        var fullSets = full.GroupBy(x => (x.Model, x.BatchSize)).Select(g => g.MaxBy(x => x.UnitCount)!).ToList();
        foreach (var x in fullSets)
        {
            double target = x.BatchSize >= 1000 ? 0.95 : 0.90;
            yield return $"{x.Model}, batch {x.BatchSize}, all units ({x.Units}), Optimal/Static: efficiency {F(x.Efficiency, "F3")} (target ≥ {F(target, "F2")}: {(x.Efficiency >= target ? "met" : $"missed by {F(target - x.Efficiency, "F3")}")}); speedup over {x.BestSingleUnit} alone ×{F(x.Speedup, "F3")} ({(x.Speedup >= 0.98 ? "not slower than 2% below the best unit: met" : $"{Pct(1 - x.Speedup)} slower than the best unit: missed")})";
        }
        var errors = full.Select(x => Math.Abs(x.PredictionError)).OrderBy(v => v).ToList();
        if (errors.Count > 0)
        {
            double p90 = HeteroBatch.Engine.Runtime.Statistics.Quantile(errors, 0.9);
            yield return $"Prediction error |measured - predicted| / predicted over {errors.Count} Optimal/Static multi-unit runs: p90 {Pct(p90)} (target ≤ 10%: {(p90 <= 0.10 ? "met" : $"missed by {Pct(p90 - 0.10)}")})";
        }
        var worst = r.Runs.Where(x => x.Algorithm == "Optimal").MinBy(x => x.Speedup);
        if (worst != null)
            yield return $"Slowest Optimal configuration against its best unit alone: ×{F(worst.Speedup, "F3")} ({worst.Model}, batch {worst.BatchSize}, {worst.Units}, {worst.Balance})";
        var gpuCpu = r.Runs.Where(x => x.Model == "resnet-50" && x.BatchSize == 1000 && x.Algorithm == "Optimal" && x.Balance == "Static"
            && x.Units.Split('+').Count(u => u.StartsWith("gpu")) == 2 && x.Units.Split('+').Any(u => u.StartsWith("cpu"))).FirstOrDefault();
        var oneGpu = r.Runs.Where(x => x.Model == "resnet-50" && x.BatchSize == 1000 && x.Algorithm == "Alone" && x.Units.StartsWith("gpu")).MinBy(x => x.MedianMs);
        if (gpuCpu != null && oneGpu != null)
        {
            double ratio = oneGpu.MedianMs / gpuCpu.MedianMs;
            yield return $"resnet-50, batch 1000: 2 GPUs + CPU ({gpuCpu.Units}) ×{F(ratio, "F3")} one GPU ({oneGpu.Units}) (target ≥ 1.95: {(ratio >= 1.95 ? "met" : $"missed by {F(1.95 - ratio, "F3")}")})";
        }
        var plan = r.Planning.Where(p => p.Units <= 8 && p.BatchSize <= 4096).MaxBy(p => p.OptimalMedianMs);
        if (plan != null)
            yield return $"Planning time, Optimal, up to 8 units and batch 4096: slowest median {F(plan.OptimalMedianMs, "F4")} ms ({plan.Units} units, batch {plan.BatchSize}) (target < 1 ms: {(plan.OptimalMedianMs < 1 ? "met" : "missed")})";
        foreach (var o in r.Overheads)
            yield return $"Dispatch overhead per sub-batch on {o.Unit} ({o.Model}): {F(o.PerSubBatchMs * 1000)} µs (target < 100 µs: {(o.PerSubBatchMs < 0.1 ? "met" : "missed")})";
    }
}
