using HeteroBatch.Engine.Execution;
using System.Management.Automation;
using HeteroBatch.Engine;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Profiling;
using HeteroBatch.Engine.Runtime;

namespace HeteroBatch.Commands;

/// <summary>Splits a batch across units from their performance tables so that it finishes soonest.</summary>
[Cmdlet(VerbsCommon.Get, "BatchPlan", DefaultParameterSetName = FromStore)]
[OutputType(typeof(BatchPlan))]
public sealed class GetBatchPlanCommand : HeteroBatchCmdlet
{
    private const string FromStore = "FromStore";
    private const string FromProfile = "FromProfile";

    /// <summary>Profiles to plan from (from Invoke-Profile or Get-PerformanceProfile).</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = FromProfile)]
    [ValidateNotNull]
    [JsonObject]
    public UnitProfile[]? Profile { get; set; }

    /// <summary>Plan from the stored profiles of this model (a built-in name or an .onnx path).</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = FromStore)]
    [ArgumentCompleter(typeof(ModelNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Model { get; set; } = "";

    /// <summary>The number of samples to split.</summary>
    [Parameter(Mandatory = true)]
    [ValidateRange(1, int.MaxValue)]
    public int BatchSize { get; set; }

    /// <summary>Only these units (ids, wildcards allowed).</summary>
    [Parameter]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(UnitIdCompleter))]
    public string[]? Unit { get; set; }

    /// <summary>Optimal (default), Greedy (the seed's), Proportional, Even or Single.</summary>
    [Parameter]
    public PlanAlgorithm Algorithm { get; set; } = PlanAlgorithm.Optimal;

    /// <summary>Emit one plan per subset of the units: what each unit adds.</summary>
    [Parameter]
    public SwitchParameter EachSubset { get; set; }

    /// <summary>Plan from the profiles alone, without the corrections that observed runs give.</summary>
    [Parameter]
    public SwitchParameter NoCalibration { get; set; }

    /// <summary>The profile store folder (default: $env:HETEROBATCH_PROFILE_PATH, else the user data folder); its observed runs calibrate piped profiles too.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ProfilePath { get; set; }

    internal override string? ProfilePathGiven => ProfilePath;

    private readonly List<UnitProfile> _piped = new();

    protected override void ProcessRecord()
    {
        if (Profile != null) _piped.AddRange(Profile);
    }

    protected override void EndProcessing()
    {
        IReadOnlyList<UnitProfile> profiles;
        if (ParameterSetName == FromProfile)
        {
            profiles = Unit == null ? _piped : _piped.Where(p => Unit.Any(u => Wildcard.IsMatch(p.Unit.Id, u))).ToList();
            // several models piped together say so before anything else is checked
            Engine(() => { Planner.CheckOneModel(profiles); ProfileSelection.CheckNoOverlap(profiles); return true; });
        }
        else
        {
            profiles = Engine(() => StoredProfiles.For(this, Model, Unit, ProfilePath));
        }
        if (profiles.Count == 0)
            Fail(new HeteroBatchException("ProfileNotFound", FailureKind.ObjectNotFound, "No profiles to plan from.", null));
        foreach (var p in profiles)
            WriteVerbose($"planning from the profile of {p.Model} on {p.Unit.Id} ({p.Unit.Precision}), measured {p.MeasuredAt:u}{(p.MeasuredAlongside.Length > 0 ? " beside " + string.Join(", ", p.MeasuredAlongside) : " alone")}: {p.Table.Count} sizes up to {p.MaxBatchSize}");
        var calibration = NoCalibration ? null : StoredProfiles.Calibration(this, profiles, ProfilePath);
        foreach (var (unit, c) in calibration?.Together ?? new Dictionary<string, (double Factor, int Runs)>())
            if (c.Runs > 0) WriteVerbose($"{unit}: {c.Runs} runs beside other units put its times at x{c.Factor:F3} of its profile");
        foreach (var (unit, c) in calibration?.Alone ?? new Dictionary<string, (double Factor, int Runs)>())
            if (c.Runs > 0) WriteVerbose($"{unit}: {c.Runs} runs alone put its times at x{c.Factor:F3} of its profile");
        if (calibration?.Set is { Runs: > 0 } set)
            WriteVerbose($"{string.Join("+", profiles.Select(p => p.Unit.Id).Distinct())}: its last {set.Runs} runs together took x{set.Factor:F3} their predicted time");
        var plans = Engine(() => EachSubset ? Planner.PlanSubsets(profiles, BatchSize, Algorithm, calibration?.Together, calibration?.Alone) : new[] { Planner.Plan(profiles, BatchSize, Algorithm, calibration) });
        foreach (var plan in plans)
        {
            if (plan.Note != null) WriteVerbose(plan.Note);
            WriteObject(plan);
        }
    }
}

/// <summary>Reads the store for a model, as Get-BatchPlan and Invoke-PartitionedInference both need.</summary>
internal static class StoredProfiles
{
    public static IReadOnlyList<UnitProfile> For(PSCmdlet cmdlet, string model, string[]? units, string? profilePath) =>
        For(cmdlet, model, units, profilePath, out _);

    /// <param name="source">The model as resolved (its file hashed once), for the run that follows.</param>
    public static IReadOnlyList<UnitProfile> For(PSCmdlet cmdlet, string model, string[]? units, string? profilePath, out ModelSource source)
    {
        source = ModelCatalog.Resolve(model, HeteroBatchCmdlet.ModelCache, basePath: cmdlet.SessionState.Path.CurrentFileSystemLocation.Path);
        var store = HeteroBatchCmdlet.OpenStore(cmdlet, profilePath);
        return ProfileSelection.Select(store.Load(), source.Name, source.Sha256, units, ModuleContext.Current.Presence);
    }

    /// <summary>What the store's runs teach a plan for these profiles' units (see RunObservations.Calibration).</summary>
    public static PlanCalibration Calibration(PSCmdlet cmdlet, IReadOnlyList<UnitProfile> profiles, string? profilePath) =>
        RunObservations.Calibration(HeteroBatchCmdlet.OpenStore(cmdlet, profilePath), profiles);

    /// <summary>Records what each unit did in a run, for later plans (a store that cannot be written is a warning, not a failure).</summary>
    public static void Record(HeteroBatchCmdlet cmdlet, Engine.Execution.InferenceResult result, string? profilePath, Action<string> warn)
    {
        var observations = RunObservations.From(result);
        if (observations.Count == 0) return;
        try { HeteroBatchCmdlet.OpenStore(cmdlet, profilePath).Record(observations); }
        catch (HeteroBatchException e) { warn($"[{e.ErrorId}] this run's observations were not stored: {e.Message}"); }
    }
}
