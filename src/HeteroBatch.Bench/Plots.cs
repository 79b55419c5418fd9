namespace HeteroBatch.Bench;

/// <summary>The report's plots (ScottPlot, PNG): throughput per unit vs batch size, time per configuration, predicted vs measured.</summary>
public static class Plots
{
    public static List<(string Title, string File)> Write(BenchResults r, string folder)
    {
        var written = new List<(string, string)>();
        try
        {
            foreach (var model in r.Profiles.GroupBy(p => p.Model))
            {
                var plt = new ScottPlot.Plot();
                foreach (var unit in model)
                {
                    var s = plt.Add.Scatter(unit.Points.Select(p => (double)p.BatchSize).ToArray(), unit.Points.Select(p => p.ImagesPerSecond).ToArray());
                    s.LegendText = unit.Unit;
                }
                plt.Title($"{model.Key}: throughput per unit");
                plt.XLabel("batch size");
                plt.YLabel("samples / s");
                plt.ShowLegend();
                written.Add(Save(plt, folder, $"throughput-{model.Key}.png", $"{model.Key}: throughput per unit vs batch size"));
            }
            foreach (var group in r.Runs.GroupBy(x => (x.Model, x.BatchSize)))
            {
                var rows = group.Where(x => x.Balance == "Static").ToList();
                var plt = new ScottPlot.Plot();
                var positions = Enumerable.Range(0, rows.Count).Select(i => (double)i).ToArray();
                var bars = plt.Add.Bars(positions, rows.Select(x => x.MedianMs).ToArray());
                plt.Axes.Bottom.SetTicks(positions, rows.Select(x => $"{x.Units} {x.Algorithm}").ToArray());
                plt.Axes.Bottom.TickLabelStyle.Rotation = 40;
                plt.Axes.Bottom.TickLabelStyle.Alignment = ScottPlot.Alignment.MiddleLeft;
                plt.Axes.Bottom.MinimumSize = 190;
                plt.Title($"{group.Key.Model}, batch {group.Key.BatchSize}: time per units and algorithm (static)");
                plt.YLabel("ms (median)");
                _ = bars;
                written.Add(Save(plt, folder, $"time-{group.Key.Model}-{group.Key.BatchSize}.png", $"{group.Key.Model}, batch {group.Key.BatchSize}: time per unit set and strategy"));
            }
            {
                var plt = new ScottPlot.Plot();
                var pts = r.Runs.Where(x => x.PredictedMs > 0).ToList();
                var s = plt.Add.ScatterPoints(pts.Select(x => x.PredictedMs).ToArray(), pts.Select(x => x.MedianMs).ToArray());
                s.LegendText = "runs";
                double max = pts.Count == 0 ? 1 : pts.Max(x => Math.Max(x.PredictedMs, x.MedianMs));
                var line = plt.Add.Line(0, 0, max, max);
                line.LegendText = "measured = predicted";
                plt.Title("Predicted vs measured");
                plt.XLabel("predicted ms");
                plt.YLabel("measured ms");
                plt.ShowLegend();
                written.Add(Save(plt, folder, "predicted-vs-measured.png", "Predicted vs measured time, every run"));
            }
        }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException)
        {
            Console.WriteLine($"plots skipped: the plotting library's native part did not load here ({e.Message})");
        }
        return written;
    }

    private static (string, string) Save(ScottPlot.Plot plt, string folder, string file, string title)
    {
        plt.SavePng(Path.Combine(folder, file), 900, 520);
        return (title, file);
    }
}
