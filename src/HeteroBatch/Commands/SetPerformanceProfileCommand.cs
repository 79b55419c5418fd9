using System.Management.Automation;
using HeteroBatch.Engine.Profiling;

namespace HeteroBatch.Commands;

/// <summary>Sets (adds or replaces) one batch size's time in stored performance tables, as the seed's table editor meant to.</summary>
[Cmdlet(VerbsCommon.Set, "PerformanceProfile", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(UnitProfile))]
public sealed class SetPerformanceProfileCommand : HeteroBatchCmdlet
{
    /// <summary>The profiles to edit (from Get-PerformanceProfile).</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true)]
    [ValidateNotNull]
    [JsonObject]
    public UnitProfile[] Profile { get; set; } = Array.Empty<UnitProfile>();

    /// <summary>The batch size whose entry to set.</summary>
    [Parameter(Mandatory = true)]
    [ValidateRange(1, int.MaxValue)]
    public int BatchSize { get; set; }

    /// <summary>The time of one run of that batch, in milliseconds.</summary>
    [Parameter(Mandatory = true)]
    [ValidateRange(0.000001, double.MaxValue)]
    public double MedianMs { get; set; }

    /// <summary>The profile store folder (default: $env:HETEROBATCH_PROFILE_PATH, else the user data folder).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ProfilePath { get; set; }

    private ProfileStore? _store;

    protected override void BeginProcessing() =>
        _store = OpenStore(ProfilePath);

    protected override void ProcessRecord()
    {
        foreach (var p in Profile)
        {
            if (!ShouldProcess($"{p.Model} on {p.Unit.Id}", $"Set batch {BatchSize} to {MedianMs} ms")) continue;
            var edited = p.WithEntry(BatchSize, MedianMs); // the piped object stays as it was
            _store!.Replace(edited);
            WriteObject(edited);
        }
    }
}
