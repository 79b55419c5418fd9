using HeteroBatch.Engine.Data;
using Microsoft.ML.OnnxRuntime;

namespace HeteroBatch.Engine.Sessions;

/// <summary>
/// A model opened on one unit: what the profiler and the runner call, whatever runs it (a local
/// ONNX Runtime session today; a client of a remote server would be another implementation).
/// Used only on its unit's worker thread.
/// </summary>
public interface IModelSession : IDisposable
{
    ModelSignature Signature { get; }
    /// <summary>Batch sizes already run once (first runs at a shape allocate, so they are not timed).</summary>
    HashSet<int> WarmedSizes { get; }

    /// <summary>
    /// Runs samples [offset, offset + count) of the inputs and writes the results into the same
    /// rows of the outputs; with <paramref name="padTo"/> above count, runs one batch of that size.
    /// <paramref name="cancel"/> ends a run in progress.
    /// </summary>
    void Run(IReadOnlyList<TensorBatch> inputs, IReadOnlyList<TensorBatch> outputs, int offset, int count, int padTo = 0, CancellationToken cancel = default);
}

internal static class ModelSessionExtensions
{
    /// <summary>Output buffers for a batch of <paramref name="count"/> samples.</summary>
    public static IReadOnlyList<TensorBatch> AllocateOutputs(this IModelSession model, int count) =>
        model.Signature.Outputs.Select(o => o.CheckUsable(isInput: false)).Select(o => new TensorBatch(o.Name, o.SampleShape, count, null, o.ElementType)).ToList();

    /// <summary>Seeded synthetic inputs that fit this model.</summary>
    public static IReadOnlyList<TensorBatch> SyntheticInputs(this IModelSession model, int count, ulong seed, bool pinned = false) => InputSet.Synthetic(model.Signature.Inputs, count, seed, pinned).Tensors;
}

/// <summary>An ONNX Runtime session of one model on one unit, with its signature. Used only on its unit's worker thread.</summary>
internal sealed class LoadedModel : IModelSession
{
    public InferenceSession Session { get; }
    public ModelSignature Signature { get; }
    public HashSet<int> WarmedSizes { get; } = new();
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    // one RunOptions for every run on this (single) thread; replaced after a run is terminated
    private RunOptions _runOptions = new();

    /// <summary>Opens the model file at <paramref name="path"/>.</summary>
    public LoadedModel(string path, SessionOptions options) : this(new InferenceSession(path, options)) { }

    /// <summary>Opens a model held in memory.</summary>
    public LoadedModel(byte[] model, SessionOptions options) : this(new InferenceSession(model, options)) { }

    private readonly bool _ownsSession = true;

    /// <summary>Wraps a session opened elsewhere; with <paramref name="owns"/> false, disposing this leaves the session open.</summary>
    public LoadedModel(InferenceSession session, bool owns) : this(session) => _ownsSession = owns;

    /// <summary>Takes the session; it is disposed here if reading its signature fails.</summary>
    private LoadedModel(InferenceSession session)
    {
        Session = session;
        try
        {
            Signature = new ModelSignature(Session);
        }
        catch
        {
            Session.Dispose();
            _runOptions.Dispose();
            throw;
        }
        _inputNames = Signature.Inputs.Select(i => i.Name).ToArray();
        _outputNames = Signature.Outputs.Select(o => o.Name).ToArray();
    }

    public void Run(IReadOnlyList<TensorBatch> inputs, IReadOnlyList<TensorBatch> outputs, int offset, int count, int padTo = 0, CancellationToken cancel = default)
    {
        cancel.ThrowIfCancellationRequested();
        var runOptions = _runOptions;
        var registration = cancel.CanBeCanceled ? cancel.Register(() => runOptions.Terminate = true) : default;
        try
        {
            Run(runOptions, inputs, outputs, offset, count, padTo);
        }
        catch (OnnxRuntimeException) when (cancel.IsCancellationRequested)
        {
            throw new OperationCanceledException(cancel); // terminated mid-run
        }
        finally
        {
            // first the registration (Dispose waits for a callback in flight): a Ctrl+C that lands just
            // after the run must not leave the terminate flag set on options the next run would use
            registration.Dispose();
            if (runOptions.Terminate)
            {
                _runOptions = new RunOptions();
                runOptions.Dispose();
            }
        }
        cancel.ThrowIfCancellationRequested();
    }

    // samples [offset, offset + count) straight into the same rows of the outputs: OrtValues over slices of the batch buffers, no copies
    private void Run(RunOptions runOptions, IReadOnlyList<TensorBatch> inputs, IReadOnlyList<TensorBatch> outputs, int offset, int count, int padTo = 0)
    {
        if (Signature.FixedBatch is long fixedBatch && fixedBatch != count)
        {
            // a graph exported with a fixed batch: run it in pieces of that size, the last one padded
            int size = (int)fixedBatch;
            for (int done = 0; done < count; done += size)
            {
                int n = Math.Min(size, count - done);
                if (n == size) RunDirect(runOptions, inputs, outputs, offset + done, n);
                else RunPadded(runOptions, inputs, outputs, offset + done, n, size);
            }
            return;
        }
        if (_pinnedAllocator != null) RunPinned(runOptions, inputs, outputs, offset, count, Math.Max(padTo, count));
        else if (padTo > count) RunPadded(runOptions, inputs, outputs, offset, count, padTo);
        else RunDirect(runOptions, inputs, outputs, offset, count);
    }

