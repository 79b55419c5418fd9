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

/// <summary>The one UnitUnavailable check that Invoke-Profile, Start-InferenceServer (and runs) share.</summary>
public class UnitUnavailableTests
{
    private static ComputeUnit Gpu(int ordinal) => new()
    {
        Id = $"gpu{ordinal}", Kind = UnitKind.Gpu, Name = "NVIDIA H200", Provider = ExecutionProvider.CUDA, DeviceId = ordinal,
        BusId = $"0000:{ordinal + 3:x2}:00.0", RuntimeVersion = OrtRuntime.Version,
    };

    [Fact]
    public void AUnitFoundUnavailableOrAbsentNowIsUnitUnavailableWithItsReasonAndAPresentOneIsNot()
    {
        var presence = new UnitPresence(() => new[] { Gpu(0) });
        Assert.Null(presence.Unavailable(Gpu(0)));
        presence.Require(new[] { Gpu(0) }, planned: true);

        var listed = Gpu(0);
        (listed.Available, listed.Reason) = (false, "no NVIDIA GPU found");
        var e = presence.Unavailable(listed)!;
        Assert.Equal(("UnitUnavailable", FailureKind.ResourceUnavailable, "gpu0"), (e.ErrorId, e.Kind, e.Target as string));
        Assert.Equal("Unit 'gpu0' cannot run here: no NVIDIA GPU found", e.Message);

        var older = Gpu(0);
        older.RuntimeVersion = "1.0.0";
        var planned = Assert.Throws<HeteroBatchException>(() => presence.Require(new[] { Gpu(0), older, Gpu(1) }, planned: true));
        Assert.Equal("UnitUnavailable", planned.ErrorId);
        Assert.StartsWith("The plan gives samples to unit 'gpu0', which cannot run here: it was found with ONNX Runtime 1.0.0", planned.Message);
        Assert.Contains("gpu1", presence.Unavailable(Gpu(1))!.Message);
    }
}
