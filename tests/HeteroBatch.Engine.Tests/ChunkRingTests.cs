using System.Collections.Concurrent;
using HeteroBatch.Engine.Units.Backends;

namespace HeteroBatch.Engine.Tests;

/// <summary>
/// The order a decoding GPU's chunks decode in, with a decode function the test controls: every
/// chunk handed out once and in order, a batch never decoded into while it is handed out or
/// decoding, the next range's first chunks decoded ahead and taken when they match, and no decode
/// left running after a failure.
/// </summary>
public sealed class ChunkRingTests
{
    /// <summary>Decodes as the ring asks and keeps its books: which batches hold a chunk not yet given back (started and not handed out, or handed out and not yet released by asking for the next).</summary>
    private sealed class Recorder
    {
        private readonly object _gate = new();
        private readonly HashSet<int> _held = new();
        public int Running;
        public readonly ConcurrentBag<(EncodedImages Source, int First, int Count)> Calls = new();
        public readonly ConcurrentBag<int> Settled = new();
        public Func<EncodedImages, int, bool> Fails = (_, _) => false;
        public string? Violation;

        /// <summary>Decodes of chunks other than the one at this sample wait for <see cref="Released"/> (at most <see cref="HoldFor"/>, a bound, not a measure) and then take a while.</summary>
        public int? HoldAllBut;
        public TimeSpan HoldFor = TimeSpan.FromSeconds(5);
        public readonly ManualResetEventSlim Released = new();
        public int Started, Finished;
        /// <summary>Settling a batch fails (a GPU that has gone) the first time.</summary>
        public bool SettleFailsOnce;

        /// <summary>A decode ends only once the ring starts another, or after a bound (not a measure): a ring that starts one while another still runs meets it running.</summary>
        public bool EndAtNextStart;
        private readonly SemaphoreSlim _nextStart = new(0);
        private int _batches;

        public ChunkRing<string> Ring(int batches)
        {
            _batches = batches;
            return new(batches, Decode, Settle, Start);
        }

        /// <summary>The ring starts a decode into <paramref name="batch"/>: that batch must hold nothing, and no more decodes may run than the batches not inferring.</summary>
        private Task<string?> Start(int batch, Func<string?> work)
        {
            lock (_gate)
            {
                if (!_held.Add(batch)) Violation ??= $"a decode started in batch {batch} while it held a chunk";
                if (Started - Volatile.Read(ref Finished) >= _batches - 1) Violation ??= $"more than {_batches - 1} decodes at once";
            }
            _nextStart.Release();
            Interlocked.Increment(ref Started);
            return Task.Run(() =>
            {
                try { return work(); }
                finally { Interlocked.Increment(ref Finished); }
            });
        }

        private void Settle(int batch)
        {
            Settled.Add(batch);
            Release(batch);
            if (SettleFailsOnce) { SettleFailsOnce = false; throw new InvalidOperationException("the GPU is gone"); }
        }

        public void Release(int batch)
        {
            lock (_gate) _held.Remove(batch);
        }

        public void HandedOut(int batch)
        {
            lock (_gate)
                if (!_held.Contains(batch)) Violation ??= $"a chunk handed out from batch {batch}, which holds none";
        }

        private string Decode(EncodedImages source, int first, int count, int batch)
        {
            if (EndAtNextStart) _nextStart.Wait(TimeSpan.FromMilliseconds(50));
            if (HoldAllBut is { } only && first != only)
            {
                Released.Wait(HoldFor);
                Thread.Sleep(20); // decoding takes a while once it may go on
            }
            Interlocked.Increment(ref Running);
            try
            {
                Calls.Add((source, first, count));
                if (Fails(source, first)) throw new InvalidOperationException($"chunk at {first} fails");
                return $"{first}+{count}@{batch}";
            }
            finally
            {
                Interlocked.Decrement(ref Running);
            }
        }
    }

    private static EncodedImages Block(int samples) =>
        new(_ => ReadOnlyMemory<byte>.Empty, i => $"{i}", new HeteroBatchException?[samples]);

    /// <summary>Takes a range's chunks as a unit does: each is "inferred" until the next is asked for, which gives its batch back.</summary>
    private static List<ChunkRing<string>.Chunk> Consume(ChunkRing<string> ring, Recorder r, EncodedImages source, int offset, int count, int chunk,
        Func<int, (EncodedImages, int, int)?>? upcoming = null)
    {
        var got = new List<ChunkRing<string>.Chunk>();
        foreach (var c in ring.Chunks(source, offset, count, chunk, upcoming ?? (_ => null)))
        {
            r.HandedOut(c.Batch);
            got.Add(c);
            r.Release(c.Batch); // done: the loop asks for the next
        }
        return got;
    }

