namespace HeteroBatch.Engine.Tests;

[CollectionDefinition(nameof(NativeMemoryTests), DisableParallelization = true)]
public sealed class NativeMemoryCollection;

/// <summary>
/// glibc's mmap threshold, fixed when an engine context starts. Alone (no other test allocating beside it): where a
/// block's memory comes from depends on the heap's free chunks, which tests running at once would leave.
/// </summary>
[Collection(nameof(NativeMemoryTests))]
public sealed class NativeMemoryTests
{
    [Fact]
    public void OnceAContextStartsALargeNativeBlockGetsMemoryOfItsOwnEvenAfterOneWasFreed()
    {
        if (!OperatingSystem.IsLinux()) return;
        using var context = new EngineContext(new EngineOptions { NativeMmapThreshold = 1 << 20 });
        // glibc's own threshold rises past a large block once such a block is freed (here one of 30 MiB, below its
        // 32 MiB ceiling), and the next ones are carved from its heap (kept resident when freed); fixed, each is
        // mapped apart: glibc puts such a block 16 bytes (its header) past the start of a page of its own. Blocks
        // of 24 MiB: a free chunk that large is rare in a heap whose threshold has been 1 MiB since the first
        // context (one could still be there from before it: three of four must be mapped apart).
        System.Runtime.InteropServices.Marshal.FreeHGlobal(System.Runtime.InteropServices.Marshal.AllocHGlobal(30 << 20)); // malloc on Linux
        var blocks = Enumerable.Range(0, 4).Select(i => System.Runtime.InteropServices.Marshal.AllocHGlobal((24 << 20) + i * 65536)).ToList();
        try { Assert.True(blocks.Count(b => (long)b % Environment.SystemPageSize == 16) >= 3, string.Join(", ", blocks.Select(b => ((long)b % Environment.SystemPageSize).ToString()))); }
        finally { blocks.ForEach(System.Runtime.InteropServices.Marshal.FreeHGlobal); }
    }
}
