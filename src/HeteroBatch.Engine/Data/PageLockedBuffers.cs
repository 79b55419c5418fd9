using System.Runtime.InteropServices;
using HeteroBatch.Engine.Runtime;

namespace HeteroBatch.Engine.Data;

/// <summary>
/// Input batches page-locked for GPU copies while this object lives: the pinned ones among them
/// (<see cref="TensorBatch.IsPinned"/>) are registered with the CUDA runtime, and released on
/// Dispose, before their memory can go back to the heap. Where there is no CUDA runtime nothing
/// happens.
/// </summary>
internal sealed class PageLockedBuffers : IDisposable
{
    private readonly List<IntPtr> _locked = new();
    private readonly List<object> _owners = new(); // what the locked memory belongs to, kept alive (never collected) until unlocked
    public int Count => _locked.Count;

    public static PageLockedBuffers Lock(IEnumerable<TensorBatch> batches) =>
        Lock(batches.Where(t => t.IsPinned && t.Count > 0)
            .Select(t => (Marshal.UnsafeAddrOfPinnedArrayElement(t.Data, 0), (long)Buffer.ByteLength(t.Data), (object)t.Data)));

    /// <summary>Page-locks the arenas' buffers (file bytes that GPUs copy to decode them).</summary>
    public static PageLockedBuffers Lock(IEnumerable<ByteArena> arenas) =>
        Lock(arenas.Where(a => a.Capacity > 0).Select(a => (a.Region.Address, a.Region.Bytes, (object)a)));

    private static PageLockedBuffers Lock(IEnumerable<(IntPtr Address, long Bytes, object Owner)> regions)
    {
        var locks = new PageLockedBuffers();
        foreach (var (address, bytes, owner) in regions)
            if (CudaHost.Register(address, bytes)) { locks._locked.Add(address); locks._owners.Add(owner); }
        return locks;
    }

    public void Dispose()
    {
        foreach (var address in _locked) CudaHost.Unregister(address);
        _locked.Clear();
        _owners.Clear();
    }
}
