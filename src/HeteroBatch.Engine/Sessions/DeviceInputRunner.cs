using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Data.Gpu;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace HeteroBatch.Engine.Sessions;

/// <summary>
/// Runs a CUDA session of a model with one input on a batch already in that GPU's memory (a
/// <see cref="DeviceImageBatch"/> filled by nvJPEG): the input is bound by its device address
/// through IOBinding, so no pixel goes through the host; the outputs are bound to rows of host
/// batches, which ONNX Runtime fills after the run. Used on one thread (the unit's worker).
/// </summary>
internal sealed class DeviceInputRunner : IDisposable
{
    private readonly LoadedModel _model;
    private readonly OrtMemoryInfo _device;
    private readonly OrtIoBinding _binding;
    private readonly RunOptions _runOptions = new();
    private readonly string _inputName;
    private readonly TensorSpec _input;
    private readonly Dictionary<int, List<TensorBatch>> _padded = new();

    public int DeviceId { get; }

    /// <summary>Binds inputs in CUDA device <paramref name="deviceId"/>'s memory. Throws DeviceInputUnsupported where the model does not have exactly one input.</summary>
    public DeviceInputRunner(LoadedModel model, int deviceId)
        : this(model, deviceId, new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, deviceId, OrtMemType.Default)) { }

    /// <summary>Binds inputs in the memory <paramref name="memory"/> describes (taken: disposed with the runner, or here if the model is refused); host memory lets tests run the binding on the CPU provider.</summary>
    internal DeviceInputRunner(LoadedModel model, int deviceId, OrtMemoryInfo memory)
    {
        _device = memory;
        try
        {
            if (model.Signature.Inputs.Count != 1)
                throw new HeteroBatchException("DeviceInputUnsupported", FailureKind.InvalidArgument,
                    $"A batch in GPU memory feeds a model with one input; this one has {model.Signature.Inputs.Count}.");
            _model = model;
            DeviceId = deviceId;
            _input = model.Signature.Inputs[0];
            _inputName = _input.Name;
            _binding = model.Session.CreateIoBinding();
        }
        catch
        {
            _device.Dispose();
            _runOptions.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs samples [0, count) of the device batch at <paramref name="pointer"/> (element type and
    /// sample shape those of the model's input, samples back to back) as one batch of
    /// max(count, <paramref name="padTo"/>) (a GPU keeps one shape: the padding rows are whatever the
    /// buffer holds, their outputs are dropped), writing the results into rows
    /// [offset, offset + count) of <paramref name="outputs"/>. The caller has synchronised the
    /// stream that filled the buffer. Throws DeviceInputUnsupported where the element type differs.
    /// </summary>
    public void Run(IntPtr pointer, TensorElementType elementType, int count, IReadOnlyList<TensorBatch> outputs, int offset, int padTo = 0)
    {
        if (elementType != _input.ElementType)
            throw new HeteroBatchException("DeviceInputUnsupported", FailureKind.InvalidArgument,
                $"The model's input '{_inputName}' is {_input.ElementType}; the device batch holds {elementType}.");
        int size = Math.Max(count, padTo);
        var shape = new[] { (long)size }.Concat(_input.SampleShape).ToArray();
        long bytes = shape.Aggregate(1L, (a, b) => a * b) * TensorBatch.ElementSize(elementType);
        var staged = size > count
            ? (_padded.TryGetValue(size, out var s) ? s : _padded[size] = outputs.Select(o => o.EmptyLike(size)).ToList())
            : null;
        var values = new List<OrtValue>();
        try
        {
            var input = OrtValue.CreateTensorValueWithData(_device, elementType, shape, pointer, bytes);
            values.Add(input);
            _binding.ClearBoundInputs();
            _binding.ClearBoundOutputs();
            _binding.BindInput(_inputName, input);
            for (int i = 0; i < outputs.Count; i++)
            {
                var v = staged != null ? staged[i].CreateValue(0, size) : outputs[i].CreateValue(offset, count);
                values.Add(v);
                _binding.BindOutput(_model.Signature.Outputs[i].Name, v);
            }
            _model.Session.RunWithBinding(_runOptions, _binding);
            _binding.SynchronizeBoundOutputs();
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
        if (staged != null)
            for (int i = 0; i < outputs.Count; i++) staged[i].CopyTo(0, count, outputs[i], offset);
    }

    /// <summary>Runs the samples of a decoded device batch (see the other overload).</summary>
    public void Run(DeviceImageBatch batch, int count, IReadOnlyList<TensorBatch> outputs, int offset, int padTo = 0)
    {
        if (batch.DeviceId != DeviceId)
            throw new HeteroBatchException("DeviceInputUnsupported", FailureKind.InvalidArgument, $"The batch is on GPU {batch.DeviceId}; the session runs on GPU {DeviceId}.");
        if (padTo > batch.Capacity) padTo = batch.Capacity;
        Run(batch.Pointer, DeviceImageBatch.ElementType, count, outputs, offset, padTo);
    }

    public void Dispose()
    {
        _binding.Dispose();
        _device.Dispose();
        _runOptions.Dispose();
    }
}
