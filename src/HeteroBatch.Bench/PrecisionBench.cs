using System.Diagnostics;
using System.Text.Json;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Units;

namespace HeteroBatch.Bench;

/// <summary>
/// Each GPU unit alone, one batch host → GPU → host through the same session code the runner
/// uses, at each precision and transfer set-up: what PyTorch's anchor (precision_gpu.py) is held
/// against, in the same run on the same host. Also the fp16 and TF32 outputs against fp32.
/// </summary>
public static class PrecisionBench
{
    public sealed record Row(string Model, int Batch, string Unit, string Precision, string Transfers, bool Nhwc,
        double? MedianMs, double? MinMs, int Runs, string? Failure, double? MinCosine, double? MaxAbsDiff, int SubBatch = 0,
        double? ComputeOnlyMs = null, string? CudaOptions = null);

    public static List<Row> Run(BenchOptions options)
    {
        var rows = new List<Row>();
        var gpus = UnitBackends.Cuda.Discover(new DiscoveryRequest(), OrtRuntime.Version).Where(u => u.Available).ToList();
        if (options.GpuLimit > 0) gpus = gpus.Take(options.GpuLimit).ToList();
        Console.WriteLine($"precision bench on {string.Join(", ", gpus.Select(g => $"{g.Id} {g.Name}"))}");
        // what run 2 (bench-reports/gpu-precision-h200) left open: every precision on pageable transfers, with and without NHWC;
        // --all-variants adds the pinned ones
        var variants = new List<(Precision P, bool Pinned, bool Nhwc)>
        {
            (Precision.Fp32, false, false), (Precision.Fp32, false, true),
            (Precision.Tf32, false, false), (Precision.Tf32, false, true),
            (Precision.Fp16, false, false), (Precision.Fp16, false, true),
        };
        if (options.AllVariants)
            variants.AddRange(new[] { (Precision.Fp32, true, false), (Precision.Tf32, true, false), (Precision.Tf32, true, true), (Precision.Fp16, true, false), (Precision.Fp16, true, true) });
        if (options.Variants is { } only)
            variants = only.Select(v => v.Split(':')).Select(v => (Enum.Parse<Precision>(v[0], ignoreCase: true), false, v.Skip(1).Contains("nhwc", StringComparer.OrdinalIgnoreCase))).ToList();
        var cudaOptions = string.Join(";", EngineOptions.FromEnvironment().CudaProviderOptions.Select(kv => $"{kv.Key}={kv.Value}"));
        if (cudaOptions.Length > 0) Console.WriteLine($"CUDA provider options added: {cudaOptions}");
        foreach (var name in options.Models)
        {
            var model = ModelCatalog.Resolve(name);
            foreach (var batch in options.Batches)
            {
                // the fp32 outputs of this batch on the first GPU: what the other precisions are compared with
                TensorBatch? reference = null;
                foreach (var gpu in gpus)
                    foreach (var (p, pinned, nhwc) in variants)
                    {
                        var unit = JsonSerializer.Deserialize<ComputeUnit>(JsonSerializer.Serialize(gpu))!;
                        unit.Precision = p;
                        var settings = EngineOptions.FromEnvironment() with { PinnedTransfers = pinned, CudaPreferNhwc = nhwc, SplitTransfers = false };
                        using var context = new EngineContext(settings);
                        var worker = context.Workers.For(unit);
                        var row = worker.Invoke(() => Measure(worker, model, batch, options.Repeats, ref reference, p)).GetAwaiter().GetResult();
                        row = row with { Unit = unit.Id, Precision = p.ToString(), Transfers = pinned ? "pinned+IOBinding" : "pageable", Nhwc = nhwc, CudaOptions = cudaOptions.Length > 0 ? cudaOptions : null };
                        rows.Add(row);
                        Console.WriteLine($"{name} x{batch} {unit.Id} {p} {row.Transfers}{(nhwc ? " NHWC" : "")}: " +
                            (row.Failure ?? $"{(row.SubBatch < batch ? $"sub-batches of {row.SubBatch}, " : "")}median {row.MedianMs:F2} ms (min {row.MinMs:F2}, {row.Runs} runs){(row.ComputeOnlyMs is double k ? $", on-GPU only {k:F2}" : "")}{(row.MinCosine is double c ? $", cosine vs fp32 ≥ {c:F6}, max |diff| {row.MaxAbsDiff:G4}" : "")}"));
                        Directory.CreateDirectory(options.Out);
                        File.WriteAllText(Path.Combine(options.Out, "precision.json"), JsonSerializer.Serialize(rows, BenchResults.Json));
                    }
            }
        }
        if (options.OrtProfile is { } dir)
        {
            // a few profiled runs of the first model and batch: where each variant's time goes, node by node
            Directory.CreateDirectory(dir);
            var model = ModelCatalog.Resolve(options.Models[0]);
            int batch = options.Batches[0];
            foreach (var (p, pinned, nhwc) in new[] { (Precision.Fp32, true, false), (Precision.Fp16, true, false), (Precision.Fp16, true, true) })
            {
                var unit = JsonSerializer.Deserialize<ComputeUnit>(JsonSerializer.Serialize(gpus[0]))!;
                unit.Precision = p;
                var settings = EngineOptions.FromEnvironment() with
                {
                    PinnedTransfers = pinned, CudaPreferNhwc = nhwc, SplitTransfers = false,
                    OrtProfilePrefix = Path.Combine(dir, $"{model.Name}-{batch}-{p}{(nhwc ? "-nhwc" : "")}"),
                };
                using var context = new EngineContext(settings);
                var worker = context.Workers.For(unit);
                TensorBatch? none = null;
                var file = worker.Invoke(() =>
                {
                    MeasureAt(worker, model, batch, batch, 3, ref none, Precision.Fp32);
                    return ((LoadedModel)worker.Load(model)).Session.EndProfiling();
                }).GetAwaiter().GetResult();
                Console.WriteLine($"ONNX Runtime profile of {model.Name} x{batch} {p}{(nhwc ? " NHWC" : "")}: {file}");
            }
        }
        return rows;
    }

