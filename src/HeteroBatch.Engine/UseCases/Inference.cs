using System.Collections.Concurrent;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Profiling;

namespace HeteroBatch.Engine.UseCases;

/// <summary>What to plan: a model's stored profiles, a batch size, the units and how.</summary>
public sealed record PlanRequest
{
    /// <summary>A built-in model's name or an .onnx path (relative to <see cref="BasePath"/>).</summary>
    public string Model { get; init; } = "";
    public string? BasePath { get; init; }
    public int BatchSize { get; init; }
    /// <summary>Only these units (ids, wildcards allowed); null for every unit with a profile.</summary>
    public IReadOnlyList<string>? Units { get; init; }
    public PlanAlgorithm Algorithm { get; init; } = PlanAlgorithm.Optimal;
    /// <summary>The profile store folder; null for the default store (profiles piped in: the store they came from).</summary>
    public string? ProfileFolder { get; init; }
    /// <summary>Plan from the profiles alone, without what observed runs taught.</summary>
    public bool NoCalibration { get; init; }
    /// <summary>One plan per subset of the units.</summary>
    public bool EachSubset { get; init; }
}

/// <summary>Plans and what they came from: the model (resolved and hashed once), the profiles, and the calibration from the store's runs.</summary>
public sealed record Planned(IReadOnlyList<BatchPlan> Plans, IReadOnlyList<UnitProfile> Profiles, PlanCalibration? Calibration, ModelSource? Model);

/// <summary>Whether and where a run is recorded for later plans.</summary>
/// <param name="Record">False: nothing is recorded (-NoCalibration).</param>
/// <param name="ProfileFolder">The store to record in; null for the store the plan came from (<see cref="BatchPlan.ProfileFolder"/>), else the default store.</param>
public sealed record RecordPolicy(bool Record = true, string? ProfileFolder = null)
{
    public static RecordPolicy Off => new(false);
    public static RecordPolicy ToPlansStore => new();
}

/// <summary>A job over files, opened and ready to run: its inputs, its output folder (resumable), and how it runs.</summary>
public sealed class PreparedJob : IDisposable
{
    public required BatchPlan Plan { get; init; }
    public required ModelSource Model { get; init; }
    public required InputFiles Files { get; init; }
    /// <summary>The output folder's job, or null when the job writes nothing.</summary>
    public JobOutput? Output { get; init; }
    public required RunSettings Settings { get; init; }
    /// <summary>Samples an earlier, stopped run of this job already wrote.</summary>
    public int ResumedAt => Output?.ResumedAt ?? 0;

    public void Dispose() => Output?.Dispose();
}

/// <summary>
/// The use cases, in one place for the cmdlets, the benchmark and the server: plan from a store, run
/// a batch, run a job over files, run a served request; and the run record of each, which goes
/// to the store the plan's profiles came from. It owns model identity: a model is resolved and
/// hashed once per context (again only when its file changes).
/// Threads: planning and opening stores run on the caller's thread; runs block their caller.
/// </summary>
public sealed class Inference
{
    private readonly EngineContext _context;
    private readonly Action<HeteroBatchException>? _warn;

    /// <param name="warn">Receives stored data's warnings (ProfileCorrupt, a run that could not be recorded); may be called from an engine thread.</param>
    public Inference(EngineContext context, Action<HeteroBatchException>? warn = null)
    {
        _context = context;
        _warn = warn;
    }

    /// <summary>The profile store at <paramref name="folder"/> (a full path), or the settings' one (Get-HeteroBatchOption's ProfileStorePath).</summary>
    public ProfileStore Store(string? folder) => new(folder ?? _context.Options.ProfileStorePath, _warn, TimeSpan.FromSeconds(_context.Options.StoreLockSeconds));

    /// <summary>A model by name or path, resolved and hashed once per context (again when its file changes).</summary>
    public ModelSource Resolve(string model, string? basePath = null) => _context.Models.Resolve(model, basePath);

    /// <summary>The model a plan was made for, found again by its content hash (ModelChanged when it is gone or different); it keeps the plan's batch mode.</summary>
    public ModelSource ModelFor(BatchPlan plan) => _context.Models.For(plan.Model, plan.ModelSha256, plan.ModelPath, plan.BatchMode);

    /// <summary>Plans from the store's profiles of a model; throws ProfileNotFound when there are none for the units asked.</summary>
    public Planned PlanFromStore(PlanRequest request)
    {
        var model = Resolve(request.Model, request.BasePath);
        var store = Store(request.ProfileFolder);
        var profiles = ProfileSelection.Select(store.Load(), model.Name, model.Sha256, request.Units?.ToArray(), _context.Presence);
        return Plan(profiles, request with { ProfileFolder = store.Folder }, model);
    }

    /// <summary>Plans from given profiles; calibration comes from <see cref="PlanRequest.ProfileFolder"/>, else the store the profiles came from, else the default store.</summary>
    public Planned PlanFromProfiles(IReadOnlyList<UnitProfile> profiles, PlanRequest request)
    {
        Planner.CheckOneModel(profiles);
        ProfileSelection.CheckNoOverlap(profiles);
        var folder = request.ProfileFolder ?? (profiles.Select(p => p.StoredIn).Distinct().Count() == 1 ? profiles[0].StoredIn : null);
        return Plan(profiles, request with { ProfileFolder = folder }, null);
    }

