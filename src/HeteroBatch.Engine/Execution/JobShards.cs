using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Runtime;

namespace HeteroBatch.Engine.Execution;

/// <summary>
/// Part <see cref="Index"/> of <see cref="Count"/> of a job over files: the expanded input list (folders
/// sorted by ordinal name, files as given) cut into <see cref="Count"/> contiguous runs of files, as even as
/// whole files allow; part k takes files [k·F/N, (k+1)·F/N). The same list and count always give the same
/// parts, so N processes (a Kubernetes Indexed Job, a Slurm array) need nothing but their index.
/// </summary>
public sealed record JobShard
{
    public int Index { get; }
    public int Count { get; }

    /// <summary>Throws ShardInvalid unless 0 ≤ index &lt; count.</summary>
    public JobShard(int index, int count)
    {
        if (count < 1 || index < 0 || index >= count)
            throw new HeteroBatchException("ShardInvalid", FailureKind.InvalidArgument,
                $"Shard {index}/{count} does not exist: a job cut into N shards has shards 0 to N-1 (and N is at least 1).", $"{index}/{count}");
        Index = index;
        Count = count;
    }

    /// <summary>"k/N" (spaces allowed around the numbers); throws ShardInvalid for anything else.</summary>
    public static JobShard Parse(string text)
    {
        var parts = text.Split('/');
        if (parts.Length == 2
            && int.TryParse(parts[0].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int k)
            && int.TryParse(parts[1].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int n))
            return new JobShard(k, n);
        throw new HeteroBatchException("ShardInvalid", FailureKind.InvalidArgument,
            $"'{text}' is not a shard: write k/N, as 0/3, 1/3 and 2/3 for a job cut in three.", text);
    }

    public override string ToString() => $"{Index}/{Count}";

    /// <summary>The first file of this shard and how many it takes, of <paramref name="files"/> files.</summary>
    public (int First, int Length) Range(int files)
    {
        int first = (int)((long)Index * files / Count), end = (int)((long)(Index + 1) * files / Count);
        return (first, end - first);
    }

    /// <summary>This shard's files of the expanded list; ShardInvalid when there are fewer files than shards (a shard would be empty).</summary>
    public IReadOnlyList<string> Select(IReadOnlyList<string> files)
    {
        if (files.Count < Count)
            throw new HeteroBatchException("ShardInvalid", FailureKind.InvalidArgument,
                $"The inputs are {files.Count} files, too few for {Count} shards: each shard takes whole files. Use at most {files.Count} shards.", ToString());
        var (first, length) = Range(files.Count);
        return files.Skip(first).Take(length).ToList();
    }

    /// <summary>Identifies the whole job's file list (full paths, in order) so that shards of one job can be told from another's.</summary>
    public static string ListIdentity(IReadOnlyList<string> files)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes($"{files.Count}\n"));
        foreach (var f in files) sha.AppendData(Encoding.UTF8.GetBytes(Path.GetFullPath(f) + "\n"));
        return Convert.ToHexString(sha.GetHashAndReset()).ToLowerInvariant();
    }
}

/// <summary>What <see cref="ShardMerge.Merge"/> wrote: the folder, the shards it took (in order), and the samples and files.</summary>
public sealed record MergedOutput(string Path, string Model, int Shards, int Samples, IReadOnlyList<string> Files, IReadOnlyList<string> ShardFolders);

