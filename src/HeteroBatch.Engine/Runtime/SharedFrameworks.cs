using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;

namespace HeteroBatch.Engine.Runtime;

/// <summary>
/// ASP.NET Core (Kestrel, which serves gRPC) for a host that did not ask for it: PowerShell runs
/// on the .NET runtime alone, but a .NET SDK or an ASP.NET Core runtime installed beside it holds
/// the shared framework Microsoft.AspNetCore.App. Its assemblies are loaded from there on demand.
/// </summary>
public static class SharedFrameworks
{
    private static string? _aspNetCore; // the folder the resolver loads from, set once

    /// <summary>The folder of the ASP.NET Core shared framework of this runtime's major version, or null.</summary>
    public static string? FindAspNetCore()
    {
        var runtimeDir = RuntimeEnvironment.GetRuntimeDirectory().TrimEnd(Path.DirectorySeparatorChar);
        var shared = Path.GetDirectoryName(Path.GetDirectoryName(runtimeDir));
        if (shared == null) return null;
        var root = Path.Combine(shared, "Microsoft.AspNetCore.App");
        if (!Directory.Exists(root)) return null;
        int major = Environment.Version.Major;
        return Directory.GetDirectories(root)
            .Select(d => (Dir: d, Version: Version.TryParse(Path.GetFileName(d).Split('-')[0], out var v) ? v : null))
            .Where(x => x.Version != null && x.Version.Major == major && File.Exists(Path.Combine(x.Dir, "Microsoft.AspNetCore.dll")))
            .OrderByDescending(x => x.Version).Select(x => x.Dir).FirstOrDefault();
    }

    /// <summary>Assemblies the module carries (for the gRPC client) in older versions than ASP.NET Core's own.</summary>
    private static IEnumerable<string> CarriedByBoth => new[] { "Microsoft.Extensions.Logging.Abstractions", "Microsoft.Extensions.DependencyInjection.Abstractions" };

    /// <summary>
    /// Loads ASP.NET Core's versions of <see cref="CarriedByBoth"/> where it is found and the host did not load them
    /// already: the gRPC client takes them as well as the module's older copies, and once an older copy is loaded
    /// a server started later in the session (Kestrel) could not load its own. Call before the gRPC client's types are used.
    /// </summary>
    public static void PreferAspNetCoreVersions()
    {
        var trusted = AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") as string ?? "";
        var dir = FindAspNetCore();
        if (dir != null)
            foreach (var name in CarriedByBoth)
            {
                if (trusted.Contains(Path.DirectorySeparatorChar + name + ".dll", StringComparison.Ordinal)) continue; // the host carries it (the tests)
                if (AppDomain.CurrentDomain.GetAssemblies().Any(a => a.GetName().Name == name)) continue;
                var file = Path.Combine(dir, name + ".dll");
                if (File.Exists(file))
                    try { AssemblyLoadContext.Default.LoadFromAssemblyPath(file); }
                    catch (FileLoadException) { }
            }
    }

    /// <summary>Makes ASP.NET Core loadable, or throws GrpcServingUnavailable saying what is missing.</summary>
    public static void EnsureAspNetCore()
    {
        if (Volatile.Read(ref _aspNetCore) != null) return;
        if (AppDomain.CurrentDomain.GetAssemblies().Any(a => a.GetName().Name == "Microsoft.AspNetCore.Server.Kestrel.Core")) return;
        try
        {
            // a host that carries ASP.NET Core (an ASP.NET Core app, the tests) loads it by itself
            Assembly.Load("Microsoft.AspNetCore.Server.Kestrel.Core");
            return;
        }
        catch (IOException) { }
        var dir = FindAspNetCore() ?? throw new HeteroBatchException("GrpcServingUnavailable", FailureKind.ResourceUnavailable,
            $"Serving (REST or gRPC: both run in Kestrel) needs the ASP.NET Core runtime {Environment.Version.Major}.x (Microsoft.AspNetCore.App) beside the .NET runtime in " +
            $"{RuntimeEnvironment.GetRuntimeDirectory()}; install it (a .NET SDK carries it).");
        if (Interlocked.CompareExchange(ref _aspNetCore, dir, null) != null) return;
        AssemblyLoadContext.Default.Resolving += (context, name) =>
        {
            var file = Path.Combine(dir, name.Name + ".dll");
            return File.Exists(file) ? context.LoadFromAssemblyPath(file) : null;
        };
    }
}
