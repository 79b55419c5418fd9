using Microsoft.ML.OnnxRuntime;

namespace HeteroBatch.Engine.Units.Backends;

/// <summary>A group of CPU processors running ONNX Runtime's CPU provider, one intra-op thread per processor, each pinned.</summary>
public sealed class CpuBackend : OrtBackend
{
    public override string Name => "CPU";
    public override bool NeedsFeeder => false;
    public override bool KeepsOneShape => false;
    public override int DefaultMaxBatch => 32;

    /// <summary>CPU units are not probed devices: they are cut from the free processors by <see cref="Units"/>.</summary>
    public override IReadOnlyList<ComputeUnit> Discover(DiscoveryRequest request, string runtimeVersion) => Array.Empty<ComputeUnit>();

    /// <summary>CPU units over <paramref name="processors"/> (default: every processor this process may use), grouped as asked.</summary>
    public static IReadOnlyList<ComputeUnit> Units(CpuGrouping grouping, string runtimeVersion, int[]? processors = null, int[]? reserved = null)
    {
        var name = CpuTopology.ModelName();
        var groups = grouping.Split(processors ?? CpuTopology.AllowedProcessors(),
            () => CpuTopology.NumaNodes().Select(n => n.Processors).ToList(),
            () => CpuTopology.CoreTypes().Select(n => n.Processors).ToList());
        var list = new List<ComputeUnit>();
        for (int i = 0; i < groups.Count; i++)
        {
            list.Add(new ComputeUnit
            {
                Id = groups.Count == 1 ? "cpu" : $"cpu{i}",
                Kind = UnitKind.Cpu,
                Name = name,
                Provider = ExecutionProvider.CPU,
                DeviceId = 0,
                Processors = groups[i],
                ReservedProcessors = reserved ?? Array.Empty<int>(),
                RuntimeVersion = runtimeVersion,
            });
        }
        return list;
    }

    protected override void AddProvider(SessionOptions o, ComputeUnit unit, EngineOptions settings)
    {
        int threads = Math.Max(1, unit.Cores);
        o.IntraOpNumThreads = threads;
        // The calling thread is the worker, pinned to the first processor; ORT's own threads
        // (threads - 1 of them) are pinned to the others. Ids are 1-based.
        if (threads > 1)
            o.AddSessionConfigEntry("session.intra_op_thread_affinities",
                string.Join(";", unit.Processors.Skip(1).Select(p => (p + 1).ToString())));
    }

    public override string? WhyAbsent(ComputeUnit unit, IReadOnlyList<ComputeUnit> found)
    {
        if (unit.Name != CpuTopology.ModelName()) return $"this machine's CPU is not '{unit.Name}'";
        var allowed = new HashSet<int>(CpuTopology.AllowedProcessors());
        var missing = unit.Processors.Where(p => !allowed.Contains(p)).ToArray();
        return missing.Length == 0 ? null : $"processors {string.Join(",", missing)} are not available to this process";
    }

    public override int? WorkerProcessor(ComputeUnit unit) => unit.Processors.Count > 0 ? unit.Processors[0] : null;

    public override IReadOnlyList<int> ComputeProcessors(ComputeUnit unit) => unit.Processors;

    /// <summary>Two CPU units overlap when they share a processor (they would slow each other down).</summary>
    public override bool Overlap(ComputeUnit a, ComputeUnit b) => a.Processors.Intersect(b.Processors).Any();
}
