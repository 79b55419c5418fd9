using System.Collections.Concurrent;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Sessions;
using HeteroBatch.Engine.Units.Backends;
using Microsoft.ML.OnnxRuntime;

namespace HeteroBatch.Engine.Units;

/// <summary>
/// One long-lived thread per compute unit, pinned where the unit's backend says (a CPU unit's
/// first processor, a GPU's feeder). Every session of the unit is created, run and disposed on
/// that thread, cached per model. Only that thread touches <see cref="_models"/>.
/// </summary>
public sealed class UnitWorker : IDisposable
{
    private readonly BlockingCollection<Action> _queue = new();
    private readonly Thread _thread;
    private readonly IUnitBackend _backend;
    private readonly Dictionary<string, IModelSession> _models = new(); // worker thread only
    private readonly TaskCompletionSource<bool> _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ComputeUnit Unit { get; }
    public EngineOptions Settings { get; }
    /// <summary>True if the worker thread is pinned to the unit's processors.</summary>
    public bool Pinned { get; private set; }
    /// <summary>The processors the worker thread may run on, read back from the OS after pinning.</summary>
    public int[]? Affinity { get; private set; }

    public UnitWorker(ComputeUnit unit, EngineOptions settings)
    {
        Unit = unit;
        Settings = settings;
        _backend = UnitBackends.For(unit);
        _thread = new Thread(Loop) { IsBackground = true, Name = $"HeteroBatch {unit.Id}" };
        _thread.Start();
        _started.Task.Wait();
    }

    private void Loop()
    {
        if (_backend.WorkerProcessor(Unit) is int p)
        {
            Pinned = Libc.PinCurrentThread(new[] { p });
            Affinity = Libc.CurrentThreadAffinity();
        }
        _started.SetResult(true);
        foreach (var work in _queue.GetConsumingEnumerable()) work();
        // the queue is closed: sessions end on the thread that made them
        foreach (var m in _models.Values) m.Dispose();
        _models.Clear();
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

    /// <summary>The cached session of a model on this unit; opened on first use. Call on the worker thread.</summary>
    public IModelSession Load(ModelSource model)
    {
        if (Thread.CurrentThread != _thread) throw new InvalidOperationException("Load must run on the unit's worker thread");
        if (_models.TryGetValue(model.SessionKey, out var loaded)) return loaded;
        try
        {
            // the unit's precision picks the file: the model itself, or its fp16 form (converted once, cached)
            loaded = _backend.Open(Unit, model, Settings);
        }
        catch (OnnxRuntimeException e)
        {
            throw new HeteroBatchException("SessionFailed", FailureKind.ResourceUnavailable,
                $"Could not start model '{model.Name}' on unit '{Unit.Id}' ({_backend.Name}): {e.Message.Trim()}", Unit.Id, e);
        }
        _models[model.SessionKey] = loaded;
        return loaded;
    }

    /// <summary>Closes the queue; the thread disposes its sessions and ends; then it is joined.</summary>
    public void Dispose()
    {
        if (_queue.IsAddingCompleted) return;
        _queue.CompleteAdding();
        if (Thread.CurrentThread != _thread) _thread.Join(TimeSpan.FromSeconds(30));
    }
}

/// <summary>The workers of one engine context, one per unit (by id and fingerprint), reused across commands.</summary>
public sealed class WorkerPool : IDisposable
{
    private readonly EngineOptions _settings;
    // guards nothing beyond itself: ConcurrentDictionary + Lazy make one worker per key
    private readonly ConcurrentDictionary<string, Lazy<UnitWorker>> _workers = new();
    private bool _disposed;

    public WorkerPool(EngineOptions settings) => _settings = settings;

    public UnitWorker For(ComputeUnit unit)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        // a unit given another bearer token gets a worker (and sessions) of its own
        var key = $"{unit.Id}|{unit.Fingerprint}" + (unit.Token is { } token ? $"|{token.Key}" : "");
        return _workers.GetOrAdd(key, _ => new Lazy<UnitWorker>(() => new UnitWorker(unit, _settings))).Value;
    }

    /// <summary>Ends every worker and releases their sessions.</summary>
    public void Dispose()
    {
        _disposed = true;
        foreach (var w in _workers.Values) if (w.IsValueCreated) w.Value.Dispose();
        _workers.Clear();
    }
}
