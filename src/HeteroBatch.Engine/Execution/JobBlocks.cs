using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Planning;

namespace HeteroBatch.Engine.Execution;

/// <summary>How a job's samples fall into blocks, and the plan each block size runs.</summary>
internal sealed class JobLayout
{
    private readonly BatchPlan _plan;
    private readonly Dictionary<int, BatchPlan> _plans = new();

    public int BlockSize { get; }
    public List<(int First, int Count)> Blocks { get; } = new();
    /// <summary>Units that keep one shape run a short last block padded to the full block's shape (a new shape costs them a re-plan).</summary>
    public IReadOnlyDictionary<string, int> FullShape { get; }

    public JobLayout(BatchPlan plan, int start, int total, int blockSize)
    {
        _plan = plan;
        BlockSize = blockSize;
        for (int first = start; first < total; first += blockSize) Blocks.Add((first, Math.Min(blockSize, total - first)));
        FullShape = PlanFor(blockSize).Shards.ToDictionary(s => s.UnitId, s => Math.Min(s.SubBatchSize, s.Count));
    }

    /// <summary>The plan for a block of <paramref name="count"/> samples: the job's plan scaled down (cached per size).</summary>
    public BatchPlan PlanFor(int count) =>
        _plans.TryGetValue(count, out var p) ? p : _plans[count] = count == _plan.BatchSize ? _plan : PlanScaling.Scale(_plan, count);
}

/// <summary>
/// A block's inputs, reused for later blocks: its decoded samples and the file bytes of those that
/// units decode. A block holds them from its reading until its units have run.
/// </summary>
internal sealed class BlockInputs
{
    public required TensorBatch Decoded { get; init; }
    /// <summary>Where the file bytes of samples that units decode are read into (none when no unit decodes).</summary>
    public required ByteArena? Arena { get; init; }
    /// <summary>Where every unit decodes its own share and CPU threads help: which samples of the shares they took, their pixels in <see cref="Decoded"/>'s slots (else null).</summary>
    public PixelClaims? Claims { get; init; }
    public long BufferBytes => Decoded.ByteLength + (Arena?.Capacity ?? 0);

    /// <param name="samples">Samples of decoded input it holds: a block's size; the slots CPU threads help the decoding units with (<paramref name="blockSize"/> given); or 1 where every unit decodes its own share alone (never read).</param>
    /// <param name="blockSize">Where CPU threads help the decoding units: a block's size (the samples they may claim from); else 0.</param>
    public static BlockInputs Allocate(TensorSpec input, int samples, bool pinned, long arenaBytes, int blockSize = 0)
    {
        var decoded = pinned ? TensorBatch.AllocatePinned(input.Name, input.SampleShape, samples, input.ElementType)
            : new TensorBatch(input.Name, input.SampleShape, samples, null, input.ElementType);
        return new()
        {
            Arena = arenaBytes > 0 ? new ByteArena(arenaBytes) : null,
            Decoded = decoded,
            Claims = blockSize > 0 ? new PixelClaims(decoded, blockSize) : null,
        };
    }
}

/// <summary>One block's buffers, reused for later blocks: its inputs while it holds them, outputs, which unit ran each sample, which samples failed to load.</summary>
internal sealed class JobBlock
{
    private BlockInputs? _inputs;

    /// <summary>The block's inputs, from <see cref="Reuse"/> until <see cref="HandOnInputs"/>.</summary>
    public BlockInputs Inputs => _inputs ?? throw new InvalidOperationException($"Block {Sequence} holds no inputs.");
    public TensorBatch Input => Inputs.Decoded;
    public ByteArena? Arena => Inputs.Arena;
    public required List<TensorBatch> Outputs { get; init; }
    public required int[] RanBy { get; init; }
    public required HeteroBatchException?[] Errors { get; init; }
    /// <summary>The file bytes of samples a unit decodes itself (empty for the others), in <see cref="Arena"/> or arrays of their own.</summary>
    public required ReadOnlyMemory<byte>[] Bytes { get; init; }
    /// <summary>Samples whose decoded input is not in <see cref="Input"/> (a unit decodes them from <see cref="Bytes"/>).</summary>
    public required bool[] Undecoded { get; init; }
    /// <summary>Samples that a unit decoding its own share takes as bytes (set by the feeder from the block's plan).</summary>
    public required bool[] ForUnitDecoding { get; init; }
    public int Sequence, First, Count, Decoded;

    public static JobBlock Allocate(Sessions.ModelSignature signature, int size) => new()
    {
        Outputs = signature.Outputs.Select(o => new TensorBatch(o.Name, o.SampleShape, size, null, o.ElementType)).ToList(),
        RanBy = new int[size], Errors = new HeteroBatchException?[size],
        Bytes = new ReadOnlyMemory<byte>[size], Undecoded = new bool[size], ForUnitDecoding = new bool[size],
    };

    public long BufferBytes => Outputs.Sum(o => o.ByteLength);

    /// <summary>Makes the buffers block <paramref name="sequence"/> of the job, reading into <paramref name="inputs"/>.</summary>
    public void Reuse(int sequence, (int First, int Count) range, BlockInputs inputs)
    {
        (Sequence, First, Count, Decoded) = (sequence, range.First, range.Count, 0);
        Array.Clear(Errors);
        Array.Clear(Bytes);
        Array.Clear(Undecoded);
        Array.Clear(ForUnitDecoding);
        inputs.Arena?.Reset();
        _inputs = inputs;
    }

    /// <summary>Once the block's units have run: its inputs, for a later block (the file bytes read into them are forgotten).</summary>
    public BlockInputs HandOnInputs()
    {
        var inputs = Inputs;
        inputs.Claims?.Close(); // CPU threads helping a decoding unit take nothing more of this block, and finish what they took
        Array.Clear(Bytes);
        _inputs = null;
        return inputs;
    }

    /// <summary>A failed sample's outputs: NaN for floating-point outputs, zero for integers.</summary>
    public void FillMissing(int sample)
    {
        foreach (var o in Outputs)
        {
            if (o.Data is float[] f) f.AsSpan(checked((int)(sample * o.SampleElements)), (int)o.SampleElements).Fill(float.NaN);
            else if (o.Data is double[] d) d.AsSpan(checked((int)(sample * o.SampleElements)), (int)o.SampleElements).Fill(double.NaN);
            else o.Bytes(sample, 1).Clear();
        }
    }
}