    [Theory]
    [InlineData(2, 1000, 128)]
    [InlineData(3, 1000, 128)]
    [InlineData(4, 512, 128)]
    [InlineData(3, 100, 128)]
    [InlineData(4, 7, 1)]
    public void EveryChunkIsHandedOutOnceInOrderAndNoBatchIsDecodedIntoWhileInUse(int batches, int count, int chunk)
    {
        var r = new Recorder { EndAtNextStart = true };
        var ring = r.Ring(batches);
        var block = Block(2000);
        var got = Consume(ring, r, block, 17, count, chunk);

        var expected = Enumerable.Range(0, (count + chunk - 1) / chunk).Select(k => (17 + k * chunk, Math.Min(chunk, count - k * chunk))).ToList();
        Assert.Equal(expected, got.Select(c => (c.First, c.Count)).ToList());
        Assert.All(got, c => Assert.StartsWith($"{c.First}+{c.Count}@{c.Batch}", c.Decoded));
        Assert.Null(r.Violation);
        Assert.Equal(expected.Count, r.Calls.Count);
    }

    [Fact]
    public void TheNextRangesFirstChunksDecodeAheadAndAreNotDecodedAgain()
    {
        var r = new Recorder();
        var ring = r.Ring(3);
        var a = Block(1024);
        var b = Block(1024);
        // this unit's share is [0, 512) of each block; after a's range, b's share likely comes next
        Consume(ring, r, a, 0, 512, 128, i => i * 128 < 512 ? (b, i * 128, 128) : null);
        // while a's last chunk infers, the other two batches decode b's first two chunks, and go on after a's range has
        // ended (the unit is not held for them)
        Assert.Equal(2, ring.Guessed);
        Assert.True(SpinWait.SpinUntil(() => r.Calls.Count(c => c.Source == b) == 2, TimeSpan.FromMinutes(1)));

        var got = Consume(ring, r, b, 0, 512, 128);
        Assert.Equal(new[] { 0, 128, 256, 384 }, got.Select(c => c.First));
        Assert.Equal(4, r.Calls.Count(c => c.Source == b)); // two decoded ahead, two now
        Assert.Empty(r.Settled);
        Assert.Null(r.Violation);
    }

    [Fact]
    public void ARangeEndsOnceItsOwnChunksAreHandedOutNotWhenItsGuessesHaveDecoded()
    {
        // every decode but the range's own chunk waits until released (a bound of minutes: a ring that waited for its
        // guesses would return only after it, and fail below)
        var r = new Recorder { HoldAllBut = 0, HoldFor = TimeSpan.FromMinutes(2) };
        var ring = r.Ring(3);
        var a = Block(1024);
        var b = Block(1024);
        Consume(ring, r, a, 0, 128, 128, i => (b, 512 + i * 128, 128));
        // the unit has its range back while the two guesses still wait to decode
        Assert.Equal(2, ring.Guessed);
        Assert.Equal(1, Volatile.Read(ref r.Finished));
        r.Released.Set();
        var got = Consume(ring, r, b, 512, 256, 128);
        Assert.Equal(new[] { 512, 640 }, got.Select(c => c.First));
        Assert.Equal(2, r.Calls.Count(c => c.Source == b)); // the guesses, taken: none decoded again
        Assert.Null(r.Violation);
    }

    [Fact]
    public void GuessesThatMissAreSettledAndTheRangeDecodesItsOwnChunks()
    {
        var r = new Recorder();
        var ring = r.Ring(3);
        var a = Block(1024);
        var b = Block(1024);
        Consume(ring, r, a, 0, 256, 128, i => (b, 512 + i * 128, 128));
        Assert.Equal(2, ring.Guessed);

        // the next range is another one: the guesses are dropped (waited for, their batches settled)
        var got = Consume(ring, r, b, 0, 256, 128);
        Assert.Equal(new[] { 0, 128 }, got.Select(c => c.First));
        Assert.Equal(2, r.Settled.Count);
        Assert.Equal(0, ring.Guessed);
        Assert.Null(r.Violation);
    }

    [Fact]
    public void ForgettingABlockSettlesTheGuessesDecodedFromItAndKeepsTheOthers()
    {
        var r = new Recorder();
        var ring = r.Ring(3);
        var a = Block(1024);
        var b = Block(1024);
        // the range's guesses come from block a (the rest of its share, which another unit may take)
        Consume(ring, r, a, 0, 256, 128, i => (a, 512 + i * 128, 128));
        Assert.Equal(2, ring.Guessed);
        ring.Forget(b); // not theirs: nothing happens
        Assert.Equal(2, ring.Guessed);
        Assert.Empty(r.Settled);
        // block a is done: its bytes go to a later block, so its guesses are settled now, not at the next range
        ring.Forget(a);
        Assert.Equal(0, ring.Guessed);
        Assert.Equal(2, r.Settled.Count);
        Consume(ring, r, b, 0, 256, 128); // every batch was given back
        Assert.Null(r.Violation);
    }

    [Fact]
    public void OnlyTheGuessesThatMatchInOrderAreTaken()
    {
        var r = new Recorder();
        var ring = r.Ring(4);
        var a = Block(1024);
        // guessed 0, 128, 256 of the same block; the next range is [0, 200): chunk 0 matches, chunk 1 is 72 samples, not 128
        Consume(ring, r, a, 600, 128, 128, i => (a, i * 128, 128));
        var got = Consume(ring, r, a, 0, 200, 128);
        Assert.Equal(new[] { (0, 128), (128, 72) }, got.Select(c => (c.First, c.Count)));
        Assert.Equal(2, r.Settled.Count);
        Assert.Null(r.Violation);
    }

