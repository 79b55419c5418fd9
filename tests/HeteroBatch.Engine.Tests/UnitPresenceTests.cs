using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Units;

namespace HeteroBatch.Engine.Tests;

/// <summary>
/// Presence of accelerator units, given the devices found here. This machine has no GPU, so the
/// devices found are given as a list, as CUDA discovery would return them on a GPU host.
/// </summary>
public class UnitPresenceTests
{
    private static ComputeUnit Gpu(int ordinal, bool tf32 = false, ExecutionProvider provider = ExecutionProvider.CUDA) => new()
    {
        Id = $"gpu{ordinal}", Kind = UnitKind.Gpu, Name = "NVIDIA H200", Provider = provider, DeviceId = ordinal,
        BusId = $"0000:{ordinal + 3:x2}:00.0", RuntimeVersion = OrtRuntime.Version, AllowTf32 = tf32,
    };

    [Fact]
    public void ATf32UnitOfAPresentGpuIsPresent()
    {
        var presence = new UnitPresence(() => new[] { Gpu(0), Gpu(1) });
        var tf32 = Gpu(1, tf32: true);
        Assert.NotEqual(Gpu(1).Fingerprint, tf32.Fingerprint); // its profiles never mix with fp32 ones...
        Assert.Null(presence.WhyAbsent(tf32));                  // ...and yet the device is here
        Assert.Null(presence.WhyAbsent(Gpu(0)));
    }

    [Fact]
    public void AGpuNotFoundHereIsAbsentWithAReason()
    {
        var presence = new UnitPresence(() => new[] { Gpu(0) });
        Assert.Contains("gpu1", presence.WhyAbsent(Gpu(1)));
        var elsewhere = Gpu(0);
        elsewhere.Name = "NVIDIA H100";
        Assert.NotNull(presence.WhyAbsent(elsewhere));
        var unavailable = Gpu(0);
        unavailable.Available = false;
        Assert.NotNull(new UnitPresence(() => new[] { unavailable }).WhyAbsent(Gpu(0)));
    }

    [Fact]
    public void ATensorRtUnitNeedsTheTensorRtProviderToo()
    {
        var presence = new UnitPresence(() => new[] { Gpu(0) });
        var trt = Gpu(0, provider: ExecutionProvider.TensorRT);
        var has = OrtRuntime.Env.GetAvailableProviders().Contains("TensorrtExecutionProvider");
        Assert.Equal(has, presence.WhyAbsent(trt) == null);
        if (!has) Assert.Contains("TensorRT", presence.WhyAbsent(trt));
    }

    [Fact]
    public void CpuUnitsArePresentWhenTheirProcessorsAre()
    {
        var presence = new UnitPresence(() => Array.Empty<ComputeUnit>());
        foreach (var unit in TestModels.TwoCpuUnits()) Assert.Null(presence.WhyAbsent(unit));
        var other = TestModels.TwoCpuUnits()[0];
        other.Processors = new[] { 4095 };
        Assert.Contains("4095", presence.WhyAbsent(other));
    }
}
