using System.Globalization;
using System.Text;
using System.Text.Json;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Runtime;

namespace HeteroBatch.Engine.Execution;

/// <summary>What a job's folder says about it: which job it is and how far it got.</summary>
public sealed record JobCheckpoint
{
    /// <summary>2: inputs.txt holds escaped names (<see cref="JobOutput.EscapeName"/>); 1: as they were (a folder resumed from 1 has its inputs.txt written again).</summary>
    public int Version { get; init; } = JobOutput.FormatVersion;
    public string Model { get; init; } = "";
    public string ModelSha256 { get; init; } = "";
    /// <summary><see cref="InputFiles.Identity"/> of the inputs.</summary>
    public string Inputs { get; init; } = "";
    public int Samples { get; init; }
    public string Preprocessing { get; init; } = "";
    public string[] Outputs { get; init; } = Array.Empty<string>();
    /// <summary>Samples [0, SamplesDone) have their rows in every output file and the predictions file.</summary>
    public int SamplesDone { get; init; }
    /// <summary>Length of the predictions file when SamplesDone was reached.</summary>
    public long CsvBytes { get; init; }
    public bool Completed { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }
    /// <summary>With <see cref="ShardCount"/> above 0: this folder holds shard Shard of ShardCount of a job (<see cref="JobShard"/>).</summary>
    public int Shard { get; init; }
    /// <summary>0 for a whole job.</summary>
    public int ShardCount { get; init; }
    /// <summary>For a shard: <see cref="JobShard.ListIdentity"/> of the whole job's files (the same for every shard of one job).</summary>
    public string JobFiles { get; init; } = "";

    /// <summary>True when <paramref name="other"/> is the same job (same model, inputs, preprocessing, outputs and shard).</summary>
    public bool SameJob(JobCheckpoint other) => Model == other.Model && ModelSha256 == other.ModelSha256 && Inputs == other.Inputs
        && Samples == other.Samples && Preprocessing == other.Preprocessing && Outputs.SequenceEqual(other.Outputs)
        && Shard == other.Shard && ShardCount == other.ShardCount && JobFiles == other.JobFiles;
}

/// <summary>
/// A job's output folder: predictions.csv (one row a sample, in input order), one .npy per model
/// output, inputs.txt, and job.json (how far it got). Rows are written as blocks finish, in input
/// order; the files keep a .partial suffix until the last sample is in, then are renamed. Each
/// block's rows are handed to the OS by the writer; a thread of the folder's own then flushes every
/// file to disk and only then replaces job.json (the writer goes on meanwhile: see
/// <see cref="OutputFlusher"/>), so a job stopped at any point (Ctrl+C, a crash, kill -9) resumes
/// from its last whole block on disk. One job at a time writes a folder (job.lock).
/// </summary>
public sealed class JobOutput : IDisposable
{
    public const string PredictionsFile = "predictions.csv";
    public const string StateFile = "job.json";
    public const string InputsFile = "inputs.txt";
    /// <summary>The folder format written now (<see cref="JobCheckpoint.Version"/>).</summary>
    public const int FormatVersion = 2;
    public const string SummaryFile = "summary.json";
    private const string LockFile = "job.lock";
    private const string Partial = ".partial";
    private const string CsvHeader = "index,input,unit,class,score,top_classes,top_scores,error\n";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    private readonly FileStream _lock;
    private readonly List<NpyWriter> _npy;
    private readonly FileStream? _csv; // null once the job is complete
    private readonly OutputFlusher? _flusher; // null where files are flushed on the writer's thread (not Linux) or the job is complete
    private JobCheckpoint _state; // as the writer left it (on disk once the flusher has persisted it)
    public string Folder { get; }
    /// <summary>Samples already done when this job was opened (resumed).</summary>
    public int ResumedAt { get; }
    public bool Completed => _state.Completed;

