namespace HeteroBatch.Engine.Runtime;

/// <summary>
/// The one memory rule: work may start only if the process's resident memory, plus what the work
/// will add, stays within 80% of the memory this process may use (GC's TotalAvailableMemoryBytes:
/// its container or job limit where it has one, else the machine's memory). The fifth kept back is
/// for what is not counted: the runtime's own arenas, other threads, the page cache the OS needs.
/// Running a batch counts its input and output buffers against the resident memory now; profiling
/// counts the growth it measured per sample against the peak so far.
/// </summary>
public static class MemoryBudget
{
    /// <summary>The share of the memory this process may use that its resident memory may reach.</summary>
    public const double Share = 0.8;

    /// <summary>What this process may use: its memory limit, or the machine's memory.</summary>
    public static long Available => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>The process's resident memory now.</summary>
    public static long Resident => Environment.WorkingSet;

    /// <summary>The most the process's resident memory may reach, of <paramref name="available"/>.</summary>
    public static long Limit(long available) => (long)(available * Share);

    /// <summary>Whether work needing <paramref name="needBytes"/> more fits beside <paramref name="residentBytes"/>, of <paramref name="available"/>.</summary>
    public static bool Fits(double needBytes, long residentBytes, long available) => residentBytes + needBytes <= Limit(available);

    /// <summary>What is left for new work beside <paramref name="residentBytes"/> (0 when the limit is already passed).</summary>
    public static long Room(long residentBytes, long available) => Math.Max(0, Limit(available) - residentBytes);
}
