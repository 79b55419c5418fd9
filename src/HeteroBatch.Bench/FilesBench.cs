using System.Diagnostics;
using System.Text.Json;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Profiling;
using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Units;
using HeteroBatch.Engine.UseCases;
using SkiaSharp;

namespace HeteroBatch.Bench;

/// <summary>
/// Files → results: a folder of photo-like JPEGs (500×375, made here like e2e_gpu.py makes them:
/// a smooth random field plus grain, quality 90) through a plan, as Invoke-PartitionedInference
/// -InputPath runs it; images/s, where the time went and peak memory, beside the same plan's
/// in-memory synthetic images/s in the same run.
/// </summary>
public static class FilesBench
{
    public sealed record Row(string Model, int Files, string Plan, string Precision, int BlockSize, int DecodeThreads,
        double FilesPerSecond, double SyntheticPerSecond, double WallMs, JobStages Stages, long PeakResidentBytes, string? Note, int Failed,
        string DecodeOn = "Auto", double SetupMs = 0, IReadOnlyList<string>? UnitDecoding = null, long ResidentAfterSetupBytes = 0,
        IReadOnlyList<string>? StageRates = null);

    public static async Task<List<Row>> Run(EngineContext context, BenchOptions options)
    {
        var rows = new List<Row>();
        int most = options.FileCounts.Max();
        var anchorImages = options.AnchorImages ? GpuDecodeBench.EnsureImages(options.ImageFolder, most) : null;
        if (anchorImages == null) MakeImages(options.ImageFolder, most);
        var units = UnitDiscovery.Discover(new DiscoveryRequest { Grouping = options.CpuGrouping, Precision = options.Precision }).Where(u => u.Available).ToList();
        if (options.NoCpu) units = units.Where(u => u.Kind != UnitKind.Cpu).ToList();
        if (options.GpuLimit > 0) units = units.Where(u => u.Kind == UnitKind.Cpu).Concat(units.Where(u => u.Kind != UnitKind.Cpu).Take(options.GpuLimit)).ToList();
        Console.WriteLine($"files bench: units {string.Join(", ", units.Select(u => $"{u.Id} ({u.Provider} {u.Precision})"))}");
        foreach (var name in options.Models)
        {
            var model = ModelCatalog.Resolve(name); // each unit runs its precision's form of it
            var profiles = new List<UnitProfile>();
            foreach (var unit in units)
                profiles.Add(await Profiler.RunAsync(context, unit, model, new ProfileSettings
                {
                    BatchSizes = ProfileSchedule.Default(Math.Max(options.Batches.Max(), 1)),
                    PointBudget = TimeSpan.FromSeconds(options.SecondsPerSize),
                }));
            foreach (var batch in options.Batches)
            {
                var plan = Planner.Plan(profiles, batch, PlanAlgorithm.Optimal);
                Console.WriteLine($"{name} ×{batch}: plan {plan.Split}, predicted {plan.PredictedMs:F1} ms a batch");
                var synthetic = PartitionedRunner.Run(context, plan, model, null, new RunSettings { Repeat = Math.Max(3, options.Repeats) });
                double syntheticRate = synthetic.ImagesPerSecond;
                foreach (var count in options.FileCounts)
                foreach (var decodeOn in options.DecodeOn)
                {
                    var paths = anchorImages?.Take(count).ToList() ?? Directory.EnumerateFiles(options.ImageFolder, "*.jpg").OrderBy(f => f, StringComparer.Ordinal).Take(count).ToList();
                    // the job as Invoke-PartitionedInference runs it: one use case, its checkpoint, its run record
                    var inference = new Inference(context);
                    using var job = inference.PrepareJob(plan, paths, options.WriteOutputs ? Path.Combine(options.Out, $"job-{name}-{batch}-{count}") : null,
                        resume: false, force: true, new RunSettings { DecodeThreads = options.DecodeThreads, DecodeOn = decodeOn }, model);
                    GC.Collect();
                    Libc.ResetPeakResident();
                    var summary = inference.RunJob(job, RecordPolicy.Off, onBlock: null);
                    var row = new Row(name, count, plan.Split, options.Precision.ToString(), summary.BlockSize, summary.DecodeThreads,
                        Math.Round(summary.ImagesPerSecond, 1), Math.Round(syntheticRate, 1), Math.Round(summary.WallMs, 1), summary.Stages,
                        summary.PeakResidentBytes, summary.Note, summary.SamplesFailed, decodeOn.ToString(), Math.Round(summary.SetupMs, 1), summary.UnitDecoding,
                        summary.ResidentAfterSetupBytes, summary.StageRates);
                    rows.Add(row);
                    Console.WriteLine($"  {count} files, decoding on {decodeOn}: {row.FilesPerSecond} images/s (synthetic in memory {row.SyntheticPerSecond}/s), blocks of {row.BlockSize}, " +
                        $"{row.DecodeThreads} decode threads, peak RSS {row.PeakResidentBytes / 1048576.0:F0} MiB ({summary.ResidentAfterSetupBytes / 1048576.0:F0} MiB after set-up); {summary.Stages}; set-up {summary.SetupMs:F0} ms{(row.Note != null ? $"\n  {row.Note}" : "")}" +
                        string.Concat(new[] { summary.Pipeline ?? "" }.Concat(summary.UnitDecoding).Concat(summary.StageRates).Select(d => $"\n  {d}")));
                    Directory.CreateDirectory(options.Out);
                    File.WriteAllText(Path.Combine(options.Out, "files.json"), JsonSerializer.Serialize(rows, BenchResults.Json));
                }
            }
        }
        return rows;
    }

