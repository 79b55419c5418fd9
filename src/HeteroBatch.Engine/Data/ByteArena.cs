namespace HeteroBatch.Engine.Data;

/// <summary>
/// One pinned buffer that a block's file bytes are read into, handed out as slices and reused for
/// the next block: thousands of files a second read into arrays of their own that live for several
/// blocks would keep the garbage collector busy (and stop every thread, the units' included).
/// A file that does not fit gets an array of its own.
/// Threads: <see cref="Take"/> from any thread; <see cref="Reset"/> only when no slice is in use.
/// </summary>
internal sealed class ByteArena
{
    private readonly byte[] _buffer;
    private long _used;

    public ByteArena(long capacity) =>
        _buffer = GC.AllocateUninitializedArray<byte>((int)Math.Clamp(capacity, 0, Array.MaxLength), pinned: true);

    public int Capacity => _buffer.Length;

    /// <summary>The buffer's address (it never moves: pinned) and length, for page-locking it.</summary>
    public (IntPtr Address, long Bytes) Region =>
        (_buffer.Length == 0 ? IntPtr.Zero : System.Runtime.InteropServices.Marshal.UnsafeAddrOfPinnedArrayElement(_buffer, 0), _buffer.Length);

    /// <summary>A slice of <paramref name="length"/> bytes of its own: from the buffer while it lasts, else a new array.</summary>
    public Memory<byte> Take(int length)
    {
        long end = Interlocked.Add(ref _used, length);
        return end <= _buffer.Length ? _buffer.AsMemory((int)(end - length), length) : new byte[length];
    }

    /// <summary>Every slice handed out is free again.</summary>
    public void Reset() => Interlocked.Exchange(ref _used, 0);
}
