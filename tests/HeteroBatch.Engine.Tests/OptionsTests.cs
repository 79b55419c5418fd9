using System.Text.Json;
using HeteroBatch.Engine.Units;

namespace HeteroBatch.Engine.Tests;

/// <summary>The one options object: read from a given environment, changed only through its checks, its token never in clear.</summary>
public sealed class OptionsTests
{
    private static Func<string, string?> Env(params (string Name, string Value)[] vars) =>
        name => vars.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void FromEnvironmentReadsEverySettingFromTheVariablesItIsGiven()
    {
        var o = EngineOptions.FromEnvironment(Env(
            ("HETEROBATCH_PROFILE_PATH", "/tmp/hb-store"), ("HETEROBATCH_CACHE", "/tmp/hb-cache"), ("HETEROBATCH_ORT_PATH", "/opt/ort"),
            ("HETEROBATCH_STORE_LOCK_SECONDS", "2.5"), ("HETEROBATCH_REMOTE_TOKEN", "t0k"), ("HETEROBATCH_CUDNN_SEARCH", "HEURISTIC")));
        Assert.Equal(("/tmp/hb-store", "/tmp/hb-cache/models", "/opt/ort", 2.5), (o.ProfileStorePath, o.ModelCacheFolder, o.OrtPath, o.StoreLockSeconds));
        Assert.Equal("t0k", o.RemoteToken!.Reveal());
        Assert.Equal("HEURISTIC", o.CudnnAlgorithmSearch);
    }

    [Fact]
    public void WithoutVariablesTheFoldersFollowXdgAndTheLockWaitIsSixtySeconds()
    {
        var o = EngineOptions.FromEnvironment(Env(("XDG_DATA_HOME", "/d"), ("XDG_CACHE_HOME", "/c"), ("HETEROBATCH_STORE_LOCK_SECONDS", "-3")));
        Assert.Equal((Path.GetFullPath("/d/HeteroBatch/profiles"), Path.GetFullPath("/c/HeteroBatch/models"), 60.0), (o.ProfileStorePath, o.ModelCacheFolder, o.StoreLockSeconds));
        Assert.Null(o.OrtPath);
        Assert.Null(o.RemoteToken);
    }

    [Theory]
    [InlineData("HETEROBATCH_GPU_DECODE_CHUNK", "256", 256, 1)]
    [InlineData("HETEROBATCH_GPU_DECODE_CHUNK", "1", 1, 1)]
    [InlineData("HETEROBATCH_GPU_DECODE_CHUNK", "1024", 1024, 1)]
    [InlineData("HETEROBATCH_GPU_DECODE_CHUNK", "0", 128, 1)]
    [InlineData("HETEROBATCH_GPU_DECODE_CHUNK", "1025", 128, 1)]
    [InlineData("HETEROBATCH_GPU_DECODE_CHUNK", "2147483648", 128, 1)]
    [InlineData("HETEROBATCH_GPU_DECODE_CHUNK", "big", 128, 1)]
    [InlineData("HETEROBATCH_GPU_DECODE_THREADS", "2", 128, 2)]
    [InlineData("HETEROBATCH_GPU_DECODE_THREADS", "4", 128, 4)]
    [InlineData("HETEROBATCH_GPU_DECODE_THREADS", "5", 128, 1)]
    [InlineData("HETEROBATCH_GPU_DECODE_THREADS", "0", 128, 1)]
    [InlineData("HETEROBATCH_GPU_DECODE_THREADS", "-1", 128, 1)]
    [InlineData("NONE", "", 128, 1)]
    public void HowAGpuDecodesIsReadWithinItsBoundsElseLeftAtChunksOf128OnOneThread(string variable, string value, int chunk, int threads)
    {
        var o = EngineOptions.FromEnvironment(Env((variable, value)));
        Assert.Equal((chunk, threads), (o.GpuDecodeChunk, o.GpuDecodeThreads));
    }

