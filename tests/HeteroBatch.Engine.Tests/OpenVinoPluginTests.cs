using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Tests.Plugins;
using HeteroBatch.Engine.Units;
using HeteroBatch.Engine.Units.Backends;
using Microsoft.ML.OnnxRuntime;

namespace HeteroBatch.Engine.Tests;

/// <summary>OpenVINO units through ONNX Runtime's plugin execution providers, tested where no OpenVINO exists: missing and wrong libraries, and a fake plugin built here.</summary>
public class OpenVinoPluginTests
{
    private static IReadOnlyList<ComputeUnit> Discover(params string[] libraries) =>
        UnitBackends.OpenVino.Discover(new DiscoveryRequest { ExecutionProviderLibraries = libraries }, OrtRuntime.Version);

    private static PluginDevice Device(OrtHardwareDeviceType type, string? ovDevice, uint deviceId = 0x46a6, string ep = OpenVinoBackend.ProviderName) =>
        new(ep, type, 0x8086, deviceId, "Intel", ovDevice == null ? new Dictionary<string, string>() : new Dictionary<string, string> { ["ov_device"] = ovDevice });

    [Fact]
    public void AMissingLibraryGivesAnUnavailableUnitWithThePathOrtsErrorAndTheInstallLine()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"heterobatch-no-such-{Guid.NewGuid():N}", "onnxruntime_providers_openvino_plugin.so");
        var unit = Assert.Single(Discover(missing));
        Assert.Equal("igpu0", unit.Id);
        Assert.False(unit.Available);
        Assert.Contains($"the plugin library '{missing}' did not load: ", unit.Reason);
        var reason = unit.Reason!;
        var ortText = reason[(reason.IndexOf("did not load: ", StringComparison.Ordinal) + "did not load: ".Length)..];
        Assert.Contains("No such file", ortText, StringComparison.OrdinalIgnoreCase); // ONNX Runtime's own words, from dlopen
        Assert.Contains("pip install onnxruntime-ep-openvino", unit.Reason);
        Assert.Contains(EngineOptions.EpLibrariesVariable, unit.Reason);
    }

    [Fact]
    public void AFileThatIsNotALibraryGivesAnUnavailableUnitWithOrtsReason()
    {
        var folder = Directory.CreateTempSubdirectory("heterobatch-not-a-library-").FullName;
        var file = Path.Combine(folder, "onnxruntime_providers_openvino_plugin.so");
        File.WriteAllText(file, "this is not a shared library\n");
        var unit = Assert.Single(Discover(file));
        Assert.False(unit.Available);
        Assert.Contains($"the plugin library '{file}' did not load: ", unit.Reason);
        Assert.Contains($"Failed to load library {file}", unit.Reason); // ONNX Runtime's words, with the loader's reason after them
    }

    [PluginFact]
    public void ALibraryThatIsNotAProviderGivesAnUnavailableUnitWithOrtsReason()
    {
        var lib = FakePlugin.NotAProviderLibrary;
        var unit = Assert.Single(Discover(lib));
        Assert.False(unit.Available);
        Assert.Contains($"the plugin library '{lib}' did not load: ", unit.Reason);
        Assert.Contains("undefined symbol: CreateEpFactories", unit.Reason); // ONNX Runtime names the entry point it did not find
    }

    [Fact]
    public void NoLibraryNamedSaysWhatToInstall()
    {
        var unit = Assert.Single(Discover());
        Assert.False(unit.Available);
        Assert.StartsWith("no OpenVINO plugin library is named (HETEROBATCH_EP_LIBRARIES)", unit.Reason);
        Assert.Contains("pip install onnxruntime-ep-openvino", unit.Reason);
    }

    [PluginFact]
    public void TheFakePluginsDevicesBecomeAnIgpuAnNpuAndACpuUnitThatStartSessions()
    {
        var units = Discover(FakePlugin.OpenVinoLibrary);
        Assert.Equal(new[] { "ovcpu0", "igpu0", "npu0" }, units.Select(u => u.Id));
        Assert.All(units, u => Assert.True(u.Available, u.Reason)); // each probed with a real session on its plugin device
        Assert.All(units, u => Assert.Equal(ExecutionProvider.OpenVINO, u.Provider));
        var gpu = units.Single(u => u.Id == "igpu0");
        Assert.Equal((UnitKind.IntegratedGpu, "OpenVINO GPU", "8086:46a6"), (gpu.Kind, gpu.Name, gpu.BusId));
        Assert.Empty(gpu.Processors);
        var npu = units.Single(u => u.Id == "npu0");
        Assert.Equal((UnitKind.Npu, "OpenVINO NPU", "8086:7d1d"), (npu.Kind, npu.Name, npu.BusId));
        var cpu = units.Single(u => u.Id == "ovcpu0");
        Assert.Equal((UnitKind.Cpu, "OpenVINO CPU"), (cpu.Kind, cpu.Name));
        Assert.Equal(CpuTopology.AllowedProcessors(), cpu.Processors);
    }

    [PluginFact]
    public void PluginUnitsHaveFingerprintsOfTheirOwnThatHoldAcrossDiscoveries()
    {
        var first = Discover(FakePlugin.OpenVinoLibrary);
        var again = Discover(FakePlugin.OpenVinoLibrary);
        Assert.Equal(first.Select(u => u.Fingerprint), again.Select(u => u.Fingerprint));
        Assert.Equal(3, first.Select(u => u.Fingerprint).Distinct().Count());
        var legacyGpu = new ComputeUnit { Id = "igpu0", Kind = UnitKind.IntegratedGpu, Name = "OpenVINO GPU", Provider = ExecutionProvider.OpenVINO, RuntimeVersion = OrtRuntime.Version };
        Assert.NotEqual(legacyGpu.Fingerprint, first.Single(u => u.Id == "igpu0").Fingerprint);
        var cpuUnit = Assert.Single(CpuBackend.Units(CpuGrouping.All, OrtRuntime.Version));
        Assert.NotEqual(cpuUnit.Fingerprint, first.Single(u => u.Id == "ovcpu0").Fingerprint);
    }

    [PluginFact]
    public void OpenVinosCpuDeviceOverlapsTheCpuUnitsAndThePlannerRefusesThemTogether()
    {
        var units = Discover(FakePlugin.OpenVinoLibrary);
        var ovCpu = units.Single(u => u.Id == "ovcpu0");
        var cpus = CpuBackend.Units(new CpuGrouping(CpuGroupingMode.Core), OrtRuntime.Version);
        Assert.All(cpus, c => Assert.True(UnitBackends.Overlap(c, ovCpu) && UnitBackends.Overlap(ovCpu, c)));
        var e = Assert.Throws<HeteroBatchException>(() => ProfileSelection.CheckNoOverlap(new[] { cpus[0], ovCpu }));
        Assert.Equal("UnitsOverlap", e.ErrorId);
        Assert.Contains($"Units '{cpus[0].Id}' (CPU) and 'ovcpu0' (OpenVINO) share processors", e.Message);
        // the GPU and the NPU compute off the host: they go with every CPU unit
        ProfileSelection.CheckNoOverlap(cpus.Concat(units.Where(u => u.Id != "ovcpu0")).ToList());
    }

    [PluginFact]
    public void APluginUnitOpensAModelThroughItsDeviceAndIsPresentOnlyWithItsLibrary()
    {
        var settings = new EngineOptions { ExecutionProviderLibraries = new[] { FakePlugin.OpenVinoLibrary } };
        var gpu = Discover(FakePlugin.OpenVinoLibrary).Single(u => u.Id == "igpu0");
        using (var session = UnitBackends.OpenVino.Open(gpu, TestModels.Tiny, settings))
            Assert.NotEmpty(session.Signature.Inputs);
        var e = Assert.Throws<HeteroBatchException>(() => UnitBackends.OpenVino.Open(gpu, TestModels.Tiny, new EngineOptions()));
        Assert.Equal("OpenVinoDeviceMissing", e.ErrorId);
        Assert.Null(new UnitPresence(() => UnitDiscovery.Accelerators(settings)).WhyAbsent(gpu));
        Assert.Contains("no OpenVINO device 'OpenVINO GPU' (igpu0) runs here", new UnitPresence(() => UnitDiscovery.Accelerators(new EngineOptions())).WhyAbsent(gpu));
    }

    [Fact]
    public void DevicesMapByOpenVinosDeviceStringAndOtherProvidersAreLeftOut()
    {
        var units = OpenVinoBackend.Map(new[]
        {
            Device(OrtHardwareDeviceType.GPU, "GPU.0", 0x46a6),
            Device(OrtHardwareDeviceType.GPU, "GPU.1", 0x56a0),
            Device(OrtHardwareDeviceType.NPU, null, 0x7d1d),
            Device(OrtHardwareDeviceType.GPU, "GPU", 0x1234, ep: "SomeOtherExecutionProvider"),
            Device(OrtHardwareDeviceType.CPU, "CPU", 0),
        }, "1.31.0", new[] { 0, 1, 2, 3 });
        Assert.Equal(new[] { "igpu0", "igpu1", "npu0", "ovcpu0" }, units.Select(u => u.Id));
        Assert.Equal(new[] { "OpenVINO GPU.0", "OpenVINO GPU.1", "OpenVINO NPU", "OpenVINO CPU" }, units.Select(u => u.Name));
        Assert.Equal(new[] { 0, 1, 0, 0 }, units.Select(u => u.DeviceId));
        Assert.Equal(new[] { "8086:46a6", "8086:56a0", "8086:7d1d", "8086:0000" }, units.Select(u => u.BusId));
        Assert.Equal(new[] { 0, 1, 2, 3 }, units[3].Processors);
        Assert.NotEqual(units[0].Fingerprint, units[1].Fingerprint);
    }

    [Fact]
    public void TheLibrariesOptionReadsPathsSeparatedByTheSystemsSeparator()
    {
        var value = string.Join(Path.PathSeparator, "/opt/ov/a.so", " /opt/ov/b.so ", "");
        var options = EngineOptions.FromEnvironment(name => name == EngineOptions.EpLibrariesVariable ? value : null);
        Assert.Equal(new[] { "/opt/ov/a.so", "/opt/ov/b.so" }, options.ExecutionProviderLibraries);
        Assert.Empty(EngineOptions.FromEnvironment(_ => null).ExecutionProviderLibraries);
    }
}