    private static Row Measure(UnitWorker worker, ModelSource model, int batch, int repeats, ref TensorBatch? reference, Precision p)
    {
        string? failure = null;
        // the whole batch in one run; where the GPU refuses that size, in equal sub-batches (as a plan would)
        for (int sub = batch; sub >= Math.Max(1, batch / 4); sub = (sub + 1) / 2)
        {
            try { return MeasureAt(worker, model, batch, sub, repeats, ref reference, p); }
            catch (Exception e) when (e is HeteroBatchException or Microsoft.ML.OnnxRuntime.OnnxRuntimeException) { failure = $"sub-batch {sub}: {e.Message.Split('\n')[0]}"; }
        }
        return new Row(model.Name, batch, "", "", "", false, null, null, 0, failure, null, null);
    }

    private static Row MeasureAt(UnitWorker worker, ModelSource model, int batch, int sub, int repeats, ref TensorBatch? reference, Precision p)
    {
        {
            var session = worker.Load(model);
            var inputs = session.SyntheticInputs(batch, 1, pinned: worker.Settings.PageLockedInputs);
            using var locked = worker.Settings.PageLockedInputs ? PageLockedBuffers.Lock(inputs) : null;
            var outputs = session.AllocateOutputs(batch);
            void Once() { for (int o = 0; o < batch; o += sub) session.Run(inputs, outputs, o, Math.Min(sub, batch - o), padTo: sub); }
            for (int i = 0; i < 3; i++) Once();
            var times = new List<double>();
            for (int i = 0; i < Math.Max(5, repeats); i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                Once();
                times.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }
            times.Sort();
            double? cos = null, diff = null;
            if (p == Precision.Fp32 && reference == null) reference = outputs[0];
            else if (reference != null && p != Precision.Fp32)
            {
                var a = OutputAgreement.Compare(reference, outputs[0]);
                cos = a.MinCosine; diff = a.MaxAbsDifference;
            }
            // the same runs with inputs and outputs already on the GPU: what the host copies cost
            double? compute = null;
            if (sub == batch)
                compute = UnitBackends.For(worker.Unit).ComputeOnlyMedianMs(session, worker.Unit, batch, Math.Max(5, repeats), CancellationToken.None);
            return new Row(model.Name, batch, "", "", "", false, Statistics.Quantile(times, 0.5), times[0], times.Count, null, cos, diff, sub, compute);
        }
    }
}
