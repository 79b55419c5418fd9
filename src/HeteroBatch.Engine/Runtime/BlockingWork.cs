namespace HeteroBatch.Engine.Runtime;

/// <summary>
/// Work that blocks for as long as an inference request or a unit's share (a remote call, a wait for
/// the units): run on a thread of its own, never on the thread pool. Blocked pool threads starve
/// the pool's other work (HTTP continuations, the server's own handlers), and on a 2-core host the
/// pool adds threads only about twice a second, so requests meant to overlap run one after another.
/// </summary>
internal static class BlockingWork
{
    public static Task Start(Action work) =>
        Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    public static Task<T> Start<T>(Func<T> work) =>
        Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
}
