using HeteroBatch.Engine.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace HeteroBatch.Engine.Units.Backends;

/// <summary>
/// Intel GPUs, NPUs and CPUs through OpenVINO, two ways: OpenVINO's plugin execution provider
/// (ORT 1.23+; the library the user names in <see cref="EngineOptions.ExecutionProviderLibraries"/>,
/// registered into the module's own ONNX Runtime), or, where the loaded ONNX Runtime was built
/// with the provider inside, the legacy provider. Plugin devices win where both exist.
/// </summary>
public sealed class OpenVinoBackend : OrtBackend
{
    public const string ProviderName = "OpenVINOExecutionProvider";
    /// <summary>The metadata key OpenVINO's plugin gives each device: the OpenVINO device string (CPU, GPU, GPU.1, NPU).</summary>
    public const string DeviceMetadataKey = "ov_device";

    public override string Name => "OpenVINO";
    public override bool NeedsFeeder => false;
    public override bool KeepsOneShape => true;
    public override int DefaultMaxBatch => 512;

    /// <summary>What to run where OpenVINO's plugin is missing (one line, for reasons).</summary>
    internal static string InstallHint => OperatingSystem.IsWindows()
        ? $"install it with 'pip install onnxruntime-ep-openvino' (or Windows ML's Intel OpenVINO provider) and name the .dll that onnxruntime_ep_openvino.get_library_path() returns in {EngineOptions.EpLibrariesVariable}"
        : $"install it with 'pip install onnxruntime-ep-openvino' and name the .so that onnxruntime_ep_openvino.get_library_path() returns in {EngineOptions.EpLibrariesVariable}";

    public override IReadOnlyList<ComputeUnit> Discover(DiscoveryRequest request, string runtimeVersion)
    {
        var log = request.Log;
        var settings = new EngineOptions { ExecutionProviderLibraries = request.ExecutionProviderLibraries };
        var libraries = PluginProviders.Register(request.ExecutionProviderLibraries);
        foreach (var lib in libraries)
            log?.Invoke(lib.Registered ? $"openvino: plugin library '{lib.Path}' registered" : $"openvino: plugin library '{lib.Path}' did not load: {lib.Error}");

        var units = new List<ComputeUnit>();
        if (libraries.Any(l => l.Registered))
            units.AddRange(Map(PluginProviders.Devices(ProviderName).Select(d => d.Device).ToList(), runtimeVersion, CpuTopology.AllowedProcessors()));
        bool legacy = OrtRuntime.Env.GetAvailableProviders().Contains(ProviderName);
        if (units.Count == 0 && legacy)
            foreach (var (id, kind, device) in new[] { ("igpu0", UnitKind.IntegratedGpu, "GPU"), ("npu0", UnitKind.Npu, "NPU") })
                units.Add(new ComputeUnit { Id = id, Kind = kind, Name = $"OpenVINO {device}", Provider = ExecutionProvider.OpenVINO, RuntimeVersion = runtimeVersion });
        if (units.Count == 0)
        {
            var reason = WhyNone(libraries, legacy);
            log?.Invoke($"openvino: {reason}");
            return new[] { new ComputeUnit { Id = "igpu0", Kind = UnitKind.IntegratedGpu, Name = "OpenVINO GPU", Provider = ExecutionProvider.OpenVINO, RuntimeVersion = runtimeVersion, Available = false, Reason = reason } };
        }
        foreach (var unit in units)
        {
            var why = Probe(unit, settings);
            log?.Invoke(why == null ? $"{unit.Id}: {unit.Name} session started" : $"{unit.Id}: {unit.Name} failed: {why}");
            unit.Available = why == null;
            unit.Reason = why;
        }
        return units;
    }

    /// <summary>Why no OpenVINO device is listed: each library tried with ORT's error, and what to install.</summary>
    internal static string WhyNone(IReadOnlyList<PluginLibrary> libraries, bool legacy)
    {
        if (libraries.Count == 0)
            return $"no OpenVINO plugin library is named ({EngineOptions.EpLibrariesVariable}) and the loaded ONNX Runtime ({OrtRuntime.NativeLibraryPath ?? "the module's own"}) has no OpenVINO provider built in; {InstallHint}";
        var parts = libraries.Select(l => l.Registered
            ? $"the plugin library '{l.Path}' offers no {ProviderName} device{Offers()}"
            : $"the plugin library '{l.Path}' did not load: {l.Error}");
        return string.Join("; ", parts) + $"; {InstallHint}";
    }

    private static string Offers()
    {
        var names = PluginProviders.ProviderNames();
        return names.Count == 0 ? "" : $" (the providers registered offer: {string.Join(", ", names)})";
    }

