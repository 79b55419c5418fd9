using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Profiling;
using HeteroBatch.Engine.Runtime;

namespace HeteroBatch.Engine.Tests;

/// <summary>The helpers that used to have copies: file names from others' names, and the memory rule.</summary>
public sealed class RuntimeRulesTests
{
    [Theory]
    [InlineData("resnet-50", "resnet-50")]
    [InlineData("a/b\\c d:e", "a_b_c_d_e")]
    [InlineData("logits.0_x", "logits.0_x")]
    [InlineData("", "_")]
    public void AFileNameKeepsLettersDigitsDashUnderscoreAndDotOnly(string name, string safe)
    {
        Assert.Equal(safe, FileNames.Safe(name));
        // the store and the job outputs name their files with it
        Assert.Equal(safe + ".npy", JobOutput.FileNameOf(name));
        Assert.StartsWith(safe + "-0123456789ab__", ProfileStore.FileNameFor(name, "0123456789abcdef", "u", "f"));
    }

    [Fact]
    public void WorkFitsWhileResidentMemoryPlusItsNeedStaysWithinFourFifthsOfWhatTheProcessMayUse()
    {
        const long GiB = 1L << 30;
        Assert.Equal(0.8, MemoryBudget.Share);
        Assert.Equal((long)(10 * GiB * 0.8), MemoryBudget.Limit(10 * GiB));
        Assert.True(MemoryBudget.Fits(6 * GiB, 2 * GiB, 10 * GiB));
        Assert.False(MemoryBudget.Fits(6 * GiB + 1, 2 * GiB, 10 * GiB));
        Assert.Equal(6 * GiB, MemoryBudget.Room(2 * GiB, 10 * GiB));
        Assert.Equal(0, MemoryBudget.Room(9 * GiB, 10 * GiB));
    }
}
