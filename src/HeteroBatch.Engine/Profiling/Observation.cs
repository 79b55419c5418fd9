using System.Text.Json;
using HeteroBatch.Engine.Runtime;

namespace HeteroBatch.Engine.Profiling;

/// <summary>What one unit did in one partitioned run: its share, the time it took and the time predicted.</summary>
public sealed class Observation
{
    public string Model { get; set; } = "";
    public string ModelSha256 { get; set; } = "";
    public string UnitId { get; set; } = "";
    public string UnitFingerprint { get; set; } = "";
    public int Samples { get; set; }
    public int SubBatchSize { get; set; }
    public double Ms { get; set; }
    public double PredictedMs { get; set; }
    /// <summary>The other units that ran in the same run.</summary>
    public string[] Alongside { get; set; } = Array.Empty<string>();
    /// <summary>The run this unit's share was part of (the same for every unit of one run); null in stores written before it was recorded.</summary>
    public string? RunId { get; set; }
    /// <summary>The whole run's wall time and the time its plan predicted (calibration included).</summary>
    public double RunWallMs { get; set; }
    public double RunPredictedMs { get; set; }
    public DateTimeOffset At { get; set; }

    /// <summary>Measured over predicted.</summary>
    public double Ratio => PredictedMs > 0 ? Ms / PredictedMs : double.NaN;
}

/// <summary>
/// How runs correct a unit's profile: the median of measured over predicted time over its last
/// few runs of the model, clamped to a sane range (alone and side by side apart, see
/// <see cref="Execution.RunObservations"/>). Later plans scale the unit's profiled costs by it,
/// so a unit that ran slower than profiled gets less work.
/// </summary>
public static class Calibration
{
    /// <summary>How many of the most recent runs count.</summary>
    public const int Window = 5;

    /// <summary>The factor and how many runs it came from; (1, 0) without usable observations.</summary>
    public static (double Factor, int Runs) Factor(IReadOnlyList<Observation> observations)
    {
        var ratios = observations.Where(o => o.Samples > 0 && o.PredictedMs > 0 && o.Ms > 0 && double.IsFinite(o.Ratio))
            .OrderBy(o => o.At).TakeLast(Window).Select(o => o.Ratio).OrderBy(r => r).ToList();
        if (ratios.Count == 0) return (1, 0);
        return (Math.Clamp(Statistics.Quantile(ratios, 0.5), 0.25, 4), ratios.Count);
    }
}

/// <summary>
/// Observations beside the profiles: one JSON line per unit and run, appended under the same
/// lock as the profile; a line cut short by a crash is skipped when read; old lines are dropped
/// when the file grows past a few hundred.
/// </summary>
public sealed partial class ProfileStore
{
    private const int KeepObservations = 100;

    public string ObservationPath(string model, string modelSha, string unitId, string fingerprint) =>
        Path.Combine(Folder, "observations", Path.ChangeExtension(FileNameFor(model, modelSha, unitId, fingerprint), ".jsonl"));

    /// <summary>Appends observations (one line each); throws ProfileStoreFailed or ProfileStoreBusy.</summary>
    public void Record(IEnumerable<Observation> observations) => Writing(() =>
    {
        foreach (var o in observations)
        {
            var path = ObservationPath(o.Model, o.ModelSha256, o.UnitId, o.UnitFingerprint);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            using var _ = AcquireLock(path);
            // a line cut short by a crash stays on its own line: the new one starts on the next
            var newline = EndsMidLine(path) ? "\n" : "";
            File.AppendAllText(path, newline + JsonSerializer.Serialize(o, new JsonSerializerOptions(Json) { WriteIndented = false }) + "\n");
            var lines = File.ReadAllLines(path);
            if (lines.Length > 3 * KeepObservations)
                AtomicFile.WriteText(path, string.Join("\n", lines[^KeepObservations..]) + "\n");
        }
        return true;
    });

    private static bool EndsMidLine(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists || info.Length == 0) return false;
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        f.Seek(-1, SeekOrigin.End);
        return f.ReadByte() != '\n';
    }

    /// <summary>The observations of a model on a unit (oldest first); lines that do not parse are skipped.</summary>
    public IReadOnlyList<Observation> Observations(string model, string modelSha, string unitId, string fingerprint)
    {
        var path = ObservationPath(model, modelSha, unitId, fingerprint);
        var list = new List<Observation>();
        if (!File.Exists(path)) return list;
        string[] lines;
        try { lines = File.ReadAllLines(path); }
        catch (IOException) { return list; }
        foreach (var line in lines)
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                if (JsonSerializer.Deserialize<Observation>(line, Json) is { } o && o.ModelSha256 == modelSha && o.UnitFingerprint == fingerprint) list.Add(o);
            }
            catch (JsonException) { /* a line cut short by a crash */ }
        }
        return list;
    }
}
