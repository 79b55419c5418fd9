# Prints this process's resident memory by mapping (/proc/self/smaps), largest first: the mapped
# file's path, or [anon] / [heap] / [stack] for memory of no file. Dot-sourced by user-job.sh (MEMORY=1).
$mapping = $null
$rss = @{}
foreach ($line in [IO.File]::ReadLines('/proc/self/smaps')) {
    if ($line -match '^[0-9a-f]+-[0-9a-f]+ ') {
        $fields = $line -split '\s+', 6
        $mapping = if ($fields.Count -ge 6 -and $fields[5]) { $fields[5] } else { '[anon]' }
    } elseif ($line -match '^Rss:\s+(\d+)') {
        $rss[$mapping] = $rss[$mapping] + [long]$Matches[1]
    }
}
'resident now {0:F0} MiB in mappings of {1} names; the largest:' -f (($rss.Values | Measure-Object -Sum).Sum / 1024), $rss.Count
$rss.GetEnumerator() | Sort-Object Value -Descending | Select-Object -First $(if ($env:MEMORY_TOP) { [int]$env:MEMORY_TOP } else { 20 }) | ForEach-Object { '{0,9:F1} MiB  {1}' -f ($_.Value / 1024), $_.Key }
$gc = [GC]::GetGCMemoryInfo()
'.NET GC: heap {0:F0} MiB, committed {1:F0} MiB, pinned objects {2}, server GC {3}, {4:F0} MiB allocated in all' -f ($gc.HeapSizeBytes / 1MB), ($gc.TotalCommittedBytes / 1MB), $gc.PinnedObjectsCount, [Runtime.GCSettings]::IsServerGC, ([GC]::GetTotalAllocatedBytes($false) / 1MB)
# how much of it is freed memory the native heap (glibc malloc) or the GC still holds
function Get-Rss { ((Get-Content /proc/self/status | Select-String '^(VmRSS|RssAnon):') -replace '\s+', ' ') -join ', ' }
Add-Type -Namespace Probe -Name Libc -MemberDefinition @'
[System.Runtime.InteropServices.DllImport("libc")] public static extern int malloc_trim(System.UIntPtr pad);
[System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
public struct MallInfo2 { public System.UIntPtr Arena, Ordblks, Smblks, Hblks, Hblkhd, Usmblks, Fsmblks, Uordblks, Fordblks, Keepcost; }
[System.Runtime.InteropServices.DllImport("libc")] public static extern MallInfo2 mallinfo2();
'@
function Get-Malloc { $m = [Probe.Libc]::mallinfo2(); 'malloc: {0:F0} MiB in arenas ({1:F0} in use, {2:F0} free), {3:F0} MiB mapped apart' -f ($m.Arena.ToUInt64() / 1MB), ($m.Uordblks.ToUInt64() / 1MB), ($m.Fordblks.ToUInt64() / 1MB), ($m.Hblkhd.ToUInt64() / 1MB) }
'before trimming: {0}; {1}' -f (Get-Rss), (Get-Malloc)
[void][Probe.Libc]::malloc_trim([UIntPtr]::Zero)
'after malloc_trim(0): {0}' -f (Get-Rss)
[GC]::Collect(); [GC]::WaitForPendingFinalizers(); [GC]::Collect()
[void][Probe.Libc]::malloc_trim([UIntPtr]::Zero)
'after a full GC and malloc_trim(0): {0}' -f (Get-Rss)
