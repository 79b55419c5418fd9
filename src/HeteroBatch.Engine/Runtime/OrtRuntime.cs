using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;

namespace HeteroBatch.Engine.Runtime;

/// <summary>
/// The one place that starts ONNX Runtime: telemetry off in the native environment before the
/// first call, and an environment that logs only fatal errors (failed provider loads are
/// expected on machines without the hardware, and must not reach stderr).
/// </summary>
public static class OrtRuntime
{
    /// <summary>Points the module at another ONNX Runtime native folder (an OpenVINO build, say): <see cref="EngineOptions.OrtPath"/>.</summary>
    public const string NativePathVariable = EngineOptions.OrtPathVariable;
    private static readonly object Gate = new();
    private static OrtEnv? _env;

    /// <summary>The native library loaded, where <see cref="NativePathVariable"/> chose it; null for the one shipped with the module.</summary>
    public static string? NativeLibraryPath { get; private set; }

    /// <summary>The runtime's environment, started with the module's own native library if nothing started it before.</summary>
    public static OrtEnv Env => _env ?? Start(null);

    /// <summary>
    /// Starts the runtime once per process: telemetry off, and the native library from
    /// <paramref name="nativeFolder"/> (<see cref="EngineOptions.OrtPath"/>) where given. Later
    /// calls return the running environment whatever folder they name: a process loads one ONNX Runtime.
    /// </summary>
    private static OrtEnv Start(string? nativeFolder)
    {
        if (_env != null) return _env;
        lock (Gate)
        {
            if (_env != null) return _env;
            Libc.SetNativeEnvironment("ORT_DISABLE_TELEMETRY", "1");
            UseNativeFolder(nativeFolder);
            var options = new EnvironmentCreationOptions
            {
                logId = "HeteroBatch",
                logLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL,
            };
            var env = OrtEnv.CreateInstanceWithOptions(ref options);
            env.DisableTelemetryEvents();
            _env = env;
            return env;
        }
    }

    /// <summary>
    /// With a folder given (HETEROBATCH_ORT_PATH), loads libonnxruntime from it instead of the module's
    /// own (its execution-provider libraries load from beside it). Throws OrtPathInvalid if the
    /// folder holds no such library. Must run before any ONNX Runtime type is touched.
    /// </summary>
    private static void UseNativeFolder(string? dir)
    {
        if (string.IsNullOrEmpty(dir)) return;
        var file = OperatingSystem.IsWindows() ? "onnxruntime.dll" : OperatingSystem.IsMacOS() ? "libonnxruntime.dylib" : "libonnxruntime.so";
        var path = Path.Combine(Path.GetFullPath(dir), file);
        if (!File.Exists(path))
            throw new HeteroBatchException("OrtPathInvalid", FailureKind.InvalidArgument,
                $"{NativePathVariable} is '{dir}', which holds no {file}. Point it at the native folder of an ONNX Runtime build (for OpenVINO: one built with the OpenVINO provider), or remove it to use the module's own.", dir);
        // checked before anything is switched over, so that a bad folder leaves the process able to load the module's own
        if (!NativeLibrary.TryLoad(path, out var handle) || !NativeLibrary.TryGetExport(handle, "OrtGetApiBase", out _))
            throw new HeteroBatchException("OrtPathInvalid", FailureKind.InvalidArgument,
                $"{NativePathVariable} is '{dir}', whose {file} is not an ONNX Runtime library this process can load. Point it at the native folder of an ONNX Runtime build, or remove it to use the module's own.", dir);
        OrtEnv.DisableDllImportResolver = true;
        NativeLibrary.SetDllImportResolver(typeof(OrtEnv).Assembly, (name, _, _) =>
            name.Contains("onnxruntime", StringComparison.OrdinalIgnoreCase) ? handle : IntPtr.Zero);
        NativeLibraryPath = path;
    }

    /// <summary>Starts the runtime (idempotent); <paramref name="nativeFolder"/> counts only on the first start in the process.</summary>
    public static void Initialize(string? nativeFolder = null) => _ = Start(nativeFolder);

    /// <summary>The ONNX Runtime version loaded, e.g. "1.31.0".</summary>
    public static string Version => Env.GetVersionString();
}
