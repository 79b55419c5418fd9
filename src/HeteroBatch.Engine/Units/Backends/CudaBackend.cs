using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Sessions;
using Microsoft.ML.OnnxRuntime;

namespace HeteroBatch.Engine.Units.Backends;

/// <summary>
/// NVIDIA GPUs through ONNX Runtime's CUDA provider, or TensorRT with CUDA for what it cannot
/// take. TF32 math is a variant of the unit (its own fingerprint), not another device.
/// </summary>
public sealed class CudaBackend : OrtBackend, IUnitBackend // re-implements the interface: its members beyond OrtBackend's (OpenImageSession) are what the interface calls
{
    /// <summary>A GPU with nvJPEG decodes its own share of a file job (<see cref="CudaImageSession"/>); without it (GpuDecodeReason says why) it decodes nothing.</summary>
    public IEncodedImageSession? OpenImageSession(ComputeUnit unit, Models.ModelSource model, EngineOptions settings, Data.TensorSpec input,
        Data.ImagePreprocessing preprocessing, int maxChunk) =>
        unit.GpuDecodeReason != null ? null : CudaImageSession.Open(unit, model, settings, input, preprocessing, maxChunk);

    private const int NvidiaVendorId = 0x10DE;

    public override string Name => "CUDA";
    public override bool NeedsFeeder => true;
    /// <summary>ONNX Runtime's CUDA provider re-plans convolutions whenever the input shape changes (hundreds of ms), so a GPU keeps one shape per plan.</summary>
    public override bool KeepsOneShape => true;
    public override int DefaultMaxBatch => 512;

    /// <summary>One unit per NVIDIA GPU; each is probed by starting a real session on it.</summary>
    public override IReadOnlyList<ComputeUnit> Discover(DiscoveryRequest request, string runtimeVersion)
    {
        var provider = request.TensorRt ? ExecutionProvider.TensorRT : ExecutionProvider.CUDA;
        var log = request.Log;
        var known = NvidiaGpus.List();
        int count = known.Count;
        try
        {
            count = Math.Max(count, OrtRuntime.Env.GetHardwareDevices()
                .Count(d => d.Type == OrtHardwareDeviceType.GPU && d.VendorId == NvidiaVendorId));
        }
        catch (Exception e) { log?.Invoke($"ONNX Runtime's device list is not available: {e.Message}"); }

        var settings = new EngineOptions();
        ComputeUnit Unit(int i, ExecutionProvider p) => new()
        {
            Id = $"gpu{i}", Kind = UnitKind.Gpu, Name = (i < known.Count ? known[i].Name : null) ?? "NVIDIA GPU", Provider = p,
            DeviceId = i, BusId = i < known.Count ? known[i].BusId : null, RuntimeVersion = runtimeVersion, Precision = request.Precision,
        };
        // no device list: count the ordinals on which a CUDA session starts
        if (count == 0)
            while (count < 64 && Probe(Unit(count, ExecutionProvider.CUDA), settings) == null) count++;
        if (count == 0)
        {
            var absent = Unit(0, provider);
            var why = Probe(absent, settings);
            absent.Id = "gpu";
            absent.Available = false;
            absent.Reason = "no NVIDIA GPU found" + (why == null ? "" : $"; {provider} provider: {why}");
            absent.GpuDecodeReason = Data.Gpu.GpuJpegDecoder.WhyUnavailable(0);
            log?.Invoke($"gpu: {absent.Reason}");
            return new[] { absent };
        }
        var units = new List<ComputeUnit>();
        for (int i = 0; i < count; i++)
        {
            var unit = Unit(i, provider);
            var why = Probe(unit, settings);
            log?.Invoke(why == null ? $"gpu{i}: {provider} session started" : $"gpu{i}: {provider} session failed: {why}");
            unit.Available = why == null;
            unit.Reason = why;
            unit.GpuDecodeReason = Data.Gpu.GpuJpegDecoder.WhyUnavailable(i);
            units.Add(unit);
        }
        return units;
    }

    protected override void AddProvider(SessionOptions o, ComputeUnit unit, EngineOptions settings)
    {
        if (unit.Provider == ExecutionProvider.TensorRT) o.AppendExecutionProvider_Tensorrt(unit.DeviceId);
        using var cuda = new OrtCUDAProviderOptions();
        cuda.UpdateOptions(ProviderOptions(unit, settings));
        o.AppendExecutionProvider_CUDA(cuda);
    }