/// <summary>
/// Merges the output folders of a sharded job's finished shards into one folder that equals a
/// one-process run of the whole job: predictions.csv with the indexes renumbered to the whole job's
/// order, each output .npy and inputs.txt, byte for byte; and a job.json saying it is complete.
/// </summary>
public static class ShardMerge
{
    /// <summary>Throws ShardUnfinished, ShardJobMismatch, ShardMissing, ShardDuplicate, OutputPathInUse (a folder holding output files, without <paramref name="force"/>) and OutputWriteFailed.</summary>
    public static MergedOutput Merge(IReadOnlyList<string> shardFolders, string outputFolder, bool force)
    {
        if (shardFolders.Count == 0)
            throw new HeteroBatchException("ShardMissing", FailureKind.InvalidArgument, "No shard folders were given.");
        var shards = shardFolders.Select(f => (Folder: Path.GetFullPath(f), Job: ReadFinished(f))).ToList();
        var first = shards[0];
        foreach (var s in shards)
        {
            var a = first.Job; var b = s.Job;
            if (a.ShardCount != b.ShardCount || a.JobFiles != b.JobFiles || a.Model != b.Model || a.ModelSha256 != b.ModelSha256
                || a.Preprocessing != b.Preprocessing || !a.Outputs.SequenceEqual(b.Outputs))
                throw new HeteroBatchException("ShardJobMismatch", FailureKind.InvalidData,
                    $"{s.Folder} holds shard {b.Shard}/{b.ShardCount} of another job than {first.Folder} (shard {a.Shard}/{a.ShardCount}): the model, its files, the preprocessing or the number of shards differ.", s.Folder);
        }
        int count = first.Job.ShardCount;
        var byIndex = new (string Folder, JobCheckpoint Job)?[count];
        foreach (var s in shards)
        {
            if (byIndex[s.Job.Shard] is { } other)
                throw new HeteroBatchException("ShardDuplicate", FailureKind.InvalidArgument,
                    $"Shard {s.Job.Shard}/{count} was given twice: {other.Folder} and {s.Folder}.", s.Folder);
            byIndex[s.Job.Shard] = s;
        }
        var missing = Enumerable.Range(0, count).Where(i => byIndex[i] == null).ToList();
        if (missing.Count > 0)
            throw new HeteroBatchException("ShardMissing", FailureKind.InvalidArgument,
                $"The job has {count} shards; shard{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing.Select(i => $"{i}/{count}"))} {(missing.Count > 1 ? "were" : "was")} not given.", string.Join(",", missing));
        var ordered = byIndex.Select(s => s!.Value).ToList();
        var output = Path.GetFullPath(outputFolder);
        if (ordered.Any(s => s.Folder == output))
            throw new HeteroBatchException("OutputPathInUse", FailureKind.ResourceUnavailable, $"{output} is one of the shards; merge into another folder.", output);

        var files = first.Job.Outputs.Select(JobOutput.FileNameOf).Concat(new[] { JobOutput.PredictionsFile, JobOutput.InputsFile }).ToList();
        try
        {
            Directory.CreateDirectory(output);
            var ours = files.Concat(new[] { JobOutput.StateFile, JobOutput.SummaryFile });
            if (!force && ours.Any(f => File.Exists(Path.Combine(output, f))))
                throw new HeteroBatchException("OutputPathInUse", FailureKind.ResourceUnavailable, $"{output} already holds output files; use -Force to replace them or choose another folder.", output);
            // job.json goes first, so a folder half merged is never taken for a finished job
            File.Delete(Path.Combine(output, JobOutput.StateFile));
            File.Delete(Path.Combine(output, JobOutput.SummaryFile));
            foreach (var name in first.Job.Outputs.Select(JobOutput.FileNameOf))
                MergeNpy(ordered, name, Path.Combine(output, name));
            AtomicFile.Write(Path.Combine(output, JobOutput.InputsFile), s =>
            {
                foreach (var shard in ordered) { using var f = File.OpenRead(Path.Combine(shard.Folder, JobOutput.InputsFile)); f.CopyTo(s); }
            });
            AtomicFile.Write(Path.Combine(output, JobOutput.PredictionsFile), s => MergePredictions(ordered, s));
            int samples = ordered.Sum(s => s.Job.Samples);
            var merged = first.Job with
            {
                Shard = 0, ShardCount = 0, Inputs = first.Job.JobFiles, Samples = samples, SamplesDone = samples,
                CsvBytes = new FileInfo(Path.Combine(output, JobOutput.PredictionsFile)).Length, Completed = true, UpdatedAt = DateTimeOffset.UtcNow,
            };
            AtomicFile.WriteText(Path.Combine(output, JobOutput.StateFile), JsonSerializer.Serialize(merged, new JsonSerializerOptions { WriteIndented = true }));
            return new MergedOutput(output, first.Job.Model, count, samples, files, ordered.Select(s => s.Folder).ToList());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HeteroBatchException("OutputWriteFailed", FailureKind.WriteError, $"Could not write the merged outputs to {output}: {e.Message}", output, e);
        }
    }

