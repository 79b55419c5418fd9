using System.Diagnostics;
using System.Text.Json;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Runtime;
using Xunit.Abstractions;

namespace HeteroBatch.Engine.Tests;

/// <summary>
/// Issue 25, "File jobs": files and names a folder can hold that are not ordinary images. Each is an
/// error for its own sample, the job goes on, and inputs.txt stays one line a sample.
/// </summary>
public sealed class HostileFilesTests(ITestOutputHelper log) : IDisposable
{
    private readonly EngineContext _context = new();
    private readonly string _dir = Directory.CreateTempSubdirectory("hb-hostile-files-").FullName;

    public void Dispose()
    {
        _context.Dispose();
        if (OperatingSystem.IsLinux()) Shell("/", $"rm -rf '{_dir}'"); // .NET cannot delete a name that is not UTF-8 either
        else Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Runs a shell command line (names with bytes that are not UTF-8 cannot be made through .NET).</summary>
    private static void Shell(string folder, string script)
    {
        var start = new ProcessStartInfo("/bin/sh") { WorkingDirectory = folder, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        using var p = Process.Start(start)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{script}: {err}");
    }

    private BatchPlan Plan()
    {
        var units = TestModels.TwoCpuUnits();
        return PlanLayout.Manual("tinynet", TestModels.Tiny.Sha256, new List<ShareSpec> { new(units[0], 3, 3, 1), new(units[^1], 3, 2, 1) });
    }

    private static JobCheckpoint Job(InputFiles files) =>
        new() { Model = "tinynet", ModelSha256 = TestModels.Tiny.Sha256, Inputs = files.Identity(), Samples = files.SampleCount, Preprocessing = ImagePreprocessing.ImageNet.ToString(), Outputs = new[] { "logits" } };

    private (InputFiles Files, IReadOnlyList<TensorSpec> Outputs) Inputs(string folder)
    {
        var signature = PartitionedRunner.Signature(_context, Plan(), TestModels.Tiny);
        return (InputFiles.For(InputFiles.ExpandPaths(new[] { folder }), signature.Inputs), signature.Outputs);
    }

    private string FolderOfOddFiles()
    {
        var folder = Path.Combine(_dir, "in");
        Directory.CreateDirectory(folder);
        var photo = FastPreprocessingTests.Photo(64, 48, 3);
        File.WriteAllBytes(Path.Combine(folder, "a.jpg"), photo);
        File.WriteAllBytes(Path.Combine(folder, "d\nline.jpg"), photo); // a newline in the name
        File.WriteAllBytes(Path.Combine(folder, "e\\back.jpg"), photo);
        File.WriteAllBytes(Path.Combine(folder, "f.jpg"), photo);
        Shell(folder, "mkfifo c-fifo.jpg && cp a.jpg \"$(printf 'b-\\377\\376.jpg')\"");
        return folder;
    }

    [Fact]
    public void ReadingAFifosBytesForAUnitThatDecodesIsAnErrorForItsSample_NotAReadThatWaitsForEver()
    {
        if (!OperatingSystem.IsLinux()) return;
        var folder = FolderOfOddFiles();
        var (files, _) = Inputs(folder);
        int fifo = Enumerable.Range(0, files.SampleCount).Single(i => files.NameOf(i) == "c-fifo.jpg");
        // the bytes a decoding GPU (or a server that decodes) is given are read on the job's threads: the FIFO has no
        // writer, so a read would wait for ever; the task lets the test give up on it
        var read = Task.Run(() => Assert.Throws<HeteroBatchException>(() => files.ReadBytes(fifo, null)));
        if (!read.Wait(TimeSpan.FromMinutes(1)))
        {
            Shell(folder, "exec 3<>c-fifo.jpg");
            Assert.Fail("reading the FIFO's bytes hung");
        }
        Assert.Equal("InputFileUnreadable", read.Result.ErrorId);
        Assert.Contains("FIFO", read.Result.Message);
    }

    [Fact]
    public void AFifoOrANameThatIsNotUtf8IsAnErrorForItsSample_TheJobGoesOnAndInputsTxtIsOneLineASample()
    {
        if (!OperatingSystem.IsLinux()) return;
        var folder = FolderOfOddFiles();
        var (files, outputs) = Inputs(folder); // listing alone threw FileNotFoundException for the name that is not UTF-8
        Assert.Equal(6, files.SampleCount);
        var output = Path.Combine(_dir, "out");
        var seen = new List<SamplePrediction>();
        // the FIFO has no writer: reading it would wait for ever, so the job runs on a task the test can give up on
        var run = Task.Run(() =>
        {
            using var job = JobOutput.Open(output, Job(files), files, outputs, resume: false, force: false);
            var summary = FileJob.Run(_context, Plan(), TestModels.Tiny, files, job, new RunSettings { DecodeThreads = 2 }, seen.AddRange, default);
            job.Complete(summary);
            return summary;
        });
        if (!run.Wait(TimeSpan.FromMinutes(3)))
        {
            Shell(folder, "exec 3<>c-fifo.jpg"); // lets the stuck read finish so the test process can end
            Assert.Fail("the job hung on the FIFO");
        }
        var summary = run.Result;
        foreach (var p in seen) log.WriteLine($"{p.Index} {p.Input}: {p.ErrorId} {p.Error}");
        Assert.Equal(2, summary.SamplesFailed);
        var byName = seen.ToDictionary(p => p.Input);
        Assert.Equal("InputFileUnreadable", byName["c-fifo.jpg"].ErrorId);
        Assert.Contains("FIFO", byName["c-fifo.jpg"].Error);
        var odd = seen.Single(p => p.Input.StartsWith("b-", StringComparison.Ordinal));
        Assert.Equal("InputFileUnreadable", odd.ErrorId);
        Assert.Contains("UTF-8", odd.Error);
        foreach (var ok in new[] { "a.jpg", "d\nline.jpg", "e\\back.jpg", "f.jpg" }) Assert.Null(byName[ok].Error);

        // line i of inputs.txt is sample i: the newline and the backslash are escaped, other names are as they were
        var lines = File.ReadAllLines(Path.Combine(output, JobOutput.InputsFile));
        Assert.Equal(files.SampleCount, lines.Length);
        for (int i = 0; i < lines.Length; i++) Assert.Equal(JobOutput.EscapeName(files.NameOf(i)), lines[i]);
        Assert.Contains("d\\nline.jpg", lines);
        Assert.Contains("e\\\\back.jpg", lines);
        Assert.Equal("a.jpg", lines[0]);
    }

    [Fact]
    public void ANpyThatIsAFifoIsRefusedWhenListedInsteadOfHangingOnItsHeader()
    {
        if (!OperatingSystem.IsLinux()) return;
        var folder = Path.Combine(_dir, "npy");
        Directory.CreateDirectory(folder);
        Shell(folder, "mkfifo batch.npy");
        var listing = Task.Run(() => Assert.Throws<HeteroBatchException>(() => Inputs(folder)));
        if (!listing.Wait(TimeSpan.FromMinutes(2)))
        {
            Shell(folder, "exec 3<>batch.npy");
            Assert.Fail("listing hung on the FIFO");
        }
        Assert.Equal("InputFileUnreadable", listing.Result.ErrorId);
        Assert.Contains("FIFO", listing.Result.Message);
    }

    [Fact]
    public void EscapedNamesAreOneLineEach_AndPlainNamesAreUnchanged()
    {
        Assert.Equal("img001.jpg", JobOutput.EscapeName("img001.jpg"));
        Assert.Equal("fotó ünïcode.jpg", JobOutput.EscapeName("fotó ünïcode.jpg"));
        Assert.Equal("a\\nb\\rc\\td\\\\e\\u0001f\\u2028g\\u0085.jpg", JobOutput.EscapeName("a\nb\rc\td\\e\u0001f\u2028g\u0085.jpg"));
    }

    [Fact]
    public void ResumingAFolderWrittenBeforeNamesWereEscapedWritesItsInputsTxtAgain()
    {
        var folder = Path.Combine(_dir, "in");
        Directory.CreateDirectory(folder);
        var photo = FastPreprocessingTests.Photo(40, 30, 4);
        File.WriteAllBytes(Path.Combine(folder, "a.jpg"), photo);
        File.WriteAllBytes(Path.Combine(folder, "b\nc.jpg"), photo);
        var (files, outputs) = Inputs(folder);
        var output = Path.Combine(_dir, "old");
        using (JobOutput.Open(output, Job(files), files, outputs, resume: false, force: false)) { }
        // as the previous version left it: job.json of version 1, names as they were
        var statePath = Path.Combine(output, JobOutput.StateFile);
        var old = JsonSerializer.Deserialize<JobCheckpoint>(File.ReadAllText(statePath))! with { Version = 1 };
        File.WriteAllText(statePath, JsonSerializer.Serialize(old));
        File.WriteAllText(Path.Combine(output, JobOutput.InputsFile + ".partial"), "a.jpg\nb\nc.jpg\n");

        using (var resumed = JobOutput.Open(output, Job(files), files, outputs, resume: true, force: false))
            Assert.Equal(0, resumed.ResumedAt);
        Assert.Equal(new[] { "a.jpg", "b\\nc.jpg" }, File.ReadAllLines(Path.Combine(output, JobOutput.InputsFile + ".partial")));
    }
}
