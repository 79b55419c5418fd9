using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Profiling;
using HeteroBatch.Engine;
using Runtime = HeteroBatch.Engine.Runtime;

namespace HeteroBatch.Reporting;

/// <summary>Charts a person would rather look at than tables: PNG or SVG by the file's extension.</summary>
public static class Charts
{
    /// <summary>Samples per second against batch size, one line per unit (and model), from profiles.</summary>
    public static string Throughput(IReadOnlyList<UnitProfile> profiles, string path, int width = 900, int height = 520)
    {
        Runtime.NativeLibraries.Register(); // SkiaSharp's native library sits beside the module, not where the host looks
        if (profiles.Count == 0) throw new HeteroBatchException("ChartEmpty", FailureKind.InvalidArgument, "There is nothing to chart: no profiles were given.");
        var plt = new ScottPlot.Plot();
        bool severalModels = profiles.Select(p => p.ModelSha256).Distinct().Count() > 1;
        foreach (var p in profiles)
        {
            var table = p.Table;
            var line = plt.Add.Scatter(table.Select(e => (double)e.BatchSize).ToArray(), table.Select(e => e.ImagesPerSecond).ToArray());
            line.LegendText = severalModels ? $"{p.Unit.Id} {p.Model}" : $"{p.Unit.Id} ({p.Unit.Precision})";
        }
        plt.Title(severalModels ? "Throughput per unit" : $"{profiles[0].Model}: throughput per unit");
        plt.XLabel("batch size");
        plt.YLabel("samples / s");
        plt.ShowLegend();
        return Save(plt, path, width, height);
    }

    /// <summary>Each unit's time in a plan: predicted, and beside it what a run measured.</summary>
    public static string Timeline(BatchPlan plan, InferenceResult? result, string path, int width = 900, int height = 520)
    {
        Runtime.NativeLibraries.Register();
        if (plan.Shards.Count == 0) throw new HeteroBatchException("ChartEmpty", FailureKind.InvalidArgument, "There is nothing to chart: the plan has no shards.");
        var plt = new ScottPlot.Plot();
        var positions = Enumerable.Range(0, plan.Shards.Count).Select(i => (double)i).ToArray();
        var predicted = plt.Add.Bars(positions.Select(x => x - 0.2).ToArray(), plan.Shards.Select(s => s.PredictedMs).ToArray());
        predicted.LegendText = "predicted";
        if (result != null)
        {
            var measured = plt.Add.Bars(positions.Select(x => x + 0.2).ToArray(),
                plan.Shards.Select(s => result.Units.FirstOrDefault(u => u.UnitId == s.UnitId)?.Ms ?? 0).ToArray());
            measured.LegendText = $"measured (wall {result.WallMs:F1} ms)";
        }
        foreach (var bars in plt.GetPlottables().OfType<ScottPlot.Plottables.BarPlot>())
            foreach (var bar in bars.Bars) bar.Size = 0.38;
        plt.Axes.Bottom.SetTicks(positions, plan.Shards.Select(s => $"{s.UnitId}: {s.Count}").ToArray());
        plt.Title($"{plan.Model} x{plan.BatchSize}: time per unit");
        plt.YLabel("ms");
        plt.ShowLegend();
        return Save(plt, path, width, height);
    }

    private static string Save(ScottPlot.Plot plt, string path, int width, int height)
    {
        if (width < 100 || height < 100 || width > 10000 || height > 10000)
            throw new HeteroBatchException("ChartSizeInvalid", FailureKind.InvalidArgument, $"A chart is 100 to 10000 pixels each way (got {width} x {height}).");
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var ext = Path.GetExtension(full).ToLowerInvariant();
        try
        {
            if (ext == ".png") plt.SavePng(full, width, height);
            else if (ext == ".svg") plt.SaveSvg(full, width, height);
            else throw new HeteroBatchException("ChartFormatUnsupported", FailureKind.InvalidArgument, $"Charts are written as .png or .svg; {Path.GetFileName(full)} is neither.", full);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HeteroBatchException("ChartWriteFailed", FailureKind.WriteError, $"Could not write {full}: {e.Message}", full, e);
        }
        return full;
    }
}
