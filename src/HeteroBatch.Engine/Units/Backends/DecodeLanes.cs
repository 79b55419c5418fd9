using System.Collections.Concurrent;

namespace HeteroBatch.Engine.Units.Backends;

/// <summary>
/// A fixed number of threads of their own that run a decoding unit's chunk decodes in the order they
/// were queued: with one lane, one decode at a time, each starting as soon as the one before ends,
/// whatever the number of device batches waiting for them. A ring of more batches than lanes can then
/// queue chunks ahead without two decodes contending for the same decoder (concurrent calls into
/// nvJPEG on one GPU each took longer, and the job was no faster).
/// Threads: <see cref="Run"/> from any thread; work runs on the lanes' threads (not the pool's: a decode
/// blocks its thread for milliseconds). <see cref="Dispose"/> lets the queued work finish, then ends the lanes.
/// </summary>
internal sealed class DecodeLanes : IDisposable
{
    private readonly BlockingCollection<Action> _queue = new();
    private readonly Thread[] _threads;
    private int _disposed;

    public DecodeLanes(int lanes, string name = "decode")
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(lanes, 1);
        _threads = new Thread[lanes];
        for (int i = 0; i < lanes; i++)
        {
            _threads[i] = new Thread(Drain) { IsBackground = true, Name = $"{name} lane {i}" };
            _threads[i].Start();
        }
    }

    /// <summary>The lanes' threads.</summary>
    public int Threads => _threads.Length;

    /// <summary>Queues <paramref name="work"/> behind what is queued; the task ends with its result or its exception. Throws ObjectDisposedException once disposed.</summary>
    public Task<T> Run<T>(Func<T> work)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _queue.Add(() =>
        {
            try { done.SetResult(work()); }
            catch (Exception e) { done.SetException(e); }
        });
        return done.Task;
    }

    private void Drain()
    {
        foreach (var work in _queue.GetConsumingEnumerable()) work();
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _queue.CompleteAdding();
        // from a lane itself (work that disposes its own lanes), that lane ends once its work returns: join the others
        bool fromLane = false;
        foreach (var t in _threads)
            if (t == Thread.CurrentThread) fromLane = true;
            else t.Join();
        if (!fromLane) _queue.Dispose();
    }
}
