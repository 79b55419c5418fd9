using HeteroBatch.Engine.Sessions;

namespace HeteroBatch.Engine.Units.Backends;

/// <summary>What discovery is asked for: how to group the CPU and how to run accelerators.</summary>
public sealed record DiscoveryRequest
{
    public CpuGrouping Grouping { get; init; } = CpuGrouping.All;
    /// <summary>Also list units that cannot run here, with the reason.</summary>
    public bool IncludeUnavailable { get; init; }
    /// <summary>NVIDIA GPUs through TensorRT (CUDA for what it cannot take) instead of CUDA alone.</summary>
    public bool TensorRt { get; init; }
    /// <summary>The precision accelerators run at (their own fingerprint); CPU units stay Fp32.</summary>
    public Models.Precision Precision { get; init; }
    /// <summary>Inference servers to list as remote units (their base addresses); discovery then lists only these.</summary>
    public IReadOnlyList<Uri> Endpoints { get; init; } = Array.Empty<Uri>();
    /// <summary>
    /// The model the servers at <see cref="Endpoints"/> are to run (the name they serve it under): where given, a
    /// ready server is also asked for its metadata and one sample of zeros, and a server that cannot run it is not available.
    /// </summary>
    public string? Model { get; init; }
    /// <summary>The model at the servers that takes a file job's images as files (see <see cref="ComputeUnit.EncodedModel"/>); null: the model's name with "_encoded".</summary>
    public string? EncodedModel { get; init; }
    /// <summary>A bearer token for the servers, where they require one.</summary>
    public BearerToken? Token { get; init; }
    /// <summary>ONNX Runtime plugin execution-provider libraries whose devices are listed too (<see cref="EngineOptions.ExecutionProviderLibraries"/>).</summary>
    public IReadOnlyList<string> ExecutionProviderLibraries { get; init; } = Array.Empty<string>();
    /// <summary>Receives one line per probe (for -Verbose).</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>
/// Everything one kind of compute unit decides: how its devices are found, how a session runs on
/// it, whether it is present, where its worker thread runs, how it takes batches and how its
/// compute-only time is measured. One implementation per kind, picked by <see cref="UnitBackends"/>;
/// nothing outside this folder branches on a unit's provider or kind.
/// </summary>
public interface IUnitBackend
{
    /// <summary>A short name for messages: "CPU", "CUDA", "OpenVINO".</summary>
    string Name { get; }

    /// <summary>
    /// The accelerator devices of this kind found here (available or not), probed with a real
    /// session. The CPU backend finds none here: CPU units are cut from the processors the
    /// accelerators leave free (<see cref="CpuBackend.Units"/>).
    /// </summary>
    IReadOnlyList<ComputeUnit> Discover(DiscoveryRequest request, string runtimeVersion);

    /// <summary>True if a working unit of this kind needs a processor of its own to feed it (copies, kernel launches).</summary>
    bool NeedsFeeder { get; }

    /// <summary>
    /// Opens a model on the unit, on the calling thread (the unit's worker): a local ONNX Runtime
    /// session configured for the unit; a unit that is not local would return a client here.
    /// A session whose set-up fails halfway is disposed before the error leaves.
    /// </summary>
    IModelSession Open(ComputeUnit unit, Models.ModelSource model, EngineOptions settings);

    /// <summary>Null when the unit can run here now; otherwise why not. Accelerators are compared with <paramref name="found"/>, the devices found here.</summary>
    string? WhyAbsent(ComputeUnit unit, IReadOnlyList<ComputeUnit> found);

    /// <summary>The processor the unit's worker thread is pinned to, if any.</summary>
    int? WorkerProcessor(ComputeUnit unit);

    /// <summary>The host processors the unit computes on while it runs (none for a unit that computes elsewhere and only feeds from here).</summary>
    IReadOnlyList<int> ComputeProcessors(ComputeUnit unit) => Array.Empty<int>();

    /// <summary>True if the unit's runs are faster from page-locked host inputs (a GPU copying by DMA): runs then keep their inputs on the pinned heap and lock them.</summary>
    bool WantsPageLockedInputs(ComputeUnit unit, EngineOptions settings) => false;

    /// <summary>
    /// True if the unit, fed images that CPU threads decoded, should take them as uint8 pixels and run the
    /// model's uint8-input form (<see cref="Models.InputPrefix"/>: the normalisation on the unit), so that a
    /// quarter of float32's bytes travel to it and sit in the job's blocks. A file job does it only where
    /// every unit it feeds says so (<see cref="EngineOptions.PixelInputs"/>).
    /// </summary>
    bool TakesPixelInputs(ComputeUnit unit, EngineOptions settings) => false;

    /// <summary>True if the unit runs every sub-batch at one input shape (padding the tail), because a change of shape costs it far more than a few padded samples.</summary>
    bool KeepsOneShape { get; }

    /// <summary>The largest batch of the default profiling schedule.</summary>
    int DefaultMaxBatch { get; }

    /// <summary>The most runs worth keeping in flight at once on one unit (profiling tries each count up to it and keeps the fastest); 1 for units that compute one run at a time.</summary>
    int MaxInFlight => 1;

    /// <summary>Median time of runs with inputs and outputs already where the unit computes (no host copies); null where that means nothing or cannot be set up.</summary>
    double? ComputeOnlyMedianMs(IModelSession model, ComputeUnit unit, int batch, int runs, CancellationToken cancel);

    /// <summary>True if two units of this kind would compete for the same hardware (CPU units sharing processors).</summary>
    bool Overlap(ComputeUnit a, ComputeUnit b);

    /// <summary>
    /// A session of the model that decodes a file job's encoded images on the unit itself (chunks of
    /// at most <paramref name="maxChunk"/> images), or null where the unit decodes nothing and CPU threads decode
    /// its share. Throws (GpuDecodeUnavailable, InputPrefixUnsupported, SessionFailed) where it should
    /// and could not; the job then decodes that unit's share on the CPU and says why.
    /// </summary>
    IEncodedImageSession? OpenImageSession(ComputeUnit unit, Models.ModelSource model, EngineOptions settings, Data.TensorSpec input,
        Data.ImagePreprocessing preprocessing, int maxChunk) => null;
}
