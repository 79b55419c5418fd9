using System.Diagnostics;
using HeteroBatch.Engine.Runtime;

namespace HeteroBatch.Engine.Tests.Plugins;

/// <summary>
/// Builds test plugin libraries at test time with the machine's C compiler, into a temp folder:
/// the fake OpenVINO plugin (fake_openvino_ep.c, against ONNX Runtime's plugin EP header from the
/// NuGet package the build restored), and a shared library that is not a provider. Nothing built
/// is kept in the repository.
/// </summary>
public static class FakePlugin
{
    private static readonly string Folder = Path.Combine(Path.GetTempPath(), $"heterobatch-fake-ep-{Environment.ProcessId}");
    private static readonly Lazy<string> Provider = new(() => Compile("fake_openvino_ep.c", "libfake_openvino_ep.so", includeOrt: true));
    private static readonly Lazy<string> NotProvider = new(() => Compile(null, "libnot_a_provider.so", includeOrt: false));

    /// <summary>Why the libraries cannot be built here (no compiler, no header, not Linux); null when they can.</summary>
    public static string? WhyNot { get; } = Check();

    /// <summary>The fake OpenVINO plugin library (built on first use).</summary>
    public static string OpenVinoLibrary => Provider.Value;

    /// <summary>A real shared library that exports no CreateEpFactories (built on first use).</summary>
    public static string NotAProviderLibrary => NotProvider.Value;

    private static string? Compiler() =>
        new[] { "cc", "gcc", "clang" }.SelectMany(name => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Where(d => d.Length > 0).Select(d => Path.Combine(d, name))).FirstOrDefault(File.Exists);

    /// <summary>The folder holding onnxruntime_c_api.h and onnxruntime_ep_c_api.h, from a restored ONNX Runtime package of the loaded version.</summary>
    private static string? IncludeFolder()
    {
        var root = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var version = OrtRuntime.Version;
        return new[] { "microsoft.ml.onnxruntime", "microsoft.ml.onnxruntime.gpu.linux" }
            .SelectMany(id => new[] { "build", "buildTransitive" }.Select(b => Path.Combine(root, id, version, b, "native", "include")))
            .FirstOrDefault(d => File.Exists(Path.Combine(d, "onnxruntime_ep_c_api.h")));
    }

    private static string? Check()
    {
        if (!OperatingSystem.IsLinux()) return "the fake plugin is built as a Linux shared library";
        if (Compiler() == null) return "no C compiler (cc, gcc or clang) on the PATH";
        if (IncludeFolder() == null) return $"no onnxruntime_ep_c_api.h in a restored ONNX Runtime {OrtRuntime.Version} package";
        return null;
    }

    private static string Compile(string? source, string output, bool includeOrt)
    {
        if (WhyNot != null) throw new InvalidOperationException(WhyNot);
        Directory.CreateDirectory(Folder);
        var src = source != null ? Path.Combine(AppContext.BaseDirectory, "Plugins", source) : Path.Combine(Folder, "not_a_provider.c");
        if (source == null) File.WriteAllText(src, "int heterobatch_not_a_provider(void) { return 42; }\n");
        var lib = Path.Combine(Folder, output);
        var start = new ProcessStartInfo(Compiler()!) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "-shared", "-fPIC", "-O1", "-o", lib, src }) start.ArgumentList.Add(a);
        if (includeOrt) { start.ArgumentList.Add("-I"); start.ArgumentList.Add(IncludeFolder()!); }
        using var cc = Process.Start(start)!;
        var errors = cc.StandardError.ReadToEndAsync();
        cc.StandardOutput.ReadToEnd();
        cc.WaitForExit();
        if (cc.ExitCode != 0) throw new InvalidOperationException($"{start.FileName} failed ({cc.ExitCode}): {errors.Result}");
        return lib;
    }
}

/// <summary>A fact that is skipped, with the reason, where the test plugin libraries cannot be built.</summary>
public sealed class PluginFactAttribute : FactAttribute
{
    public PluginFactAttribute()
    {
        if (FakePlugin.WhyNot is { } why) Skip = why;
    }
}
