using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Units;
using Microsoft.ML.OnnxRuntime;

namespace HeteroBatch.Engine.Execution;

/// <summary>Provider settings that the user may change.</summary>
public sealed record ProviderSettings
{
    /// <summary>cuDNN convolution algorithm search: EXHAUSTIVE, HEURISTIC or DEFAULT.</summary>
    public string CudnnAlgorithmSearch { get; init; } = Environment.GetEnvironmentVariable("HETEROBATCH_CUDNN_SEARCH") is { Length: > 0 } s ? s : "EXHAUSTIVE";

    public static readonly ProviderSettings Default = new();
}

/// <summary>Creates ONNX Runtime sessions configured for one compute unit.</summary>
public static class SessionFactory
{
    public static SessionOptions Options(ComputeUnit unit, ProviderSettings settings)
    {
        OrtRuntime.Initialize();
        var o = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL,
            InterOpNumThreads = 1,
        };
        switch (unit.Provider)
        {
            case ExecutionProvider.CPU:
            {
                int threads = Math.Max(1, unit.Cores);
                o.IntraOpNumThreads = threads;
                // The calling thread is the worker, pinned to the first processor; ORT's own
                // threads (threads - 1 of them) are pinned to the others. Ids are 1-based.
                if (threads > 1)
                    o.AddSessionConfigEntry("session.intra_op_thread_affinities",
                        string.Join(";", unit.Processors.Skip(1).Select(p => (p + 1).ToString())));
                break;
            }
            case ExecutionProvider.CUDA:
            case ExecutionProvider.TensorRT:
            {
                o.IntraOpNumThreads = 1;
                if (unit.Provider == ExecutionProvider.TensorRT) o.AppendExecutionProvider_Tensorrt(unit.DeviceId);
                using var cuda = new OrtCUDAProviderOptions();
                cuda.UpdateOptions(new Dictionary<string, string>
                {
                    ["device_id"] = unit.DeviceId.ToString(),
                    ["cudnn_conv_algo_search"] = settings.CudnnAlgorithmSearch,
                    ["use_tf32"] = unit.AllowTf32 ? "1" : "0",
                    ["arena_extend_strategy"] = "kSameAsRequested",
                    ["do_copy_in_default_stream"] = "1",
                });
                o.AppendExecutionProvider_CUDA(cuda);
                break;
            }
            case ExecutionProvider.OpenVINO:
                o.IntraOpNumThreads = 1;
                o.AppendExecutionProvider_OpenVINO(unit.Kind switch { UnitKind.Npu => "NPU", UnitKind.Cpu => "CPU", _ => "GPU" });
                break;
        }
        return o;
    }
}
