namespace HeteroBatch.Engine;

/// <summary>
/// Settings of one engine context. The engine reads no environment variable for these: the
/// module (on import) and the benchmark build them with <see cref="FromEnvironment"/>; tests
/// build them directly.
/// </summary>
public sealed record EngineOptions
{
    /// <summary>
    /// cuDNN convolution algorithm search: EXHAUSTIVE, HEURISTIC or DEFAULT; null lets the backend
    /// choose: HEURISTIC for Fp16 units (on an H100, resnet-50 ×100 at fp16 ran in 18.83 ms with it
    /// against 38.73 ms after EXHAUSTIVE search), EXHAUSTIVE otherwise.
    /// </summary>
    public string? CudnnAlgorithmSearch { get; init; }

    /// <summary>GPUs: also time each profiled size with device-resident inputs and outputs, to split transfer from compute.</summary>
    public bool SplitTransfers { get; init; } = true;

    /// <summary>
    /// GPUs: stage each sub-batch in page-locked host buffers bound with IOBinding. Off by default:
    /// on ONNX Runtime 1.31's CUDA provider every such run failed on an H200 ("dst_data != src_data"
    /// in GPUDataTransfer::CopyTensorAsync; bench-reports/gpu-precision-h200), so it is opt-in
    /// (HETEROBATCH_PINNED=1) until that is understood.
    /// </summary>
    public bool PinnedTransfers { get; init; }

    /// <summary>
    /// GPUs: runs keep their inputs on the pinned object heap and page-lock them in place
    /// (cudaHostRegister), so copies to the GPU need no staging copy; HETEROBATCH_CUDA_HOST_REGISTER=0 turns it off.
    /// </summary>
    public bool PageLockedInputs { get; init; } = true;

    /// <summary>
    /// CUDA: run convolutions in NHWC layout (the provider's prefer_nhwc); null lets the backend
    /// choose: on for Tf32 and Fp16 units, off for Fp32 (what the H200 and H100 benchmarks measured faster).
    /// </summary>
    public bool? CudaPreferNhwc { get; init; }

    /// <summary>CUDA: more of the provider's options, as name=value (they override HeteroBatch's own), for tuning experiments.</summary>
    public IReadOnlyDictionary<string, string> CudaProviderOptions { get; init; } = new Dictionary<string, string>();

    /// <summary>Remote units: the bearer token their servers require (HETEROBATCH_REMOTE_TOKEN), or null.</summary>
    public string? RemoteToken { get; init; }

    /// <summary>Where ONNX Runtime writes a per-node profile of every session (a file name prefix); null for none. For finding where a model's time goes.</summary>
    public string? OrtProfilePrefix { get; init; }

    /// <summary>How long a profile store writer waits for another process's lock before ProfileStoreBusy (null: 60 s).</summary>
    public TimeSpan? StoreLockWait { get; init; }

    /// <summary>The model cache folder (derived forms, rewritten models); null for the default one.</summary>
    public string? ModelCacheFolder { get; init; }

    /// <summary>
    /// ONNX Runtime plugin execution-provider libraries to register (full paths), such as OpenVINO's
    /// onnxruntime_providers_openvino_plugin.so/.dll: the devices they offer become units
    /// (HETEROBATCH_EP_LIBRARIES, paths separated by the system's path separator, ':' or ';').
    /// </summary>
    public IReadOnlyList<string> ExecutionProviderLibraries { get; init; } = Array.Empty<string>();

    /// <summary>Test only: the unit with this id throws after this many sub-batches (see about_HeteroBatch).</summary>
    public (string UnitId, int AfterSubBatches)? InjectFailure { get; init; }

    public const string CudnnSearchVariable = "HETEROBATCH_CUDNN_SEARCH";
    public const string NoTransferSplitVariable = "HETEROBATCH_NO_TRANSFER_SPLIT";
    public const string FailUnitVariable = "HETEROBATCH_TEST_FAIL_UNIT";
    public const string PinnedVariable = "HETEROBATCH_PINNED";
    public const string NhwcVariable = "HETEROBATCH_CUDA_NHWC";
    public const string OrtProfileVariable = "HETEROBATCH_ORT_PROFILE";
    public const string CudaOptionsVariable = "HETEROBATCH_CUDA_OPTIONS";
    public const string RemoteTokenVariable = "HETEROBATCH_REMOTE_TOKEN";
    public const string HostRegisterVariable = "HETEROBATCH_CUDA_HOST_REGISTER";
    public const string StoreLockVariable = "HETEROBATCH_STORE_LOCK_SECONDS";
    public const string EpLibrariesVariable = "HETEROBATCH_EP_LIBRARIES";

    /// <summary>Options from HETEROBATCH_CUDNN_SEARCH, HETEROBATCH_NO_TRANSFER_SPLIT=1 and HETEROBATCH_TEST_FAIL_UNIT=unitId:k.</summary>
    public static EngineOptions FromEnvironment(Func<string, string?>? read = null)
    {
        read ??= Environment.GetEnvironmentVariable;
        var options = new EngineOptions();
        if (read(CudnnSearchVariable) is { Length: > 0 } search) options = options with { CudnnAlgorithmSearch = search };
        if (read(NoTransferSplitVariable) == "1") options = options with { SplitTransfers = false };
        if (read(PinnedVariable) == "1") options = options with { PinnedTransfers = true };
        if (read(NhwcVariable) is "1" or "0") options = options with { CudaPreferNhwc = read(NhwcVariable) == "1" };
        if (read(OrtProfileVariable) is { Length: > 0 } prefix) options = options with { OrtProfilePrefix = prefix };
        if (read(HostRegisterVariable) == "0") options = options with { PageLockedInputs = false };
        if (double.TryParse(read(StoreLockVariable), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var lockSeconds) && lockSeconds >= 0)
            options = options with { StoreLockWait = TimeSpan.FromSeconds(lockSeconds) };
        if (read(EpLibrariesVariable) is { Length: > 0 } libraries)
            options = options with { ExecutionProviderLibraries = libraries.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) };
        if (read(RemoteTokenVariable) is { Length: > 0 } token) options = options with { RemoteToken = token };
        if (read(CudaOptionsVariable) is { Length: > 0 } cuda)
            options = options with
            {
                CudaProviderOptions = cuda.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    .Select(kv => kv.Split('=', 2)).Where(kv => kv.Length == 2).ToDictionary(kv => kv[0].Trim(), kv => kv[1].Trim()),
            };
        if (read(FailUnitVariable) is { Length: > 0 } fail)
        {
            var parts = fail.Split(':');
            if (parts.Length == 2 && int.TryParse(parts[1], out var k)) options = options with { InjectFailure = (parts[0], k) };
        }
        return options;
    }
}
