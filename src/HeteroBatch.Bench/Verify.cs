using System.Text.Json;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Units;

namespace HeteroBatch.Bench;

/// <summary>
/// Checks that a batch split across every unit gives the outputs one unit gives alone: an even
/// split over all units against the first accelerator (or the first unit) running the whole batch,
/// on the same seeded inputs.
/// </summary>
public static class Verify
{
    public sealed record Row(string Model, int BatchSize, string Reference, string Split, double MaxAbsDiff, double MaxRelDiff, int Top1Agree, int Samples);

    public static List<Row> Run(EngineContext context, BenchOptions options)
    {
        var units = UnitDiscovery.Discover(new DiscoveryRequest { Grouping = options.CpuGrouping }).Where(u => u.Available).ToList();
        var reference = units.FirstOrDefault(u => u.Kind != UnitKind.Cpu) ?? units[0];
        var rows = new List<Row>();
        foreach (var name in options.Models)
        {
            var model = ModelCatalog.Resolve(name, context.Options.ModelCacheFolder);
            int batch = options.Batches[0];
            var alone = Manual(model, batch, new[] { reference });
            var split = Manual(model, batch, units);
            var a = PartitionedRunner.Run(context, alone, model, null, new RunSettings { Seed = 7 });
            var b = PartitionedRunner.Run(context, split, model, null, new RunSettings { Seed = 7 });
            var x = a.Outputs[0].AsFloats();
            var y = b.Outputs[0].AsFloats();
            double maxAbs = 0, maxRel = 0;
            for (int i = 0; i < x.Length; i++)
            {
                double d = Math.Abs(x[i] - y[i]);
                maxAbs = Math.Max(maxAbs, d);
                maxRel = Math.Max(maxRel, d / (1 + Math.Abs(x[i])));
            }
            int agree = a.Top1.Zip(b.Top1).Count(p => p.First == p.Second);
            var row = new Row(model.Name, batch, reference.Id, split.Split, maxAbs, maxRel, agree, batch);
            Console.WriteLine($"{row.Model} ×{batch}: [{row.Split}] vs {reference.Id} alone: max |diff| {maxAbs:G4}, max |diff|/(1+|x|) {maxRel:G4}, top-1 agrees on {agree}/{batch}");
            rows.Add(row);
        }
        Directory.CreateDirectory(options.Out);
        File.WriteAllText(Path.Combine(options.Out, "verify.json"), JsonSerializer.Serialize(rows, BenchResults.Json));
        return rows;
    }

    /// <summary>An even split over the units, each share in one run.</summary>
    private static BatchPlan Manual(ModelSource model, int batch, IReadOnlyList<ComputeUnit> units)
    {
        var shares = Planner.Even(units.Count, batch);
        var plan = PlanLayout.Manual(model.Name, model.Sha256, units.Select((u, i) => new ShareSpec(u, shares[i], shares[i], 1)).ToList());
        plan.ModelPath = model.Path;
        plan.Algorithm = PlanAlgorithm.Even;
        plan.Units = units.Select(u => u.Id).ToArray();
        return plan;
    }
}
