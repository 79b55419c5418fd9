namespace HeteroBatch.Engine.Data;

/// <summary>
/// The pixels decoded at once, across decoding threads: a large image takes its pixels from the
/// budget before it is decoded and gives them back after, waiting while others hold too much. An
/// image larger than the whole budget decodes when nothing else is decoding (never refused: the
/// 2^28-pixel cap refuses what is too large). Images up to <see cref="FreeBelowPixels"/> take
/// nothing: they are what a folder of photos holds, and their buffers are small.
/// </summary>
/// <remarks>Thread-safe: every member may be called from any decoding thread.</remarks>
internal sealed class DecodeBudget
{
    /// <summary>The one budget the decoders of a process take from: decoding memory is the process's.</summary>
    internal static DecodeBudget Shared { get; } = new(1L << 28);

    /// <summary>Images of up to this many pixels (4 MP) take nothing from the budget.</summary>
    public const long FreeBelowPixels = 1L << 22;

    private readonly object _gate = new(); // guards _inFlight, _peak, _taken
    private long _inFlight, _peak, _taken;

    public DecodeBudget(long capacityPixels)
    {
        if (capacityPixels <= 0) throw new ArgumentOutOfRangeException(nameof(capacityPixels));
        Capacity = capacityPixels;
    }

    /// <summary>The pixels that may be in decoding at once.</summary>
    public long Capacity { get; }

    /// <summary>The most pixels held at once so far.</summary>
    public long Peak { get { lock (_gate) return _peak; } }

    /// <summary>How many images have taken from the budget so far.</summary>
    public long Taken { get { lock (_gate) return _taken; } }

    /// <summary>Takes <paramref name="pixels"/> (waiting until they fit, or until nothing else is held); dispose the lease to give them back.</summary>
    public IDisposable Take(long pixels)
    {
        if (pixels <= FreeBelowPixels) return new Lease(null, 0);
        lock (_gate)
        {
            while (_inFlight > 0 && _inFlight + pixels > Capacity) Monitor.Wait(_gate);
            return Hold(pixels);
        }
    }

    /// <summary>Takes <paramref name="pixels"/> where they fit now; null where they do not.</summary>
    public IDisposable? TryTake(long pixels)
    {
        if (pixels <= FreeBelowPixels) return new Lease(null, 0);
        lock (_gate)
            return _inFlight > 0 && _inFlight + pixels > Capacity ? null : Hold(pixels);
    }

    private Lease Hold(long pixels) // under _gate
    {
        _inFlight += pixels;
        _peak = Math.Max(_peak, _inFlight);
        _taken++;
        return new Lease(this, pixels);
    }

    private void Give(long pixels)
    {
        lock (_gate)
        {
            _inFlight -= pixels;
            Monitor.PulseAll(_gate);
        }
    }

    private sealed class Lease(DecodeBudget? budget, long pixels) : IDisposable
    {
        private int _given;

        public void Dispose()
        {
            if (budget != null && Interlocked.Exchange(ref _given, 1) == 0) budget.Give(pixels);
        }
    }
}
