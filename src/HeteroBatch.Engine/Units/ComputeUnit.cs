using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization;
using HeteroBatch.Engine.Models;

namespace HeteroBatch.Engine.Units;

public enum UnitKind { Cpu, Gpu, IntegratedGpu, Npu, Remote }

public enum ExecutionProvider { CPU, CUDA, TensorRT, OpenVINO, Remote }

/// <summary>
/// One device that runs a share of a batch: a group of CPU cores, one GPU, or an OpenVINO
/// device. A plain settable object so that it round-trips through JSON and the pipeline.
/// </summary>
public sealed class ComputeUnit
{
    /// <summary>Stable id: cpu, cpu0, gpu0, igpu0...</summary>
    public string Id { get; set; } = "";
    public UnitKind Kind { get; set; }
    public string Name { get; set; } = "";
    public ExecutionProvider Provider { get; set; }
    /// <summary>Provider device id (GPU ordinal, OpenVINO device string index); 0 for CPU units.</summary>
    public int DeviceId { get; set; }
    /// <summary>The processors a CPU unit runs on (OS processor numbers). Empty for other kinds.</summary>
    public Data.ValueList<int> Processors { get; set; } = new();
    /// <summary>Number of cores a CPU unit uses (the length of Processors); 0 for other kinds.</summary>
    public int Cores => Processors.Count;
    /// <summary>Processors left out of CPU units to feed GPUs (one per GPU in the plan).</summary>
    public Data.ValueList<int> ReservedProcessors { get; set; } = new();
    /// <summary>For a GPU: the processor its worker thread is pinned to, where one was reserved.</summary>
    public int? FeederProcessor { get; set; }
    public long MemoryBytes { get; set; }
    /// <summary>Remote units: the inference server's base address (http://host:port/).</summary>
    public string? Endpoint { get; set; }
    /// <summary>
    /// Remote units: the model at the server that takes a file job's images as files (BYTES: Get-ComputeUnit -EncodedModel, a
    /// Triton ensemble that decodes, say); null: the model's name with "_encoded" (<see cref="Sessions.EncodedImageModel"/>). Not in the fingerprint.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? EncodedModel { get; set; }
    /// <summary>PCI bus id of a GPU, where known.</summary>
    public string? BusId { get; set; }
    /// <summary>The arithmetic the unit runs models in: Fp32, Tf32 (NVIDIA GPUs) or Fp16 (the model converted). Part of the fingerprint.</summary>
    public Precision Precision { get; set; }

    /// <summary>True for Tf32 units: kept so that profiles and plans written before Precision existed read back as they were.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool AllowTf32
    {
        get => Precision == Precision.Tf32;
        set { if (value) Precision = Precision.Tf32; else if (Precision == Precision.Tf32) Precision = Precision.Fp32; }
    }
    /// <summary>The ONNX Runtime version the unit was found with.</summary>
    public string RuntimeVersion { get; set; } = "";
    /// <summary>False for units listed by -ListAvailable that cannot run here.</summary>
    public bool Available { get; set; } = true;
    /// <summary>Why an unavailable unit cannot run.</summary>
    public string? Reason { get; set; }
    /// <summary>The ErrorId of why the unit is not available, where an error said so (a remote unit's model probe); not stored.</summary>
    [JsonIgnore]
    public string? ReasonId { get; set; }
    /// <summary>GPU units: why this GPU cannot decode JPEGs (nvJPEG or the CUDA runtime missing, no such device); null where it can, and on other kinds of unit.</summary>
    public string? GpuDecodeReason { get; set; }

    /// <summary>
    /// Remote units: the bearer token for the server (Get-ComputeUnit -Token or -Credential), or
    /// null for the module's default. Shown as ********; not in JSON, not in the fingerprint.
    /// </summary>
    [JsonIgnore]
    public BearerToken? Token { get; set; }

    /// <summary>
    /// Keys stored profiles: changes when the hardware, the provider, the cores or the runtime
    /// version change, so that measurements of different set-ups never mix.
    /// </summary>
    public string Fingerprint
    {
        get
        {
            var text = $"{Kind}|{Name}|{Provider}|{DeviceId}|{string.Join(",", Processors)}|{BusId}|{RuntimeVersion}" + Precision switch { Precision.Tf32 => "|tf32", Precision.Fp16 => "|fp16", _ => "" }
                + (Endpoint != null ? $"|{Endpoint}" : "");
            var hash = SHA256.HashData(Encoding.UTF8.GetBytes(text));
            return Convert.ToHexString(hash, 0, 8).ToLowerInvariant();
        }
    }

    public override string ToString() => Id;
}