    // pinned staging: page-locked host buffers bound with IOBinding, one per batch size run
    private OrtMemoryInfo? _pinnedInfo;
    private OrtAllocator? _pinnedAllocator;
    private readonly Dictionary<int, PinnedStage> _pinnedStages = new();

    private sealed class PinnedStage(OrtIoBinding binding, OrtValue[] inputs) : IDisposable
    {
        public OrtIoBinding Binding { get; } = binding;
        public OrtValue[] Inputs { get; } = inputs;

        public void Dispose()
        {
            Binding.Dispose();
            foreach (var v in Inputs) v.Dispose();
        }
    }

    /// <summary>
    /// From now on, runs go through page-locked host buffers allocated from <paramref name="pinned"/>
    /// (a device's pinned host memory) and bound with IOBinding: the samples are copied in, the
    /// provider copies them to the device and back by DMA, the results are copied out. False if
    /// the session has no allocator for that memory (the plain path stays).
    /// </summary>
    public bool UsePinnedStaging(OrtMemoryInfo pinned)
    {
        try
        {
            _pinnedAllocator = new OrtAllocator(Session, pinned);
            _pinnedInfo = pinned;
            return true;
        }
        catch (OnnxRuntimeException)
        {
            pinned.Dispose();
            return false;
        }
    }

    /// <summary>
    /// Copies the samples into page-locked input buffers and binds them: binding queues the copy to
    /// the device, so inputs are bound again for every run. Outputs are bound to the rows of the
    /// output batch (host memory), where the provider writes them after the run.
    /// </summary>
    private void RunPinned(RunOptions runOptions, IReadOnlyList<TensorBatch> inputs, IReadOnlyList<TensorBatch> outputs, int offset, int count, int size)
    {
        if (!_pinnedStages.TryGetValue(size, out var stage))
        {
            var ins = new List<OrtValue>();
            try
            {
                foreach (var t in inputs) ins.Add(OrtValue.CreateAllocatedTensorValue(_pinnedAllocator!, t.ElementType, t.ShapeFor(size)));
            }
            catch
            {
                foreach (var v in ins) v.Dispose();
                throw;
            }
            stage = new PinnedStage(Session.CreateIoBinding(), ins.ToArray());
            _pinnedStages[size] = stage;
        }
        // padded rows (count..size) keep whatever an earlier run left: their outputs are not kept
        for (int i = 0; i < inputs.Count; i++)
            inputs[i].Bytes(offset, count).CopyTo(stage.Inputs[i].GetTensorMutableRawData());
        var binding = stage.Binding;
        binding.ClearBoundInputs();
        binding.ClearBoundOutputs();
        for (int i = 0; i < inputs.Count; i++) binding.BindInput(_inputNames[i], stage.Inputs[i]);
        var staged = size > count ? outputs.Select(o => o.EmptyLike(size)).ToList() : null;
        var outputValues = new OrtValue[outputs.Count];
        try
        {
            for (int i = 0; i < outputs.Count; i++)
            {
                outputValues[i] = staged != null ? staged[i].CreateValue(0, size) : outputs[i].CreateValue(offset, count);
                binding.BindOutput(_outputNames[i], outputValues[i]);
            }
            binding.SynchronizeBoundInputs();
            Session.RunWithBinding(runOptions, binding);
            binding.SynchronizeBoundOutputs();
        }
        finally
        {
            foreach (var v in outputValues) v?.Dispose();
        }
        if (staged != null)
            for (int i = 0; i < outputs.Count; i++) staged[i].CopyTo(0, count, outputs[i], offset);
    }

    private void RunDirect(RunOptions runOptions, IReadOnlyList<TensorBatch> inputs, IReadOnlyList<TensorBatch> outputs, int offset, int count, int? outputOffset = null)
    {
        var inputValues = new OrtValue[inputs.Count];
        var outputValues = new OrtValue[outputs.Count];
        try
        {
            for (int i = 0; i < inputs.Count; i++)
                inputValues[i] = inputs[i].CreateValue(offset, count);
            for (int i = 0; i < outputs.Count; i++)
                outputValues[i] = outputs[i].CreateValue(outputOffset ?? offset, count);
            Session.Run(runOptions, _inputNames, inputValues, _outputNames, outputValues);
        }
        finally
        {
            foreach (var v in inputValues) v?.Dispose();
            foreach (var v in outputValues) v?.Dispose();
        }
    }

