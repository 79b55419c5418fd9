using System.Runtime.InteropServices;
using HeteroBatch.Engine.Runtime;

namespace HeteroBatch.Engine.Data.Gpu;

/// <summary>nvjpegImage_t: up to four planes, each a device pointer and its row pitch in bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct NvjpegImage
{
    public fixed long Channel[4];
    public fixed ulong Pitch[4]; // size_t in nvjpeg.h (unsigned int before CUDA 11): a wrong width shifts every field nvJPEG reads
}

[StructLayout(LayoutKind.Sequential)]
internal struct NppiSize { public int Width, Height; }

[StructLayout(LayoutKind.Sequential)]
internal struct NppiRect { public int X, Y, Width, Height; }

/// <summary>NppiImageDescriptor: one image of a batched NPP call (device pointer, row pitch in bytes, size); 24 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NppiImageDescriptor
{
    public IntPtr Data;
    public int Step;
    public NppiSize Size;
}

/// <summary>NppiResizeBatchROI_Advanced: the source rectangle of one image of a batched resize and the destination rectangle it maps onto.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NppiResizeBatchRoi
{
    public NppiRect Source;
    public NppiRect Destination;
}

/// <summary>NppStreamContext of NPP 12/13: the stream and the device's attributes that NPP's kernels need.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NppStreamContext
{
    public IntPtr Stream;
    public int DeviceId;
    public int MultiProcessorCount;
    public int MaxThreadsPerMultiProcessor;
    public int MaxThreadsPerBlock;
    public nuint SharedMemPerBlock;
    public int ComputeCapabilityMajor;
    public int ComputeCapabilityMinor;
    public uint StreamFlags;
    public int Reserved0;
}

/// <summary>
/// The entry points of the CUDA runtime (libcudart), nvJPEG (libnvjpeg) and NPP's geometry
/// functions (libnppig) that GPU decoding calls, looked up once per instance through
/// <see cref="NativeLibraries.TryLoadFirst"/>. <see cref="TryLoad"/> says which library or
/// symbol is missing instead of failing at the first call. Nothing here is static: a machine
/// without these libraries never loads them unless GPU decoding is asked for.
/// </summary>
internal sealed unsafe class GpuNative
{
    public const int CudaMemcpyHostToDevice = 1;
    public const int CudaStreamNonBlocking = 1;
    public const int NppiInterLinear = 2;
    public const int NppiInterSuper = 8;
    // nvjpegBackend_t
    public const int BackendDefault = 0;
    public const int BackendHardware = 3;
    // nvjpegOutputFormat_t: interleaved RGB
    public const int OutputRgbi = 5;

    private static readonly IReadOnlyList<string> CudartNames = new[] { "libcudart.so.13", "libcudart.so.12", "libcudart.so" };
    private static readonly IReadOnlyList<string> NvjpegNames = new[] { "libnvjpeg.so.13", "libnvjpeg.so.12", "libnvjpeg.so" };
    private static readonly IReadOnlyList<string> NppigNames = new[] { "libnppig.so.13", "libnppig.so.12", "libnppig.so" };
    private static readonly IReadOnlyList<string> NppcNames = new[] { "libnppc.so.13", "libnppc.so.12", "libnppc.so" };

