namespace HeteroBatch.Engine.Execution;

public enum BalanceMode
{
    /// <summary>Each unit runs exactly its planned share (work moves only when a unit fails).</summary>
    Static,
    /// <summary>Units that finish early take sub-batches from the tail of slower units' shares.</summary>
    Dynamic,
}

/// <summary>How one partitioned run goes (what the user chose for this command).</summary>
public sealed record RunSettings
{
    public BalanceMode Balance { get; init; } = BalanceMode.Static;
    public ulong Seed { get; init; } = 1;
    /// <summary>Test only: the unit with this id throws after this many sub-batches; default: the context's option.</summary>
    public (string UnitId, int AfterSubBatches)? InjectFailure { get; init; }
    /// <summary>Run the whole input this many times; the result's WallMs is the median.</summary>
    public int Repeat { get; init; } = 1;
    /// <summary>How many top classes each prediction lists.</summary>
    public int TopK { get; init; } = 5;
    /// <summary>Called as samples finish (from the units' worker threads, at most every 100 ms, and once at the end of each repeat): samples done so far, samples in all, over all repeats.</summary>
    public Action<long, long>? Progress { get; init; }
}
