using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Sessions;
using Microsoft.ML.OnnxRuntime;

namespace HeteroBatch.Engine.Units.Backends;

/// <summary>What every kind of unit that runs a local ONNX Runtime session shares: the options all sessions get, and the probe.</summary>
public abstract class OrtBackend : IUnitBackend
{
    public abstract string Name { get; }
    public abstract bool NeedsFeeder { get; }
    public abstract bool KeepsOneShape { get; }
    public abstract int DefaultMaxBatch { get; }

    public abstract IReadOnlyList<ComputeUnit> Discover(DiscoveryRequest request, string runtimeVersion);
    public abstract string? WhyAbsent(ComputeUnit unit, IReadOnlyList<ComputeUnit> found);
    public abstract int? WorkerProcessor(ComputeUnit unit);
    public virtual IReadOnlyList<int> ComputeProcessors(ComputeUnit unit) => Array.Empty<int>();
    public virtual bool WantsPageLockedInputs(ComputeUnit unit, EngineOptions settings) => false;
    public virtual bool TakesPixelInputs(ComputeUnit unit, EngineOptions settings) => settings.PixelInputs == PixelInputMode.All;
    public virtual double? ComputeOnlyMedianMs(IModelSession model, ComputeUnit unit, int batch, int runs, CancellationToken cancel) => null;
    public virtual bool Overlap(ComputeUnit a, ComputeUnit b) => false;

    /// <summary>Adds the unit's execution provider and its threading to options.</summary>
    protected abstract void AddProvider(SessionOptions options, ComputeUnit unit, EngineOptions settings);

    /// <summary>A session of the model's form at the unit's precision (fp16 units: the converted model), its uint8-input form where the model source is its pixel form.</summary>
    public virtual IModelSession Open(ComputeUnit unit, Models.ModelSource model, EngineOptions settings)
    {
        using var options = Options(unit, settings);
        var path = model.PixelForm is { } pixels ? InputPrefix.PathFor(model, unit.Precision, pixels) : Models.ModelCatalog.PathFor(model, unit.Precision);
        return new LoadedModel(path, options);
    }

    /// <summary>The session options for a unit (the caller disposes them).</summary>
    public SessionOptions Options(ComputeUnit unit, EngineOptions settings)
    {
        OrtRuntime.Initialize();
        var o = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL,
            InterOpNumThreads = 1,
            IntraOpNumThreads = 1,
        };
        try
        {
            if (settings.OrtProfilePrefix is { } prefix)
            {
                o.ProfileOutputPathPrefix = prefix; // read when profiling is switched on: set it first
                o.EnableProfiling = true;
                o.LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_VERBOSE; // node placements, to stderr
            }
            AddProvider(o, unit, settings);
        }
        catch
        {
            o.Dispose();
            throw;
        }
        return o;
    }

    /// <summary>Starts a real session on a one-node model: the only trustworthy test that a provider works on a device. Null if it started; else why not.</summary>
    protected string? Probe(ComputeUnit unit, EngineOptions settings)
    {
        try
        {
            using var options = Options(unit, settings);
            using var session = new InferenceSession(ProbeModel.Bytes, options);
            return null;
        }
        catch (Exception e) // whatever fails, the device is absent: a probe never stops discovery
        {
            var m = e.Message;
            var i = m.IndexOf('\n');
            return (i < 0 ? m : m[..i]).Trim();
        }
    }
}