    [Theory]
    [InlineData("0", false)]
    [InlineData("1", true)]
    [InlineData("off", true)]
    [InlineData(null, true)]
    public void BatchedGpuResizesAreOnUnlessTheVariableSaysZero(string? value, bool batched)
    {
        var o = EngineOptions.FromEnvironment(Env(("HETEROBATCH_GPU_BATCHED_RESIZE", value!)));
        Assert.Equal(batched, o.GpuBatchedResize);
    }

    [Theory]
    [InlineData(null, PixelInputMode.Preferred)]
    [InlineData("0", PixelInputMode.Off)]
    [InlineData("all", PixelInputMode.All)]
    [InlineData(" ALL ", PixelInputMode.All)]
    [InlineData("1", PixelInputMode.Preferred)]
    [InlineData("some", PixelInputMode.Preferred)]
    public void WhichUnitsTakePixelsIsReadAsZeroOrAllElseLeftToThoseThatPreferThem(string? value, PixelInputMode mode)
    {
        var o = EngineOptions.FromEnvironment(Env(("HETEROBATCH_PIXEL_INPUTS", value!)));
        Assert.Equal(mode, o.PixelInputs);
    }

    [Theory]
    [InlineData(null, 0.0)]
    [InlineData("0", 0.0)]
    [InlineData("0.1", 0.1)]
    [InlineData("0.25", 0.25)]
    [InlineData("0.5", 0.5)]
    [InlineData("0.51", 0.0)]
    [InlineData("-0.1", 0.0)]
    [InlineData("NaN", 0.0)]
    [InlineData("half", 0.0)]
    public void TheShareCpuThreadsDecodeForDecodingUnitsIsReadWithinItsBoundsElseTheDefault(string? value, double share)
    {
        var o = EngineOptions.FromEnvironment(Env(("HETEROBATCH_CPU_DECODE_SHARE", value!)));
        Assert.Equal(share, o.CpuDecodeShare);
    }

    [Theory]
    [InlineData(null, 1L << 20)]
    [InlineData("0", 0L)]
    [InlineData("262144", 262144L)]
    [InlineData("33554432", 33554432L)]
    [InlineData("33554433", 1L << 20)]
    [InlineData("-1", 1L << 20)]
    [InlineData("1e6", 1L << 20)]
    [InlineData("131072", 131072L)]
    [InlineData("131071", 1L << 20)]
    [InlineData("1", 1L << 20)]
    public void TheNativeMmapThresholdIsReadWithinGlibcsBoundsElseLeftAtOneMebibyte(string? value, long threshold)
    {
        var o = EngineOptions.FromEnvironment(Env(("HETEROBATCH_MALLOC_MMAP_THRESHOLD", value!)));
        Assert.Equal(threshold, o.NativeMmapThreshold);
    }

    [Theory]
    [InlineData("GLIBC_TUNABLES", "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=65536", 0L)]
    [InlineData("GLIBC_TUNABLES", "glibc.malloc.arena_max=2", 1L << 20)]
    [InlineData("MALLOC_MMAP_THRESHOLD_", "65536", 0L)]
    public void AThresholdTheUserGaveGlibcItselfIsLeftAlone(string variable, string value, long threshold)
    {
        var o = EngineOptions.FromEnvironment(Env((variable, value), ("HETEROBATCH_MALLOC_MMAP_THRESHOLD", "2097152")));
        Assert.Equal(threshold == 0 ? 0 : 2097152, o.NativeMmapThreshold);
    }

