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
    private readonly object _optionsGate = new(); // guards replacing _options (readers take the reference as it is)
    private EngineOptions _options;

    /// <summary>The settings now: read from the environment at import, changed in a session by <see cref="Configure"/>.</summary>
    public EngineOptions Options => Volatile.Read(ref _options);

    public WorkerPool Workers { get; }
    public UnitPresence Presence { get; }
    /// <summary>The models this context has resolved (each hashed once).</summary>
    public Models.ModelRegistry Models { get; }

    /// <summary>
    /// Test only: the unit with this id throws InjectedFailure after this many sub-batches, in
    /// every run of this context that names no failure of its own. Never set from the environment;
    /// tests set it (the Pester tests through reflection, see tests/TestHelpers.ps1).
    /// </summary>
    internal (string UnitId, int AfterSubBatches)? InjectFailure { get; set; }

    public EngineContext(EngineOptions? options = null, UnitPresence? presence = null)
    {
        _options = options ?? new EngineOptions();
        if (_options.NativeMmapThreshold > 0) Runtime.Libc.SetMmapThreshold(_options.NativeMmapThreshold);
        OrtRuntime.Initialize(_options.OrtPath);
        Workers = new WorkerPool(_options);
        Presence = presence ?? new UnitPresence(() => UnitDiscovery.Accelerators(Options));
        Models = new Models.ModelRegistry(() => Options.ModelCacheFolder);
    }

    /// <summary>
    /// Applies a change to the settings (Set-HeteroBatchOption) and returns them. Only
    /// <see cref="EngineOptions.SettableInSession"/> may change: workers and sessions keep the
    /// others. Throws OptionInvalid, ProfilePathIsFile or OptionFixedAtImport, leaving the settings as they were.
    /// </summary>
    public EngineOptions Configure(Func<EngineOptions, EngineOptions> change)
    {
        lock (_optionsGate)
        {
            var next = _options.Checked(change(_options));
            Volatile.Write(ref _options, next);
            return next;
        }
    }

    /// <summary>Ends every worker; each disposes its sessions on its own thread first.</summary>
    public void Dispose() => Workers.Dispose();
}