    private readonly Dictionary<int, List<TensorBatch>> _stagingIn = new();
    private readonly Dictionary<int, List<TensorBatch>> _stagingOut = new();
    /// <summary>How many padded sizes needed their inputs copied into a staging batch (a test's view).</summary>
    internal int StagedInputBatches => _stagingIn.Count;
    // GPU sessions: padded runs stage their inputs in page-locked memory too, locked for the session's life
    private List<PageLockedBuffers>? _lockedStaging;

    /// <summary>Padded runs (a GPU's short sub-batches) stage their inputs on the pinned heap, page-locked until the session ends.</summary>
    public void UsePageLockedStaging() => _lockedStaging = new();

    /// <summary>
    /// Runs <paramref name="count"/> samples as a batch of <paramref name="padTo"/>. On GPUs every
    /// change of input shape re-plans the convolutions (hundreds of milliseconds on ONNX Runtime
    /// 1.31's CUDA provider), so a unit keeps one shape and pays for a few padded samples instead.
    /// Where the inputs hold <paramref name="padTo"/> samples around the range, the run reads that
    /// window of them in place (its neighbours only fill the batch; inputs are never written) and
    /// only the range's output rows are copied out; otherwise the samples are copied into a staging
    /// batch. (On an H100 the copy of a 488-sample tail of 224×224 images cost more than the run.)
    /// </summary>
    private void RunPadded(RunOptions runOptions, IReadOnlyList<TensorBatch> inputs, IReadOnlyList<TensorBatch> outputs, int offset, int count, int padTo)
    {
        if (!_stagingOut.TryGetValue(padTo, out var stagedOut)) _stagingOut[padTo] = stagedOut = outputs.Select(t => t.EmptyLike(padTo)).ToList();
        int available = inputs.Min(t => t.Count);
        if (available >= padTo)
        {
            int start = Math.Min(offset, available - padTo);
            RunDirect(runOptions, inputs, stagedOut, start, padTo, outputOffset: 0);
            for (int i = 0; i < outputs.Count; i++) stagedOut[i].CopyTo(offset - start, count, outputs[i], offset);
            return;
        }
        if (!_stagingIn.TryGetValue(padTo, out var stagedIn))
        {
            stagedIn = inputs.Select(t => _lockedStaging != null ? TensorBatch.AllocatePinned(t.Name, t.SampleShape, padTo, t.ElementType) : t.EmptyLike(padTo)).ToList();
            _lockedStaging?.Add(PageLockedBuffers.Lock(stagedIn));
            _stagingIn[padTo] = stagedIn;
        }
        for (int i = 0; i < inputs.Count; i++) inputs[i].CopyTo(offset, count, stagedIn[i], 0);
        RunDirect(runOptions, stagedIn, stagedOut, 0, padTo);
        for (int i = 0; i < outputs.Count; i++) stagedOut[i].CopyTo(0, count, outputs[i], offset);
    }

    /// <summary>
    /// Median time of <paramref name="runs"/> runs of <paramref name="count"/> samples with inputs
    /// and outputs resident in <paramref name="memory"/> (a device's: no host transfers); null where that cannot be set up.
    /// </summary>
    public double? DeviceResidentMedianMs(OrtMemoryInfo memory, int count, int runs, CancellationToken cancel)
    {
        var runOptions = _runOptions;
        var stop = cancel.Register(() => runOptions.Terminate = true);
        try
        {
            using var allocator = new OrtAllocator(Session, memory);
            var values = new List<OrtValue>();
            try
            {
                using var binding = Session.CreateIoBinding();
                foreach (var input in Signature.Inputs)
                {
                    var v = OrtValue.CreateAllocatedTensorValue(allocator, input.ElementType, new[] { (long)count }.Concat(input.SampleShape).ToArray());
                    values.Add(v);
                    binding.BindInput(input.Name, v);
                }
                foreach (var output in Signature.Outputs) binding.BindOutputToDevice(output.Name, memory);
                binding.SynchronizeBoundInputs();
                Session.RunWithBinding(runOptions, binding);
                binding.SynchronizeBoundOutputs();
                var times = new List<double>();
                for (int i = 0; i < runs && !cancel.IsCancellationRequested; i++)
                {
                    long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                    Session.RunWithBinding(runOptions, binding);
                    binding.SynchronizeBoundOutputs();
                    times.Add(System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                }
                times.Sort();
                return times[times.Count / 2];
            }
            finally
            {
                // the device tensors go before the allocator they came from
                foreach (var v in values) v.Dispose();
            }
        }
        catch (OnnxRuntimeException)
        {
            return null;
        }
        finally
        {
            stop.Dispose(); // before the flag is read, as in Run
            if (runOptions.Terminate) { _runOptions = new RunOptions(); runOptions.Dispose(); }
        }
    }

    public void Dispose()
    {
        // buffers before the allocator they came from, the allocator before its session
        foreach (var stage in _pinnedStages.Values) stage.Dispose();
        _pinnedStages.Clear();
        _pinnedAllocator?.Dispose();
        _pinnedInfo?.Dispose();
        _lockedStaging?.ForEach(l => l.Dispose());
        if (_ownsSession) Session.Dispose();
        _runOptions.Dispose();
    }
}