    private JobOutput(string folder, FileStream lockFile, List<NpyWriter> npy, FileStream? csv, JobCheckpoint state)
    {
        Folder = folder; _lock = lockFile; _npy = npy; _csv = csv; _state = state; ResumedAt = state.SamplesDone;
        if (csv != null && OperatingSystem.IsLinux())
        {
            var handles = npy.Select(n => (n.Handle, n.Path)).Prepend((csv.SafeFileHandle, csv.Name)).ToList();
            _flusher = new OutputFlusher(checkpoint =>
            {
                foreach (var (handle, path) in handles) Libc.FlushToDisk(handle, path);
                WriteState(folder, checkpoint);
            });
        }
    }

    /// <summary>Waits until every block written so far is on disk and recorded in job.json. Throws OutputWriteFailed where that failed.</summary>
    public void WaitForDisk()
    {
        try { _flusher?.Drain(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw WriteFailed(Folder, e); }
    }

    /// <summary>
    /// Calls <paramref name="failed"/> (on the flusher's thread) with OutputWriteFailed as soon as bringing rows to disk
    /// fails, so that the job stops at once rather than at its next block; a later block's write or <see cref="WaitForDisk"/> throws it too.
    /// </summary>
    public void OnFlushFailure(Action<HeteroBatchException> failed)
    {
        if (_flusher != null) _flusher.Failed = e => failed(WriteFailed(Folder, e));
    }

    private static HeteroBatchException WriteFailed(string folder, Exception e) =>
        new("OutputWriteFailed", FailureKind.WriteError, $"Could not write the outputs to {folder}: {e.Message}", folder, e) { StopsCommand = true };

    /// <summary>Wall time spent bringing rows to disk and recording them in job.json (on the flusher's thread where there is one).</summary>
    public double FlushMs => _flusher?.Ms ?? _syncMs;
    private double _syncMs;

    /// <summary>A file name for an output tensor's .npy.</summary>
    public static string FileNameOf(string outputName) => FileNames.Safe(outputName) + ".npy";

    /// <summary>
    /// Starts a job in <paramref name="folder"/>, or with <paramref name="resume"/> goes on with the
    /// one there (a fresh start where there is none). A folder that holds another job's files is
    /// refused unless <paramref name="force"/>. Throws OutputPathInUse, ResumeMismatch, OutputWriteFailed.
    /// </summary>
    public static JobOutput Open(string folder, JobCheckpoint job, InputFiles inputs, IReadOnlyList<TensorSpec> outputs, bool resume, bool force)
    {
        FileStream? lockFile = null;
        try
        {
            Directory.CreateDirectory(folder);
            try { lockFile = new FileStream(Path.Combine(folder, LockFile), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
            catch (IOException) { throw new HeteroBatchException("OutputPathInUse", FailureKind.ResourceUnavailable, $"Another job is writing to {folder}.", folder) { StopsCommand = true }; }

            var statePath = Path.Combine(folder, StateFile);
            JobCheckpoint? found = null;
            if (File.Exists(statePath))
            {
                try { found = JsonSerializer.Deserialize<JobCheckpoint>(File.ReadAllText(statePath)); }
                catch (JsonException) { /* unreadable: treated as another job's */ }
            }
            var ours = outputs.Select(o => FileNameOf(o.Name)).Concat(new[] { PredictionsFile, InputsFile, StateFile }).ToList();
            bool occupied = found != null || ours.Any(f => File.Exists(Path.Combine(folder, f)) || File.Exists(Path.Combine(folder, f + Partial)));

            if (resume && found != null && !force)
            {
                if (!found.SameJob(job))
                    throw new HeteroBatchException("ResumeMismatch", FailureKind.InvalidData,
                        $"{folder} holds a job of '{found.Model}'{(found.ShardCount > 0 ? $" (shard {found.Shard}/{found.ShardCount})" : "")} over other inputs, settings or shard ({found.SamplesDone} of {found.Samples} samples done); resume it with the same model, files and preprocessing, or start again with -Force.", folder) { StopsCommand = true };
                var reopened = Reopen(folder, found, inputs, outputs, lockFile);
                lockFile = null;
                return reopened;
            }
            if (occupied && !force)
                throw new HeteroBatchException("OutputPathInUse", FailureKind.ResourceUnavailable,
                    found != null
                        ? $"{folder} holds a job ({found.SamplesDone} of {found.Samples} samples done{(found.Completed ? ", completed" : "")}); use -Resume to go on with it or -Force to start again."
                        : $"{folder} already holds output files; use -Force to replace them or choose another folder.", folder) { StopsCommand = true };
            foreach (var f in ours)
            {
                File.Delete(Path.Combine(folder, f));
                File.Delete(Path.Combine(folder, f + Partial));
            }
            File.Delete(Path.Combine(folder, SummaryFile));
            var fresh = Create(folder, job, inputs, outputs, lockFile);
            lockFile = null;
            return fresh;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw WriteFailed(folder, e); }
        finally { lockFile?.Dispose(); }
    }

    /// <summary>
    /// A sample's name as one line of inputs.txt: a backslash is written "\\", a line feed "\n", a carriage return
    /// "\r", a tab "\t", and every other control character or Unicode line or paragraph separator "\uXXXX", so that
    /// line i is sample i whatever the file system allows in a name. Names without those characters are unchanged.
    /// </summary>
    public static string EscapeName(string name)
    {
        int i = 0;
        while (i < name.Length && !NeedsEscape(name[i])) i++;
        if (i == name.Length) return name;
        var b = new StringBuilder(name.Length + 8).Append(name, 0, i);
        for (; i < name.Length; i++)
        {
            char c = name[i];
            if (!NeedsEscape(c)) { b.Append(c); continue; }
            b.Append(c switch
            {
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ => $"\\u{(int)c:x4}",
            });
        }
        return b.ToString();
    }

    private static bool NeedsEscape(char c) => c == '\\' || c < ' ' || c == '\x7f' || c == '\u0085' || c == '\u2028' || c == '\u2029';

    private static void WriteInputs(string folder, InputFiles inputs) =>
        AtomicFile.Write(Path.Combine(folder, InputsFile + Partial), s =>
        {
            using var w = new StreamWriter(s, new UTF8Encoding(false), 1 << 16, leaveOpen: true);
            for (int i = 0; i < inputs.SampleCount; i++) { w.Write(EscapeName(inputs.NameOf(i))); w.Write('\n'); }
        });

    private static JobOutput Create(string folder, JobCheckpoint job, InputFiles inputs, IReadOnlyList<TensorSpec> outputs, FileStream lockFile)
    {
        WriteInputs(folder, inputs);
        var npy = outputs.Select(o => NpyWriter.Create(Path.Combine(folder, FileNameOf(o.Name) + Partial), o.ElementType, o.SampleShape, job.Samples)).ToList();
        var csv = new FileStream(Path.Combine(folder, PredictionsFile + Partial), FileMode.Create, FileAccess.ReadWrite, FileShare.Read, 1 << 16);
        csv.Write(Encoding.UTF8.GetBytes(CsvHeader));
        csv.Flush(flushToDisk: true);
        foreach (var n in npy) n.Flush();
        var state = job with { SamplesDone = 0, CsvBytes = csv.Length, Completed = false, UpdatedAt = DateTimeOffset.UtcNow };
        WriteState(folder, state);
        return new JobOutput(folder, lockFile, npy, csv, state);
    }

    private static JobOutput Reopen(string folder, JobCheckpoint state, InputFiles inputs, IReadOnlyList<TensorSpec> outputs, FileStream lockFile)
    {
        if (state.Completed) return new JobOutput(folder, lockFile, new(), null, state);
        if (state.Version < FormatVersion && File.Exists(Path.Combine(folder, InputsFile + Partial)))
        {
            // a folder from before names were escaped: its inputs.txt is written again in today's form (it holds the same
            // job's names), and job.json says so from the next block on
            WriteInputs(folder, inputs);
            state = state with { Version = FormatVersion };
        }
        var npy = new List<NpyWriter>();
        foreach (var o in outputs)
        {
            var w = NpyWriter.Reopen(Path.Combine(folder, FileNameOf(o.Name) + Partial), o.ElementType, o.SampleShape, state.Samples);
            if (w == null)
            {
                npy.ForEach(n => n.Dispose());
                throw new HeteroBatchException("ResumeMismatch", FailureKind.InvalidData,
                    $"{folder} has no usable {FileNameOf(o.Name) + Partial} for the job it describes; start again with -Force.", folder) { StopsCommand = true };
            }
            npy.Add(w);
        }
        var csvPath = Path.Combine(folder, PredictionsFile + Partial);
        if (!File.Exists(csvPath) || new FileInfo(csvPath).Length < state.CsvBytes || !File.Exists(Path.Combine(folder, InputsFile + Partial)))
        {
            npy.ForEach(n => n.Dispose());
            throw new HeteroBatchException("ResumeMismatch", FailureKind.InvalidData, $"{folder} is missing rows its job.json counts as done; start again with -Force.", folder) { StopsCommand = true };
        }
        var csv = new FileStream(csvPath, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, 1 << 16);
        csv.SetLength(state.CsvBytes); // rows of a block that was not committed
        csv.Position = state.CsvBytes;
        return new JobOutput(folder, lockFile, npy, csv, state);
    }

    private static void WriteState(string folder, JobCheckpoint state) =>
        AtomicFile.WriteText(Path.Combine(folder, StateFile), JsonSerializer.Serialize(state, Json));

    /// <summary>
    /// Writes the rows of samples [first, first + count): every output's values (taken from
    /// <paramref name="outputs"/> at offset 0) and the predictions, handed to the OS; the flusher
    /// then brings them to disk and records the samples as done (here, where there is none). Blocks
    /// must come in input order. Throws OutputWriteFailed, also for an earlier block's flush that failed.
    /// </summary>
    public void Commit(int first, int count, IReadOnlyList<TensorBatch> outputs, IReadOnlyList<SamplePrediction> predictions)
    {
        if (_csv == null || first != _state.SamplesDone) throw new InvalidOperationException($"block at {first} committed after {_state.SamplesDone} samples");
        try
        {
            for (int o = 0; o < _npy.Count; o++) _npy[o].Write(first, outputs[o], 0, count);
            var rows = new StringBuilder(count * 96);
            foreach (var p in predictions) AppendRow(rows, p);
            _csv.Write(Encoding.UTF8.GetBytes(rows.ToString()));
            _state = _state with { SamplesDone = first + count, CsvBytes = _csv.Length, UpdatedAt = DateTimeOffset.UtcNow };
            if (_flusher != null)
            {
                _csv.Flush(flushToDisk: false);
                foreach (var n in _npy) n.HandToSystem();
                _flusher.Request(_state);
                return;
            }
            long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
            _csv.Flush(flushToDisk: true);
            foreach (var n in _npy) n.Flush();
            WriteState(Folder, _state);
            _syncMs += System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw WriteFailed(Folder, e); }
    }

    /// <summary>After the last block: the files lose their .partial suffix, job.json says Completed, and the summary is written.</summary>
    public void Complete(object summary)
    {
        if (_state.SamplesDone != _state.Samples) throw new InvalidOperationException($"{_state.SamplesDone} of {_state.Samples} samples done");
        try
        {
            _flusher?.Drain();
            if (!_state.Completed)
            {
                foreach (var n in _npy) { n.Flush(); n.Dispose(); File.Move(n.Path, n.Path[..^Partial.Length], overwrite: true); }
                _npy.Clear();
                _csv!.Flush(flushToDisk: true);
                _csv.Dispose();
                File.Move(Path.Combine(Folder, PredictionsFile + Partial), Path.Combine(Folder, PredictionsFile), overwrite: true);
                File.Move(Path.Combine(Folder, InputsFile + Partial), Path.Combine(Folder, InputsFile), overwrite: true);
                _state = _state with { Completed = true, UpdatedAt = DateTimeOffset.UtcNow };
                WriteState(Folder, _state);
            }
            AtomicFile.WriteText(Path.Combine(Folder, SummaryFile), JsonSerializer.Serialize(summary, summary.GetType(), Json));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw WriteFailed(Folder, e); }
    }

    /// <summary>
    /// The rows of the samples already done when this job was opened ([0, <see cref="ResumedAt"/>)),
    /// in input order, read back from the predictions file, so that a resumed job can hand on every
    /// row of the job and not only this run's. Read lazily, one row at a time (memory does not grow
    /// with the number of rows). Where the file holds fewer rows than job.json counts, throws ResumeMismatch.
    /// </summary>
    public IEnumerable<SamplePrediction> CommittedPredictions()
    {
        if (ResumedAt == 0) yield break;
        var path = Path.Combine(Folder, PredictionsFile + (_state.Completed ? "" : Partial));
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16);
        using var reader = new StreamReader(stream, new UTF8Encoding(false));
        ReadRecord(reader); // the header
        for (int i = 0; i < ResumedAt; i++)
        {
            var fields = ReadRecord(reader);
            if (fields == null || fields.Count < 8)
                throw new HeteroBatchException("ResumeMismatch", FailureKind.InvalidData,
                    $"{Folder} has {i} rows in {Path.GetFileName(path)} where job.json counts {ResumedAt} as done; start again with -Force.", Folder) { StopsCommand = true };
            yield return RowOf(fields);
        }
    }

    private static SamplePrediction RowOf(IReadOnlyList<string> f)
    {
        var c = CultureInfo.InvariantCulture;
        var p = new SamplePrediction
        {
            Index = int.Parse(f[0], c), Input = f[1], Unit = f[2].Length == 0 ? null : f[2], Class = -1,
            Error = f[7].Length == 0 ? null : f[7],
        };
        if (f[3].Length > 0)
        {
            p.Class = int.Parse(f[3], c);
            p.Score = float.Parse(f[4], c);
            p.TopClasses = new(f[5].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(x => int.Parse(x, c)));
            p.TopScores = new(f[6].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(x => float.Parse(x, c)));
        }
        return p;
    }

    /// <summary>One CSV record as this class writes them (fields quoted where they hold a comma, quote or line break); null at the end.</summary>
    private static List<string>? ReadRecord(TextReader r)
    {
        if (r.Peek() < 0) return null;
        var fields = new List<string>();
        var field = new StringBuilder();
        bool quoted = false;
        while (true)
        {
            int ch = r.Read();
            if (ch < 0) { fields.Add(field.ToString()); return fields; }
            if (quoted)
            {
                if (ch == '"')
                {
                    if (r.Peek() == '"') { r.Read(); field.Append('"'); }
                    else quoted = false;
                }
                else field.Append((char)ch);
            }
            else if (ch == '"') quoted = true;
            else if (ch == ',') { fields.Add(field.ToString()); field.Clear(); }
            else if (ch == '\n') { fields.Add(field.ToString()); return fields; }
            else field.Append((char)ch);
        }
    }

    private static void AppendRow(StringBuilder b, SamplePrediction p)
    {
        var c = CultureInfo.InvariantCulture;
        b.Append(p.Index.ToString(c)).Append(',').Append(Csv(p.Input)).Append(',').Append(Csv(p.Unit ?? "")).Append(',');
        if (p.Error == null && p.Class >= 0)
        {
            b.Append(p.Class.ToString(c)).Append(',').Append(p.Score.ToString("R", c)).Append(',');
            for (int i = 0; i < p.TopClasses.Count; i++) (i > 0 ? b.Append(' ') : b).Append(p.TopClasses[i].ToString(c));
            b.Append(',');
            for (int i = 0; i < p.TopScores.Count; i++) (i > 0 ? b.Append(' ') : b).Append(p.TopScores[i].ToString("R", c));
            b.Append(',');
        }
        else b.Append(",,,,");
        b.Append(Csv(p.Error ?? "")).Append('\n');
    }

    private static string Csv(string s) =>
        s.AsSpan().IndexOfAny(",\"\n\r") < 0 ? s : "\"" + s.Replace("\"", "\"\"") + "\"";

    public void Dispose()
    {
        // blocks written before a stop reach the disk and job.json (a failed flush leaves job.json at the last that did)
        _flusher?.Dispose();
        foreach (var n in _npy) n.Dispose();
        _csv?.Dispose();
        // a finished job leaves no lock behind (deleting it while held is safe: the next job makes its own)
        if (_state.Completed) File.Delete(Path.Combine(Folder, LockFile));
        _lock.Dispose();
    }
}

/// <summary>
/// Brings a job's written rows to disk on a thread of its own, so that the writer goes on with the
/// next block while the disk catches up. Each request is a checkpoint whose rows were handed to the
/// OS; the persist action flushes the files to disk and then records the checkpoint, so job.json
/// never counts rows that are not on disk. A checkpoint that a newer one replaces before its turn
/// is skipped: the newer one's flush covers its rows. The first failure is kept and thrown by the
/// next <see cref="Request"/> or <see cref="Drain"/>; nothing is persisted after it.
/// </summary>
internal sealed class OutputFlusher : IDisposable
{
    private readonly Action<JobCheckpoint> _persist;
    private readonly object _gate = new();
    private readonly Thread _thread;
    private JobCheckpoint? _pending;
    private bool _busy, _stopping;
    private Exception? _failure;
    private long _ticks;

    public OutputFlusher(Action<JobCheckpoint> persist)
    {
        _persist = persist;
        _thread = new Thread(Loop) { IsBackground = true, Name = "HeteroBatch output flusher" };
        _thread.Start();
    }

    /// <summary>Called on the flusher's thread with the first failure, once (set before the first request).</summary>
    public Action<Exception>? Failed { get; set; }

    /// <summary>Wall time spent persisting.</summary>
    public double Ms => System.Diagnostics.Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _ticks)).TotalMilliseconds;

