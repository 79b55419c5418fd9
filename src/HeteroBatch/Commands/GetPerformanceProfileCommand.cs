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
    [ArgumentCompleter(typeof(UnitIdCompleter))]
    public string[]? Unit { get; set; }

    /// <summary>The profile store folder (default: $env:HETEROBATCH_PROFILE_PATH, else the user data folder).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ProfilePath { get; set; }

    /// <summary>Emit the tables side by side instead: one row per batch size, one column of median ms per unit (and model).</summary>
    [Parameter]
    public SwitchParameter AsTable { get; set; }

    protected override void EndProcessing()
    {
        if (PipelineBoundNothing) return;
        var store = OpenStore(ProfilePath);
        var profiles = store.Load(Model, Unit);
        if (!AsTable)
        {
            foreach (var p in profiles) WriteObject(p);
            return;
        }
        bool severalModels = profiles.Select(p => p.Model).Distinct().Count() > 1;
        string Column(UnitProfile p) => severalModels ? $"{p.Model} {p.Unit.Id} ms" : $"{p.Unit.Id} ms";
        foreach (var batch in profiles.SelectMany(p => p.Table.Select(e => e.BatchSize)).Distinct().OrderBy(b => b))
        {
            var row = new PSObject();
            row.Properties.Add(new PSNoteProperty("BatchSize", batch));
            foreach (var p in profiles)
                row.Properties.Add(new PSNoteProperty(Column(p), p.Table.FirstOrDefault(e => e.BatchSize == batch)?.MedianMs is double ms ? Math.Round(ms, 3) : null));
            WriteObject(row);
        }
    }
}
