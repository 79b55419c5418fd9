using System.Collections.Concurrent;
using System.Management.Automation;
using HeteroBatch.Engine;
using HeteroBatch.Engine.Profiling;

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

    protected CancellationToken StopToken => _stop.Token;

    protected override void StopProcessing() => _stop.Cancel();

    protected static ErrorCategory CategoryOf(FailureKind kind) => kind switch
    {
        FailureKind.InvalidArgument => ErrorCategory.InvalidArgument,
        FailureKind.ObjectNotFound => ErrorCategory.ObjectNotFound,
        FailureKind.InvalidData => ErrorCategory.InvalidData,
        FailureKind.ResourceUnavailable => ErrorCategory.ResourceUnavailable,
        FailureKind.OperationStopped => ErrorCategory.OperationStopped,
        FailureKind.WriteError => ErrorCategory.WriteError,
        _ => ErrorCategory.InvalidOperation,
    };

    protected static ErrorRecord Record(HeteroBatchException e) => new(e, e.ErrorId, CategoryOf(e.Kind), e.Target);

    /// <summary>Writes a non-terminating error for one bad item.</summary>
    protected void WriteFailure(HeteroBatchException e) => WriteError(Record(e));

    /// <summary>Stops the command: bad set-up, nothing more can be done.</summary>
    protected void Fail(HeteroBatchException e) => ThrowTerminatingError(Record(e));

    /// <summary>Queues output from another thread; written by the pipeline thread in <see cref="Await{T}"/>.</summary>
    protected void Post(Action write) => _pending.Enqueue(write);

    /// <summary>Waits for engine work while writing what it posted (progress, verbose); Ctrl+C cancels it.</summary>
    protected T Await<T>(Task<T> task)
    {
        var finished = task.ContinueWith(_ => { }, TaskContinuationOptions.ExecuteSynchronously);
        while (!finished.Wait(50))
            Drain();
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

    /// <summary>The profile store at -ProfilePath (a PowerShell path), or the default one; damaged files become warnings.</summary>
    internal static ProfileStore OpenStore(PSCmdlet cmdlet, string? profilePath) =>
        new(profilePath == null ? null : cmdlet.GetUnresolvedProviderPathFromPSPath(profilePath),
            w => cmdlet.WriteWarning($"[{w.ErrorId}] {w.Message}"));

    protected ProfileStore OpenStore(string? profilePath) => OpenStore(this, profilePath);

    /// <summary>Runs engine code, turning its errors into terminating ErrorRecords.</summary>
    protected T Engine<T>(Func<T> work)
    {
        try { return work(); }
        catch (HeteroBatchException e) { Fail(e); throw; }
        catch (AggregateException a) when (a.InnerException is HeteroBatchException e) { Fail(e); throw; }
    }
}
