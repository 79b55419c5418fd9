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

    /// <summary>
    /// GPUs that decode their own share of a file job: the most images decoded and inferred at once (a range
    /// runs in equal chunks of at most this many; <see cref="GpuDecodeThreads"/> + 2 chunks' pixels in GPU memory at a time), 1-1024
    /// (HETEROBATCH_GPU_DECODE_CHUNK). Larger chunks infer faster per image, smaller ones start inference sooner.
    /// </summary>
    public int GpuDecodeChunk { get; init; } = DefaultGpuDecodeChunk;
    public const int DefaultGpuDecodeChunk = 128, MaxGpuDecodeChunk = 1024;

    /// <summary>
    /// GPUs that decode their own share: how many chunks decode at once while one infers, each on a thread
    /// of its own into a device batch of its own, 1-4 (HETEROBATCH_GPU_DECODE_THREADS). A GPU holds this many
    /// batches plus two: one inferring, one decoded and waiting its turn (so its GPU work ends unseen).
    /// </summary>
    public int GpuDecodeThreads { get; init; } = 1;
    public const int MaxGpuDecodeThreads = 4;

    /// <summary>
    /// File jobs where every unit decodes its own share (GPUs with nvJPEG): the most of each unit's share of a
    /// block that CPU decoding threads decode for it as they have time, taking samples from the back of the share
    /// while the unit decodes from the front (whoever reaches a sample first decodes it), into uint8 pixels the
    /// unit copies in. 0 (the default) turns it off; at most 0.5 (HETEROBATCH_CPU_DECODE_SHARE). Each block then
    /// holds pixels for this much of the units' shares, in page-locked memory. Off by default because it did not
    /// pay where measured: on 2 x H200 (JPEG engines; 32 processors) the jobs ran as fast or slower with it (the
    /// helping threads slowed the writer), on 1 x H200 (16 processors) 1-2 % faster. Which of a share's samples
    /// the CPU decodes depends on timing, and its pixels are the exact ones, a GPU's its own (0.5 levels apart on
    /// average): with it on, a sample's outputs may differ slightly from one run to the next.
    /// </summary>
    public double CpuDecodeShare { get; init; } = DefaultCpuDecodeShare;
    public const double DefaultCpuDecodeShare = 0, MaxCpuDecodeShare = 0.5;

    /// <summary>
    /// GPUs that decode their own share: resize a chunk's images with one batched NPP call (whole-pixel source
    /// rectangles) rather than one call an image (sub-pixel exact); HETEROBATCH_GPU_BATCHED_RESIZE=0 turns it off.
    /// Where this NPP lacks or refuses the batched call, images are resized one at a time.
    /// </summary>
    public bool GpuBatchedResize { get; init; } = true;

    /// <summary>
    /// Linux (glibc): native allocations of at least this many bytes get memory of their own from the OS,
    /// returned when freed (malloc's mmap threshold, fixed for the whole process when an engine context
    /// starts; 128 KiB to 32 MiB; 0, or a threshold set through glibc's own variables, leaves glibc's, which rises to 32 MiB as
    /// large blocks are freed, after which they are carved from its heaps and kept there, resident, when
    /// freed). HETEROBATCH_MALLOC_MMAP_THRESHOLD, in bytes. Measured on 2 x H200 as a user runs a two-GPU
    /// job over 8,192 JPEGs: peak RSS 1,758 MiB at 1 MiB against 1,967 with glibc's own, jobs as fast.
    /// </summary>
    public long NativeMmapThreshold { get; init; } = 1 << 20;

    /// <summary>
    /// File jobs: which units fed by CPU decoding threads take uint8 pixels and normalise them themselves
    /// (the model's uint8-input form) instead of float32 inputs: those that prefer it (GPUs; the default),
    /// none (HETEROBATCH_PIXEL_INPUTS=0), or every local unit (=all, CPU units too). Only where every unit
    /// a job feeds takes them.
    /// </summary>
    public PixelInputMode PixelInputs { get; init; } = PixelInputMode.Preferred;
    /// <summary>glibc's largest mmap threshold (32 MiB on 64-bit).</summary>
    public const long MaxNativeMmapThreshold = 32L << 20;
    /// <summary>The smallest taken (glibc's own starting value, 128 KiB): below it, too many blocks would each be a mapping of their own.</summary>
    public const long MinNativeMmapThreshold = 128L << 10;

    /// <summary>CUDA: more of the provider's options, as name=value (they override HeteroBatch's own), for tuning experiments.</summary>
    public IReadOnlyDictionary<string, string> CudaProviderOptions { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// Remote units: the bearer token their servers require, where a unit was not given one of its
    /// own (Get-ComputeUnit -Token); from HETEROBATCH_REMOTE_TOKEN at import, or null. Never shown or serialized in clear.
    /// </summary>
    public BearerToken? RemoteToken { get; init; }

    /// <summary>Where ONNX Runtime writes a per-node profile of every session (a file name prefix); null for none. For finding where a model's time goes.</summary>
    public string? OrtProfilePrefix { get; init; }

    /// <summary>The profile store folder used when a command is given no -ProfilePath (HETEROBATCH_PROFILE_PATH, else the user data folder).</summary>
    public string ProfileStorePath { get; init; } = DefaultProfileStorePath(NoVariables);

    /// <summary>The folder built-in and prepared models are written to (HETEROBATCH_CACHE/models, else the user cache folder).</summary>
    public string ModelCacheFolder { get; init; } = DefaultModelCacheFolder(NoVariables);

    /// <summary>
    /// The native folder of the ONNX Runtime this process loads instead of the module's own
    /// (HETEROBATCH_ORT_PATH), or null. Takes effect only before ONNX Runtime starts: it is read at import.
    /// </summary>
    public string? OrtPath { get; init; }

    /// <summary>Seconds a profile store writer waits for another process's lock before ProfileStoreBusy (HETEROBATCH_STORE_LOCK_SECONDS; default 60).</summary>
    public double StoreLockSeconds { get; init; } = 60;

    /// <summary>The options a session may change while the module is loaded (Set-HeteroBatchOption); the others are fixed at import, since workers and sessions are built with them.</summary>
    public static readonly IReadOnlyList<string> SettableInSession = new[] { nameof(ProfileStorePath), nameof(ModelCacheFolder), nameof(StoreLockSeconds), nameof(RemoteToken) };

    /// <summary>
    /// <paramref name="changed"/> (these options with some changed, made with <c>with</c>), checked against
    /// these: nothing changed but <see cref="SettableInSession"/>, paths not empty and not files, the
    /// lock wait a finite number of seconds not below zero. Returns it with its paths made full.
    /// Throws OptionInvalid (a bad value), ProfilePathIsFile, or OptionFixedAtImport.
    /// </summary>
    public EngineOptions Checked(EngineOptions changed)
    {
        var fixedPart = changed with { ProfileStorePath = ProfileStorePath, ModelCacheFolder = ModelCacheFolder, StoreLockSeconds = StoreLockSeconds, RemoteToken = RemoteToken };
        if (fixedPart != this)
            throw new HeteroBatchException("OptionFixedAtImport", FailureKind.InvalidOperation,
                $"Only {string.Join(", ", SettableInSession)} can change in a session; the other options are read from the environment when the module is imported.");
        if (string.IsNullOrWhiteSpace(changed.ProfileStorePath))
            throw new HeteroBatchException("OptionInvalid", FailureKind.InvalidArgument, "The profile store path is empty.", nameof(ProfileStorePath));
        if (string.IsNullOrWhiteSpace(changed.ModelCacheFolder))
            throw new HeteroBatchException("OptionInvalid", FailureKind.InvalidArgument, "The model cache folder is empty.", nameof(ModelCacheFolder));
        if (!double.IsFinite(changed.StoreLockSeconds) || changed.StoreLockSeconds < 0)
            throw new HeteroBatchException("OptionInvalid", FailureKind.InvalidArgument,
                $"The store lock wait must be a number of seconds, 0 or more; it was {changed.StoreLockSeconds}.", nameof(StoreLockSeconds));
        var store = Path.GetFullPath(changed.ProfileStorePath);
        if (File.Exists(store))
            throw new HeteroBatchException("ProfilePathIsFile", FailureKind.InvalidArgument, $"The profile store must be a folder; {store} is a file.", store);
        var cache = Path.GetFullPath(changed.ModelCacheFolder);
        if (File.Exists(cache))
            throw new HeteroBatchException("OptionInvalid", FailureKind.InvalidArgument, $"The model cache must be a folder; {cache} is a file.", nameof(ModelCacheFolder));
        return changed with { ProfileStorePath = store, ModelCacheFolder = cache };
    }

    /// <summary>
    /// ONNX Runtime plugin execution-provider libraries to register (full paths), such as OpenVINO's
    /// onnxruntime_providers_openvino_plugin.so/.dll: the devices they offer become units
    /// (HETEROBATCH_EP_LIBRARIES, paths separated by the system's path separator, ':' or ';'). Read at import.
    /// </summary>
    public IReadOnlyList<string> ExecutionProviderLibraries { get; init; } = Array.Empty<string>();

    public const string CudnnSearchVariable = "HETEROBATCH_CUDNN_SEARCH";
    public const string NoTransferSplitVariable = "HETEROBATCH_NO_TRANSFER_SPLIT";
    public const string PinnedVariable = "HETEROBATCH_PINNED";
    public const string NhwcVariable = "HETEROBATCH_CUDA_NHWC";
    public const string OrtProfileVariable = "HETEROBATCH_ORT_PROFILE";
    public const string CudaOptionsVariable = "HETEROBATCH_CUDA_OPTIONS";
    public const string RemoteTokenVariable = "HETEROBATCH_REMOTE_TOKEN";
    public const string HostRegisterVariable = "HETEROBATCH_CUDA_HOST_REGISTER";
    public const string ProfilePathVariable = "HETEROBATCH_PROFILE_PATH";
    public const string CacheVariable = "HETEROBATCH_CACHE";
    public const string OrtPathVariable = "HETEROBATCH_ORT_PATH";
    public const string StoreLockVariable = "HETEROBATCH_STORE_LOCK_SECONDS";
    public const string EpLibrariesVariable = "HETEROBATCH_EP_LIBRARIES";
    public const string GpuDecodeChunkVariable = "HETEROBATCH_GPU_DECODE_CHUNK";
    public const string GpuDecodeThreadsVariable = "HETEROBATCH_GPU_DECODE_THREADS";
    public const string GpuBatchedResizeVariable = "HETEROBATCH_GPU_BATCHED_RESIZE";
    public const string MmapThresholdVariable = "HETEROBATCH_MALLOC_MMAP_THRESHOLD";
    public const string PixelInputsVariable = "HETEROBATCH_PIXEL_INPUTS";
    public const string CpuDecodeShareVariable = "HETEROBATCH_CPU_DECODE_SHARE";

    private static string? NoVariables(string name) => null;

    /// <summary>$HETEROBATCH_PROFILE_PATH, else $XDG_DATA_HOME/HeteroBatch/profiles, else the user data folder's HeteroBatch/profiles.</summary>
    public static string DefaultProfileStorePath(Func<string, string?> read)
    {
        if (read(ProfilePathVariable) is { Length: > 0 } explicitDir) return Path.GetFullPath(explicitDir);
        var root = read("XDG_DATA_HOME") is { Length: > 0 } xdg ? xdg
            : Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify);
        if (string.IsNullOrEmpty(root)) root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
        return Path.GetFullPath(Path.Combine(root, "HeteroBatch", "profiles"));
    }

    /// <summary>$HETEROBATCH_CACHE/models, else $XDG_CACHE_HOME/HeteroBatch/models, else ~/.cache/HeteroBatch/models (LocalApplicationData on Windows).</summary>
    public static string DefaultModelCacheFolder(Func<string, string?> read)
    {
        if (read(CacheVariable) is { Length: > 0 } explicitDir) return Path.GetFullPath(Path.Combine(explicitDir, "models"));
        var root = read("XDG_CACHE_HOME") is { Length: > 0 } xdg ? xdg
            : OperatingSystem.IsWindows() ? Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData)
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.GetFullPath(Path.Combine(root, "HeteroBatch", "models"));
    }

    /// <summary>
    /// Every option from its HETEROBATCH_* variable (and XDG_DATA_HOME / XDG_CACHE_HOME for the
    /// default folders): the one place HeteroBatch reads the environment. The module calls it once,
    /// at import; the benchmark once at start. A value that does not parse leaves the default.
    /// </summary>
    public static EngineOptions FromEnvironment(Func<string, string?>? read = null)
    {
        read ??= Environment.GetEnvironmentVariable;
        var options = new EngineOptions { ProfileStorePath = DefaultProfileStorePath(read), ModelCacheFolder = DefaultModelCacheFolder(read) };
        if (read(OrtPathVariable) is { Length: > 0 } ort) options = options with { OrtPath = ort };
        if (double.TryParse(read(StoreLockVariable), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var wait) && double.IsFinite(wait) && wait >= 0)
            options = options with { StoreLockSeconds = wait };
        if (read(CudnnSearchVariable) is { Length: > 0 } search) options = options with { CudnnAlgorithmSearch = search };
        if (read(NoTransferSplitVariable) == "1") options = options with { SplitTransfers = false };
        if (read(PinnedVariable) == "1") options = options with { PinnedTransfers = true };
        if (read(NhwcVariable) is "1" or "0") options = options with { CudaPreferNhwc = read(NhwcVariable) == "1" };
        if (read(OrtProfileVariable) is { Length: > 0 } prefix) options = options with { OrtProfilePrefix = prefix };
        if (int.TryParse(read(GpuDecodeChunkVariable), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var chunk) && chunk is >= 1 and <= MaxGpuDecodeChunk)
            options = options with { GpuDecodeChunk = chunk };
        if (int.TryParse(read(GpuDecodeThreadsVariable), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var decoders) && decoders is >= 1 and <= MaxGpuDecodeThreads)
            options = options with { GpuDecodeThreads = decoders };
        if (double.TryParse(read(CpuDecodeShareVariable), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var help)
            && help is >= 0 and <= MaxCpuDecodeShare)
            options = options with { CpuDecodeShare = help };
        if (read(GpuBatchedResizeVariable) == "0") options = options with { GpuBatchedResize = false };
        if (read(PixelInputsVariable) is { } pixels)
            options = options with { PixelInputs = pixels.Trim().ToLowerInvariant() switch { "0" => PixelInputMode.Off, "all" => PixelInputMode.All, _ => options.PixelInputs } };
        if (long.TryParse(read(MmapThresholdVariable), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var mmap)
            && (mmap == 0 || mmap is >= MinNativeMmapThreshold and <= MaxNativeMmapThreshold))
            options = options with { NativeMmapThreshold = mmap };
        // a threshold the user gave glibc itself stays theirs
        if (read("GLIBC_TUNABLES") is { } tunables && tunables.Contains("glibc.malloc.mmap_threshold", StringComparison.Ordinal) || read("MALLOC_MMAP_THRESHOLD_") is { Length: > 0 })
            options = options with { NativeMmapThreshold = 0 };
        if (read(HostRegisterVariable) == "0") options = options with { PageLockedInputs = false };
        if (read(RemoteTokenVariable) is { Length: > 0 } token) options = options with { RemoteToken = new BearerToken(token) };
        if (read(EpLibrariesVariable) is { Length: > 0 } libraries)
            options = options with { ExecutionProviderLibraries = libraries.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) };
        if (read(CudaOptionsVariable) is { Length: > 0 } cuda)
            options = options with
            {
                CudaProviderOptions = cuda.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    .Select(kv => kv.Split('=', 2)).Where(kv => kv.Length == 2).ToDictionary(kv => kv[0].Trim(), kv => kv[1].Trim()),
            };
        return options;
    }
}

/// <summary>Which units fed by a file job's CPU decoding threads take uint8 pixels (<see cref="EngineOptions.PixelInputs"/>).</summary>
public enum PixelInputMode
{
    /// <summary>None: every unit takes the model's own (float) input.</summary>
    Off,
    /// <summary>Units whose backend prefers them (GPUs).</summary>
    Preferred,
    /// <summary>Every local unit, CPU units too.</summary>
    All,
}
