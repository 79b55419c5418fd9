using System.Runtime.InteropServices;

namespace HeteroBatch.Engine.Data;

/// <summary>
/// libjpeg-turbo's TurboJPEG library where the system has it (Debian and Ubuntu: libturbojpeg0;
/// Windows: turbojpeg.dll on the path). SkiaSharp's own libjpeg-turbo is built without its SIMD
/// code on x86; the system's has it, and decodes the same pixels (the same integer IDCT, chroma
/// upsampling and colour conversion) two to three times faster. Found once, on first use; absent,
/// JPEGs decode through SkiaSharp.
/// </summary>
internal static unsafe class TurboJpeg
{
    private static readonly Lazy<Api?> Loaded = new(Load);

    public static bool IsAvailable => Loaded.Value != null;

    /// <summary>TJPF_RGBX: four bytes a pixel, R G B and an unused one, as SkiaSharp's RGBA rows.</summary>
    private const int PixelFormatRgbx = 2;
    /// <summary>TJCS_CMYK and TJCS_YCCK: not converted to RGB by TurboJPEG.</summary>
    private const int ColorspaceCmyk = 3, ColorspaceYcck = 4;

    private sealed class Api
    {
        public delegate* unmanaged<nint> InitDecompress;
        public delegate* unmanaged<nint, byte*, nuint, int*, int*, int*, int*, int> DecompressHeader3;
        public delegate* unmanaged<nint, byte*, nuint, byte*, int, int, int, int, int, int> Decompress2;
        public delegate* unmanaged<nint, int> Destroy;
    }

    private static Api? Load()
    {
        foreach (var name in new[] { "libturbojpeg.so.0", "libturbojpeg.so", "turbojpeg", "libturbojpeg.0.dylib" })
        {
            if (!NativeLibrary.TryLoad(name, out var lib)) continue;
            if (NativeLibrary.TryGetExport(lib, "tjInitDecompress", out var init) &&
                NativeLibrary.TryGetExport(lib, "tjDecompressHeader3", out var header) &&
                NativeLibrary.TryGetExport(lib, "tjDecompress2", out var decompress) &&
                NativeLibrary.TryGetExport(lib, "tjDestroy", out var destroy))
                return new Api
                {
                    InitDecompress = (delegate* unmanaged<nint>)init,
                    DecompressHeader3 = (delegate* unmanaged<nint, byte*, nuint, int*, int*, int*, int*, int>)header,
                    Decompress2 = (delegate* unmanaged<nint, byte*, nuint, byte*, int, int, int, int, int, int>)decompress,
                    Destroy = (delegate* unmanaged<nint, int>)destroy,
                };
            NativeLibrary.Free(lib);
        }
        return null;
    }

    /// <summary>A decompressor (one a thread: TurboJPEG handles are not thread-safe); 0 where the library is absent.</summary>
    public static nint Create() => Loaded.Value is { } api ? api.InitDecompress() : 0;

    public static void Destroy(nint handle)
    {
        if (handle != 0 && Loaded.Value is { } api) api.Destroy(handle);
    }

    /// <summary>The image's size, or false where TurboJPEG cannot read its header or would not decode it to RGB (CMYK).</summary>
    public static bool TryHeader(nint handle, ReadOnlySpan<byte> jpeg, out int width, out int height)
    {
        width = height = 0;
        if (handle == 0 || Loaded.Value is not { } api) return false;
        int w, h, subsampling, colorspace;
        fixed (byte* p = jpeg)
            if (api.DecompressHeader3(handle, p, (nuint)jpeg.Length, &w, &h, &subsampling, &colorspace) != 0) return false;
        if (colorspace is ColorspaceCmyk or ColorspaceYcck) return false;
        (width, height) = (w, h);
        return true;
    }

    /// <summary>
    /// Decodes to RGBX rows of <paramref name="pitch"/> bytes at <paramref name="width"/>×<paramref name="height"/>: the
    /// full size or one that TurboJPEG scales to in the DCT (1/2, 1/4, 1/8: sizes rounded up). False on any error or
    /// warning (a damaged or truncated file), so the caller decodes the way that treats those as it always has.
    /// </summary>
    public static bool TryDecode(nint handle, ReadOnlySpan<byte> jpeg, byte* destination, int width, int height, int pitch)
    {
        if (handle == 0 || Loaded.Value is not { } api) return false;
        fixed (byte* p = jpeg)
            return api.Decompress2(handle, p, (nuint)jpeg.Length, destination, width, pitch, height, PixelFormatRgbx, 0) == 0;
    }
}
