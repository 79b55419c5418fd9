namespace HeteroBatch.Engine.Runtime;

/// <summary>
/// CPU time of the whole host and of this process at one moment (Linux: /proc/stat and
/// /proc/self/stat, in clock ticks). Two snapshots around a run give the share of the host's
/// processors that OTHER processes used during it (<see cref="OtherShare"/>): a run on a host busy
/// with other work is marked, and calibration counts it less.
/// </summary>
public readonly record struct HostLoad(long HostBusyTicks, long HostTotalTicks, long ProcessTicks)
{
    /// <summary>Fewer host ticks than this between two snapshots (10 ms each on most kernels, summed over processors) are too few to tell.</summary>
    public const long MinTicks = 20;

    /// <summary>A snapshot now; null where /proc cannot be read (not Linux).</summary>
    public static HostLoad? Now()
    {
        try
        {
            if (!File.Exists("/proc/stat") || !File.Exists("/proc/self/stat")) return null;
            return Parse(File.ReadAllText("/proc/stat"), File.ReadAllText("/proc/self/stat"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>
    /// A snapshot from the text of /proc/stat (its first line: the "cpu" totals user nice system idle
    /// iowait irq softirq steal ...) and of /proc/self/stat (utime and stime, fields 14 and 15); null
    /// when either does not parse. Busy is everything but idle and iowait; steal (time the hypervisor
    /// gave to other machines) counts as other work.
    /// </summary>
    public static HostLoad? Parse(string procStat, string selfStat)
    {
        var line = procStat.Split('\n').FirstOrDefault(l => l.StartsWith("cpu ", StringComparison.Ordinal));
        if (line == null) return null;
        var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8).ToArray();
        var ticks = new long[fields.Length];
        for (int i = 0; i < fields.Length; i++)
            if (!long.TryParse(fields[i], out ticks[i]) || ticks[i] < 0) return null;
        if (ticks.Length < 4) return null;
        long total = ticks.Sum();
        long idle = ticks[3] + (ticks.Length > 4 ? ticks[4] : 0);
        // the process name (field 2) is in parentheses and may hold spaces: count fields after its last ')'
        int close = selfStat.LastIndexOf(')');
        if (close < 0) return null;
        var rest = selfStat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // rest[0] is field 3 (state): utime is field 14, stime field 15
        if (rest.Length < 13 || !long.TryParse(rest[11], out var utime) || !long.TryParse(rest[12], out var stime)) return null;
        return new HostLoad(total - idle, total, utime + stime);
    }

    /// <summary>
    /// The share of the host's processors (0 to 1) that processes other than this one used between
    /// two snapshots; null when either is missing or too little time passed to tell.
    /// </summary>
    public static double? OtherShare(HostLoad? before, HostLoad? after)
    {
        if (before is not { } b || after is not { } a) return null;
        long total = a.HostTotalTicks - b.HostTotalTicks;
        if (total < MinTicks) return null;
        long others = (a.HostBusyTicks - b.HostBusyTicks) - (a.ProcessTicks - b.ProcessTicks);
        return Math.Clamp((double)others / total, 0, 1);
    }
}
