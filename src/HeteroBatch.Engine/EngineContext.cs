using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Units;

namespace HeteroBatch.Engine;

/// <summary>
/// What the engine keeps between commands: the worker threads (one per unit, with their cached
/// sessions), the presence of this machine's accelerators, and the settings. The module creates
/// one on import and disposes it on removal; each test and the benchmark make their own. Two
/// contexts share nothing but ONNX Runtime's process-wide environment.
/// </summary>
public sealed class EngineContext : IDisposable
{
    public EngineOptions Options { get; }
    internal WorkerPool Workers { get; }
    public UnitPresence Presence { get; }
    /// <summary>The models this context has resolved (each hashed once).</summary>
    public Models.ModelRegistry Models { get; }

    public EngineContext(EngineOptions? options = null, UnitPresence? presence = null)
    {
        OrtRuntime.Initialize();
        Options = options ?? new EngineOptions();
        Workers = new WorkerPool(Options);
        Presence = presence ?? new UnitPresence(() => UnitDiscovery.Accelerators(Options));
        Models = new Models.ModelRegistry(Options.ModelCacheFolder);
    }

    /// <summary>Ends every worker; each disposes its sessions on its own thread first.</summary>
    public void Dispose() => Workers.Dispose();
}
