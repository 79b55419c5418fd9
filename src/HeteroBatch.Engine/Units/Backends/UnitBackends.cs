namespace HeteroBatch.Engine.Units.Backends;

/// <summary>
/// The one place that maps a unit to the backend of its kind. Backends hold no state, so one
/// instance of each serves every context.
/// </summary>
public static class UnitBackends
{
    public static readonly CpuBackend Cpu = new();
    public static readonly CudaBackend Cuda = new();
    public static readonly OpenVinoBackend OpenVino = new();
    public static readonly RemoteBackend Remote = new();

    /// <summary>The accelerator backends, in the order their units are listed.</summary>
    public static IReadOnlyList<IUnitBackend> Accelerators { get; } = new IUnitBackend[] { Cuda, OpenVino };

    public static IUnitBackend For(ComputeUnit unit) => For(unit.Provider);

    public static IUnitBackend For(ExecutionProvider provider) => provider switch
    {
        ExecutionProvider.CPU => Cpu,
        ExecutionProvider.CUDA or ExecutionProvider.TensorRT => Cuda,
        ExecutionProvider.OpenVINO => OpenVino,
        ExecutionProvider.Remote => Remote,
        _ => throw new HeteroBatchException("UnitKindUnknown", FailureKind.InvalidData, $"No backend runs units of provider '{provider}'.", provider),
    };

    /// <summary>The same physical device: kind, name, ordinal, bus and runtime. Math modes and provider variants (TF32, TensorRT) do not make another device.</summary>
    public static bool SameDevice(ComputeUnit a, ComputeUnit b) =>
        For(a) == For(b) && a.Kind == b.Kind && a.Name == b.Name && a.DeviceId == b.DeviceId && a.BusId == b.BusId && a.RuntimeVersion == b.RuntimeVersion;

    /// <summary>
    /// True if two units compete for the same hardware: units of one kind as their backend says; units
    /// of two kinds when both compute on a host processor they share (CPU units and OpenVINO's CPU device).
    /// </summary>
    public static bool Overlap(ComputeUnit a, ComputeUnit b) =>
        For(a) == For(b) ? For(a).Overlap(a, b) : For(a).ComputeProcessors(a).Intersect(For(b).ComputeProcessors(b)).Any();
}