    // CUDA runtime
    public delegate* unmanaged<int, int> SetDevice;
    public delegate* unmanaged<int*, int> GetDeviceCount;
    public delegate* unmanaged<int*, int, int, int> DeviceGetAttribute;
    public delegate* unmanaged<IntPtr*, nuint, int> Malloc;
    public delegate* unmanaged<IntPtr, int> Free;
    public delegate* unmanaged<IntPtr*, nuint, int> MallocHost;
    public delegate* unmanaged<IntPtr, int> FreeHost;
    public delegate* unmanaged<IntPtr*, uint, int> StreamCreateWithFlags;
    public delegate* unmanaged<IntPtr, int> StreamDestroy;
    public delegate* unmanaged<IntPtr, int> StreamSynchronize;
    public delegate* unmanaged<IntPtr, IntPtr, nuint, int, IntPtr, int> MemcpyAsync;
    public delegate* unmanaged<IntPtr*, uint, int> EventCreateWithFlags;
    public delegate* unmanaged<IntPtr, IntPtr, int> EventRecord;
    public delegate* unmanaged<IntPtr, int> EventSynchronize;
    public delegate* unmanaged<IntPtr, int> EventDestroy;
    public delegate* unmanaged<int, IntPtr> GetErrorString;
    public delegate* unmanaged<int> GetLastError;
    // nvJPEG
    public delegate* unmanaged<int, IntPtr, IntPtr, uint, IntPtr*, int> NvjpegCreateEx;
    public delegate* unmanaged<IntPtr, int> NvjpegDestroy;
    public delegate* unmanaged<IntPtr, IntPtr*, int> NvjpegJpegStateCreate;
    public delegate* unmanaged<IntPtr, int> NvjpegJpegStateDestroy;
    public delegate* unmanaged<IntPtr, IntPtr, int, int, int, int> NvjpegDecodeBatchedInitialize;
    public delegate* unmanaged<IntPtr, IntPtr, byte**, nuint*, NvjpegImage*, IntPtr, int> NvjpegDecodeBatched;
    public delegate* unmanaged<IntPtr, IntPtr, byte*, nuint, int, NvjpegImage*, IntPtr, int> NvjpegDecode;
    public delegate* unmanaged<IntPtr, IntPtr*, int> NvjpegJpegStreamCreate;
    public delegate* unmanaged<IntPtr, int> NvjpegJpegStreamDestroy;
    public delegate* unmanaged<IntPtr, byte*, nuint, IntPtr, int> NvjpegJpegStreamParseHeader;
    public delegate* unmanaged<IntPtr, uint*, uint*, int> NvjpegJpegStreamGetFrameDimensions;
    public delegate* unmanaged<IntPtr, uint*, int> NvjpegJpegStreamGetComponentsNum;
    public delegate* unmanaged<IntPtr, IntPtr, int*, int> NvjpegDecodeBatchedSupported;
    // NPP: resize with a sub-pixel mapping dst = src × factor + shift
    public delegate* unmanaged<byte*, NppiSize, int, NppiRect, byte*, int, NppiRect, double, double, double, double, int, NppStreamContext, int> ResizeSqrPixel8uC3;
    /// <summary>NPP's batched resize of whole-pixel rectangles (one kernel for a chunk's images); null where this NPP lacks it (each image is then resized alone).</summary>
    public delegate* unmanaged<int, int, IntPtr, IntPtr, IntPtr, uint, int, NppStreamContext, int> ResizeBatch8uC3;

    private GpuNative() { }

