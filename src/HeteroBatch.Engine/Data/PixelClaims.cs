namespace HeteroBatch.Engine.Data;

/// <summary>
/// Who decodes each sample of a block's decoding shares (the ranges that units decoding their own
/// share, GPUs, run): the unit claims each sample of a chunk as it starts decoding it, from the front
/// of its share; CPU threads with nothing else to do claim samples from the back of each share and
/// decode them into uint8 pixels of their own slot, which the unit copies in. Whoever claims a
/// sample first decodes it, so how a share splits follows the speeds of both as the job runs, block
/// by block, with nothing predicted. CPU threads take at most <see cref="Open"/>'s fraction of a
/// share, and of the block at most the slots there are.
/// Threads: CPU claims, <see cref="Open"/> and <see cref="Close"/> under a lock (decoder threads, the
/// feeder, the inference stage); unit claims without it (the unit's decoding threads).
/// </summary>
internal sealed class PixelClaims
{
    private const int Free = 0, ByUnit = 1, ByCpu = 2, CpuDone = 3;

    private readonly object _gate = new();
    private readonly int[] _state, _slot;
    private Share[] _shares = Array.Empty<Share>();
    private int _generation = -1, _used, _decoding, _decoded;

    private sealed class Share
    {
        public int Offset, End, Most, Taken;
    }

    /// <param name="pixels">The slots CPU threads decode into (uint8 pixels, one sample each).</param>
    /// <param name="blockSize">Samples a block holds at most.</param>
    public PixelClaims(TensorBatch pixels, int blockSize)
    {
        Pixels = pixels;
        _state = new int[blockSize];
        _slot = new int[blockSize];
    }

    /// <summary>Where CPU threads put the pixels they decode: sample <see cref="SlotOf"/> of it.</summary>
    public TensorBatch Pixels { get; }

    /// <summary>Samples CPU threads decoded for the block (those done).</summary>
    public int DecodedByCpu => Volatile.Read(ref _decoded);

    /// <summary>The decoding shares of the open block.</summary>
    public int Shares => Volatile.Read(ref _shares).Length;

    /// <summary>The most samples CPU threads may take from share <paramref name="share"/> of the open block.</summary>
    public int RoomOf(int share) => Volatile.Read(ref _shares)[share].Most;

    /// <summary>
    /// Feeder: the block <paramref name="generation"/> of <paramref name="count"/> samples now owns the
    /// claims, with these decoding shares; CPU threads may take up to <paramref name="most"/> of each.
    /// The block before it must be closed.
    /// </summary>
    public void Open(int generation, int count, IReadOnlyList<(int Offset, int Count)> shares, double most)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, _state.Length);
        lock (_gate)
        {
            if (_decoding > 0) throw new InvalidOperationException("the block before still has samples decoding on CPU threads");
            Array.Clear(_state, 0, count);
            (_used, _decoded, _generation) = (0, 0, generation);
            double share = Math.Clamp(most, 0, 1);
            _shares = shares.Where(s => s.Count > 0).Select(s => new Share
            {
                Offset = s.Offset, End = s.Offset + s.Count, Most = Math.Min(Pixels.Count, (int)(s.Count * share)),
            }).ToArray();
        }
    }

    /// <summary>
    /// CPU thread: the next sample from the back of share <paramref name="share"/> of block <paramref name="generation"/>
    /// and the slot to decode it into; null where the block is no longer this one's, the unit has reached the
    /// back, or the share's room or the slots are used up (the share then takes no more). Samples already failed
    /// (<paramref name="failed"/>: their files could not be read) are passed over, left to the unit. Then <see cref="Decoded"/>.
    /// </summary>
    public (int Sample, int Slot)? ClaimFromBack(int generation, int share, IReadOnlyList<object?>? failed = null)
    {
        lock (_gate)
        {
            if (generation != _generation || share >= _shares.Length) return null;
            var s = _shares[share];
            int sample = s.End - 1 - s.Taken;
            for (; failed != null && s.Taken < s.Most && sample >= s.Offset && failed[sample] != null && Volatile.Read(ref _state[sample]) == Free; sample--)
                s.Taken++; // its room is spent: the unit meets the failure itself
            if (s.Taken >= s.Most || _used >= Pixels.Count || sample < s.Offset) return null;
            if (Interlocked.CompareExchange(ref _state[sample], ByCpu, Free) != Free)
            {
                s.Taken = s.Most; // the unit got here first: it decodes the rest of the share
                return null;
            }
            s.Taken++;
            _slot[sample] = _used++;
            _decoding++;
            return (sample, _slot[sample]);
        }
    }

    /// <summary>CPU thread: the sample it claimed is in its slot (or failed, its error set in the block): the unit may copy it.</summary>
    public void Decoded(int sample)
    {
        lock (_gate)
        {
            Volatile.Write(ref _state[sample], CpuDone);
            _decoding--;
            _decoded++;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Unit: true where the unit decodes the sample itself (it claims it now, or a unit claimed it before: a range run again); false where CPU threads have it (<see cref="SlotWhenDecoded"/>).</summary>
    public bool ClaimForUnit(int sample) => Interlocked.CompareExchange(ref _state[sample], ByUnit, Free) is Free or ByUnit;

    /// <summary>Unit: the slot of a sample CPU threads claimed, once they have decoded it (waits while they decode it).</summary>
    public int SlotWhenDecoded(int sample)
    {
        lock (_gate)
        {
            while (Volatile.Read(ref _state[sample]) == ByCpu) Monitor.Wait(_gate);
            return _slot[sample];
        }
    }

    /// <summary>
    /// Inference stage, once the block's units have run and before its inputs go to a later block: CPU threads
    /// claim nothing more of it, and those decoding its samples finish first (nothing of theirs then writes its
    /// slots or reads its file bytes; copies the units queued from the slots are the units' to settle).
    /// </summary>
    public void Close()
    {
        lock (_gate)
        {
            _generation = -1;
            while (_decoding > 0) Monitor.Wait(_gate);
        }
    }
}
