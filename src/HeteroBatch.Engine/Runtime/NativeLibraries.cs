using System.Reflection;
using System.Runtime.InteropServices;

namespace HeteroBatch.Engine.Runtime;

/// <summary>
/// Finds native libraries that ship beside the engine (runtimes/&lt;rid&gt;/native) when the host's
/// own probing does not look there, as in a PowerShell module folder.
/// </summary>
public static class NativeLibraries
{
    private static int _registered;

    public static void Register()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 1) return;
        try { NativeLibrary.SetDllImportResolver(typeof(SkiaSharp.SKBitmap).Assembly, Resolve); }
        catch (InvalidOperationException) { /* a resolver is already set by the host */ }
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? paths)
    {
        if (NativeLibrary.TryLoad(name, assembly, paths, out var handle)) return handle;
        var dir = Path.GetDirectoryName(typeof(NativeLibraries).Assembly.Location) ?? "";
        var file = OperatingSystem.IsWindows() ? $"{name}.dll" : OperatingSystem.IsMacOS() ? $"{name}.dylib" : $"{name}.so";
        foreach (var candidate in new[] { Path.Combine(dir, "runtimes", RuntimeInformation.RuntimeIdentifier, "native", file), Path.Combine(dir, "runtimes", $"linux-{RuntimeInformation.OSArchitecture.ToString().ToLowerInvariant()}", "native", file), Path.Combine(dir, file) })
            if (File.Exists(candidate) && NativeLibrary.TryLoad(candidate, out handle)) return handle;
        return IntPtr.Zero;
    }
}
