using HeteroBatch.Engine.Units;

namespace HeteroBatch.Bench;

/// <summary>Command-line options of the benchmark.</summary>
public sealed record BenchOptions
{
    public string Command { get; init; } = "run";
    public string[] Models { get; init; } = { "mobilenet", "squeezenet_v1.1" };
    public int[] Batches { get; init; } = { 100, 256 };
    public CpuGrouping CpuGrouping { get; init; } = new(CpuGroupingMode.Core);
    public int Repeats { get; init; } = 3;
    public int MaxCpuBatch { get; init; }
    public int MaxGpuBatch { get; init; }
    public double SecondsPerSize { get; init; } = 1.0;
    /// <summary>Also measure combinations of units, not only each unit alone and all together.</summary>
    public bool AllSubsets { get; init; } = true;
    public bool GpuOnly { get; init; }
    public bool NoCpu { get; init; }
    public string Out { get; init; } = "bench-results";
    public string? From { get; init; }
    public string? ProfilePath { get; init; }
    /// <summary>A model whose default profiling sweep is timed twice on one CPU unit (stability of the medians).</summary>
    public string? Sweep { get; init; }
    /// <summary>Write results.json only (the report and plots can be made later with: report --from).</summary>
    public bool JsonOnly { get; init; }
    /// <summary>Profile every unit at the same time (Invoke-Profile -Concurrent) instead of one after another.</summary>
    public bool ConcurrentProfiling { get; init; }
    /// <summary>precision: measure only the first this many GPUs (0: all).</summary>
    public int GpuLimit { get; init; }
    /// <summary>gpudecode: the nvJPEG backend (hardware where the GPU has JPEG engines, or default), and a trace of each decoding step on stderr.</summary>
    public bool NvjpegHardware { get; init; } = true;
    public bool TraceGpu { get; init; }
    /// <summary>files: where the job decodes, each in turn (auto: GPUs with nvJPEG decode their share; cpu: CPU threads only).</summary>
    public HeteroBatch.Engine.Execution.DecodeOn[] DecodeOn { get; init; } = { HeteroBatch.Engine.Execution.DecodeOn.Auto };
    /// <summary>files: the job reads the anchors' photo-like JPEGs (made by gpudecode's generator, distinct files) instead of 32 hard-linked ones.</summary>
    public bool AnchorImages { get; init; }
    /// <summary>precision: write ONNX Runtime node profiles of the first model and batch here.</summary>
    public string? OrtProfile { get; init; }
    /// <summary>precision: also the pinned-transfer variants.</summary>
    public bool AllVariants { get; init; }
    /// <summary>remote: the server answers over gRPC (Kestrel, HTTP/2) instead of REST.</summary>
    public bool Grpc { get; init; }
    /// <summary>precision: only these variants, each "Precision" or "Precision:nhwc" (for option experiments).</summary>
    public string[]? Variants { get; init; }
    /// <summary>files: how many JPEG files the job reads (made once, hard links to a few hundred distinct images).</summary>
    public int[] FileCounts { get; init; } = { 1000 };
    /// <summary>files: where the generated images live.</summary>
    public string ImageFolder { get; init; } = Path.Combine(Path.GetTempPath(), "heterobatch-bench-images");
    /// <summary>files: GPU precision (CPU units stay Fp32).</summary>
    public HeteroBatch.Engine.Models.Precision Precision { get; init; } = HeteroBatch.Engine.Models.Precision.Fp32;
    /// <summary>files: decoding threads (0: the default).</summary>
    public int DecodeThreads { get; init; }
    /// <summary>files: also write the job's outputs (predictions.csv and .npy) under --out.</summary>
    public bool WriteOutputs { get; init; }
    /// <summary>gpudecode: the GPU precisions measured, in order.</summary>
    public HeteroBatch.Engine.Models.Precision[] GpuPrecisions { get; init; } = { HeteroBatch.Engine.Models.Precision.Fp16, HeteroBatch.Engine.Models.Precision.Tf32 };
    /// <summary>prep: how many 4000×3000 JPEGs to time fast against exact mode (made once under the image folder's large/).</summary>
    public int LargeImages { get; init; } = 8;
    /// <summary>prep: the grain (± per channel) of the 4000×3000 JPEGs.</summary>
    public int LargeGrain { get; init; } = 12;
    /// <summary>prep: also time the scalar reference path.</summary>
    public bool PrepReference { get; init; }
    /// <summary>prep: also compare fast with exact mode (pixels, mobilenet outputs).</summary>
    public bool PrepAgreement { get; init; }

    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "run": case "report": case "verify": case "precision": case "files": case "remote": case "calibrate": case "gpudecode": case "prep": case "tensorjson": o = o with { Command = args[i] }; break;
                case "--gpu-precisions": o = o with { GpuPrecisions = Next().Split(',').Select(p => Enum.Parse<HeteroBatch.Engine.Models.Precision>(p, ignoreCase: true)).ToArray() }; break;
                case "--files": o = o with { FileCounts = Next().Split(',').Select(int.Parse).ToArray() }; break;
                case "--image-folder": o = o with { ImageFolder = Next() }; break;
                case "--precision": o = o with { Precision = Enum.Parse<HeteroBatch.Engine.Models.Precision>(Next(), ignoreCase: true) }; break;
                case "--decode-threads": o = o with { DecodeThreads = int.Parse(Next()) }; break;
                case "--write-outputs": o = o with { WriteOutputs = true }; break;
                case "--large": o = o with { LargeImages = int.Parse(Next()) }; break;
                case "--large-grain": o = o with { LargeGrain = int.Parse(Next()) }; break;
                case "--reference": o = o with { PrepReference = true }; break;
                case "--agreement": o = o with { PrepAgreement = true }; break;
                case "--from": o = o with { From = Next() }; break;
                case "--models": o = o with { Models = Next().Split(',', StringSplitOptions.RemoveEmptyEntries) }; break;
                case "--batches": o = o with { Batches = Next().Split(',').Select(int.Parse).ToArray() }; break;
                case "--cpu-group":
                    if (!CpuGrouping.TryParse(Next(), out var g)) throw new ArgumentException("bad --cpu-group");
                    o = o with { CpuGrouping = g }; break;
                case "--repeats": o = o with { Repeats = int.Parse(Next()) }; break;
                case "--max-cpu-batch": o = o with { MaxCpuBatch = int.Parse(Next()) }; break;
                case "--max-gpu-batch": o = o with { MaxGpuBatch = int.Parse(Next()) }; break;
                case "--seconds-per-size": o = o with { SecondsPerSize = double.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture) }; break;
                case "--no-subsets": o = o with { AllSubsets = false }; break;
                case "--gpu-only": o = o with { GpuOnly = true }; break;
                case "--no-cpu": o = o with { NoCpu = true }; break;
                case "--out": o = o with { Out = Next() }; break;
                case "--profile-path": o = o with { ProfilePath = Next() }; break;
                case "--sweep": o = o with { Sweep = Next() }; break;
                case "--gpus": o = o with { GpuLimit = int.Parse(Next()) }; break;
                case "--nvjpeg-backend": o = o with { NvjpegHardware = Next() != "default" }; break;
                case "--trace-gpu": o = o with { TraceGpu = true }; break;
                case "--decode-on": o = o with { DecodeOn = Next().Split(',').Select(d => Enum.Parse<HeteroBatch.Engine.Execution.DecodeOn>(d, ignoreCase: true)).ToArray() }; break;
                case "--anchor-images": o = o with { AnchorImages = true }; break;
                case "--ort-profile": o = o with { OrtProfile = Next() }; break;
                case "--all-variants": o = o with { AllVariants = true }; break;
                case "--grpc": o = o with { Grpc = true }; break;
                case "--variants": o = o with { Variants = Next().Split(',', StringSplitOptions.RemoveEmptyEntries) }; break;
                case "--json-only": o = o with { JsonOnly = true }; break;
                case "--concurrent-profiling": o = o with { ConcurrentProfiling = true }; break;
                case "--quick":
                    o = o with { Models = new[] { "mobilenet" }, Batches = new[] { 64 }, Repeats = 1, SecondsPerSize = 0.2, MaxCpuBatch = 16 };
                    break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        return o;
    }

    public override string ToString() =>
        $"models {string.Join(",", Models)}; batches {string.Join(",", Batches)}; cpu group {CpuGrouping.Mode}{(CpuGrouping.Count > 0 ? $" {CpuGrouping.Count}" : "")}; repeats {Repeats}; profiling {(ConcurrentProfiling ? "all units at once" : "one unit at a time")}; seconds per profiled size {SecondsPerSize}; largest profiled batch: CPU {(MaxCpuBatch > 0 ? MaxCpuBatch.ToString() : "default")}, GPU {(MaxGpuBatch > 0 ? MaxGpuBatch.ToString() : "default")}";
}