    [Fact]
    public void EverySettingsVariableIsDocumentedInAboutHeteroBatch()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "HeteroBatch.psd1"))) dir = dir.Parent;
        Assert.NotNull(dir);
        var about = File.ReadAllText(Path.Combine(dir!.FullName, "en-US", "about_HeteroBatch.help.txt"));
        var variables = typeof(EngineOptions).GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
            .Where(f => f.IsLiteral && f.Name.EndsWith("Variable", StringComparison.Ordinal)).Select(f => (string)f.GetRawConstantValue()!).ToList();
        Assert.Contains("HETEROBATCH_GPU_BATCHED_RESIZE", variables);
        Assert.All(variables, v => Assert.True(System.Text.RegularExpressions.Regex.IsMatch(about, $@"\b{v}\b"), $"about_HeteroBatch does not mention {v}"));
    }

    [Fact]
    public void TheFailureVariableNoLongerReachesTheOptions()
    {
        // fault injection is the engine context's test hook, not a setting
        var with = EngineOptions.FromEnvironment(Env(("HETEROBATCH_TEST_FAIL_UNIT", "cpu0:0")));
        var without = EngineOptions.FromEnvironment(Env());
        Assert.Null(typeof(EngineOptions).GetProperty("InjectFailure"));
        Assert.Equal(without with { CudaProviderOptions = with.CudaProviderOptions }, with);
    }

    [Fact]
    public void AContextTakesSettableChangesAndRefusesBadOnesLeavingItsSettings()
    {
        using var context = new EngineContext(new EngineOptions { ProfileStorePath = "/tmp/a" });
        var dir = Path.Combine(Path.GetTempPath(), "hb-options-" + Guid.NewGuid().ToString("N"));
        var file = dir + ".txt";
        File.WriteAllText(file, "x");
        try
        {
            var now = context.Configure(o => o with { ProfileStorePath = Path.Combine(dir, ".", "store"), StoreLockSeconds = 0 });
            Assert.Equal((Path.Combine(dir, "store"), 0.0), (now.ProfileStorePath, now.StoreLockSeconds));
            Assert.Same(now, context.Options);

            Assert.Equal("OptionInvalid", Assert.Throws<HeteroBatchException>(() => context.Configure(o => o with { StoreLockSeconds = -1 })).ErrorId);
            Assert.Equal("OptionInvalid", Assert.Throws<HeteroBatchException>(() => context.Configure(o => o with { StoreLockSeconds = double.NaN })).ErrorId);
            Assert.Equal("OptionInvalid", Assert.Throws<HeteroBatchException>(() => context.Configure(o => o with { ProfileStorePath = " " })).ErrorId);
            Assert.Equal("OptionInvalid", Assert.Throws<HeteroBatchException>(() => context.Configure(o => o with { ModelCacheFolder = file })).ErrorId);
            Assert.Equal("ProfilePathIsFile", Assert.Throws<HeteroBatchException>(() => context.Configure(o => o with { ProfileStorePath = file })).ErrorId);
            // what workers and sessions were built with stays as imported
            Assert.Equal("OptionFixedAtImport", Assert.Throws<HeteroBatchException>(() => context.Configure(o => o with { SplitTransfers = false })).ErrorId);
            Assert.Equal("OptionFixedAtImport", Assert.Throws<HeteroBatchException>(() => context.Configure(o => o with { OrtPath = "/elsewhere" })).ErrorId);
            Assert.Same(now, context.Options);
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void ATokenIsNeitherPrintedNorSerialized()
    {
        var token = new BearerToken("p4ss-w0rd");
        Assert.Equal("********", token.ToString());
        Assert.Empty(typeof(BearerToken).GetProperties());
        var unit = new ComputeUnit { Id = "remote0", Kind = UnitKind.Remote, Endpoint = "http://127.0.0.1:1/", Token = token };
        var json = JsonSerializer.Serialize(unit) + JsonSerializer.Serialize(new EngineOptions { RemoteToken = token });
        Assert.DoesNotContain("p4ss", json);
        Assert.Null(JsonSerializer.Deserialize<ComputeUnit>(JsonSerializer.Serialize(unit))!.Token);
        Assert.Equal(unit.Fingerprint, new ComputeUnit { Id = "remote0", Kind = UnitKind.Remote, Endpoint = "http://127.0.0.1:1/" }.Fingerprint);
        Assert.Equal("TokenEmpty", Assert.Throws<HeteroBatchException>(() => new BearerToken("")).ErrorId);
    }
}
