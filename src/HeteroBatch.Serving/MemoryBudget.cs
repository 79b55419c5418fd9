using HeteroBatch.Engine;

namespace HeteroBatch.Serving;

/// <summary>
/// Bytes that requests held at once may take together: a request takes what its body, the
/// tensors decoded from it and its outputs need before each is allocated, and gives all of it back
/// when it is answered. Taking never waits (a request that waited holding part of the budget could
/// wait on another doing the same): what does not fit is refused at once as ServerBusy.
/// </summary>
internal sealed class MemoryBudget(long total)
{
    private long _left = total;
    public long Total { get; } = total;
    /// <summary>Bytes taken now and at most so far.</summary>
    public long Taken => Total - Interlocked.Read(ref _left);
    public long PeakTaken => Interlocked.Read(ref _peak);
    private long _peak;

    /// <summary>A request's share: dispose to give back all it took.</summary>
    public Hold Open() => new(this);

    private bool TryTake(long bytes)
    {
        for (long left = Interlocked.Read(ref _left); ; left = Interlocked.Read(ref _left))
        {
            if (bytes > left) return false;
            if (Interlocked.CompareExchange(ref _left, left - bytes, left) == left) break;
        }
        for (long taken = Taken, peak = Interlocked.Read(ref _peak); taken > peak; peak = Interlocked.Read(ref _peak))
            if (Interlocked.CompareExchange(ref _peak, taken, peak) == peak) break;
        return true;
    }

    private void Give(long bytes) => Interlocked.Add(ref _left, bytes);

    public sealed class Hold(MemoryBudget budget) : IDisposable
    {
        private long _held;
        public long Held => _held;

        /// <summary>Takes <paramref name="bytes"/> more, or throws ServerBusy (503 / RESOURCE_EXHAUSTED) when the requests held now leave too little.</summary>
        public void Take(long bytes)
        {
            if (bytes <= 0) return;
            if (!budget.TryTake(bytes))
                throw new HeteroBatchException("ServerBusy", FailureKind.ResourceUnavailable,
                    $"The server holds requests taking {budget.Taken} of its {budget.Total} bytes; this one needs {bytes} more. Try again later.");
            _held += bytes;
        }

        public void Dispose() { budget.Give(_held); _held = 0; }
    }
}
