using System.Diagnostics;
using System.Text.Json;
using HeteroBatch.Bench;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Profiling;
using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Units;

// HeteroBatch's benchmark. Every ratio it reports is measured in this one run on this one machine.
//   run     (default) profile, plan and run each model at each batch size on every subset of units
//   report  --from results.json: write the markdown report and plots again
//   verify  outputs of a batch split over every unit against one unit alone
//   precision  each GPU alone at fp32, TF32 and fp16, pageable or pinned transfers, NHWC (beside precision_gpu.py)
//   files   files → results: a folder of JPEGs through a plan, streamed (beside e2e_gpu.py)
//   calibrate  prediction error of plans from profiles alone, then after 1, 2, 3 calibrating runs
//   gpudecode  files → nvJPEG on each GPU → the uint8-input model by device address → top-1 (one GPU, every GPU), with pixel and output agreement
//   prep    CPU image preprocessing per core, exact and fast decode (beside tools/pil_preprocess.py)
//   remote  a loopback inference server as a unit: the protocol's cost per request, and a split with local units
//   tensorjson  one request's tensors written and read as binary data and as JSON numbers (three ways)
var options = BenchOptions.Parse(args);
if (options.Command == "report")
{
    var saved = JsonSerializer.Deserialize<BenchResults>(File.ReadAllText(options.From!), BenchResults.Json)!;
    Report.Write(saved, Path.GetDirectoryName(Path.GetFullPath(options.From!))!);
    return 0;
}

if (options.Command == "tensorjson")
{
    TensorJsonBench.Run(options);
    return 0;
}
if (options.Command == "gpudecode")
{
    GpuDecodeBench.Run(options);
    return 0;
}
using var context = new EngineContext(EngineOptions.FromEnvironment());
if (options.Command == "precision")
{
    PrecisionBench.Run(options);
    return 0;
}
if (options.Command == "calibrate")
{
    await CalibrationBench.Run(context, options);
    return 0;
}
if (options.Command == "remote")
{
    await RemoteBench.Run(options);
    return 0;
}
if (options.Command == "files")
{
    await FilesBench.Run(context, options);
    return 0;
}
if (options.Command == "prep")
{
    PrepBench.Run(context, options);
    return 0;
}
if (options.Command == "verify")
{
    Verify.Run(context, options);
    return 0;
}
var results = new BenchResults { Machine = MachineInfo.Read(), Options = options.ToString(), StartedAt = DateTimeOffset.UtcNow };
Console.WriteLine($"HeteroBatch bench on {results.Machine.Cpu} ({results.Machine.Processors} processors), GPUs: {string.Join(", ", results.Machine.Gpus.DefaultIfEmpty("none"))}, ONNX Runtime {results.Machine.OrtVersion}");

var units = UnitDiscovery.Discover(new DiscoveryRequest { Grouping = options.CpuGrouping, Precision = options.Precision }).Where(u => u.Available).ToList();
if (options.GpuOnly) units = units.Where(u => u.Kind != UnitKind.Cpu).ToList();
if (options.NoCpu) units = units.Where(u => u.Kind != UnitKind.Cpu).ToList();
Console.WriteLine($"units: {string.Join(", ", units.Select(u => $"{u.Id} ({u.Provider}{(u.Cores > 0 ? $", {u.Cores} cores" : "")})"))}");
results.Units = units.Select(u => $"{u.Id}: {u.Name} ({u.Provider}{(u.Cores > 0 ? $", processors {string.Join(",", u.Processors)}" : "")})").ToList();

results.Planning = Measurements.PlanningTimes();
foreach (var p in results.Planning) Console.WriteLine($"planning {p.Units} units × batch {p.BatchSize}: Optimal median {p.OptimalMedianMs:F4} ms, Greedy median {p.GreedyMedianMs:F4} ms");

var store = options.ProfilePath == null ? null : new ProfileStore(options.ProfilePath);
foreach (var modelName in options.Models)
{
    var model = ModelCatalog.Resolve(modelName, context.Options.ModelCacheFolder);
    ProfileSettings SettingsFor(ComputeUnit unit) => new()
    {
        MaxBatchSize = unit.Kind == UnitKind.Cpu
            ? (options.MaxCpuBatch > 0 ? options.MaxCpuBatch : ProfileSettings.DefaultMaxBatch(unit))
            : (options.MaxGpuBatch > 0 ? options.MaxGpuBatch : ProfileSettings.DefaultMaxBatch(unit)),
        PointBudget = TimeSpan.FromSeconds(options.SecondsPerSize),
    };
    var profiles = new List<UnitProfile>();
    var profileClock = Stopwatch.StartNew();
    if (options.ConcurrentProfiling)
    {
        profiles.AddRange(await Profiler.RunConcurrentAsync(context, units, model, SettingsFor));
        Record(profiles, profileClock.Elapsed.TotalSeconds);
    }
    else
    {
        foreach (var unit in units)
        {
            profileClock.Restart();
            var profile = await Profiler.RunAsync(context, unit, model, SettingsFor(unit));
            profiles.Add(profile);
            Record(new[] { profile }, profileClock.Elapsed.TotalSeconds);
        }
    }

    void Record(IEnumerable<UnitProfile> measured, double seconds)
    {
        foreach (var profile in measured)
        {
            store?.Save(profile);
            results.Profiles.Add(new ProfileRow(model.Name, profile.Unit.Id, seconds, profile.MaxBatchSize, profile.FailedBatchSize,
                profile.Table.Select(e => new ProfilePoint(e.BatchSize, e.MedianMs, e.P10Ms, e.P90Ms, e.ImagesPerSecond, e.TransferMs)).ToList()));
            Console.WriteLine($"profiled {model.Name} on {profile.Unit.Id} in {seconds:F1} s{(profile.MeasuredAlongside.Length > 0 ? " (all units at once)" : "")}: sizes {profile.Table.Count}, max batch {profile.MaxBatchSize}{(profile.FailedBatchSize is int f ? $" (failed at {f})" : "")}");
        }
    }
    foreach (var batch in options.Batches)
    {
        results.Runs.AddRange(Measurements.RunAll(context, model, profiles, batch, options));
        Save(results, options); // what is measured survives a run cut short
    }
}
// the runner's own cost per sub-batch, on a model small enough for it to show: one unit of each kind
var tiny = ModelCatalog.Resolve("tinynet", context.Options.ModelCacheFolder);
foreach (var unit in units.GroupBy(u => u.Kind).Select(g => g.First()))
    results.Overheads.Add(Measurements.DispatchOverhead(context, tiny, unit, 9));
if (options.Sweep != null)
    results.Sweeps.Add(await Measurements.SweepTwice(context, options.Sweep, units.First(u => u.Kind == UnitKind.Cpu)));

results.FinishedAt = DateTimeOffset.UtcNow;
var json = Save(results, options);
if (!options.JsonOnly) Report.Write(results, options.Out);
Console.WriteLine($"wrote {json}{(options.JsonOnly ? "" : $" and {Path.Combine(options.Out, "report.md")}")}");
return 0;

static string Save(BenchResults results, BenchOptions options)
{
    Directory.CreateDirectory(options.Out);
    var path = Path.Combine(options.Out, "results.json");
    File.WriteAllText(path, JsonSerializer.Serialize(results, BenchResults.Json));
    return path;
}
