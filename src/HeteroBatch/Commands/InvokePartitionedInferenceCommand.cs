using System.Management.Automation;
using HeteroBatch.Engine;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Units;
using HeteroBatch.Engine.UseCases;

namespace HeteroBatch.Commands;

/// <summary>
/// Runs a batch split across units in parallel, and returns the outputs in input order with the
/// timings; with -InputPath, streams the files through the units and returns one prediction per
/// sample as blocks finish.
/// </summary>
[Cmdlet(VerbsLifecycle.Invoke, "PartitionedInference", DefaultParameterSetName = FromPlan, SupportsShouldProcess = true)]
[OutputType(typeof(InferenceResult), typeof(SamplePrediction))]
public sealed class InvokePartitionedInferenceCommand : HeteroBatchCmdlet
{
    private const string FromPlan = "FromPlan";
    private const string FromModel = "FromModel";
    private const int ProgressActivityId = 4102;

    /// <summary>The plan to run (from Get-BatchPlan).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = FromPlan)]
    [ValidateNotNull]
    [JsonObject]
    public BatchPlan? Plan { get; set; }

    /// <summary>Plan from stored profiles of this model, then run: a built-in name or an .onnx path.</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = FromModel)]
    [ArgumentCompleter(typeof(ModelNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Model { get; set; } = "";

    /// <summary>The number of samples (with -Model).</summary>
    [Parameter(Mandatory = true, ParameterSetName = FromModel)]
    [ValidateRange(1, int.MaxValue)]
    public int BatchSize { get; set; }

    /// <summary>Only these units (with -Model; ids, wildcards allowed).</summary>
    [Parameter(ParameterSetName = FromModel)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(UnitIdCompleter))]
    public string[]? Unit { get; set; }

    /// <summary>The planning algorithm (with -Model).</summary>
    [Parameter(ParameterSetName = FromModel)]
    public PlanAlgorithm Algorithm { get; set; } = PlanAlgorithm.Optimal;

    /// <summary>The profile store folder (with -Model; accepted with -Plan too, so that $PSDefaultParameterValues can set it for every command).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ProfilePath { get; set; }

    /// <summary>Static: run the plan as it is. Dynamic: units that finish early take work from slower ones.</summary>
    [Parameter]
    public BalanceMode Balance { get; set; } = BalanceMode.Static;

    /// <summary>Neither plan from observed runs (with -Model) nor record this run's observations for later plans.</summary>
    [Parameter]
    public SwitchParameter NoCalibration { get; set; }

    /// <summary>Seed of the synthetic inputs: the same seed gives the same inputs.</summary>
    [Parameter]
    public ulong Seed { get; set; } = 1;

    /// <summary>Image files (.jpg, .jpeg, .png), .npy tensors, or folders of them; files bind from the pipeline.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string[]? InputPath { get; set; }

    /// <summary>A folder to write each output tensor to as &lt;name&gt;.npy (input order), with inputs.txt naming the samples; file jobs add predictions.csv, job.json and summary.json.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? OutputPath { get; set; }

    /// <summary>Go on with the file job in -OutputPath where it stopped (starts it when there is none).</summary>
    [Parameter]
    public SwitchParameter Resume { get; set; }

    /// <summary>Run only part k of N of the job over files ("k/N", 0 &lt;= k &lt; N): the k-th of N contiguous runs of the sorted input list; each shard writes its own -OutputPath (merge them with Merge-PartitionedOutput).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Shard { get; set; }

    /// <summary>Replace the outputs of another job in -OutputPath.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>How images become the input's size: CenterCrop (torchvision's ImageNet evaluation, the default) or Stretch.</summary>
    [Parameter]
    public ResizeMode Resize { get; set; } = ResizeMode.CenterCrop;

    /// <summary>Per-channel mean subtracted from pixel / 255 (1 or 3 values; default ImageNet's).</summary>
    [Parameter]
    [ValidateCount(1, 3)]
    public float[]? Mean { get; set; }

    /// <summary>Per-channel standard deviation the centred values are divided by (1 or 3 values; default ImageNet's).</summary>
    [Parameter]
    [ValidateCount(1, 3)]
    public float[]? Std { get; set; }

    /// <summary>Where images are decoded: Auto (GPUs with nvJPEG decode their own share into device memory; CPU threads the rest) or Cpu (CPU threads only).</summary>
    [Parameter]
    public DecodeOn DecodeOn { get; set; } = DecodeOn.Auto;

    /// <summary>Exact (torchvision's pixels, the default) or Fast (large JPEGs decoded at 1/2 to 1/8 scale in the DCT first: faster, pixels within a few levels of exact).</summary>
    [Parameter]
    public DecodeMode DecodeMode { get; set; } = DecodeMode.Exact;

    /// <summary>The order of colour channels the model takes (Rgb or Bgr).</summary>
    [Parameter]
    public ChannelOrder ChannelOrder { get; set; } = ChannelOrder.Rgb;

    /// <summary>Threads that read and decode input files (default: the processors the units leave free, and more while the units wait for input).</summary>
    [Parameter]
    [ValidateRange(1, 1024)]
    public int DecodeThreads { get; set; }

    /// <summary>Run the whole input this many times (steady-state numbers); WallMs is the median.</summary>
    [Parameter]
    [ValidateRange(1, 10000)]
    public int Repeat { get; set; } = 1;

    /// <summary>How many top classes each prediction lists (classifier outputs).</summary>
    [Parameter]
    [ValidateRange(1, 1000)]
    public int Top { get; set; } = 5;

    internal override string? ProfilePathGiven => ProfilePath;

    private readonly List<string> _inputPaths = new();
    private BatchPlan? _planForFiles;
    private ModelSource? _resolved; // with -Model: the model the plan was made for, resolved once

    private bool? _writeApproved; // -WhatIf/-Confirm for -OutputPath: asked once, before any work

    protected override void ProcessRecord()
    {
        if (OutputPath != null && (_writeApproved ??= ShouldProcess(GetUnresolvedProviderPathFromPSPath(OutputPath), "Write the outputs")) == false) return;
        var plan = ParameterSetName == FromPlan
            ? Plan!
            : _planForFiles ?? Engine(() =>
            {
                var planned = Inference.PlanFromStore(new PlanRequest
                {
                    Model = Model, BasePath = SessionState.Path.CurrentFileSystemLocation.Path, BatchSize = BatchSize, Units = Unit,
                    Algorithm = Algorithm, ProfileFolder = StoreFolder(ProfilePath), NoCalibration = NoCalibration,
                });
                _resolved = planned.Model;
                var plan = planned.Plans[0];
                if (plan.Note != null) WriteVerbose(plan.Note);
                return plan;
            });
        if (InputPath != null)
        {
            // files may come one by one from the pipeline: gather them, run once at the end
            _inputPaths.AddRange(InputPath.Select(p => GetUnresolvedProviderPathFromPSPath(p)));
            _planForFiles = plan;
            return;
        }
        RunPlan(plan, null);
    }

    protected override void EndProcessing()
    {
        if (_planForFiles != null) RunPlan(_planForFiles, _inputPaths);
    }

    /// <summary>Where this run is recorded: nowhere with -NoCalibration; else -ProfilePath when given, else the store the plan came from.</summary>
    private RecordPolicy Recording => NoCalibration ? RecordPolicy.Off : new RecordPolicy(true, StoreFolder(ProfilePath));

    private RunSettings Settings(string activity) => new()
    {
        Balance = Balance, Seed = Seed, Repeat = Repeat, TopK = Top, // a test's injected failure comes from the engine context
        Preprocessing = new ImagePreprocessing
        {
            Resize = Resize, ChannelOrder = ChannelOrder, DecodeMode = DecodeMode,
            Mean = Mean ?? ImagePreprocessing.ImageNet.Mean, Std = Std ?? ImagePreprocessing.ImageNet.Std,
        },
        DecodeThreads = DecodeThreads, DecodeOn = DecodeOn,
        // from an engine thread: queued, written from the pipeline thread
        Progress = p => Post(() => WriteProgress(new ProgressRecord(ProgressActivityId, activity, $"{p.Done} of {p.Total} samples, {p.ImagesPerSecond:F0} samples/s")
        {
            PercentComplete = p.PercentComplete,
            SecondsRemaining = double.IsFinite(p.SecondsLeft) ? (int)p.SecondsLeft : -1,
            CurrentOperation = p.Stages?.ToString(),
        })),
    };

    private void RunPlan(BatchPlan plan, IReadOnlyList<string>? inputFiles)
    {
        ModelSource model;
        try
        {
            Inference.CheckRunnable(plan);
            model = _resolved != null && _resolved.Sha256 == plan.ModelSha256 ? _resolved : Inference.ModelFor(plan);
        }
        catch (HeteroBatchException e) { WriteFailure(e); return; }

        if (inputFiles != null) { RunFiles(plan, model, inputFiles); return; }
        if (Shard != null) { WriteFailure(new HeteroBatchException("ShardInvalid", FailureKind.InvalidArgument, "-Shard cuts a job over files: give -InputPath.", Shard)); return; }
        if (Resume || Force)
        {
            WriteFailure(new HeteroBatchException("ResumeNeedsInputFiles", FailureKind.InvalidArgument, "-Resume and -Force apply to jobs over files (-InputPath with -OutputPath)."));
            return;
        }
        var activity = $"Running {plan.Model} on {string.Join(", ", plan.Shards.Select(s => s.UnitId))}";
        InferenceResult result;
        try
        {
            var settings = Settings(activity);
            result = Await(Task.Run(() => Inference.RunBatch(plan, null, settings, Recording, StopToken, model)));
            if (OutputPath != null) WriteOutputs(result, GetUnresolvedProviderPathFromPSPath(OutputPath));
        }
        catch (HeteroBatchException e) when (e.StopsCommand)
        {
            Fail(e);
            return;
        }
        catch (HeteroBatchException e)
        {
            WriteFailure(e);
            return;
        }
        WriteProgress(new ProgressRecord(ProgressActivityId, activity, "done") { RecordType = ProgressRecordType.Completed });
        WriteRecord(result);
        foreach (var failed in result.Units.Where(u => u.Failed))
            WriteWarning($"Unit '{failed.UnitId}' failed after {failed.Count} samples ({failed.Error}); its other samples ran on the remaining units.");
        WriteObject(result);
    }

    private void WriteRecord(RunReport report) =>
        WriteVerbose(report.RecordedIn != null ? $"this run was recorded in {report.RecordedIn} for later plans" : $"this run was not recorded: {report.NotRecordedBecause}");

    /// <summary>
    /// A job over files: streamed in blocks, one prediction a sample written to the pipeline as its
    /// block finishes, outputs to -OutputPath (resumable); the summary goes to the information stream
    /// (-InformationVariable) and -Verbose.
    /// </summary>
    private void RunFiles(BatchPlan plan, ModelSource model, IReadOnlyList<string> inputFiles)
    {
        if (Repeat > 1) { WriteFailure(new HeteroBatchException("RepeatNeedsSyntheticInputs", FailureKind.InvalidArgument, "-Repeat times synthetic batches; a job over files runs each file once.")); return; }
        if ((Resume || Force) && OutputPath == null) { WriteFailure(new HeteroBatchException("ResumeNeedsInputFiles", FailureKind.InvalidArgument, "-Resume and -Force need -OutputPath: the job's progress is kept there.")); return; }
        var activity = $"Running {plan.Model} on {string.Join(", ", plan.Shards.Select(s => s.UnitId))}";
        PreparedJob? job = null;
        try
        {
            job = Inference.PrepareJob(plan, inputFiles, OutputPath == null ? null : GetUnresolvedProviderPathFromPSPath(OutputPath), Resume, Force, Settings(activity), model,
                Shard == null ? null : JobShard.Parse(Shard));
            WriteVerbose($"{job.Files.SampleCount} samples from {job.Files.Files.Count} files; preprocessing: {job.Settings.Preprocessing}");
            if (job.ResumedAt > 0) WriteVerbose($"Resuming at sample {job.ResumedAt} of {job.Files.SampleCount}");
            // a resumed job hands on every row: those already in the folder first (read back), then the new ones
            if (job.Output != null) foreach (var done in job.Output.CommittedPredictions()) WriteObject(done);
            var prepared = job;
            // a block's rows go out on the pipeline thread while the writer goes on with the next (two blocks of rows at most wait)
            var room = new SemaphoreSlim(2); // not disposed: a writer still waiting on it when the command leaves early must not meet a disposed one
            var summary = Await(Task.Run(() => Inference.RunJob(prepared, Recording, predictions => PostWithin(room, () => WritePredictions(predictions)), StopToken)));
            WriteProgress(new ProgressRecord(ProgressActivityId, activity, "done") { RecordType = ProgressRecordType.Completed });
            foreach (var failed in summary.Units.Where(u => u.Failed))
                WriteWarning($"Unit '{failed.UnitId}' failed ({failed.Error}); its samples ran on the remaining units.");
            WriteVerbose(summary.ToString() + "; " + summary.Stages);
            if (summary.Note != null) WriteVerbose(summary.Note);
            if (summary.Pipeline != null) WriteVerbose(summary.Pipeline);
            foreach (var line in summary.UnitDecoding.Concat(summary.StageRates)) WriteVerbose(line);
            WriteRecord(summary);
            WriteInformation(new InformationRecord(summary, MyInvocation.MyCommand.Name) { Tags = { "HeteroBatch.JobSummary" } });
        }
        catch (HeteroBatchException e) when (e.StopsCommand || job?.Output == null)
        {
            Fail(e);
        }
        catch (HeteroBatchException e)
        {
            WriteFailure(e);
        }
        finally { job?.Dispose(); }
    }

    private void WritePredictions(IReadOnlyList<SamplePrediction> predictions)
    {
        foreach (var p in predictions)
        {
            if (p.Error != null)
                WriteFailure(new HeteroBatchException(p.ErrorId ?? "InputUnreadable", FailureKind.InvalidData, p.Error, p.Input));
            WriteObject(p);
        }
    }

    /// <summary>Each output as one .npy (atomically) and the sample names, in input order.</summary>
    private static void WriteOutputs(InferenceResult result, string folder)
    {
        try
        {
            Directory.CreateDirectory(folder);
            foreach (var output in result.Outputs)
            {
                Npy.Write(Path.Combine(folder, JobOutput.FileNameOf(output.Name)), output);
            }
            AtomicFile.WriteText(Path.Combine(folder, "inputs.txt"), string.Join("\n", result.InputNames.Select(JobOutput.EscapeName)) + "\n");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HeteroBatchException("OutputWriteFailed", FailureKind.WriteError, $"Could not write the outputs to {folder}: {e.Message}", folder, e) { StopsCommand = true };
        }
    }

}
