using HeteroBatch.Engine.Runtime;

namespace HeteroBatch.Engine.Units;

/// <summary>Reads what the OS says about the CPU: its name, the processors this process may use, NUMA nodes and core types.</summary>
public static class CpuTopology
{
    /// <summary>The CPU model name, from /proc/cpuinfo on Linux.</summary>
    public static string ModelName()
    {
        try
        {
            if (File.Exists("/proc/cpuinfo"))
                foreach (var line in File.ReadLines("/proc/cpuinfo"))
                    if (line.StartsWith("model name", StringComparison.Ordinal))
                        return line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { }
        return Environment.GetEnvironmentVariable("PROCESSOR_IDENTIFIER") ?? "CPU";
    }

    /// <summary>The processors this process may run on (its affinity), ascending.</summary>
    public static int[] AllowedProcessors()
    {
        var fromOs = Libc.CurrentThreadAffinity();
        if (fromOs is { Length: > 0 }) return fromOs;
        return Enumerable.Range(0, Environment.ProcessorCount).ToArray();
    }

    /// <summary>Parses a Linux cpulist ("0-3,8,10-11").</summary>
    public static int[] ParseCpuList(string text)
    {
        var result = new List<int>();
        foreach (var part in text.Trim().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var dash = part.IndexOf('-');
            if (dash < 0) { result.Add(int.Parse(part)); continue; }
            int a = int.Parse(part[..dash]), b = int.Parse(part[(dash + 1)..]);
            for (int i = a; i <= b; i++) result.Add(i);
        }
        return result.ToArray();
    }

    /// <summary>
    /// The physical cores <paramref name="processors"/> lie on: processors that share a core (SMT siblings, Linux sysfs
    /// thread_siblings_list) count once. Null where the OS does not say.
    /// </summary>
    public static int? PhysicalCores(IEnumerable<int> processors, string sysRoot = "/sys")
    {
        var cores = new HashSet<string>();
        foreach (int p in processors)
        {
            var siblings = Path.Combine(sysRoot, $"devices/system/cpu/cpu{p}/topology/thread_siblings_list");
            try { cores.Add(string.Join(",", ParseCpuList(File.ReadAllText(siblings)).Order())); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { return null; }
        }
        return cores.Count;
    }

    /// <summary>NUMA nodes and their processors (Linux sysfs), or an empty list.</summary>
    public static IReadOnlyList<(int Node, int[] Processors)> NumaNodes(string sysRoot = "/sys")
    {
        var dir = Path.Combine(sysRoot, "devices/system/node");
        var nodes = new List<(int, int[])>();
        if (!Directory.Exists(dir)) return nodes;
        foreach (var d in Directory.GetDirectories(dir, "node*"))
        {
            if (!int.TryParse(Path.GetFileName(d)[4..], out var n)) continue;
            var list = Path.Combine(d, "cpulist");
            if (File.Exists(list)) nodes.Add((n, ParseCpuList(File.ReadAllText(list))));
        }
        return nodes.OrderBy(x => x.Item1).ToList();
    }

    /// <summary>Performance and efficiency cores of a hybrid CPU (Linux sysfs), or an empty list.</summary>
    public static IReadOnlyList<(string Type, int[] Processors)> CoreTypes(string sysRoot = "/sys")
    {
        var types = new List<(string, int[])>();
        foreach (var (type, dir) in new[] { ("core", "devices/cpu_core"), ("atom", "devices/cpu_atom") })
        {
            var f = Path.Combine(sysRoot, dir, "cpus");
            if (File.Exists(f)) types.Add((type, ParseCpuList(File.ReadAllText(f))));
        }
        return types;
    }
}
