using HeteroBatch.Engine.Data;
using Microsoft.ML.OnnxRuntime;

namespace HeteroBatch.Engine.Execution;

/// <summary>A session of one model on one unit, with its signature. Used only on its unit's worker thread.</summary>
public sealed class LoadedModel : IDisposable
{
    public InferenceSession Session { get; }
    public ModelSignature Signature { get; }
    /// <summary>Batch sizes already run once (first runs at a shape allocate, so they are not timed).</summary>
    public HashSet<int> WarmedSizes { get; } = new();
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;

    public LoadedModel(InferenceSession session)
    {
        Session = session;
        Signature = new ModelSignature(session);
        _inputNames = Signature.Inputs.Select(i => i.Name).ToArray();
        _outputNames = Signature.Outputs.Select(o => o.Name).ToArray();
    }

    /// <summary>
    /// Runs samples [offset, offset + count) of the inputs and writes the results straight into
    /// the same rows of the outputs: OrtValues over slices of the batch buffers, no copies.
    /// </summary>
    public void Run(RunOptions runOptions, IReadOnlyList<TensorBatch> inputs, IReadOnlyList<TensorBatch> outputs, int offset, int count, int padTo = 0)
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
        if (padTo > count) RunPadded(runOptions, inputs, outputs, offset, count, padTo);
        else RunDirect(runOptions, inputs, outputs, offset, count);
    }

    private void RunDirect(RunOptions runOptions, IReadOnlyList<TensorBatch> inputs, IReadOnlyList<TensorBatch> outputs, int offset, int count)
    {
        var inputValues = new OrtValue[inputs.Count];
        var outputValues = new OrtValue[outputs.Count];
        try
        {
            for (int i = 0; i < inputs.Count; i++)
                inputValues[i] = inputs[i].CreateValue(offset, count);
            for (int i = 0; i < outputs.Count; i++)
                outputValues[i] = outputs[i].CreateValue(offset, count);
            Session.Run(runOptions, _inputNames, inputValues, _outputNames, outputValues);
        }
        finally
        {
            foreach (var v in inputValues) v?.Dispose();
            foreach (var v in outputValues) v?.Dispose();
        }
    }

    private readonly Dictionary<int, (List<TensorBatch> In, List<TensorBatch> Out)> _staging = new();

    /// <summary>
    /// Runs <paramref name="count"/> samples as a batch of <paramref name="padTo"/>: the samples are
    /// copied into a staging batch of that size and their outputs copied back. On GPUs every change
    /// of input shape re-plans the convolutions (hundreds of milliseconds on ONNX Runtime 1.31's CUDA
    /// provider), so a unit keeps one shape and pays for a few padded samples instead.
    /// </summary>
    private void RunPadded(RunOptions runOptions, IReadOnlyList<TensorBatch> inputs, IReadOnlyList<TensorBatch> outputs, int offset, int count, int padTo)
    {
        if (!_staging.TryGetValue(padTo, out var staging))
        {
            staging = (inputs.Select(t => t.EmptyLike(padTo)).ToList(), outputs.Select(t => t.EmptyLike(padTo)).ToList());
            _staging[padTo] = staging;
        }
        for (int i = 0; i < inputs.Count; i++) inputs[i].CopyTo(offset, count, staging.In[i], 0);
        RunDirect(runOptions, staging.In, staging.Out, 0, padTo);
        for (int i = 0; i < outputs.Count; i++) staging.Out[i].CopyTo(0, count, outputs[i], offset);
    }

    /// <summary>
    /// Median time of <paramref name="runs"/> runs of <paramref name="count"/> samples with inputs
    /// and outputs resident on a CUDA device (no host transfers); null where that cannot be set up.
    /// </summary>
    public double? DeviceResidentMedianMs(RunOptions runOptions, int deviceId, int count, int runs)
    {
        try
        {
            using var memory = new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, deviceId, OrtMemType.Default);
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
                for (int i = 0; i < runs; i++)
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
    }

    /// <summary>Output buffers for a batch of <paramref name="count"/> samples.</summary>
    public IReadOnlyList<TensorBatch> AllocateOutputs(int count) =>
        Signature.Outputs.Select(o => o.CheckUsable(isInput: false)).Select(o => new TensorBatch(o.Name, o.SampleShape, count, null, o.ElementType)).ToList();

    /// <summary>Seeded synthetic inputs that fit this model.</summary>
    public IReadOnlyList<TensorBatch> SyntheticInputs(int count, ulong seed) => InputSet.Synthetic(Signature, count, seed).Tensors;

    public void Dispose() => Session.Dispose();
}
