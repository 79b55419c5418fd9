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
    /// <summary>
    /// The share of the host's processors (0 to 1) that other processes used during the run (see
    /// Runtime.HostLoad); a run on a busy host counts less in calibration. Null where it was not
    /// measured (stores written before it was, hosts without /proc).
    /// </summary>
    public double? OtherLoad { get; set; }
    public DateTimeOffset At { get; set; }

    /// <summary>Measured over predicted.</summary>
    public double Ratio => PredictedMs > 0 ? Ms / PredictedMs : double.NaN;
}

/// <summary>
/// How runs correct a unit's profile (and, in <see cref="Execution.RunObservations"/>, how whole
/// runs of a set of units judge their split): from each run's measured over predicted time, a
/// factor that later plans scale the unit's profiled costs by, so a unit that ran slower than
/// profiled gets less work. One bad run must not hijack it, and a lasting change must be followed:
/// <list type="bullet">
/// <item>the estimate is the weighted median of the last <see cref="Window"/> runs' ratios (each
/// clamped to [<see cref="Min"/>, <see cref="Max"/>] first), a run's weight fading by
/// <see cref="Fade"/> for each newer run, and shrinking to 1 - the share of the host's processors that
/// other processes used during it (at least 1/4): a run on a busy host counts less;</item>
/// <item>it takes full effect only when <see cref="Agreeing"/> runs of the window agree with it (lie
/// within <see cref="Tolerance"/> of it, or, where it is off the profile by more than that, are off
/// the same way by more than that too); with fewer, the factor moves from the previous run's factor only
/// part of the way ((agreeing - 1) / (<see cref="Agreeing"/> - 1) of it, in log scale), so one run
/// alone moves nothing, and the cap needs consistent evidence.</item>
/// </list>
/// The factor is worked out run by run from the oldest (the profile, factor 1, before the first),
/// so "the previous factor" needs no state: the observations are all there is.
/// </summary>
public static class Calibration
{
    /// <summary>How many of the most recent runs are weighed.</summary>
    public const int Window = 8;
    /// <summary>A run's weight is multiplied by this for each newer run.</summary>
    public const double Fade = 0.75;
    /// <summary>Runs that must agree with the estimate before it takes full effect.</summary>
    public const int Agreeing = 3;
    /// <summary>Runs agree with an estimate when their ratio is within this factor of it either way.</summary>
    public const double Tolerance = 1.2;
    /// <summary>The range of a factor (and of each run's ratio before it is weighed).</summary>
    public const double Min = 0.25, Max = 4;

    /// <summary>One run's evidence: measured over predicted time, and the share of the host's processors other processes used during it (null: not measured).</summary>
    public readonly record struct Evidence(double Ratio, double? OtherLoad);

    /// <summary>
    /// The factor of a unit from its observations, and how many of the last runs agree with the estimate it stands
    /// on; (<paramref name="start"/>, 0) without usable observations. <paramref name="start"/>: the factor before the
    /// first of them (1: the profile).
    /// </summary>
    public static (double Factor, int Runs) Factor(IReadOnlyList<Observation> observations, double start = 1) =>
        Estimate(observations.Where(o => o.Samples > 0 && o.PredictedMs > 0 && o.Ms > 0 && double.IsFinite(o.Ratio))
            .OrderBy(o => o.At).Select(o => new Evidence(o.Ratio, o.OtherLoad)).ToList(), start);

    /// <summary>How much a run counts for the load other processes put on the host during it.</summary>
    public static double LoadWeight(double? otherLoad) => Math.Max(0.25, 1 - Math.Clamp(otherLoad ?? 0, 0, 1));

    /// <summary>
    /// The factor after the last of these runs (oldest first), and how many runs of the last window agree with its
    /// estimate; (<paramref name="start"/>, 0) without runs. <paramref name="start"/>: the factor before the first run
    /// (1: the profile).
    /// </summary>
    public static (double Factor, int Runs) Estimate(IReadOnlyList<Evidence> oldestFirst, double start = 1)
    {
        var runs = oldestFirst.Where(e => double.IsFinite(e.Ratio) && e.Ratio > 0).ToList();
        if (runs.Count == 0) return (start, 0);
        var log = runs.Select(e => Math.Log(Math.Clamp(e.Ratio, Min, Max))).ToArray();
        var weight = runs.Select(e => LoadWeight(e.OtherLoad)).ToArray();
        double tolerance = Math.Log(Tolerance) + 1e-9;
        double factor = Math.Log(Math.Clamp(start, Min, Max)); // log; before the first run
        int agreeing = 0;
        for (int last = 0; last < log.Length; last++)
        {
            int first = Math.Max(0, last - Window + 1);
            var window = Enumerable.Range(first, last - first + 1).Select(i => (Log: log[i], Weight: weight[i] * Math.Pow(Fade, last - i))).ToList();
            double median = WeightedMedian(window);
            agreeing = window.Count(r => Agrees(r.Log, median, tolerance));
            double confidence = Math.Clamp((agreeing - 1) / (double)(Agreeing - 1), 0, 1);
            factor += confidence * (median - factor);
        }
        return (Math.Exp(factor), agreeing);
    }

    /// <summary>
    /// A run agrees with an estimate (both in log) when it lies within the tolerance of it, or when both say the
    /// unit is off its profile by more than the tolerance, the same way: on a shared machine runs of a unit that
    /// has really slowed scatter widely (x2 to x4), and they still agree that it is slower.
    /// </summary>
    private static bool Agrees(double run, double estimate, double tolerance) =>
        Math.Abs(run - estimate) <= tolerance || (Math.Abs(estimate) > tolerance && Math.Abs(run) > tolerance && Math.Sign(run) == Math.Sign(estimate));

    /// <summary>The least value whose cumulative weight (values ascending) reaches half the total.</summary>
    private static double WeightedMedian(List<(double Log, double Weight)> values)
    {
        var sorted = values.OrderBy(v => v.Log).ToList();
        double half = sorted.Sum(v => v.Weight) / 2, sum = 0;
        foreach (var (value, w) in sorted)
        {
            sum += w;
            if (sum >= half - 1e-12) return value;
        }
        return sorted[^1].Log;
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