    private Planned Plan(IReadOnlyList<UnitProfile> profiles, PlanRequest request, ModelSource? model)
    {
        if (profiles.Count == 0)
            throw new HeteroBatchException("ProfileNotFound", FailureKind.ObjectNotFound, "No profiles to plan from.", request.Model);
        var store = Store(request.ProfileFolder);
        var calibration = request.NoCalibration ? null : RunObservations.Calibration(store, profiles);
        var plans = request.EachSubset
            ? Planner.PlanSubsets(profiles, request.BatchSize, request.Algorithm, calibration?.Together, calibration?.Alone)
            : new[] { Planner.Plan(profiles, request.BatchSize, request.Algorithm, calibration) };
        // the plan records its runs where its profiles came from
        foreach (var plan in plans) plan.ProfileFolder = store.Folder;
        return new Planned(plans, profiles, calibration, model);
    }

    /// <summary>Throws PlanInvalid for a plan that does not add up, UnitUnavailable for a unit that cannot run here.</summary>
    public void CheckRunnable(BatchPlan plan)
    {
        PlanLayout.Validate(plan);
        foreach (var shard in plan.Shards)
            if (_context.Presence.WhyAbsent(shard.Unit) is { } why)
                throw new HeteroBatchException("UnitUnavailable", FailureKind.ResourceUnavailable,
                    $"The plan gives samples to unit '{shard.UnitId}', which cannot run here: {why}", shard.UnitId);
    }

    /// <summary>Runs a plan over inputs in memory (seeded synthetic ones when null), then records it.</summary>
    public InferenceResult RunBatch(BatchPlan plan, InputSet? inputs, RunSettings settings, RecordPolicy record, CancellationToken cancel = default,
        ModelSource? model = null)
    {
        CheckRunnable(plan);
        var result = PartitionedRunner.Run(_context, plan, model ?? ModelFor(plan), inputs, settings, cancel);
        Record(result, record);
        return result;
    }

    /// <summary>Opens a job over files: finds the samples (only <paramref name="shard"/>'s part of them where given), and opens (or resumes) its output folder.</summary>
    public PreparedJob PrepareJob(BatchPlan plan, IReadOnlyList<string> paths, string? outputFolder, bool resume, bool force, RunSettings settings,
        ModelSource? model = null, JobShard? shard = null)
    {
        CheckRunnable(plan);
        model ??= ModelFor(plan);
        var preprocessing = settings.Preprocessing.Checked();
        var signature = PartitionedRunner.Signature(_context, plan, model);
        var all = InputFiles.ExpandPaths(paths);
        var files = InputFiles.For(shard == null ? all : shard.Select(all), signature.Inputs);
        JobOutput? output = null;
        if (outputFolder != null)
        {
            var job = new JobCheckpoint
            {
                Model = model.Name, ModelSha256 = model.Sha256, Inputs = files.Identity(), Samples = files.SampleCount,
                Preprocessing = preprocessing.ToString(), Outputs = signature.Outputs.Select(o => o.Name).ToArray(),
                Shard = shard?.Index ?? 0, ShardCount = shard?.Count ?? 0, JobFiles = shard == null ? "" : JobShard.ListIdentity(all),
            };
            output = JobOutput.Open(outputFolder, job, files, signature.Outputs, resume, force);
        }
        return new PreparedJob { Plan = plan, Model = model, Files = files, Output = output, Settings = settings with { Preprocessing = preprocessing } };
    }

    /// <summary>Runs a prepared job to its end, completes its output folder, and records the run.</summary>
    public JobSummary RunJob(PreparedJob job, RecordPolicy record, Action<IReadOnlyList<SamplePrediction>>? onBlock, CancellationToken cancel = default)
    {
        var summary = FileJob.Run(_context, job.Plan, job.Model, job.Files, job.Output, job.Settings, onBlock, cancel);
        job.Output?.Complete(summary);
        Record(summary, record);
        return summary;
    }

    /// <summary>
    /// Records what each unit did in a run, for later plans, in the store the policy names (else the
    /// plan's); the report says where, or why not. A store that cannot be written is a warning.
    /// </summary>
    public void Record(RunReport report, RecordPolicy policy)
    {
        if (!policy.Record) { report.NotRecordedBecause = "calibration is off for this run"; return; }
        var observations = RunObservations.From(report);
        if (observations.Count == 0) { report.NotRecordedBecause = "no unit ran exactly its planned share"; return; }
        try
        {
            var store = Store(policy.ProfileFolder ?? report.Plan.ProfileFolder);
            store.Record(observations);
            report.RecordedIn = store.Folder;
        }
        catch (HeteroBatchException e)
        {
            report.NotRecordedBecause = $"[{e.ErrorId}] {e.Message}";
            _warn?.Invoke(new HeteroBatchException(e.ErrorId, e.Kind, $"This run's observations were not stored: {e.Message}", e.Target, e));
        }
    }
}
