using System.Management.Automation;
using HeteroBatch.Engine;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Profiling;
using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Units;

namespace HeteroBatch.Commands;

/// <summary>Measures a model on each unit at a schedule of batch sizes and stores the performance tables.</summary>
[Cmdlet(VerbsLifecycle.Invoke, "Profile")]
[OutputType(typeof(UnitProfile))]
public sealed class InvokeProfileCommand : HeteroBatchCmdlet
{
    private const int ActivityId = 4101;

    /// <summary>The units to measure (from Get-ComputeUnit). Default: this machine's units.</summary>
    [Parameter(ValueFromPipeline = true)]
    [ValidateNotNull]
    public ComputeUnit[]? Unit { get; set; }

    /// <summary>A built-in model name or the path of an .onnx file.</summary>
    [Parameter(Mandatory = true, Position = 0)]
    [ArgumentCompleter(typeof(ModelNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Model { get; set; } = "";

    /// <summary>Batch sizes to measure. Default: 1, 2, 3, then 2^n-1, 2^n, 2^n+1 up to -MaxBatchSize.</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int[]? BatchSize { get; set; }

    /// <summary>Largest batch size of the default schedule (default: 32 for CPU units, 512 for GPUs).</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int MaxBatchSize { get; set; }

    /// <summary>Seconds to spend sampling each batch size at most (once three runs are in).</summary>
    [Parameter]
    [ValidateRange(0.01, 3600.0)]
    public double SecondsPerSize { get; set; } = 1.5;

    /// <summary>The profile store folder (default: $env:HETEROBATCH_PROFILE_PATH, else the user data folder).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ProfilePath { get; set; }

    /// <summary>Measure and return the profiles without storing them.</summary>
    [Parameter]
    public SwitchParameter NoStore { get; set; }

    private ModelSource? _model;
    private ProfileStore? _store;
    private bool _sawInput;

    protected override void BeginProcessing()
    {
        _model = Engine(() => ModelCatalog.Resolve(Model, basePath: SessionState.Path.CurrentFileSystemLocation.Path));
        if (_model.BatchMode == BatchMode.Fixed) WriteWarning($"{_model.Name}: {_model.Note}");
        else if (_model.Note != null) WriteVerbose($"{_model.Name}: {_model.Note}");
        _store = OpenStore(ProfilePath); // read and written on the pipeline thread
    }

    protected override void ProcessRecord()
    {
        if (Unit == null) return;
        _sawInput = true;
        foreach (var unit in Unit) ProfileOne(unit);
    }

    protected override void EndProcessing()
    {
        if (_sawInput) return;
        foreach (var unit in Engine(() => UnitDiscovery.Discover(CpuGrouping.All))) ProfileOne(unit);
    }

    private void ProfileOne(ComputeUnit unit)
    {
        var why = unit.Available ? UnitPresence.WhyAbsent(unit) : unit.Reason ?? "it is not available";
        if (why != null)
        {
            WriteFailure(new HeteroBatchException("UnitUnavailable", FailureKind.ResourceUnavailable, $"Unit '{unit.Id}' cannot run here: {why}", unit.Id));
            return;
        }
        var settings = new ProfileSettings { BatchSizes = BatchSize, MaxBatchSize = MaxBatchSize, PointBudget = TimeSpan.FromSeconds(SecondsPerSize) };
        var schedule = settings.ScheduleFor(unit);
        var activity = $"Profiling {_model!.Name} on {unit.Id}";
        WriteProgress(new ProgressRecord(ActivityId, activity, $"batch sizes {string.Join(",", schedule)}") { PercentComplete = 0 });
        var task = Profiler.RunAsync(unit, _model, settings, p => Post(() =>
        {
            if (p.Entry is { } e)
                WriteVerbose($"{p.UnitId} batch {p.BatchSize}: median {e.MedianMs:F2} ms (p10 {e.P10Ms:F2}, p90 {e.P90Ms:F2}, {e.Samples} runs, ±{e.Ci95Percent:F1}%), {e.ImagesPerSecond:F1} samples/s");
            else
                WriteVerbose($"{p.UnitId} batch {p.BatchSize} failed, profiling stops growing here: {p.Failure}");
            WriteProgress(new ProgressRecord(ActivityId, activity, $"batch {p.BatchSize} ({p.Index}/{p.Total})") { PercentComplete = 100 * p.Index / p.Total });
        }), StopToken);
        UnitProfile profile;
        try
        {
            profile = Await(task);
        }
        catch (HeteroBatchException e)
        {
            WriteFailure(e);
            return;
        }
        finally
        {
            WriteProgress(new ProgressRecord(ActivityId, activity, "done") { RecordType = ProgressRecordType.Completed });
        }
        if (profile.FailedBatchSize is int failed)
            WriteWarning($"{unit.Id}: batch {failed} failed ({profile.FailureReason}); the largest batch that ran is {profile.MaxBatchSize}.");
        if (profile.Entries.Count == 0)
        {
            WriteFailure(new HeteroBatchException("ProfileFailed", FailureKind.InvalidOperation, $"No batch size ran on unit '{unit.Id}': {profile.FailureReason}", unit.Id));
            return;
        }
        if (!NoStore) profile = _store!.Save(profile);
        WriteObject(profile);
    }
}