    /// <summary>A shard folder's job.json, checked: a sharded job, completed, with its files in place.</summary>
    private static JobCheckpoint ReadFinished(string folder)
    {
        var state = Path.Combine(folder, JobOutput.StateFile);
        JobCheckpoint? job = null;
        try { if (File.Exists(state)) job = JsonSerializer.Deserialize<JobCheckpoint>(File.ReadAllText(state)); }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException) { /* below */ }
        string? why = job == null ? "it holds no readable job.json"
            : job.ShardCount == 0 ? "its job was not run with -Shard"
            : job.Shard < 0 || job.Shard >= job.ShardCount ? $"its job.json names shard {job.Shard}/{job.ShardCount}"
            : !job.Completed ? $"its job stopped at {job.SamplesDone} of {job.Samples} samples; finish it with -Resume"
            : job.Outputs.Select(JobOutput.FileNameOf).Concat(new[] { JobOutput.PredictionsFile, JobOutput.InputsFile }).FirstOrDefault(f => !File.Exists(Path.Combine(folder, f))) is { } gone
                ? $"its {gone} is missing" : null;
        if (why != null)
            throw new HeteroBatchException("ShardUnfinished", FailureKind.InvalidData, $"{folder} is not a finished shard: {why}.", folder);
        return job!;
    }

    private static void MergeNpy(IReadOnlyList<(string Folder, JobCheckpoint Job)> shards, string name, string target)
    {
        var headers = shards.Select(s => (Path: Path.Combine(s.Folder, name), Header: Npy.ReadHeader(Path.Combine(s.Folder, name)))).ToList();
        var h0 = headers[0].Header;
        for (int i = 0; i < headers.Count; i++)
        {
            var h = headers[i].Header;
            if (h.Type != h0.Type || !h.Dims.Skip(1).SequenceEqual(h0.Dims.Skip(1)) || h.Dims[0] != shards[i].Job.Samples)
                throw new HeteroBatchException("ShardJobMismatch", FailureKind.InvalidData,
                    $"{headers[i].Path} holds {h.Type} of shape ({string.Join(", ", h.Dims)}), which does not fit the job ({h0.Type}, {shards[i].Job.Samples} samples).", headers[i].Path);
        }
        long total = headers.Sum(h => h.Header.Dims[0]);
        AtomicFile.Write(target, s =>
        {
            s.Write(Npy.HeaderBytes(h0.Type, h0.Dims.Skip(1).ToArray(), total));
            foreach (var (path, header) in headers)
            {
                using var f = File.OpenRead(path);
                f.Position = header.DataStart;
                f.CopyTo(s);
            }
        });
    }

    /// <summary>The shards' predictions.csv, one header, each record's index moved on by the samples of the shards before it (the rest of the record is copied as it is).</summary>
    private static void MergePredictions(IReadOnlyList<(string Folder, JobCheckpoint Job)> shards, Stream target)
    {
        using var w = new StreamWriter(target, new UTF8Encoding(false), 1 << 16, leaveOpen: true) { NewLine = "\n" };
        int offset = 0;
        for (int s = 0; s < shards.Count; s++)
        {
            var path = Path.Combine(shards[s].Folder, JobOutput.PredictionsFile);
            using var r = new StreamReader(path, new UTF8Encoding(false));
            var header = RawRecord(r);
            if (s == 0 && header != null) w.Write(header);
            int rows = 0;
            for (var record = RawRecord(r); record != null; record = RawRecord(r), rows++)
            {
                int comma = record.IndexOf(',');
                if (comma < 0 || !int.TryParse(record.AsSpan(0, comma), NumberStyles.None, CultureInfo.InvariantCulture, out int index) || index != rows)
                    throw new HeteroBatchException("ShardUnfinished", FailureKind.InvalidData, $"{path} is not a finished shard's predictions: row {rows} is not numbered {rows}.", path);
                w.Write((offset + index).ToString(CultureInfo.InvariantCulture));
                w.Write(record.AsSpan(comma));
            }
            if (rows != shards[s].Job.Samples)
                throw new HeteroBatchException("ShardUnfinished", FailureKind.InvalidData, $"{path} has {rows} rows where its job.json counts {shards[s].Job.Samples} samples.", path);
            offset += rows;
        }
    }

    /// <summary>One CSV record with its line feed, as written (a quoted field may hold line breaks); null at the end.</summary>
    private static string? RawRecord(TextReader r)
    {
        if (r.Peek() < 0) return null;
        var b = new StringBuilder(128);
        bool quoted = false;
        while (true)
        {
            int ch = r.Read();
            if (ch < 0) return b.ToString();
            b.Append((char)ch);
            if (ch == '"') quoted = !quoted;
            else if (ch == '\n' && !quoted) return b.ToString();
        }
    }
}
