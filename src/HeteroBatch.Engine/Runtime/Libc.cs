using System.Runtime.InteropServices;

namespace HeteroBatch.Engine.Runtime;

/// <summary>The few libc calls the engine needs on Linux: native environment and thread affinity.</summary>
internal static partial class Libc
{
    private const string Lib = "libc.so.6";

    [DllImport(Lib, SetLastError = true)]
    private static extern int setenv(string name, string value, int overwrite);

    [DllImport(Lib, SetLastError = true)]
    private static extern int sched_setaffinity(int pid, IntPtr cpusetsize, ulong[] mask);

    [DllImport(Lib, SetLastError = true)]
    private static extern int sched_getaffinity(int pid, IntPtr cpusetsize, ulong[] mask);

    [DllImport(Lib, SetLastError = true)]
    private static extern int link(string existing, string created);

    [DllImport(Lib, SetLastError = true)]
    private static extern int fsync(int fd);

    [DllImport(Lib)]
    private static extern int mallopt(int param, int value);

    private const int MmapThresholdParam = -3; // M_MMAP_THRESHOLD

    [DllImport(Lib, SetLastError = true)]
    private static extern unsafe int statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    private const int AtFdCwd = -100;
    private const uint StatxType = 1;

    /// <summary>
    /// What a path names where that is not a regular file (following links): "a FIFO", "a character device",
    /// "a block device", "a socket" or "a folder"; null for a regular file, and where the OS cannot say (not
    /// Linux, no statx in libc, no such file). Opening a FIFO to read waits for a writer, and a device can be
    /// endless: callers that read whole files refuse these first.
    /// </summary>
    public static unsafe string? NotRegularFile(string path)
    {
        if (!OperatingSystem.IsLinux()) return null;
        byte* buffer = stackalloc byte[256]; // struct statx is 256 bytes on every architecture; stx_mode (u16) is at 28
        try
        {
            if (statx(AtFdCwd, path, 0, StatxType, buffer) != 0) return null;
        }
        catch (EntryPointNotFoundException) { return null; }
        return (*(ushort*)(buffer + 28) & 0xF000) switch
        {
            0x8000 => null,
            0x1000 => "a FIFO (named pipe)",
            0x2000 => "a character device",
            0x6000 => "a block device",
            0xC000 => "a socket",
            0x4000 => "a folder",
            _ => "not a regular file",
        };
    }

    /// <summary>Makes <paramref name="created"/> another name of the file <paramref name="existing"/> (a hard link); false where that fails.</summary>
    public static bool HardLink(string existing, string created) => OperatingSystem.IsLinux() && link(existing, created) == 0;

    private const int EIntr = 4, EInval = 22, ERofs = 30, ENotSup = 95;

    /// <summary>
    /// Brings a file's data that was handed to the OS to disk (fsync), from any thread, also while another
    /// writes to it; false where that is not done here (not Linux): the caller flushes through its stream.
    /// As .NET's own flush to disk: an interrupted call is made again, and a file system that cannot
    /// flush (EINVAL, EROFS, ENOTSUP) is taken as done. Throws IOException, naming <paramref name="path"/>, when the OS fails it.
    /// </summary>
    public static bool FlushToDisk(Microsoft.Win32.SafeHandles.SafeFileHandle file, string path)
    {
        if (!OperatingSystem.IsLinux()) return false;
        bool added = false;
        file.DangerousAddRef(ref added);
        try
        {
            while (fsync((int)file.DangerousGetHandle()) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == EIntr) continue;
                if (errno is EInval or ERofs or ENotSup) break;
                throw new IOException($"Could not flush {path} to disk: {Marshal.GetPInvokeErrorMessage(errno)}");
            }
        }
        finally { if (added) file.DangerousRelease(); }
        return true;
    }

    /// <summary>
    /// Native allocations of at least <paramref name="bytes"/> get memory of their own from the OS, returned when
    /// freed (glibc's M_MMAP_THRESHOLD, which also stops glibc raising it as large blocks are freed); for the
    /// whole process. False where not done (not Linux, another C library, a value glibc refuses).
    /// </summary>
    public static bool SetMmapThreshold(long bytes)
    {
        if (!OperatingSystem.IsLinux() || bytes is <= 0 or > int.MaxValue) return false;
        try { return mallopt(MmapThresholdParam, (int)bytes) == 1; }
        catch (EntryPointNotFoundException) { return false; }
        catch (DllNotFoundException) { return false; }
    }

    /// <summary>Starts the peak resident memory count again from the current size (Linux: /proc/self/clear_refs); false where that is not possible.</summary>
    public static bool ResetPeakResident()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); return true; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    private const int MaskWords = 16; // 1024 processors, as glibc's cpu_set_t

    /// <summary>Sets a variable in the native environment (what native libraries read with getenv).</summary>
    public static void SetNativeEnvironment(string name, string value)
    {
        if (!OperatingSystem.IsLinux()) { Environment.SetEnvironmentVariable(name, value); return; }
        setenv(name, value, 1);
        Environment.SetEnvironmentVariable(name, value);
    }

    /// <summary>Pins the calling thread to the given processors. Returns false where that is not possible.</summary>
    public static bool PinCurrentThread(IReadOnlyCollection<int> processors)
    {
        if (!OperatingSystem.IsLinux() || processors.Count == 0) return false;
        var mask = new ulong[MaskWords];
        foreach (var p in processors)
        {
            if (p < 0 || p >= MaskWords * 64) return false;
            mask[p / 64] |= 1UL << (p % 64);
        }
        return sched_setaffinity(0, (IntPtr)(MaskWords * 8), mask) == 0;
    }

    /// <summary>The processors the calling thread may run on, or null where that cannot be read.</summary>
    public static int[]? CurrentThreadAffinity()
    {
        if (!OperatingSystem.IsLinux()) return null;
        var mask = new ulong[MaskWords];
        if (sched_getaffinity(0, (IntPtr)(MaskWords * 8), mask) != 0) return null;
        var list = new List<int>();
        for (int i = 0; i < MaskWords * 64; i++)
            if ((mask[i / 64] & (1UL << (i % 64))) != 0) list.Add(i);
        return list.ToArray();
    }

    /// <summary>The most memory this process has had resident (Linux VmHWM), or null where the OS does not say.</summary>
    public static long? PeakResidentBytes() => StatusBytes("VmHWM:");

    /// <summary>The process's resident memory now (Linux), or null.</summary>
    public static long? ResidentBytes() => StatusBytes("VmRSS:");

    private static long? StatusBytes(string field)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith(field, StringComparison.Ordinal)
                    && long.TryParse(line[field.Length..].Trim().Split(' ')[0], out var kb))
                    return kb * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }
}