    /// <summary>
    /// Units for OpenVINO's plugin devices: GPU → igpu0, igpu1...; NPU → npu0...; CPU → ovcpu0,
    /// a unit of kind Cpu over <paramref name="cpuProcessors"/>, so that the planner sees it share
    /// the cores with CPU units. The device's hardware ids (vendor:device) are its BusId, part of
    /// its fingerprint.
    /// </summary>
    internal static IReadOnlyList<ComputeUnit> Map(IReadOnlyList<PluginDevice> devices, string runtimeVersion, int[] cpuProcessors)
    {
        var counts = new Dictionary<UnitKind, int>();
        var units = new List<ComputeUnit>();
        foreach (var d in devices.Where(d => d.EpName == ProviderName))
        {
            var kind = d.HardwareType switch { OrtHardwareDeviceType.NPU => UnitKind.Npu, OrtHardwareDeviceType.CPU => UnitKind.Cpu, _ => UnitKind.IntegratedGpu };
            var ovDevice = d.Metadata.TryGetValue(DeviceMetadataKey, out var v) && !string.IsNullOrWhiteSpace(v) ? v.Trim() : d.HardwareType.ToString();
            int n = counts.GetValueOrDefault(kind);
            counts[kind] = n + 1;
            var dot = ovDevice.LastIndexOf('.');
            units.Add(new ComputeUnit
            {
                Id = kind switch { UnitKind.Npu => $"npu{n}", UnitKind.Cpu => $"ovcpu{n}", _ => $"igpu{n}" },
                Kind = kind,
                Name = $"OpenVINO {ovDevice}",
                Provider = ExecutionProvider.OpenVINO,
                DeviceId = dot > 0 && int.TryParse(ovDevice[(dot + 1)..], out var ordinal) ? ordinal : 0,
                BusId = $"{d.VendorId:x4}:{d.DeviceId:x4}",
                Processors = kind == UnitKind.Cpu ? new Data.ValueList<int>(cpuProcessors) : new Data.ValueList<int>(),
                RuntimeVersion = runtimeVersion,
            });
        }
        return units;
    }

    private static string DeviceType(ComputeUnit unit) => unit.Kind switch { UnitKind.Npu => "NPU", UnitKind.Cpu => "CPU", _ => "GPU" };

    /// <summary>The plugin device a unit stands for, among those the named libraries offer now; null where it is not a plugin device here.</summary>
    private static OrtEpDevice? PluginDeviceFor(ComputeUnit unit, EngineOptions settings)
    {
        if (settings.ExecutionProviderLibraries.Count == 0 || unit.BusId == null) return null;
        if (!PluginProviders.Register(settings.ExecutionProviderLibraries).Any(l => l.Registered)) return null;
        var devices = PluginProviders.Devices(ProviderName);
        var units = Map(devices.Select(d => d.Device).ToList(), unit.RuntimeVersion, CpuTopology.AllowedProcessors());
        for (int i = 0; i < units.Count; i++)
            if (units[i].Kind == unit.Kind && units[i].Name == unit.Name && units[i].DeviceId == unit.DeviceId && units[i].BusId == unit.BusId)
                return devices[i].Handle;
        return null;
    }

    protected override void AddProvider(SessionOptions o, ComputeUnit unit, EngineOptions settings)
    {
        if (PluginDeviceFor(unit, settings) is { } device)
        {
            o.AppendExecutionProvider(OrtRuntime.Env, new[] { device }, new Dictionary<string, string>());
            if (unit.Kind == UnitKind.Cpu) o.IntraOpNumThreads = Math.Max(1, unit.Cores); // what ORT's CPU provider takes of the graph
            return;
        }
        if (unit.BusId != null)
            throw new HeteroBatchException("OpenVinoDeviceMissing", FailureKind.ResourceUnavailable,
                $"The OpenVINO device '{unit.Name}' ({unit.Id}) is not offered by the plugin libraries named in {EngineOptions.EpLibrariesVariable} ({(settings.ExecutionProviderLibraries.Count == 0 ? "none" : string.Join(", ", settings.ExecutionProviderLibraries))}); {InstallHint}.", unit.Id);
        o.AppendExecutionProvider_OpenVINO(DeviceType(unit));
    }

    public override string? WhyAbsent(ComputeUnit unit, IReadOnlyList<ComputeUnit> found) =>
        found.Any(f => f.Available && UnitBackends.SameDevice(f, unit) && f.Processors.SequenceEqual(unit.Processors)) ? null : $"no OpenVINO device '{unit.Name}' ({unit.Id}) runs here";

    public override int? WorkerProcessor(ComputeUnit unit) => unit.FeederProcessor;

    /// <summary>OpenVINO's CPU device computes on the processors it was found with; its GPUs and NPUs on none of them.</summary>
    public override IReadOnlyList<int> ComputeProcessors(ComputeUnit unit) => unit.Processors;

    /// <summary>Two OpenVINO units overlap when both compute on host processors they share (two CPU devices).</summary>
    public override bool Overlap(ComputeUnit a, ComputeUnit b) => a.Processors.Intersect(b.Processors).Any();
}
