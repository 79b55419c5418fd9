using System.Collections.Concurrent;
using System.Management.Automation;
using HeteroBatch.Engine;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Profiling;
using HeteroBatch.Engine.UseCases;

namespace HeteroBatch;

/// <summary>
/// What every HeteroBatch cmdlet shares: engine errors become ErrorRecords with their stable
/// ErrorId, Ctrl+C cancels the engine, and work on other threads reports through a queue that
/// only the pipeline thread writes from.
/// </summary>
public abstract class HeteroBatchCmdlet : PSCmdlet
{
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<Action> _pending = new();
    private readonly SemaphoreSlim _posted = new(0);

    protected CancellationToken StopToken => _stop.Token;

    /// <summary>The module's engine context (workers, presence, settings).</summary>
    protected static EngineContext Context => ModuleContext.Current;

    protected override void StopProcessing() => _stop.Cancel();

    private bool _recordBound;

    /// <summary>
    /// Runs once for each pipeline record that bound (and once when nothing is piped); commands
    /// that override it call it first, so that <see cref="PipelineBoundNothing"/> can tell.
    /// </summary>
    protected override void ProcessRecord() => _recordBound = true;

    /// <summary>
    /// True when the command was given pipeline input and none of it bound (the binder has written
    /// why): such a command does nothing more, rather than the default work it does when nothing is piped.
    /// </summary>
    protected bool PipelineBoundNothing => MyInvocation.ExpectingInput && !_recordBound;

    protected static ErrorCategory CategoryOf(FailureKind kind) => kind switch
    {
        FailureKind.InvalidArgument => ErrorCategory.InvalidArgument,
        FailureKind.ObjectNotFound => ErrorCategory.ObjectNotFound,
        FailureKind.InvalidData => ErrorCategory.InvalidData,
        FailureKind.ResourceUnavailable => ErrorCategory.ResourceUnavailable,
        FailureKind.OperationStopped => ErrorCategory.OperationStopped,
        FailureKind.WriteError => ErrorCategory.WriteError,
        FailureKind.LimitExceeded => ErrorCategory.LimitsExceeded,
        _ => ErrorCategory.InvalidOperation,
    };

    /// <summary>The error as a record, with the next step to run (if there is one) as its recommended action, shown after the message.</summary>
    protected ErrorRecord Record(HeteroBatchException e)
    {
        var action = RecommendedActions.For(e, this);
        var shown = action == null ? e : new HeteroBatchException(e.ErrorId, e.Kind, $"{e.Message} {action}", e.Target, e.InnerException) { StopsCommand = e.StopsCommand };
        var record = new ErrorRecord(shown, e.ErrorId, CategoryOf(e.Kind), e.Target);
        if (action != null) record.ErrorDetails = new ErrorDetails(shown.Message) { RecommendedAction = action };
        return record;
    }

    /// <summary>The -ProfilePath the user gave this command, if any, so that suggested commands keep it.</summary>
    internal virtual string? ProfilePathGiven => null;

    /// <summary>Writes a non-terminating error for one bad item.</summary>
    protected void WriteFailure(HeteroBatchException e) => WriteError(Record(e));

    /// <summary>Stops the command: bad set-up, nothing more can be done.</summary>
    protected void Fail(HeteroBatchException e) => ThrowTerminatingError(Record(e));

    /// <summary>Queues output from another thread; written by the pipeline thread in <see cref="Await{T}"/>.</summary>
    protected void Post(Action write)
    {
        _pending.Enqueue(write);
        _posted.Release();
    }

    /// <summary>
    /// Queues output from another thread, waiting while <paramref name="room"/> has none (or until the
    /// command is stopped): a producer runs at most that many writes ahead of what the pipeline takes,
    /// and goes on meanwhile (a file job's writer with the next block while the rows of one are output).
    /// </summary>
    protected void PostWithin(SemaphoreSlim room, Action write)
    {
        try { room.Wait(StopToken); }
        catch (OperationCanceledException) { return; }
        Post(() => { try { write(); } finally { room.Release(); } });
    }

    /// <summary>Waits for engine work while writing what it posted (progress, verbose); Ctrl+C cancels it.</summary>
    protected T Await<T>(Task<T> task)
    {
        var finished = task.ContinueWith(_ => _posted.Release(), TaskContinuationOptions.ExecuteSynchronously);
        while (!finished.IsCompleted)
        {
            _posted.Wait(100); // woken by each post and by the end of the work
            Drain();
        }
        Drain();
        try
        {
            return task.GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
            throw new PipelineStoppedException();
        }
    }

    private void Drain()
    {
        while (_pending.TryDequeue(out var write)) write();
    }

    /// <summary>The use cases (plan, run, record) for this command; warnings go to the warning stream (queued when they come from an engine thread).</summary>
    protected Inference Inference => _inference ??= new Inference(Context, Warn);
    private Inference? _inference;
    private readonly int _pipelineThread = Environment.CurrentManagedThreadId;

    /// <summary>Writes an engine warning: directly on the pipeline thread, queued from any other.</summary>
    protected void Warn(HeteroBatchException w)
    {
        var text = $"[{w.ErrorId}] {w.Message}";
        if (Environment.CurrentManagedThreadId == _pipelineThread) WriteWarning(text);
        else Post(() => WriteWarning(text));
    }

    /// <summary>The model cache folder of the module's settings.</summary>
    internal static string ModelCache => Context.Options.ModelCacheFolder;

    /// <summary>A -ProfilePath (a PowerShell path) as a full file-system path; null stays null (the default store).</summary>
    protected string? StoreFolder(string? profilePath) => profilePath == null ? null : GetUnresolvedProviderPathFromPSPath(profilePath);

    /// <summary>The profile store at -ProfilePath, or the default one; damaged files become warnings.</summary>
    protected ProfileStore OpenStore(string? profilePath) => Engine(() => Inference.Store(StoreFolder(profilePath)));

    /// <summary>Runs engine code, turning its errors into terminating ErrorRecords.</summary>
    protected T Engine<T>(Func<T> work)
    {
        try { return work(); }
        catch (HeteroBatchException e) { Fail(e); throw; }
        catch (AggregateException a) when (a.InnerException is HeteroBatchException e) { Fail(e); throw; }
    }
}