    /// <summary>The libraries and their entry points, or null with the reason (which library or symbol is missing).</summary>
    public static GpuNative? TryLoad(out string? why)
    {
        if (!OperatingSystem.IsLinux())
        {
            why = "GPU JPEG decoding is built for Linux (nvJPEG through libnvjpeg.so)";
            return null;
        }
        var folders = NativeLibraries.CudaFolders().ToList();
        // nvJPEG first: where it is missing, that is the reason a user needs to read
        var nvjpeg = NativeLibraries.TryLoadFirst(NvjpegNames, folders, out why);
        if (nvjpeg == IntPtr.Zero) return null;
        var cudart = NativeLibraries.TryLoadFirst(CudartNames, folders, out why);
        if (cudart == IntPtr.Zero) return null;
        // libnppig needs libnppc: loading it first lets the loader find it in the CUDA folder too
        if (NativeLibraries.TryLoadFirst(NppcNames, folders, out why) == IntPtr.Zero) return null;
        var nppig = NativeLibraries.TryLoadFirst(NppigNames, folders, out why);
        if (nppig == IntPtr.Zero) return null;

        var n = new GpuNative();
        var missing = new List<string>();
        IntPtr Get(IntPtr lib, string name)
        {
            if (NativeLibrary.TryGetExport(lib, name, out var f)) return f;
            missing.Add(name);
            return IntPtr.Zero;
        }
        n.SetDevice = (delegate* unmanaged<int, int>)Get(cudart, "cudaSetDevice");
        n.GetDeviceCount = (delegate* unmanaged<int*, int>)Get(cudart, "cudaGetDeviceCount");
        n.DeviceGetAttribute = (delegate* unmanaged<int*, int, int, int>)Get(cudart, "cudaDeviceGetAttribute");
        n.Malloc = (delegate* unmanaged<IntPtr*, nuint, int>)Get(cudart, "cudaMalloc");
        n.Free = (delegate* unmanaged<IntPtr, int>)Get(cudart, "cudaFree");
        n.MallocHost = (delegate* unmanaged<IntPtr*, nuint, int>)Get(cudart, "cudaMallocHost");
        n.FreeHost = (delegate* unmanaged<IntPtr, int>)Get(cudart, "cudaFreeHost");
        n.StreamCreateWithFlags = (delegate* unmanaged<IntPtr*, uint, int>)Get(cudart, "cudaStreamCreateWithFlags");
        n.StreamDestroy = (delegate* unmanaged<IntPtr, int>)Get(cudart, "cudaStreamDestroy");
        n.StreamSynchronize = (delegate* unmanaged<IntPtr, int>)Get(cudart, "cudaStreamSynchronize");
        n.MemcpyAsync = (delegate* unmanaged<IntPtr, IntPtr, nuint, int, IntPtr, int>)Get(cudart, "cudaMemcpyAsync");
        n.EventCreateWithFlags = (delegate* unmanaged<IntPtr*, uint, int>)Get(cudart, "cudaEventCreateWithFlags");
        n.EventRecord = (delegate* unmanaged<IntPtr, IntPtr, int>)Get(cudart, "cudaEventRecord");
        n.EventSynchronize = (delegate* unmanaged<IntPtr, int>)Get(cudart, "cudaEventSynchronize");
        n.EventDestroy = (delegate* unmanaged<IntPtr, int>)Get(cudart, "cudaEventDestroy");
        n.GetErrorString = (delegate* unmanaged<int, IntPtr>)Get(cudart, "cudaGetErrorString");
        n.GetLastError = (delegate* unmanaged<int>)Get(cudart, "cudaGetLastError");
        n.NvjpegCreateEx = (delegate* unmanaged<int, IntPtr, IntPtr, uint, IntPtr*, int>)Get(nvjpeg, "nvjpegCreateEx");
        n.NvjpegDestroy = (delegate* unmanaged<IntPtr, int>)Get(nvjpeg, "nvjpegDestroy");
        n.NvjpegJpegStateCreate = (delegate* unmanaged<IntPtr, IntPtr*, int>)Get(nvjpeg, "nvjpegJpegStateCreate");
        n.NvjpegJpegStateDestroy = (delegate* unmanaged<IntPtr, int>)Get(nvjpeg, "nvjpegJpegStateDestroy");
        n.NvjpegDecodeBatchedInitialize = (delegate* unmanaged<IntPtr, IntPtr, int, int, int, int>)Get(nvjpeg, "nvjpegDecodeBatchedInitialize");
        n.NvjpegDecodeBatched = (delegate* unmanaged<IntPtr, IntPtr, byte**, nuint*, NvjpegImage*, IntPtr, int>)Get(nvjpeg, "nvjpegDecodeBatched");
        n.NvjpegDecode = (delegate* unmanaged<IntPtr, IntPtr, byte*, nuint, int, NvjpegImage*, IntPtr, int>)Get(nvjpeg, "nvjpegDecode");
        n.NvjpegJpegStreamCreate = (delegate* unmanaged<IntPtr, IntPtr*, int>)Get(nvjpeg, "nvjpegJpegStreamCreate");
        n.NvjpegJpegStreamDestroy = (delegate* unmanaged<IntPtr, int>)Get(nvjpeg, "nvjpegJpegStreamDestroy");
        n.NvjpegJpegStreamParseHeader = (delegate* unmanaged<IntPtr, byte*, nuint, IntPtr, int>)Get(nvjpeg, "nvjpegJpegStreamParseHeader");
        n.NvjpegJpegStreamGetFrameDimensions = (delegate* unmanaged<IntPtr, uint*, uint*, int>)Get(nvjpeg, "nvjpegJpegStreamGetFrameDimensions");
        n.NvjpegJpegStreamGetComponentsNum = (delegate* unmanaged<IntPtr, uint*, int>)Get(nvjpeg, "nvjpegJpegStreamGetComponentsNum");
        n.NvjpegDecodeBatchedSupported = (delegate* unmanaged<IntPtr, IntPtr, int*, int>)Get(nvjpeg, "nvjpegDecodeBatchedSupported");
        n.ResizeSqrPixel8uC3 = (delegate* unmanaged<byte*, NppiSize, int, NppiRect, byte*, int, NppiRect, double, double, double, double, int, NppStreamContext, int>)Get(nppig, "nppiResizeSqrPixel_8u_C3R_Ctx");
        if (NativeLibrary.TryGetExport(nppig, "nppiResizeBatch_8u_C3R_Advanced_Ctx", out var batchResize))
            n.ResizeBatch8uC3 = (delegate* unmanaged<int, int, IntPtr, IntPtr, IntPtr, uint, int, NppStreamContext, int>)batchResize;
        if (missing.Count > 0)
        {
            why = $"the CUDA libraries here lack {string.Join(", ", missing)}";
            return null;
        }
        why = null;
        return n;
    }

