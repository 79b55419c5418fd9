namespace HeteroBatch.Engine.Execution;

/// <summary>Where time went in a file job. Read and decode are summed over the decoding threads; the rest are wall time of one stage.</summary>
public sealed class JobStages
{
    public double ReadMs { get; set; }
    public double DecodeMs { get; set; }
    /// <summary>Wall time the units ran blocks.</summary>
    public double InferMs { get; set; }
    /// <summary>Wall time the units waited for decoded input.</summary>
    public double WaitForInputMs { get; set; }
    /// <summary>CPU threads decoding samples of the decoding units' shares for them (reading included), summed over the threads.</summary>
    public double HelpDecodeMs { get; set; }
    /// <summary>Wall time of making and writing rows (the writing thread).</summary>
    public double WriteMs { get; set; }
    /// <summary>Wall time of handing each block's rows on to whoever takes them (the command's pipeline), on the writing thread.</summary>
    public double HandOnMs { get; set; }
    /// <summary>Wall time of bringing written rows to disk and recording them in job.json (a thread of its own, beside the writer, where the OS allows).</summary>
    public double FlushMs { get; set; }

    public override string ToString() => $"read {ReadMs:F0} ms, decode {DecodeMs:F0} ms (threads summed){(HelpDecodeMs > 0 ? $", decode for the decoding units {HelpDecodeMs:F0} ms (threads summed)" : "")}, infer {InferMs:F0} ms, waited for input {WaitForInputMs:F0} ms, write {WriteMs:F0} ms{(HandOnMs > 0 ? $", hand on {HandOnMs:F0} ms" : "")}{(FlushMs > 0 ? $", flush to disk {FlushMs:F0} ms" : "")}";
}

/// <summary>What a file job did.</summary>
public sealed class JobSummary : RunReport
{
    public int Samples { get; set; }
    /// <summary>Samples this command ran (the others were done by an earlier, resumed run).</summary>
    public int SamplesRun { get; set; }
    public int SamplesResumed { get; set; }
    /// <summary>Samples whose input could not be read; they have a row with the error and NaN outputs.</summary>
    public int SamplesFailed { get; set; }
    /// <summary>Loading sessions and warming the units at the job's shapes, before <see cref="RunReport.WallMs"/> (which runs from the first block's decoding to the last block's rows written).</summary>
    public double SetupMs { get; set; }
    public double ImagesPerSecond => WallMs > 0 ? SamplesRun * 1000.0 / WallMs : 0;
    /// <summary>Samples per block: the plan's batch, or fewer so that the blocks in flight fit the memory budget.</summary>
    public int BlockSize { get; set; }
    public int Blocks { get; set; }
    public int DecodeThreads { get; set; }
    public string Preprocessing { get; set; } = "";
    public JobStages Stages { get; set; } = new();
    public string? OutputPath { get; set; }
    /// <summary>What limited the job, where the stage times show it.</summary>
    public string? Note { get; set; }
    public long PeakResidentBytes { get; set; }
    /// <summary>Bytes of the buffers the job's blocks hold for its whole run: decoded inputs and file bytes of the blocks being read, decoded and run; outputs of those and of the one being written.</summary>
    public long BlockBufferBytes { get; set; }
    /// <summary>Resident memory when the set-up ended (libraries, sessions and the blocks' buffers): what the job's streaming added is the peak less this.</summary>
    public long ResidentAfterSetupBytes { get; set; }
    /// <summary>Where images were decoded: per unit that decoded its own share, how many on the unit and how many it gave to the CPU; and why a unit that could not decoded nothing.</summary>
    public List<string> UnitDecoding { get; set; } = new();
    /// <summary>Per unit that decoded its own share in chunks beside inference (a GPU), what its chunks took: decoding, inference, waiting (also in <see cref="UnitDecoding"/>, as text).</summary>
    public Dictionary<string, Units.Backends.DecodingStages> DecodingStages { get; set; } = new();
    /// <summary>How the job's stages were planned together: who infers, how many threads decode, the predicted rate and its limit, and any CPU unit left out to decode.</summary>
    public string? Pipeline { get; set; }
    /// <summary>Samples of the decoding units' shares that CPU threads decoded for them (pixels the units copy in; a sample whose decoding failed is not counted).</summary>
    public int SamplesDecodedForUnits { get; set; }
    /// <summary>What CPU threads hand the units they feed, a sample: the model's input, or uint8 pixels the units normalise themselves; null where every unit decodes its own share.</summary>
    public string? FedInputs { get; set; }
    /// <summary>Each stage's rate: reading files, decoding on CPU threads, and each unit's inference (with its own decoding where it decodes its share).</summary>
    public List<string> StageRates { get; set; } = new();
    public override double InferenceWallMs => Stages.InferMs;

    public override string ToString() => $"{Model}: {SamplesRun} samples in {WallMs:F0} ms ({ImagesPerSecond:F1}/s){(SamplesResumed > 0 ? $", {SamplesResumed} done before" : "")}";
}
