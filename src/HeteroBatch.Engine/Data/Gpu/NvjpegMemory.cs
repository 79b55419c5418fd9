using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace HeteroBatch.Engine.Data.Gpu;

/// <summary>How nvJPEG gets its device and page-locked host buffers.</summary>
public enum NvjpegMemory
{
    /// <summary>nvJPEG's own allocators (cudaMalloc/cudaFree, cudaHostAlloc/cudaFreeHost).</summary>
    Default,
    /// <summary>The same CUDA calls through HeteroBatch's allocators, which count them (<see cref="NvjpegAllocators.Calls"/>).</summary>
    Counted,
    /// <summary>Counted, and nvJPEG asked to pad every buffer by 16 MiB so that it grows them rarely.</summary>
    Padded,
    /// <summary>Counted; a buffer nvJPEG frees is kept and handed out again for a request it holds, never given back to CUDA (freeing waits for the whole GPU).</summary>
    Pooled,
}

/// <summary>
/// The allocators HeteroBatch gives nvJPEG (<see cref="NvjpegMemory"/> other than Default): plain CUDA
/// calls, counted, or a pool that keeps what nvJPEG frees. Process-wide: nvJPEG calls them from any
/// thread with the GPU of the call current; device buffers are pooled per GPU.
/// </summary>
internal static unsafe class NvjpegAllocators
{
    [StructLayout(LayoutKind.Sequential)]
    private struct DeviceAllocator
    {
        public delegate* unmanaged[Cdecl]<IntPtr*, nuint, int> Malloc;
        public delegate* unmanaged[Cdecl]<IntPtr, int> Free;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PinnedAllocator
    {
        public delegate* unmanaged[Cdecl]<IntPtr*, nuint, uint, int> Malloc;
        public delegate* unmanaged[Cdecl]<IntPtr, int> Free;
    }

    private static readonly object Gate = new();
    private static GpuNative? s_native;
    private static volatile bool s_pool;
    private static DeviceAllocator* s_device;
    private static PinnedAllocator* s_pinned;
    private static long s_allocations, s_frees;
    // pool: every buffer handed out (its GPU, -1 for host memory, and size), and those nvJPEG gave back
    private static readonly Dictionary<IntPtr, (int Device, nuint Size)> Sizes = new();
    private static readonly List<(IntPtr Pointer, int Device, nuint Size)> Free = new();

    /// <summary>Buffers nvJPEG asked for and gave back, device and host together, since the process started.</summary>
    public static (long Allocations, long Frees) Calls => (Interlocked.Read(ref s_allocations), Interlocked.Read(ref s_frees));

    /// <summary>The allocator structs to pass to nvjpegCreateEx (written once, kept for the process's life).</summary>
    public static (IntPtr Device, IntPtr Pinned) For(GpuNative native, bool pool)
    {
        lock (Gate)
        {
            s_native ??= native;
            if (pool) s_pool = true;
            if (s_device == null)
            {
                s_device = (DeviceAllocator*)NativeMemory.Alloc((nuint)sizeof(DeviceAllocator));
                s_device->Malloc = &DeviceMalloc;
                s_device->Free = &DeviceFree;
                s_pinned = (PinnedAllocator*)NativeMemory.Alloc((nuint)sizeof(PinnedAllocator));
                s_pinned->Malloc = &PinnedMalloc;
                s_pinned->Free = &PinnedFree;
            }
            return ((IntPtr)s_device, (IntPtr)s_pinned);
        }
    }

    [UnmanagedCallersOnly(CallConvs = new[] { typeof(CallConvCdecl) })]
    private static int DeviceMalloc(IntPtr* pointer, nuint size)
    {
        Interlocked.Increment(ref s_allocations);
        var n = s_native!;
        int device = 0;
        n.GetDevice(&device);
        if (s_pool && Take(device, size) is var kept && kept != IntPtr.Zero) { *pointer = kept; return 0; }
        int code = n.Malloc(pointer, size);
        if (code == 0 && s_pool) lock (Gate) Sizes[*pointer] = (device, size);
        return code;
    }

    [UnmanagedCallersOnly(CallConvs = new[] { typeof(CallConvCdecl) })]
    private static int DeviceFree(IntPtr pointer)
    {
        Interlocked.Increment(ref s_frees);
        return s_pool && Keep(pointer) ? 0 : s_native!.Free(pointer);
    }

    [UnmanagedCallersOnly(CallConvs = new[] { typeof(CallConvCdecl) })]
    private static int PinnedMalloc(IntPtr* pointer, nuint size, uint flags)
    {
        Interlocked.Increment(ref s_allocations);
        if (s_pool && Take(-1, size) is var kept && kept != IntPtr.Zero) { *pointer = kept; return 0; }
        int code = s_native!.HostAlloc(pointer, size, flags);
        if (code == 0 && s_pool) lock (Gate) Sizes[*pointer] = (-1, size);
        return code;
    }

    [UnmanagedCallersOnly(CallConvs = new[] { typeof(CallConvCdecl) })]
    private static int PinnedFree(IntPtr pointer)
    {
        Interlocked.Increment(ref s_frees);
        return s_pool && Keep(pointer) ? 0 : s_native!.FreeHost(pointer);
    }

    /// <summary>The smallest kept buffer of <paramref name="device"/> that holds <paramref name="size"/> bytes, taken out of the pool; zero for none.</summary>
    private static IntPtr Take(int device, nuint size)
    {
        lock (Gate)
        {
            int best = -1;
            for (int i = 0; i < Free.Count; i++)
                if (Free[i].Device == device && Free[i].Size >= size && (best < 0 || Free[i].Size < Free[best].Size)) best = i;
            if (best < 0) return IntPtr.Zero;
            var p = Free[best].Pointer;
            Free.RemoveAt(best);
            return p;
        }
    }

    private static bool Keep(IntPtr pointer)
    {
        lock (Gate)
        {
            if (!Sizes.TryGetValue(pointer, out var s)) return false;
            Free.Add((pointer, s.Device, s.Size));
            return true;
        }
    }
}
