namespace HeteroBatch.Engine.Units.Backends;

/// <summary>
/// The order in which a decoding unit's chunks decode into its ring of device batches. While the
/// consumer infers one chunk, the next ones are started, each into a batch of its own (as many as the
/// ring has other batches; how many run at once is the start function's: <see cref="DecodeLanes"/>
/// runs them in the order started on a fixed number of threads); once every chunk of a range has started, the
/// first chunks of the range likely to come next decode too (guesses), and the next range takes
/// those that match it. The decoding is a function given to it, so this is free of the GPU.
/// Threads: <see cref="Chunks"/> is enumerated on one thread (the unit's worker); decodes run where the start function puts them.
/// </summary>
internal sealed class ChunkRing<T> where T : class
{
    /// <summary>Decodes samples [first, first + count) of the source into the batch; throws where it fails.</summary>
    public delegate T DecodeChunk(EncodedImages source, int first, int count, int batch);

    /// <summary>A decoded chunk of a range: the batch it is in and what decoding it returned.</summary>
    public readonly record struct Chunk(int Batch, int First, int Count, T Decoded);

    private sealed record Decoding(EncodedImages Source, int First, int Count, int Batch, Task<T?> Task);

    private readonly int _batches;
    private readonly DecodeChunk _decode;
    private readonly Action<int> _settle;
    private readonly Func<int, Func<T?>, Task<T?>> _start;
    private List<Decoding> _guesses = new();

    /// <param name="batches">Device batches in the ring (at least 2: one inferring, one decoding).</param>
    /// <param name="decode">Decodes a chunk into a batch.</param>
    /// <param name="settle">Waits until nothing queued on a batch still reads its chunk's bytes or writes its pixels (called for chunks that will not be handed out again: guesses that missed, and every chunk of a range stopped early).</param>
    /// <param name="start">Starts a decode into a batch, off the consumer's thread (the session queues it on its lanes; tests watch which batch each starts in, and when it ends); by default on a thread of its own.</param>
    public ChunkRing(int batches, DecodeChunk decode, Action<int> settle, Func<int, Func<T?>, Task<T?>>? start = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batches, 2);
        (_batches, _decode, _settle, _start) = (batches, decode, settle,
            // a decode blocks its thread for milliseconds: threads of their own, not the pool's (a few on a small machine)
            start ?? ((_, work) => Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)));
    }

    /// <summary>Chunks decoded ahead for a range that has not run yet.</summary>
    public int Guessed => _guesses.Count;

    /// <summary>
    /// The chunks of samples [offset, offset + count) of <paramref name="source"/> in chunks of
    /// <paramref name="chunk"/>, in order, each decoded; a chunk's batch is left alone until the
    /// consumer asks for the next one (so it may infer it meanwhile). <paramref name="upcoming"/>(i) is
    /// the i-th chunk of the range likely next, or null. A failed decode of this range throws once the
    /// other decodes have ended; a failed guess is decoded again when its range runs. Enumerated to
    /// the end, the range leaves only its guesses behind, still decoding or decoded (the next range
    /// waits for each it takes; those it drops, or <see cref="Forget"/>, are waited for and settled); stopped early (the consumer threw, or was cancelled), it waits for every
    /// decode it started and settles every batch it used, the guesses' too.
    /// </summary>
    public IEnumerable<Chunk> Chunks(EncodedImages source, int offset, int count, int chunk,
        Func<int, (EncodedImages Source, int First, int Count)?> upcoming)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunk, 1);
        int chunks = (count + chunk - 1) / chunk;
        if (chunks == 0) yield break; // nothing to run: the guesses stay for the range they were made for
        var pending = new Queue<Decoding>();
        var guesses = new List<Decoding>();
        Decoding? current = null; // handed out (or about to be), not yet given back
        int started = 0, nextBatch = 0;
        bool completed = false;
        try
        {
            // the last range's guesses that are this range's first chunks, in order; the rest are dropped
            var old = _guesses;
            _guesses = new();
            int kept = 0;
            while (kept < old.Count && started < chunks && old[kept] is var g && ReferenceEquals(g.Source, source)
                && g.First == offset + started * chunk && g.Count == Math.Min(chunk, offset + count - g.First))
            {
                pending.Enqueue(g);
                nextBatch = (g.Batch + 1) % _batches;
                started++;
                kept++;
            }
            Drop(old.Skip(kept), rethrow: true);
            void StartNext()
            {
                int first = offset + started * chunk, n = Math.Min(chunk, offset + count - first), batch = nextBatch;
                pending.Enqueue(new Decoding(source, first, n, batch, _start(batch, () => _decode(source, first, n, batch))));
                nextBatch = (nextBatch + 1) % _batches;
                started++;
            }
            while (pending.Count > 0 || started < chunks)
            {
                current = null;
                if (pending.Count == 0) StartNext(); // the range's first chunk, not decoded ahead
                current = pending.Dequeue();
                var decoded = current.Task.GetAwaiter().GetResult() ?? _decode(source, current.First, current.Count, current.Batch);
                // every other batch decodes while this one infers: this range's next chunks, then the guesses for the next
                // range (started once this chunk is decoded: at most one decode a batch not inferring)
                while (pending.Count + 1 < _batches && started < chunks) StartNext();
                while (started == chunks && pending.Count + guesses.Count + 1 < _batches && upcoming(guesses.Count) is { } u)
                {
                    int batch = nextBatch;
                    guesses.Add(new Decoding(u.Source, u.First, u.Count, batch, _start(batch, () =>
                    {
                        try { return _decode(u.Source, u.First, u.Count, batch); }
                        catch (Exception) { return null; } // a guess: the range it was for decodes again and meets the failure itself
                    })));
                    nextBatch = (nextBatch + 1) % _batches;
                }
                yield return new Chunk(current.Batch, current.First, current.Count, decoded);
            }
            current = null;
            // the guesses go on decoding after the range: the unit may infer meanwhile (the next range takes them,
            // waiting for each as it comes to it; their bytes stay the job's until it has forgotten their block)
            _guesses = guesses;
            completed = true;
        }
        finally
        {
            if (!completed) Drop((current == null ? pending : pending.Prepend(current)).Concat(guesses).ToList(), rethrow: false);
        }
    }

    /// <summary>
    /// Settles the guesses decoded from <paramref name="source"/> (its block is done: no range of it
    /// comes any more, and its bytes are about to hold another block's); the others stay. A batch that
    /// fails to settle is not thrown here: the unit meets the GPU's failure on its next range.
    /// </summary>
    public void Forget(EncodedImages source)
    {
        var gone = _guesses.Where(g => ReferenceEquals(g.Source, source)).ToList();
        if (gone.Count == 0) return;
        _guesses = _guesses.Except(gone).ToList();
        Drop(gone, rethrow: false);
    }

    /// <summary>
    /// Waits for decodes that will not be handed out (every one, whatever fails), then settles their
    /// batches. A batch that fails to settle (the GPU failed) is thrown after all are settled, where
    /// <paramref name="rethrow"/> (nothing else is being thrown); else the failure already thrown stands.
    /// </summary>
    private void Drop(IEnumerable<Decoding> dropped, bool rethrow)
    {
        var all = dropped.ToList();
        foreach (var d in all)
            try { d.Task.GetAwaiter().GetResult(); } catch (Exception) { }
        Exception? failed = null;
        foreach (var d in all)
            try { _settle(d.Batch); } catch (Exception e) { failed ??= e; }
        if (failed != null && rethrow) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failed).Throw();
    }
}
