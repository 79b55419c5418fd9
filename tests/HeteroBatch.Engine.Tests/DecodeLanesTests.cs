using System.Collections.Concurrent;
using HeteroBatch.Engine.Units.Backends;

namespace HeteroBatch.Engine.Tests;

/// <summary>The threads a decoding GPU's chunks decode on: in the order queued, as many at once as lanes, failures handed back, nothing dropped at the end.</summary>
public sealed class DecodeLanesTests
{
    [Fact]
    public void OneLaneRunsEveryDecodeOnOneThreadInTheOrderQueued()
    {
        using var lanes = new DecodeLanes(1);
        var order = new ConcurrentQueue<int>();
        var threads = new ConcurrentBag<int>();
        var gate = new ManualResetEventSlim();
        var tasks = Enumerable.Range(0, 6).Select(i => lanes.Run(() =>
        {
            if (i == 0) gate.Wait(); // the rest queue up behind it
            order.Enqueue(i);
            threads.Add(Environment.CurrentManagedThreadId);
            return i;
        })).ToArray();
        gate.Set();
        Assert.Equal(Enumerable.Range(0, 6), tasks.Select(t => t.GetAwaiter().GetResult()));
        Assert.Equal(Enumerable.Range(0, 6), order);
        Assert.Single(threads.Distinct()); // one at a time: never two threads
        Assert.DoesNotContain(Environment.CurrentManagedThreadId, threads);
    }

    [Fact]
    public void NLanesRunNDecodesAtOnce()
    {
        using var lanes = new DecodeLanes(3);
        using var allStarted = new CountdownEvent(3);
        // each waits for the other two to start: only three lanes at once let them all end (the bound is a guard, not a measure)
        var tasks = Enumerable.Range(0, 3).Select(_ => lanes.Run(() => { allStarted.Signal(); return allStarted.Wait(TimeSpan.FromSeconds(30)); })).ToArray();
        Assert.All(tasks, t => Assert.True(t.GetAwaiter().GetResult()));
    }

    [Fact]
    public void AFailedDecodeFailsItsTaskAndTheLaneGoesOn()
    {
        using var lanes = new DecodeLanes(1);
        var failed = lanes.Run<int>(() => throw new InvalidOperationException("bad chunk"));
        var next = lanes.Run(() => 7);
        Assert.Equal("bad chunk", Assert.Throws<InvalidOperationException>(() => failed.GetAwaiter().GetResult()).Message);
        Assert.Equal(7, next.GetAwaiter().GetResult());
    }

    [Fact]
    public void DisposeLetsWhatIsQueuedEndFirst()
    {
        var lanes = new DecodeLanes(2);
        int ran = 0;
        var gate = new ManualResetEventSlim();
        var tasks = Enumerable.Range(0, 5).Select(i => lanes.Run(() => { if (i == 0) gate.Wait(); return Interlocked.Increment(ref ran); })).ToArray();
        gate.Set();
        lanes.Dispose();
        Assert.Equal(5, ran);
        Assert.All(tasks, t => Assert.True(t.IsCompletedSuccessfully));
        lanes.Dispose(); // twice is harmless
    }

    [Fact]
    public void NothingIsQueuedOnceDisposedAndDisposingFromALaneReturns()
    {
        var lanes = new DecodeLanes(2);
        var disposedFromLane = lanes.Run(() => { lanes.Dispose(); return true; });
        Assert.True(disposedFromLane.GetAwaiter().GetResult()); // without joining its own thread (a hang otherwise)
        Assert.Throws<ObjectDisposedException>(() => { _ = lanes.Run(() => 1); });
    }
}