    [Fact]
    public void AFailedDecodeThrowsOnceNoOtherDecodeRunsAndSettlesItsBatch()
    {
        var r = new Recorder { Fails = (_, first) => first == 256 };
        var ring = r.Ring(4);
        var block = Block(1024);
        var e = Assert.Throws<InvalidOperationException>(() => Consume(ring, r, block, 0, 1024, 128, i => (block, i * 128, 128)));
        Assert.Contains("256", e.Message);
        Assert.Equal(r.Started, Volatile.Read(ref r.Finished));
        Assert.Contains(2, r.Settled); // the failed chunk's batch, which was never handed out
        Assert.Equal(0, ring.Guessed);
        r.Fails = (_, _) => false;
        Consume(ring, r, Block(1024), 0, 512, 128); // every batch was given back
        Assert.Null(r.Violation);
    }

    [Fact]
    public void AConsumerThatFailsGetsItsFailureOnlyOnceEveryDecodeItStartedHasEnded()
    {
        // the decodes after the first wait until the consumer fails, then take a while: thrown before they end, the failure
        // would leave them writing device batches and reading file bytes the job is about to reuse
        var r = new Recorder { HoldAllBut = 0 };
        var ring = r.Ring(4);
        var block = Block(1024);
        var e = Assert.Throws<InvalidOperationException>(() =>
        {
            foreach (var c in ring.Chunks(block, 0, 1024, 128, i => (block, i * 128, 128)))
            {
                r.Released.Set();
                throw new InvalidOperationException("inference failed");
            }
        });
        Assert.Equal("inference failed", e.Message);
        Assert.Equal(3, r.Started - 1);
        Assert.Equal(r.Started, Volatile.Read(ref r.Finished));
        Assert.Equal(new[] { 0, 1, 2, 3 }, r.Settled.OrderBy(b => b)); // the one handed out too
    }

    [Fact]
    public void ABatchThatFailsToSettleNeitherHidesTheConsumersFailureNorKeepsTheOthersFromSettling()
    {
        var r = new Recorder { SettleFailsOnce = true };
        var ring = r.Ring(4);
        var block = Block(1024);
        var e = Assert.Throws<InvalidOperationException>(() =>
        {
            foreach (var c in ring.Chunks(block, 0, 1024, 128, _ => null)) throw new InvalidOperationException("inference failed");
        });
        Assert.Equal("inference failed", e.Message);
        Assert.Equal(r.Started, Volatile.Read(ref r.Finished));
        Assert.Equal(4, r.Settled.Count);
    }

    [Fact]
    public void ARangeOfNothingKeepsTheGuessesForTheRangeTheyWereMadeFor()
    {
        var r = new Recorder();
        var ring = r.Ring(3);
        var a = Block(1024);
        var b = Block(1024);
        Consume(ring, r, a, 0, 128, 128, i => (b, i * 128, 128));
        Assert.Empty(Consume(ring, r, a, 128, 0, 128));
        Assert.Equal(2, ring.Guessed);
        Assert.Empty(r.Settled);
    }

    [Fact]
    public void AFailedGuessIsDecodedAgainWhenItsRangeRunsAndFailsThereIfItFailsAgain()
    {
        int failures = 1;
        var r = new Recorder();
        r.Fails = (_, first) => first == 128 && Interlocked.Decrement(ref failures) >= 0;
        var ring = r.Ring(3);
        var a = Block(1024);
        var b = Block(1024);
        Consume(ring, r, a, 0, 128, 128, i => (b, i * 128, 128));
        var got = Consume(ring, r, b, 0, 256, 128);
        Assert.Equal(new[] { 0, 128 }, got.Select(c => c.First));
        Assert.Equal(2, r.Calls.Count(c => c.Source == b && c.First == 128)); // the guess failed; decoded again

        // one that fails both times fails the range that needs it
        r.Fails = (source, first) => source == a && first == 128;
        Consume(ring, r, b, 256, 128, 128, i => (a, i * 128, 128));
        Assert.Throws<InvalidOperationException>(() => Consume(ring, r, a, 0, 256, 128));
        Assert.Equal(0, Volatile.Read(ref r.Running));
    }

    [Fact]
    public void AConsumerThatStopsEarlyLeavesNoDecodeRunningAndNoGuess()
    {
        var r = new Recorder();
        var ring = r.Ring(4);
        var block = Block(1024);
        foreach (var c in ring.Chunks(block, 0, 1024, 128, i => (block, i * 128, 128)))
        {
            r.HandedOut(c.Batch);
            if (c.First == 256) break; // cancelled while this chunk was handed out
            r.Release(c.Batch);
        }
        Assert.Equal(r.Started, Volatile.Read(ref r.Finished));
        Assert.Equal(0, ring.Guessed);
        Assert.Contains(2, r.Settled); // the chunk handed out, and those decoded and never handed out
        Consume(ring, r, block, 0, 512, 128); // every batch was given back: nothing decodes into one still held
        Assert.Null(r.Violation);
    }
}
