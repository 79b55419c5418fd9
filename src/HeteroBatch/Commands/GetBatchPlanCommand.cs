using HeteroBatch.Engine.Execution;
using System.Management.Automation;
using HeteroBatch.Engine;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Profiling;
using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.UseCases;

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
        base.ProcessRecord();
        if (Profile != null) _piped.AddRange(Profile);
    }

    protected override void EndProcessing()
    {
        if (PipelineBoundNothing) return;
        var request = new PlanRequest
        {
            Model = Model, BasePath = SessionState.Path.CurrentFileSystemLocation.Path, BatchSize = BatchSize, Units = Unit,
            Algorithm = Algorithm, ProfileFolder = StoreFolder(ProfilePath), NoCalibration = NoCalibration, EachSubset = EachSubset,
        };
        var planned = Engine(() => ParameterSetName == FromProfile
            ? Inference.PlanFromProfiles(Unit == null ? _piped : _piped.Where(p => Unit.Any(u => Wildcard.IsMatch(p.Unit.Id, u))).ToList(), request)
            : Inference.PlanFromStore(request));
        foreach (var p in planned.Profiles)
            WriteVerbose($"planning from the profile of {p.Model} on {p.Unit.Id} ({p.Unit.Precision}), measured {p.MeasuredAt:u}{(p.MeasuredAlongside.Length > 0 ? " beside " + string.Join(", ", p.MeasuredAlongside) : " alone")}: {p.Table.Count} sizes up to {p.MaxBatchSize}");
        var calibration = planned.Calibration;
        foreach (var (unit, c) in calibration?.Together ?? new Dictionary<string, (double Factor, int Runs)>())
            if (c.Runs > 0) WriteVerbose($"{unit}: {c.Runs} runs beside other units put its times at x{c.Factor:F3} of its profile");
        foreach (var (unit, c) in calibration?.Alone ?? new Dictionary<string, (double Factor, int Runs)>())
            if (c.Runs > 0) WriteVerbose($"{unit}: {c.Runs} runs alone put its times at x{c.Factor:F3} of its profile");
        if (calibration?.Set is { Runs: > 0 } set)
            WriteVerbose($"{string.Join("+", planned.Profiles.Select(p => p.Unit.Id).Distinct())}: its last {set.Runs} runs together took x{set.Factor:F3} their predicted time");
        foreach (var plan in planned.Plans)
        {
            WriteVerbose($"runs of this plan are recorded in {plan.ProfileFolder}");
            if (plan.Note != null) WriteVerbose(plan.Note);
            WriteObject(plan);
        }
    }
}
