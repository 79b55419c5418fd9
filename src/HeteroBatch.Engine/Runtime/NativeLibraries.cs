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

    /// <summary>
    /// Loads the first of <paramref name="names"/> (sonames, tried in order) that the loader finds,
    /// by its own search path first and then in <paramref name="folders"/> (for libraries that live
    /// beside a toolkit, such as the CUDA folder). Returns the handle, or zero with
    /// <paramref name="why"/> naming what was looked for. Handles are never freed: the loader
    /// counts them and the process keeps the library.
    /// </summary>
    public static IntPtr TryLoadFirst(IReadOnlyList<string> names, IEnumerable<string> folders, out string? why)
    {
        foreach (var name in names)
            if (NativeLibrary.TryLoad(name, out var handle)) { why = null; return handle; }
        var searched = folders.Where(f => !string.IsNullOrEmpty(f)).Distinct().ToList();
        foreach (var folder in searched)
            foreach (var name in names)
            {
                var path = Path.Combine(folder, name);
                if (File.Exists(path) && NativeLibrary.TryLoad(path, out var handle)) { why = null; return handle; }
            }
        why = $"{names[0]} was not found (looked for {string.Join(", ", names)} on the loader's path{(searched.Count > 0 ? " and in " + string.Join(", ", searched) : "")})";
        return IntPtr.Zero;
    }

    /// <summary>Where the CUDA toolkit's libraries usually are: $CUDA_HOME and $CUDA_PATH, then /usr/local/cuda*.</summary>
    public static IEnumerable<string> CudaFolders()
    {
        foreach (var variable in new[] { "CUDA_HOME", "CUDA_PATH" })
            if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } root)
            {
                yield return Path.Combine(root, "lib64");
                yield return Path.Combine(root, "targets", "x86_64-linux", "lib");
            }
        if (OperatingSystem.IsWindows() || !Directory.Exists("/usr/local")) yield break;
        string[] roots;
        try { roots = Directory.GetDirectories("/usr/local", "cuda*").OrderByDescending(d => d, StringComparer.Ordinal).ToArray(); }
        catch (IOException) { yield break; }
        catch (UnauthorizedAccessException) { yield break; }
        foreach (var root in roots)
        {
            yield return Path.Combine(root, "lib64");
            yield return Path.Combine(root, "targets", "x86_64-linux", "lib");
        }
    }
}
