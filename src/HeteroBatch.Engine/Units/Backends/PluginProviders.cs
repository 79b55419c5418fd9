using HeteroBatch.Engine.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace HeteroBatch.Engine.Units.Backends;

/// <summary>One plugin library as registration left it: its full path, and ORT's error text where it did not register.</summary>
internal sealed record PluginLibrary(string Path, string? Error)
{
    public bool Registered => Error == null;
}

/// <summary>One device a plugin execution provider offers, as ONNX Runtime lists it (<c>OrtEnv.GetEpDevices</c>), in plain values.</summary>
/// <param name="EpName">The provider's name ("OpenVINOExecutionProvider").</param>
/// <param name="HardwareType">CPU, GPU or NPU.</param>
/// <param name="Metadata">The provider's metadata for the device (OpenVINO's plugin: <c>ov_device</c> = CPU, GPU, GPU.1, NPU).</param>
internal sealed record PluginDevice(string EpName, OrtHardwareDeviceType HardwareType, uint VendorId, uint DeviceId, string Vendor, IReadOnlyDictionary<string, string> Metadata);

/// <summary>
/// ONNX Runtime's plugin execution providers (ORT 1.23 and later): libraries registered with the
/// process-wide environment (<c>OrtEnv.RegisterExecutionProviderLibrary</c>) whose devices
/// sessions then select (<c>SessionOptions.AppendExecutionProvider(env, devices, options)</c>).
/// Registration is process-wide in ONNX Runtime itself, so the record of what is registered is
/// too: it mirrors the environment, it is not a setting. Any thread may call in.
/// </summary>
internal static class PluginProviders
{
    // guards Registered and every call into ORT's registration and device list
    private static readonly object Gate = new();
    // the full paths registered with ORT's environment, each under its own name; a library is never unregistered
    // (sessions made from its devices may still be alive), and a failed one is tried again next time (it may be installed since)
    private static readonly HashSet<string> Registered = new(StringComparer.Ordinal);

    /// <summary>Registers each library not registered yet, in order; returns each one's outcome (ORT's own error text where it failed).</summary>
    public static IReadOnlyList<PluginLibrary> Register(IEnumerable<string> paths)
    {
        var results = new List<PluginLibrary>();
        var env = OrtRuntime.Env;
        lock (Gate)
        {
            foreach (var given in paths.Where(p => !string.IsNullOrWhiteSpace(p)).Distinct())
            {
                string path;
                try { path = System.IO.Path.GetFullPath(given.Trim()); }
                catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
                {
                    results.Add(new PluginLibrary(given, $"not a path: {e.Message}"));
                    continue;
                }
                if (Registered.Contains(path)) { results.Add(new PluginLibrary(path, null)); continue; }
                try
                {
                    env.RegisterExecutionProviderLibrary(RegistrationName(path), path);
                    Registered.Add(path);
                    results.Add(new PluginLibrary(path, null));
                }
                catch (OnnxRuntimeException e)
                {
                    results.Add(new PluginLibrary(path, e.Message.Trim()));
                }
            }
        }
        return results;
    }

    /// <summary>The name a library is registered under: its full path, so that two libraries never clash.</summary>
    internal static string RegistrationName(string fullPath) => "HeteroBatch:" + fullPath;

    /// <summary>The devices offered now by the provider named <paramref name="epName"/>, in ONNX Runtime's order, with ORT's handle to each.</summary>
    internal static IReadOnlyList<(PluginDevice Device, OrtEpDevice Handle)> Devices(string epName)
    {
        lock (Gate)
        {
            return OrtRuntime.Env.GetEpDevices()
                .Where(d => d.EpName == epName)
                .Select(d => (new PluginDevice(d.EpName, d.HardwareDevice.Type, d.HardwareDevice.VendorId, d.HardwareDevice.DeviceId,
                    d.HardwareDevice.Vendor, new Dictionary<string, string>(d.EpMetadata.Entries)), d))
                .ToList();
        }
    }

    /// <summary>The providers offering devices now, other than ONNX Runtime's own CPU provider: for messages.</summary>
    internal static IReadOnlyList<string> ProviderNames()
    {
        lock (Gate)
            return OrtRuntime.Env.GetEpDevices().Select(d => d.EpName).Where(n => n != "CPUExecutionProvider").Distinct().ToList();
    }
}
