using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace HeteroBatch.Engine.Units;

/// <summary>Finds the compute units of this machine. A unit is listed as available only if a real session starts on it.</summary>
public static class UnitDiscovery
{
    private const int NvidiaVendorId = 0x10DE;

    /// <param name="grouping">How to split the CPU into units.</param>
    /// <param name="includeUnavailable">Also list units that cannot run here, with the reason.</param>
    /// <param name="log">Receives one line per probe (for -Verbose).</param>
    /// <param name="tensorRt">Run NVIDIA GPUs through TensorRT (CUDA for what it cannot take) instead of CUDA alone.</param>
    /// <param name="allowTf32">Let NVIDIA GPUs use TF32 math (the units then have their own fingerprint).</param>
    public static IReadOnlyList<ComputeUnit> Discover(CpuGrouping grouping, bool includeUnavailable = false, Action<string>? log = null, bool tensorRt = false, bool allowTf32 = false)
    {
        var version = OrtRuntime.Version;
        var units = new List<ComputeUnit>();
        var gpus = CudaUnits(version, log, tensorRt);
        foreach (var g in gpus) g.AllowTf32 = allowTf32;
        // one processor per working GPU feeds it (copies, kernel launches): the CPU units leave it free
        var allowed = CpuTopology.AllowedProcessors();
        var working = gpus.Where(g => g.Available).ToList();
        int reserve = working.Count > 0 && allowed.Length > working.Count + 1 ? working.Count : 0;
        var feeders = allowed[^reserve..];
        for (int i = 0; i < reserve; i++) working[i].FeederProcessor = feeders[i];
        units.AddRange(CpuUnits(grouping, version, allowed[..^reserve], feeders));
        units.AddRange(gpus.Where(g => g.Available || includeUnavailable));
        var openVino = OpenVinoUnits(version, log);
        units.AddRange(openVino.Where(g => g.Available || includeUnavailable));
        return units;
    }

    public static IReadOnlyList<ComputeUnit> CpuUnits(CpuGrouping grouping, string runtimeVersion, int[]? processors = null, int[]? reserved = null)
    {
        var name = CpuTopology.ModelName();
        var groups = grouping.Split(processors ?? CpuTopology.AllowedProcessors(),
            () => CpuTopology.NumaNodes().Select(n => n.Processors).ToList(),
            () => CpuTopology.CoreTypes().Select(n => n.Processors).ToList());
        var list = new List<ComputeUnit>();
        for (int i = 0; i < groups.Count; i++)
        {
            list.Add(new ComputeUnit
            {
                Id = groups.Count == 1 ? "cpu" : $"cpu{i}",
                Kind = UnitKind.Cpu,
                Name = name,
                Provider = ExecutionProvider.CPU,
                DeviceId = 0,
                Processors = groups[i],
                ReservedProcessors = reserved ?? Array.Empty<int>(),
                RuntimeVersion = runtimeVersion,
            });
        }
        return list;
    }

    /// <summary>One unit per NVIDIA GPU; each is probed by starting a real CUDA session on it.</summary>
    public static IReadOnlyList<ComputeUnit> CudaUnits(string runtimeVersion, Action<string>? log = null, bool tensorRt = false)
    {
        var provider = tensorRt ? ExecutionProvider.TensorRT : ExecutionProvider.CUDA;
        var known = NvidiaGpus.List();
        int count = known.Count;
        try
        {
            count = Math.Max(count, OrtRuntime.Env.GetHardwareDevices()
                .Count(d => d.Type == OrtHardwareDeviceType.GPU && d.VendorId == NvidiaVendorId));
        }
        catch (Exception e) { log?.Invoke($"ONNX Runtime's device list is not available: {e.Message}"); }

        var units = new List<ComputeUnit>();
        if (count == 0)
        {
            // no device list: count the ordinals on which a CUDA session starts
            while (count < 64 && SessionProbe.Try(ExecutionProvider.CUDA, count).Ok) count++;
        }
        if (count == 0)
        {
            var (_, why) = SessionProbe.Try(provider, 0);
            var reason = "no NVIDIA GPU found" + (why == null ? "" : $"; {provider} provider: {why}");
            log?.Invoke($"gpu: {reason}");
            units.Add(new ComputeUnit { Id = "gpu", Kind = UnitKind.Gpu, Name = "NVIDIA GPU", Provider = provider, RuntimeVersion = runtimeVersion, Available = false, Reason = reason });
            return units;
        }
        for (int i = 0; i < count; i++)
        {
            var info = i < known.Count ? known[i] : default;
            var (ok, why) = SessionProbe.Try(provider, i);
            log?.Invoke(ok ? $"gpu{i}: {provider} session started" : $"gpu{i}: {provider} session failed: {why}");
            units.Add(new ComputeUnit
            {
                Id = $"gpu{i}", Kind = UnitKind.Gpu, Name = info.Name ?? "NVIDIA GPU", Provider = provider,
                DeviceId = i, BusId = info.BusId, MemoryBytes = info.MemoryBytes, RuntimeVersion = runtimeVersion,
                Available = ok, Reason = ok ? null : why,
            });
        }
        return units;
    }

