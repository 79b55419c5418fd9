using HeteroBatch.Engine.Execution;

namespace HeteroBatch.Engine.Tests;

/// <summary>The job folder's flusher: rows reach the disk behind the writer, in order, and job.json never ahead of them.</summary>
public sealed class OutputFlusherTests
{
    private static JobCheckpoint Done(int samples) => new() { SamplesDone = samples };

    /// <summary>A persist action that records what it persisted and holds its first call until released.</summary>
    private sealed class HeldDisk
    {
        public readonly List<int> Persisted = new();
        public readonly ManualResetEventSlim FirstStarted = new(), Release = new();

        public void Persist(JobCheckpoint c)
        {
            lock (Persisted) if (Persisted.Count == 0) FirstStarted.Set();
            Release.Wait();
            lock (Persisted) Persisted.Add(c.SamplesDone);
        }
    }

    [Fact]
    public void TheWriterGoesOnWhileTheDiskIsBehindAndACheckpointReplacedBeforeItsTurnIsSkipped()
    {
        var disk = new HeldDisk();
        using var flusher = new OutputFlusher(disk.Persist);
        flusher.Request(Done(8));
        Assert.True(disk.FirstStarted.Wait(TimeSpan.FromSeconds(30)));
        // the first flush has not finished: later blocks are handed on all the same
        flusher.Request(Done(16));
        flusher.Request(Done(24));
        Assert.Empty(disk.Persisted);
        disk.Release.Set();
        flusher.Drain();
        Assert.Equal(new[] { 8, 24 }, disk.Persisted);
    }

    [Fact]
    public void DisposingPersistsWhatIsQueued()
    {
        var disk = new HeldDisk();
        var flusher = new OutputFlusher(disk.Persist);
        flusher.Request(Done(8));
        Assert.True(disk.FirstStarted.Wait(TimeSpan.FromSeconds(30)));
        flusher.Request(Done(16));
        var disposing = Task.Run(flusher.Dispose);
        disk.Release.Set();
        Assert.True(disposing.Wait(TimeSpan.FromSeconds(30)));
        Assert.Equal(new[] { 8, 16 }, disk.Persisted);
    }

    [Fact]
    public void AFailedFlushIsThrownToTheWriterAndNothingIsPersistedAfterIt()
    {
        var persisted = new List<int>();
        using var flusher = new OutputFlusher(c =>
        {
            if (c.SamplesDone == 8) throw new IOException("disk full");
            persisted.Add(c.SamplesDone);
        });
        // the job hears of it at once (it stops), not only at its next block
        Exception? told = null;
        using var heard = new ManualResetEventSlim();
        flusher.Failed = e => { told = e; heard.Set(); };
        flusher.Request(Done(8));
        Assert.True(heard.Wait(TimeSpan.FromSeconds(30)));
        Assert.Equal("disk full", told!.Message);
        Assert.Equal("disk full", Assert.Throws<IOException>(flusher.Drain).Message);
        Assert.Throws<IOException>(() => flusher.Request(Done(16)));
        Assert.Empty(persisted);
    }
}

/// <summary>Bringing a file to disk from a handle, as the flusher does.</summary>
public sealed class FlushToDiskTests
{
    [Fact]
    public void AFileIsFlushedAndADeviceThatCannotFlushIsTakenAsDone()
    {
        if (!OperatingSystem.IsLinux()) return;
        var path = Path.GetTempFileName();
        try
        {
            using (var file = new FileStream(path, FileMode.Open, FileAccess.Write))
            {
                file.Write(new byte[] { 1, 2, 3 });
                file.Flush(flushToDisk: false);
                Assert.True(Runtime.Libc.FlushToDisk(file.SafeFileHandle, path));
            }
            // fsync on /dev/null fails with EINVAL: as .NET's own flush, not a failed job
            using var nothing = new FileStream("/dev/null", FileMode.Open, FileAccess.Write);
            Assert.True(Runtime.Libc.FlushToDisk(nothing.SafeFileHandle, "/dev/null"));
        }
        finally { File.Delete(path); }
    }
}
