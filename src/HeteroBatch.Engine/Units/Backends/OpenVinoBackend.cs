using HeteroBatch.Engine.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace HeteroBatch.Engine.Units.Backends;

/// <summary>Intel GPUs and NPUs through ONNX Runtime's OpenVINO provider, where the loaded ONNX Runtime was built with it.</summary>
public sealed class OpenVinoBackend : OrtBackend
{
    public const string ProviderName = "OpenVINOExecutionProvider";

    public override string Name => "OpenVINO";
    public override bool NeedsFeeder => false;
    public override bool KeepsOneShape => true;
    public override int DefaultMaxBatch => 512;

    public override IReadOnlyList<ComputeUnit> Discover(DiscoveryRequest request, string runtimeVersion)
    {
        var log = request.Log;
        if (!OrtRuntime.Env.GetAvailableProviders().Contains(ProviderName))
        {
            var reason = $"the loaded ONNX Runtime ({OrtRuntime.NativeLibraryPath ?? "the module's own CUDA build"}) has no OpenVINO provider; set {OrtRuntime.NativePathVariable} to an OpenVINO build's native folder (see about_HeteroBatch)";
            log?.Invoke($"openvino: {reason}");
            return new[] { new ComputeUnit { Id = "igpu0", Kind = UnitKind.IntegratedGpu, Name = "OpenVINO GPU", Provider = ExecutionProvider.OpenVINO, RuntimeVersion = runtimeVersion, Available = false, Reason = reason } };
        }
        var settings = new EngineOptions();
        var units = new List<ComputeUnit>();
        foreach (var (id, kind, device) in new[] { ("igpu0", UnitKind.IntegratedGpu, "GPU"), ("npu0", UnitKind.Npu, "NPU") })
        {
            var unit = new ComputeUnit { Id = id, Kind = kind, Name = $"OpenVINO {device}", Provider = ExecutionProvider.OpenVINO, RuntimeVersion = runtimeVersion };
            var why = Probe(unit, settings);
            log?.Invoke(why == null ? $"{id}: OpenVINO {device} session started" : $"{id}: OpenVINO {device} failed: {why}");
            unit.Available = why == null;
            unit.Reason = why;
            units.Add(unit);
        }
        return units;
    }

    private static string DeviceType(ComputeUnit unit) => unit.Kind switch { UnitKind.Npu => "NPU", UnitKind.Cpu => "CPU", _ => "GPU" };

    protected override void AddProvider(SessionOptions o, ComputeUnit unit, EngineOptions settings) =>
        o.AppendExecutionProvider_OpenVINO(DeviceType(unit));

    public override string? WhyAbsent(ComputeUnit unit, IReadOnlyList<ComputeUnit> found) =>
        found.Any(f => f.Available && UnitBackends.SameDevice(f, unit)) ? null : $"no OpenVINO device '{unit.Name}' ({unit.Id}) runs here";

    public override int? WorkerProcessor(ComputeUnit unit) => unit.FeederProcessor;
}