    /// <summary>OpenVINO devices, where the loaded ONNX Runtime was built with that provider.</summary>
    public static IReadOnlyList<ComputeUnit> OpenVinoUnits(string runtimeVersion, Action<string>? log = null)
    {
        var providers = OrtRuntime.Env.GetAvailableProviders();
        if (!providers.Contains("OpenVINOExecutionProvider"))
        {
            var reason = $"the loaded ONNX Runtime ({OrtRuntime.NativeLibraryPath ?? "the module's own CUDA build"}) has no OpenVINO provider; set {OrtRuntime.NativePathVariable} to an OpenVINO build's native folder (see about_HeteroBatch)";
            log?.Invoke($"openvino: {reason}");
            return new[] { new ComputeUnit { Id = "igpu0", Kind = UnitKind.IntegratedGpu, Name = "OpenVINO GPU", Provider = ExecutionProvider.OpenVINO, RuntimeVersion = runtimeVersion, Available = false, Reason = reason } };
        }
        var units = new List<ComputeUnit>();
        foreach (var (id, kind, device) in new[] { ("igpu0", UnitKind.IntegratedGpu, "GPU"), ("npu0", UnitKind.Npu, "NPU") })
        {
            var (ok, why) = SessionProbe.Try(ExecutionProvider.OpenVINO, 0, device);
            log?.Invoke(ok ? $"{id}: OpenVINO {device} session started" : $"{id}: OpenVINO {device} failed: {why}");
            units.Add(new ComputeUnit { Id = id, Kind = kind, Name = $"OpenVINO {device}", Provider = ExecutionProvider.OpenVINO, RuntimeVersion = runtimeVersion, Available = ok, Reason = ok ? null : why });
        }
        return units;
    }
}

/// <summary>Starts a real session with a provider on a one-node model: the only trustworthy test that a provider works.</summary>
public static class SessionProbe
{
    public static (bool Ok, string? Reason) Try(ExecutionProvider provider, int deviceId, string? openVinoDevice = null)
    {
        try
        {
            using var options = new SessionOptions();
            options.LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL;
            switch (provider)
            {
                case ExecutionProvider.CUDA: options.AppendExecutionProvider_CUDA(deviceId); break;
                case ExecutionProvider.TensorRT: options.AppendExecutionProvider_Tensorrt(deviceId); break;
                case ExecutionProvider.OpenVINO: options.AppendExecutionProvider_OpenVINO(openVinoDevice ?? "CPU"); break;
            }
            using var session = new InferenceSession(ProbeModel.Bytes, options);
            return (true, null);
        }
        catch (Exception e)
        {
            return (false, FirstLine(e.Message));
        }
    }

    private static string FirstLine(string s)
    {
        var i = s.IndexOf('\n');
        return (i < 0 ? s : s[..i]).Trim();
    }
}

/// <summary>NVIDIA GPUs as the driver lists them under /proc (Linux), in bus order.</summary>
internal static class NvidiaGpus
{
    public readonly record struct Info(string? Name, string? BusId, long MemoryBytes);

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
                list.Add(new Info(name, bus ?? Path.GetFileName(dir), 0));
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return list;
    }
}
