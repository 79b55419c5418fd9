using System.Runtime.InteropServices;

namespace HeteroBatch.Engine.Runtime;

/// <summary>
/// Page-locks host memory that already exists (cudaHostRegister of the CUDA runtime that the CUDA
/// provider loaded), so that copies from it to a GPU go by DMA without a staging copy. A failed
/// call's error is cleared at once: the CUDA runtime keeps the last error per thread, and ONNX
/// Runtime would otherwise report it from its next kernel.
/// </summary>
internal static unsafe class CudaHost
{
    private const uint Portable = 1; // page-locked for every CUDA context, whichever GPU copies from it

    private static IntPtr Export(string name)
    {
        foreach (var library in new[] { "libcudart.so.13", "libcudart.so.12", "libcudart.so" })
            if (NativeLibrary.TryLoad(library, out var lib) && NativeLibrary.TryGetExport(lib, name, out var export)) return export;
        return IntPtr.Zero;
    }

    private static void ClearError()
    {
        var last = Export("cudaGetLastError");
        if (last != IntPtr.Zero) ((delegate* unmanaged<int>)last)();
    }

    /// <summary>Page-locks [address, address + bytes); false where there is no CUDA runtime or the call fails.</summary>
    public static bool Register(IntPtr address, long bytes)
    {
        var register = Export("cudaHostRegister");
        if (register == IntPtr.Zero) return false;
        if (((delegate* unmanaged<IntPtr, nuint, uint, int>)register)(address, (nuint)bytes, Portable) == 0) return true;
        ClearError();
        return false;
    }

    /// <summary>Undoes <see cref="Register"/>.</summary>
    public static void Unregister(IntPtr address)
    {
        var unregister = Export("cudaHostUnregister");
        if (unregister == IntPtr.Zero) return;
        if (((delegate* unmanaged<IntPtr, int>)unregister)(address) != 0) ClearError();
    }
}
