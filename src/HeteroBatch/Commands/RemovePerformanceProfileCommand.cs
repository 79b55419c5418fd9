using System.Management.Automation;
using HeteroBatch.Engine.Profiling;

namespace HeteroBatch.Commands;

/// <summary>Deletes stored performance tables, or some of their batch sizes.</summary>
[Cmdlet(VerbsCommon.Remove, "PerformanceProfile", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(UnitProfile))]
public sealed class RemovePerformanceProfileCommand : HeteroBatchCmdlet
{
    /// <summary>The profiles to remove (from Get-PerformanceProfile).</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true)]
    [ValidateNotNull]
    public UnitProfile[] Profile { get; set; } = Array.Empty<UnitProfile>();

    /// <summary>Remove only these batch sizes' entries and keep the rest of each profile (emits what remains).</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int[]? BatchSize { get; set; }

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
            if (BatchSize == null)
            {
                if (ShouldProcess($"{p.Model} on {p.Unit.Id} ({_store!.PathFor(p)})", "Remove profile")) _store.Remove(p);
                continue;
            }
            var drop = p.Table.Where(e => BatchSize.Contains(e.BatchSize)).Select(e => e.BatchSize).ToArray();
            if (drop.Length == 0 || !ShouldProcess($"{p.Model} on {p.Unit.Id}", $"Remove batch sizes {string.Join(",", drop)}")) continue;
            p.Table = p.Table.Where(e => !drop.Contains(e.BatchSize)).ToList();
            p.MaxBatchSize = p.Table.Count == 0 ? 0 : p.Table.Max(e => e.BatchSize);
            _store!.Replace(p);
            WriteObject(p);
        }
    }
}
