using System.Management.Automation;
using HeteroBatch.Engine.Profiling;

namespace HeteroBatch.Commands;

/// <summary>Returns stored performance tables, by model and unit.</summary>
[Cmdlet(VerbsCommon.Get, "PerformanceProfile")]
[OutputType(typeof(UnitProfile))]
public sealed class GetPerformanceProfileCommand : HeteroBatchCmdlet
{
    /// <summary>Only profiles of this model (its name or content hash).</summary>
    [Parameter(Position = 0)]
    [ArgumentCompleter(typeof(ModelNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string? Model { get; set; }

    /// <summary>Only these units (ids, wildcards allowed).</summary>
    [Parameter]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Unit { get; set; }

    /// <summary>The profile store folder (default: $env:HETEROBATCH_PROFILE_PATH, else the user data folder).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ProfilePath { get; set; }

    protected override void EndProcessing()
    {
        var store = new ProfileStore(ProfilePath == null ? null : GetUnresolvedProviderPathFromPSPath(ProfilePath),
            w => WriteWarning($"[{w.ErrorId}] {w.Message}"));
        foreach (var p in store.Load(Model, Unit)) WriteObject(p);
    }
}