    /// <summary>Queues <paramref name="checkpoint"/> (its rows handed to the OS), replacing one not yet begun.</summary>
    public void Request(JobCheckpoint checkpoint)
    {
        lock (_gate)
        {
            ThrowIfFailed();
            _pending = checkpoint;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Waits until every checkpoint requested so far is persisted.</summary>
    public void Drain()
    {
        lock (_gate)
        {
            while ((_pending != null || _busy) && _failure == null) Monitor.Wait(_gate);
            ThrowIfFailed();
        }
    }

    private void ThrowIfFailed()
    {
        if (_failure != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(_failure).Throw();
    }

    private void Loop()
    {
        while (true)
        {
            JobCheckpoint next;
            lock (_gate)
            {
                while (_pending == null && !_stopping) Monitor.Wait(_gate);
                if (_pending == null) return;
                (next, _pending, _busy) = (_pending, null, true);
            }
            long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
            Exception? failed = null;
            try { _persist(next); }
            catch (Exception e) { failed = e; }
            Interlocked.Add(ref _ticks, System.Diagnostics.Stopwatch.GetTimestamp() - t0);
            lock (_gate)
            {
                _busy = false;
                _failure ??= failed;
                Monitor.PulseAll(_gate);
            }
            if (failed != null)
            {
                // the failure stays recorded for Request and Drain; a callback whose job has ended meanwhile must not end the process
                try { Failed?.Invoke(failed); }
                catch (ObjectDisposedException) { }
                return;
            }
        }
    }

    /// <summary>Persists what is queued (unless a flush failed), then ends the thread.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.PulseAll(_gate);
        }
        _thread.Join();
    }
}