    /// <summary>
    /// The CUDA provider's options for a unit. ONNX Runtime picks each convolution's cuDNN engine by
    /// heuristic, never by timing (its EXHAUSTIVE is cuDNN's heuristic B), so what is set here was
    /// measured per precision on an H100 (resnet-50 ×1000, host → GPU → host): Fp16 NHWC 113.46 ms
    /// with heuristic A, 362.52 with B, 104.72 with the bias added inside the convolution
    /// (fuse_conv_bias); Tf32 NHWC 146.23 → 105.78 ms with it. Only in NHWC: in NCHW that fusion
    /// failed to plan at Fp16 (HEURISTIC_QUERY_FAILED) and gave wrong outputs at Tf32 (cosine
    /// 0.879 against fp32). Strict fp32 stays NCHW with heuristic B, its fastest.
    /// HETEROBATCH_CUDA_OPTIONS overrides any of them.
    /// </summary>
    public static Dictionary<string, string> ProviderOptions(ComputeUnit unit, EngineOptions settings)
    {
        bool reduced = unit.Precision is Models.Precision.Tf32 or Models.Precision.Fp16;
        bool nhwc = settings.CudaPreferNhwc ?? reduced;
        var options = new Dictionary<string, string>
        {
            ["device_id"] = unit.DeviceId.ToString(),
            ["cudnn_conv_algo_search"] = settings.CudnnAlgorithmSearch ?? (unit.Precision == Models.Precision.Fp16 ? "HEURISTIC" : "EXHAUSTIVE"),
            ["use_tf32"] = unit.Precision == Models.Precision.Tf32 ? "1" : "0",
            ["arena_extend_strategy"] = "kSameAsRequested",
            ["do_copy_in_default_stream"] = "1",
            ["prefer_nhwc"] = nhwc ? "1" : "0",
            ["fuse_conv_bias"] = reduced && nhwc ? "1" : "0",
        };
        foreach (var (name, value) in settings.CudaProviderOptions) options[name] = value;
        return options;
    }

    /// <summary>Present when a GPU with the same ordinal, name and bus is found here, whatever its math mode; TensorRT also needs its provider in this build.</summary>
    public override string? WhyAbsent(ComputeUnit unit, IReadOnlyList<ComputeUnit> found)
    {
        if (!found.Any(f => f.Available && UnitBackends.SameDevice(f, unit)))
            return $"no NVIDIA GPU '{unit.Name}' ({unit.Id}) runs here";
        if (unit.Provider == ExecutionProvider.TensorRT && !OrtRuntime.Env.GetAvailableProviders().Contains("TensorrtExecutionProvider"))
            return "the loaded ONNX Runtime has no TensorRT provider";
        return null;
    }

    public override int? WorkerProcessor(ComputeUnit unit) => unit.FeederProcessor;

    /// <summary>Page-locked inputs: on an H100, resnet-50 ×100 host → GPU → host took 33.61 ms at fp32 and 11.86 ms at fp16 (NHWC) from them, 39.88 and 16.89 ms from pageable memory.</summary>
    public override bool WantsPageLockedInputs(ComputeUnit unit, EngineOptions settings) => settings.PageLockedInputs;

    /// <summary>Images decoded on CPU threads travel to the GPU as uint8 pixels and are normalised there (unless HETEROBATCH_PIXEL_INPUTS=0).</summary>
    public override bool TakesPixelInputs(ComputeUnit unit, EngineOptions settings) => settings.PixelInputs != PixelInputMode.Off;

    /// <summary>A session on the GPU; with pinned transfers on, its runs stage through page-locked host memory.</summary>
    public override IModelSession Open(ComputeUnit unit, Models.ModelSource model, EngineOptions settings)
    {
        var session = (LoadedModel)base.Open(unit, model, settings);
        if (settings.PageLockedInputs) session.UsePageLockedStaging();
        if (settings.PinnedTransfers)
            session.UsePinnedStaging(new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA_PINNED, OrtAllocatorType.DeviceAllocator, unit.DeviceId, OrtMemType.CpuOutput));
        return session;
    }

    /// <summary>Time with inputs and outputs resident on the GPU (no host copies).</summary>
    public override double? ComputeOnlyMedianMs(IModelSession model, ComputeUnit unit, int batch, int runs, CancellationToken cancel)
    {
        if (model is not LoadedModel loaded) return null;
        using var memory = new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, unit.DeviceId, OrtMemType.Default);
        return loaded.DeviceResidentMedianMs(memory, batch, runs, cancel);
    }
}

/// <summary>NVIDIA GPUs as the driver lists them under /proc (Linux), in bus order.</summary>
internal static class NvidiaGpus
{
    public readonly record struct Info(string? Name, string? BusId);

    public static IReadOnlyList<Info> List()
    {
        const string root = "/proc/driver/nvidia/gpus";
        var list = new List<Info>();
        try
        {
            if (!Directory.Exists(root)) return list;
            foreach (var dir in Directory.GetDirectories(root).OrderBy(d => d, StringComparer.Ordinal))
            {
                var file = Path.Combine(dir, "information");
                if (!File.Exists(file)) continue;
                string? name = null, bus = null;
                foreach (var line in File.ReadLines(file))
                {
                    var colon = line.IndexOf(':');
                    if (colon < 0) continue;
                    var key = line[..colon].Trim();
                    var value = line[(colon + 1)..].Trim();
                    if (key == "Model") name = value;
                    else if (key == "Bus Location") bus = value;
                }
                list.Add(new Info(name, bus ?? Path.GetFileName(dir)));
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return list;
    }
}
