namespace HeteroBatch.Engine.Units;

/// <summary>How the CPU's processors are split into compute units.</summary>
public enum CpuGroupingMode
{
    /// <summary>One unit, 'cpu', on every allowed processor.</summary>
    All,
    /// <summary>One unit per processor: cpu0, cpu1...</summary>
    Core,
    /// <summary>One unit per NUMA node.</summary>
    Numa,
    /// <summary>One unit per core type of a hybrid CPU (performance, efficiency).</summary>
    CoreType,
    /// <summary>A given number of equal groups.</summary>
    Count,
}

public readonly record struct CpuGrouping(CpuGroupingMode Mode, int Count = 0)
{
    public static readonly CpuGrouping All = new(CpuGroupingMode.All);

    /// <summary>Parses 'All', 'Core', 'Numa', 'CoreType' or a positive number of groups.</summary>
    public static bool TryParse(string? text, out CpuGrouping grouping)
    {
        grouping = All;
        if (string.IsNullOrWhiteSpace(text)) return true;
        if (int.TryParse(text, out var n))
        {
            if (n < 1) return false;
            grouping = n == 1 ? All : new CpuGrouping(CpuGroupingMode.Count, n);
            return true;
        }
        if (Enum.TryParse<CpuGroupingMode>(text, ignoreCase: true, out var mode) && mode != CpuGroupingMode.Count)
        {
            grouping = new CpuGrouping(mode);
            return true;
        }
        return false;
    }

    /// <summary>Splits processors into groups as this grouping says. Never returns an empty group.</summary>
    public IReadOnlyList<int[]> Split(int[] processors, Func<IReadOnlyList<int[]>>? numa = null, Func<IReadOnlyList<int[]>>? coreTypes = null)
    {
        switch (Mode)
        {
            case CpuGroupingMode.Core:
                return processors.Select(p => new[] { p }).ToList();
            case CpuGroupingMode.Count:
            {
                int n = Math.Min(Count, processors.Length);
                var groups = new List<int[]>();
                int start = 0;
                for (int g = 0; g < n; g++)
                {
                    int size = processors.Length / n + (g < processors.Length % n ? 1 : 0);
                    groups.Add(processors[start..(start + size)]);
                    start += size;
                }
                return groups;
            }
            case CpuGroupingMode.Numa:
            case CpuGroupingMode.CoreType:
            {
                var source = (Mode == CpuGroupingMode.Numa ? numa : coreTypes)?.Invoke() ?? Array.Empty<int[]>();
                var allowed = new HashSet<int>(processors);
                var groups = source.Select(g => g.Where(allowed.Contains).ToArray()).Where(g => g.Length > 0).ToList();
                return groups.Count > 0 ? groups : new List<int[]> { processors };
            }
            default:
                return new List<int[]> { processors };
        }
    }
}
