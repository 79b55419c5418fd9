using System.Management.Automation;
using HeteroBatch.Engine;

namespace HeteroBatch;

/// <summary>On import: the module's engine context (ONNX Runtime started quietly, telemetry off) before any cmdlet runs. On removal: the context ends, with its workers.</summary>
public sealed class ModuleInitializer : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    public void OnImport()
    {
        try
        {
            ModuleContext.Start();
        }
        catch (HeteroBatchException e)
        {
            // carry the engine's ErrorId into Import-Module's error (OrtPathInvalid, say)
            throw new RuntimeException(e.Message, e, new ErrorRecord(e, e.ErrorId, ErrorCategory.InvalidArgument, e.Target));
        }
    }

    public void OnRemove(PSModuleInfo module)
    {
        Commands.Servers.StopAll();
        ModuleContext.Stop();
    }
}

/// <summary>
/// The one engine context of the imported module: the only mutable state kept between commands.
/// Settings come from the environment once, at import (<see cref="EngineOptions.FromEnvironment"/>,
/// the one reader of HETEROBATCH_* variables), and change in a session only through
/// Set-HeteroBatchOption. Public so that scripts and tests can look at the workers (for example
/// a worker's processor affinity).
/// </summary>
public static class ModuleContext
{
    private static readonly object Gate = new(); // guards _current
    private static EngineContext? _current;

    public static EngineContext Current
    {
        get
        {
            lock (Gate) return _current ??= new EngineContext(EngineOptions.FromEnvironment());
        }
    }

    internal static void Start() => _ = Current;

    internal static void Stop()
    {
        EngineContext? old;
        lock (Gate) { old = _current; _current = null; }
        old?.Dispose();
    }
}
