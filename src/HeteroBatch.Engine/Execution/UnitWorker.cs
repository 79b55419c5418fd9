using System.Collections.Concurrent;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Units;
using Microsoft.ML.OnnxRuntime;

namespace HeteroBatch.Engine.Execution;

/// <summary>
/// One long-lived thread per compute unit. CPU units' threads are pinned to their processors
/// (ORT runs a session's work on the calling thread plus its own pool), and every session of
/// the unit is created and run on that thread, cached per model.
/// </summary>
public sealed class UnitWorker : IDisposable
{
    private readonly BlockingCollection<Action> _queue = new();
    private readonly Thread _thread;
    private readonly Dictionary<string, LoadedModel> _models = new();
    private readonly TaskCompletionSource<bool> _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ComputeUnit Unit { get; }
    public ProviderSettings Settings { get; }
    /// <summary>True if the worker thread is pinned to the unit's processors.</summary>
    public bool Pinned { get; private set; }
    /// <summary>The processors the worker thread may run on, read back from the OS after pinning.</summary>
    public int[]? Affinity { get; private set; }

    public UnitWorker(ComputeUnit unit, ProviderSettings? settings = null)
    {
        Unit = unit;
        Settings = settings ?? ProviderSettings.Default;
        _thread = new Thread(Loop) { IsBackground = true, Name = $"HeteroBatch {unit.Id}" };
        _thread.Start();
        _started.Task.Wait();
    }

    private void Loop()
    {
        int? pinTo = Unit.Provider == ExecutionProvider.CPU && Unit.Processors.Length > 0 ? Unit.Processors[0] : Unit.FeederProcessor;
        if (pinTo is int p)
        {
            Pinned = Libc.PinCurrentThread(new[] { p });
            Affinity = Libc.CurrentThreadAffinity();
        }
        _started.SetResult(true);
        foreach (var work in _queue.GetConsumingEnumerable()) work();
    }

    /// <summary>Runs work on the worker thread.</summary>
    public Task<T> Invoke<T>(Func<T> work)
    {
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            _queue.Add(() =>
            {
                try { tcs.SetResult(work()); }
                catch (Exception e) { tcs.SetException(e); }
            });
        }
        catch (InvalidOperationException)
        {
            tcs.SetException(new ObjectDisposedException(nameof(UnitWorker)));
        }
        return tcs.Task;
    }

    /// <summary>The cached session of a model on this unit; created on first use. Call on the worker thread.</summary>
    public LoadedModel Load(ModelSource model)
    {
        if (Thread.CurrentThread != _thread) throw new InvalidOperationException("Load must run on the unit's worker thread");
        if (_models.TryGetValue(model.Sha256, out var loaded)) return loaded;
        try
        {
            using var options = SessionFactory.Options(Unit, Settings);
            loaded = new LoadedModel(new InferenceSession(model.Path, options));
        }
        catch (OnnxRuntimeException e)
        {
            throw new HeteroBatchException("SessionFailed", FailureKind.ResourceUnavailable,
                $"Could not start model '{model.Name}' on unit '{Unit.Id}' ({Unit.Provider}): {e.Message.Trim()}", Unit.Id, e);
        }
        _models[model.Sha256] = loaded;
        return loaded;
    }

    public void Dispose()
    {
        _queue.CompleteAdding();
        if (Thread.CurrentThread != _thread) _thread.Join(TimeSpan.FromSeconds(30));
        foreach (var m in _models.Values) m.Dispose();
        _models.Clear();
    }
}

/// <summary>The process-wide workers, one per unit (by id and fingerprint), reused across commands.</summary>
public static class WorkerPool
{
    private static readonly ConcurrentDictionary<string, Lazy<UnitWorker>> Workers = new();

    public static UnitWorker For(ComputeUnit unit, ProviderSettings? settings = null)
    {
        var s = settings ?? ProviderSettings.Default;
        var key = $"{unit.Id}|{unit.Fingerprint}|{s}";
        return Workers.GetOrAdd(key, _ => new Lazy<UnitWorker>(() => new UnitWorker(unit, s))).Value;
    }

    /// <summary>Ends every worker and releases their sessions.</summary>
    public static void Clear()
    {
        foreach (var w in Workers.Values) if (w.IsValueCreated) w.Value.Dispose();
        Workers.Clear();
    }
}