    /// <summary>
    /// A photo-like JPEG (quality 90): a random field of <paramref name="low"/> pixels resized (Catmull-Rom) to
    /// <paramref name="size"/>, plus grain drawn from [<paramref name="grainFrom"/>, <paramref name="grainTo"/>) on each channel.
    /// </summary>
    internal static byte[] PhotoJpeg(Random rng, (int Width, int Height) low, (int Width, int Height) size, int grainFrom, int grainTo)
    {
        using var field = new SKBitmap(new SKImageInfo(low.Width, low.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var px = new byte[low.Width * low.Height * 4];
        rng.NextBytes(px);
        for (int i = 3; i < px.Length; i += 4) px[i] = 255;
        System.Runtime.InteropServices.Marshal.Copy(px, 0, field.GetPixels(), px.Length);
        using var image = field.Resize(new SKImageInfo(size.Width, size.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul), new SKSamplingOptions(SKCubicResampler.CatmullRom))!;
        var pixels = image.GetPixelSpan().ToArray();
        for (int i = 0; i < pixels.Length; i++)
            if (i % 4 != 3) pixels[i] = (byte)Math.Clamp(pixels[i] + rng.Next(grainFrom, grainTo), 0, 255);
        System.Runtime.InteropServices.Marshal.Copy(pixels, 0, image.GetPixels(), pixels.Length);
        using var data = image.Encode(SKEncodedImageFormat.Jpeg, 90);
        return data.ToArray();
    }

    /// <summary>32 distinct photo-like JPEGs, and <paramref name="count"/> names for them (hard links where the file system allows).</summary>
    public static void MakeImages(string folder, int count)
    {
        Directory.CreateDirectory(folder);
        NativeLibraries.Register();
        var distinct = Path.Combine(folder, "distinct");
        Directory.CreateDirectory(distinct);
        var rng = new Random(0);
        var bases = new List<string>();
        for (int k = 0; k < 32; k++)
        {
            var path = Path.Combine(distinct, $"base{k:D2}.jpg");
            bases.Add(path);
            if (File.Exists(path)) continue;
            File.WriteAllBytes(path, PhotoJpeg(rng, (16, 12), (500, 375), -12, 12));
        }
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < count; i++)
        {
            var name = Path.Combine(folder, $"img{i:D6}.jpg");
            if (File.Exists(name)) continue;
            if (!Libc.HardLink(bases[i % bases.Count], name)) File.Copy(bases[i % bases.Count], name);
        }
        if (clock.ElapsedMilliseconds > 1000) Console.WriteLine($"made {count} image names in {clock.Elapsed.TotalSeconds:F1} s");
    }
}
