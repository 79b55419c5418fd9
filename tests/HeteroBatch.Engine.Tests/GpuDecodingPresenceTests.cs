using HeteroBatch.Engine.Data.Gpu;
using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Units;

namespace HeteroBatch.Engine.Tests;

/// <summary>GPU decoding where nvJPEG or a GPU is missing: a reason on the unit, a clear error from the decoder, never a crash.</summary>
public sealed class GpuDecodingPresenceTests
{
    [Fact]
    public void AMissingLibraryIsNamedWithWhereItWasLookedFor()
    {
        var handle = NativeLibraries.TryLoadFirst(new[] { "libheterobatch-absent.so.13", "libheterobatch-absent.so" }, new[] { "/nonexistent/cuda/lib64" }, out var why);
        Assert.Equal(IntPtr.Zero, handle);
        Assert.Contains("libheterobatch-absent.so.13 was not found", why);
        Assert.Contains("/nonexistent/cuda/lib64", why);
    }

    [Fact]
    public void CudaUnitsSayWhetherTheirGpuDecodesJpegsAndTheDecoderRefusesWithTheSameReason()
    {
        var why = GpuJpegDecoder.WhyUnavailable(0);
        var gpus = UnitDiscovery.Discover(new DiscoveryRequest { IncludeUnavailable = true })
            .Where(u => u.Kind == UnitKind.Gpu).ToList();
        Assert.NotEmpty(gpus); // -ListAvailable lists an absent GPU too
        Assert.Equal(why, gpus[0].GpuDecodeReason);
        if (why == null) return; // a machine with nvJPEG and a GPU: nothing more to check here (the GPU suite decodes)
        // this machine (the development VM: no GPU, no nvJPEG): the reason names what is missing
        Assert.Matches("libnvjpeg|libcudart|libnpp|no GPU|not device", why);
        var e = Assert.Throws<HeteroBatchException>(() => new GpuJpegDecoder(0, new GpuDecodeSettings()));
        Assert.Equal("GpuDecodeUnavailable", e.ErrorId);
        Assert.Contains(why, e.Message);
    }

    [Fact]
    public void BadDecoderSettingsAreRefusedBeforeAnyLibraryLoads()
    {
        var e = Assert.Throws<HeteroBatchException>(() => new GpuJpegDecoder(0, new GpuDecodeSettings { MaxBatch = 0 }));
        Assert.Equal("GpuDecodeInvalid", e.ErrorId);
    }
}
