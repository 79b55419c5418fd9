using System.Management.Automation;
using HeteroBatch.Engine;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Profiling;
using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Units;
using HeteroBatch.Engine.Units.Backends;

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
    [UnitTransformation]
    [ArgumentCompleter(typeof(UnitIdCompleter))]
    public ComputeUnit[]? Unit { get; set; }

    /// <summary>A built-in model name or the path of an .onnx file (binds by property name, so Get-InferenceModel output pipes in).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Name")]
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

    /// <summary>Measure all the units at the same time, as a plan runs them (shared memory bandwidth, caches, feeder cores).</summary>
    [Parameter]
    public SwitchParameter Concurrent { get; set; }

    /// <summary>Measure and return the profiles without storing them.</summary>
    [Parameter]
    public SwitchParameter NoStore { get; set; }

    internal override string? ProfilePathGiven => ProfilePath;

    private readonly List<ComputeUnit> _units = new();

    private ModelSource? _model;
    private ProfileStore? _store;
    private bool _sawInput;

    protected override void BeginProcessing()
    {
        _store = OpenStore(ProfilePath); // read and written on the pipeline thread
    }

    /// <summary>Resolves -Model once it is bound (from the command line, or by property name from the pipeline).</summary>
    private void ResolveModel()
    {
        if (_model != null || string.IsNullOrEmpty(Model)) return;
        _model = Engine(() => ModelCatalog.Resolve(Model, ModelCache, basePath: SessionState.Path.CurrentFileSystemLocation.Path));
        if (_model.BatchMode is BatchMode.Fixed or BatchMode.SamplesInteract) WriteWarning($"{_model.Name}: {_model.Note}");
        else if (_model.Note != null) WriteVerbose($"{_model.Name}: {_model.Note}");
    }

    protected override void ProcessRecord()
    {
        base.ProcessRecord();
        ResolveModel();
        if (Unit == null) return;
        _sawInput = true;
        foreach (var unit in Unit)
        {
            if (Concurrent) _units.Add(unit); // measured together at the end
            else ProfileOne(unit);
        }
    }

    protected override void EndProcessing()
    {
        if (PipelineBoundNothing) return;
        ResolveModel();
        if (_model == null) return;
        if (!_sawInput)
        {
            var units = Engine(() => UnitDiscovery.Discover(new DiscoveryRequest { ExecutionProviderLibraries = Context.Options.ExecutionProviderLibraries }));
            if (Concurrent) _units.AddRange(units);
            else foreach (var unit in units) ProfileOne(unit);
        }
        if (Concurrent) ProfileTogether();
    }

    private ProfileSettings SettingsFor(ComputeUnit unit) =>
        new() { BatchSizes = BatchSize, MaxBatchSize = MaxBatchSize, PointBudget = TimeSpan.FromSeconds(SecondsPerSize) };

    private void ProfileTogether()
    {
        var units = new List<ComputeUnit>();
        foreach (var unit in _units)
        {
            if (Context.Presence.Unavailable(unit) is { } unavailable) WriteFailure(unavailable);
            else units.Add(unit);
        }
        if (units.Count == 0) return;
        Engine(() => { ProfileSelection.CheckNoOverlap(units); return true; });
        int total = units.Sum(u => SettingsFor(u).ScheduleFor(u).Length), done = 0;
        var activity = $"Profiling {_model!.Name} on {string.Join(", ", units.Select(u => u.Id))} together";
        IReadOnlyList<UnitProfile> profiles;
        try
        {
            profiles = Await(Profiler.RunConcurrentAsync(Context, units, _model, SettingsFor, p => Post(() =>
            {
                done++;
                Report(p);
                WriteProgress(new ProgressRecord(ActivityId, activity, $"{p.UnitId} batch {p.BatchSize}") { PercentComplete = Math.Min(100, 100 * done / total) });
            }), StopToken));
        }
        catch (HeteroBatchException e) { WriteFailure(e); return; }
        finally { WriteProgress(new ProgressRecord(ActivityId, activity, "done") { RecordType = ProgressRecordType.Completed }); }
        foreach (var profile in profiles) Emit(profile);
    }

    private void Report(ProfileProgress p)
    {
        if (p.Entry is { } e)
            WriteVerbose($"{p.UnitId} batch {p.BatchSize}: median {e.MedianMs:F2} ms (p10 {e.P10Ms:F2}, p90 {e.P90Ms:F2}, {e.Samples} runs, ±{e.Ci95Percent:F1}%), {e.ImagesPerSecond:F1} samples/s");
        else
            WriteVerbose($"{p.UnitId} batch {p.BatchSize} failed, profiling stops growing here: {p.Failure}");
    }

    /// <summary>Warns about a failed size, stores the profile and writes it.</summary>
    private void Emit(UnitProfile profile)
    {
        var unit = profile.Unit;
        if (profile.FailedBatchSize is int failed)
            WriteWarning($"{unit.Id}: batch {failed} failed ({profile.FailureReason}); the largest batch that ran is {profile.MaxBatchSize}.");
        if (profile.Table.Count == 0)
        {
            WriteFailure(new HeteroBatchException("ProfileFailed", FailureKind.InvalidOperation, $"No batch size ran on unit '{unit.Id}': {profile.FailureReason}", unit.Id));
            return;
        }
        if (NoStore) { WriteObject(profile); return; }
        try
        {
            WriteObject(_store!.Save(profile));
        }
        catch (HeteroBatchException e)
        {
            // the measurements still reach the pipeline; the error says why they are not stored
            WriteFailure(e);
            WriteObject(profile);
        }
    }

    private void ProfileOne(ComputeUnit unit)
    {
        if (Context.Presence.Unavailable(unit) is { } unavailable)
        {
            WriteFailure(unavailable);
            return;
        }
        var settings = SettingsFor(unit);
        var schedule = settings.ScheduleFor(unit);
        var activity = $"Profiling {_model!.Name} on {unit.Id}";
        WriteProgress(new ProgressRecord(ActivityId, activity, $"batch sizes {string.Join(",", schedule)}") { PercentComplete = 0 });
        var task = Profiler.RunAsync(Context, unit, _model, settings, p => Post(() =>
        {
            Report(p);
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
        Emit(profile);
    }
}
