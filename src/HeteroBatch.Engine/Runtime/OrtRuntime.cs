using Microsoft.ML.OnnxRuntime;

namespace HeteroBatch.Engine.Runtime;

/// <summary>
/// The one place that starts ONNX Runtime: telemetry off in the native environment before the
/// first call, and an environment that logs only fatal errors (failed provider loads are
/// expected on machines without the hardware, and must not reach stderr).
/// </summary>
public static class OrtRuntime
{
    private static readonly object Gate = new();
    private static OrtEnv? _env;

    public static OrtEnv Env
    {
        get
        {
            if (_env != null) return _env;
            lock (Gate)
            {
                if (_env != null) return _env;
                Libc.SetNativeEnvironment("ORT_DISABLE_TELEMETRY", "1");
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
    }

    /// <summary>Starts the runtime (idempotent).</summary>
    public static void Initialize() => _ = Env;

    /// <summary>The ONNX Runtime version loaded, e.g. "1.31.0".</summary>
    public static string Version => Env.GetVersionString();
}