    /// <summary>How many CUDA devices the runtime sees (0 where the driver has none or fails).</summary>
    public int DeviceCount()
    {
        int count = 0;
        if (GetDeviceCount(&count) != 0) { GetLastError(); return 0; }
        return count;
    }

    public string CudaError(int code) => Marshal.PtrToStringAnsi(GetErrorString(code)) ?? $"CUDA error {code}";

    /// <summary>Throws GpuDecodeFailed with the CUDA runtime's message where <paramref name="code"/> is not success (the runtime's sticky last error is cleared).</summary>
    public void Check(int code, string what)
    {
        if (code == 0) return;
        GetLastError();
        throw new HeteroBatchException("GpuDecodeFailed", FailureKind.ResourceUnavailable, $"GPU decoding: {what} failed: {CudaError(code)} ({code}).");
    }

    public static string NvjpegStatus(int code) => code switch
    {
        1 => "not initialised", 2 => "invalid parameter", 3 => "bad JPEG", 4 => "JPEG not supported", 5 => "allocator failure",
        6 => "execution failed", 7 => "architecture mismatch", 8 => "internal error", 9 => "implementation not supported",
        10 => "incomplete bitstream", _ => $"status {code}",
    };

    /// <summary>Throws GpuDecodeFailed naming the nvJPEG status where <paramref name="code"/> is not success.</summary>
    public static void CheckJpeg(int code, string what)
    {
        if (code != 0) throw new HeteroBatchException("GpuDecodeFailed", FailureKind.ResourceUnavailable, $"GPU decoding: {what} failed: nvJPEG {NvjpegStatus(code)} ({code}).");
    }

    /// <summary>NPP's stream context for <paramref name="stream"/> on <paramref name="device"/>, from the device's attributes.</summary>
    public NppStreamContext NppContext(int device, IntPtr stream)
    {
        int Attribute(int attribute)
        {
            int value = 0;
            Check(DeviceGetAttribute(&value, attribute, device), "cudaDeviceGetAttribute");
            return value;
        }
        return new NppStreamContext
        {
            Stream = stream, DeviceId = device,
            MultiProcessorCount = Attribute(16), MaxThreadsPerMultiProcessor = Attribute(39), MaxThreadsPerBlock = Attribute(1),
            SharedMemPerBlock = (nuint)Attribute(8), ComputeCapabilityMajor = Attribute(75), ComputeCapabilityMinor = Attribute(76),
            StreamFlags = CudaStreamNonBlocking,
        };
    }
}
