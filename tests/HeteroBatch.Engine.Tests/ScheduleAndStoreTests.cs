using HeteroBatch.Engine.Profiling;

namespace HeteroBatch.Engine.Tests;

public class ScheduleTests
{
    [Fact]
    public void DefaultScheduleIsOneTwoThreeThenPowersOfTwoAndNeighbours()
    {
        Assert.Equal(new[] { 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33 }, ProfileSchedule.Default(33));
        Assert.Equal(new[] { 1, 2, 3, 4, 5, 7, 8, 9, 15, 16 }, ProfileSchedule.Default(16));
        Assert.Equal(new[] { 1 }, ProfileSchedule.Default(1));
    }
}

public sealed class ProfileStoreTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "hb-store-" + Guid.NewGuid().ToString("N"));
    private readonly List<HeteroBatchException> _warnings = new();
    private ProfileStore Store() => new(_dir, _warnings.Add);

    public void Dispose() { if (Directory.Exists(_dir)) Directory.Delete(_dir, true); }

    [Fact]
    public void StoredProfilesReloadEqual()
    {
        var p = TestModels.FakeProfile("cpu0", "tinynet", (1, 0.5), (2, 0.9), (4, 1.7));
        p.Unit.Processors = new[] { 0 };
        Store().Save(p);
        var back = Assert.Single(Store().Load("tinynet"));
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(p, ProfileStore.Json), System.Text.Json.JsonSerializer.Serialize(back, ProfileStore.Json));
        Assert.Empty(_warnings);
    }

    [Fact]
    public void NewMeasurementsMergeWithStoredOnes()
    {
        Store().Save(TestModels.FakeProfile("cpu0", "m", (1, 1.0), (2, 2.0)));
        Store().Save(TestModels.FakeProfile("cpu0", "m", (2, 1.5), (4, 3.0)));
        var back = Assert.Single(Store().Load("m"));
        Assert.Equal(new[] { (1, 1.0), (2, 1.5), (4, 3.0) }, back.Table.Select(e => (e.BatchSize, e.MedianMs)));
        Assert.Equal(4, back.MaxBatchSize);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{ \"SchemaVersion\": 1, \"Model\": \"m\", \"Entr")]
    [InlineData("not json at all")]
    [InlineData("{ \"SchemaVersion\": 0, \"Model\": \"m\", \"Unit\": {}, \"Entries\": [] }")]
    public void ACorruptTruncatedOrEmptyFileIsMovedAsideAndReported(string content)
    {
        var good = TestModels.FakeProfile("cpu0", "m", (1, 1.0));
        var store = Store();
        store.Save(good);
        var path = store.PathFor(good);
        File.WriteAllText(path, content);
        Assert.Empty(store.Load("m"));
        var warning = Assert.Single(_warnings);
        Assert.Equal("ProfileCorrupt", warning.ErrorId);
        Assert.False(File.Exists(path));
        var aside = Assert.Single(Directory.GetFiles(_dir, "*.corrupt-*"));
        Assert.Equal(content, File.ReadAllText(aside));
        // saving again writes a fresh file and leaves the one moved aside alone
        store.Save(good);
        Assert.Single(store.Load("m"));
        Assert.Equal(content, File.ReadAllText(aside));
    }

    [Fact]
    public void AProfileOfANewerSchemaIsLeftInPlaceSkippedAndNeverOverwritten()
    {
        var good = TestModels.FakeProfile("cpu0", "m", (1, 1.0));
        var store = new ProfileStore(_dir, _warnings.Add);
        var path = store.PathFor(good);
        Directory.CreateDirectory(_dir);
        var newer = "{ \"SchemaVersion\": 99, \"Model\": \"m\", \"Unit\": {}, \"Entries\": [], \"SomethingNew\": 1 }";
        File.WriteAllText(path, newer);
        Assert.Empty(store.Load("m"));
        Assert.Equal("ProfileSchemaNewer", Assert.Single(_warnings).ErrorId);
        Assert.Equal("ProfileSchemaNewer", Assert.Throws<HeteroBatchException>(() => store.Save(good)).ErrorId);
        Assert.Equal(newer, File.ReadAllText(path));
        Assert.Empty(Directory.GetFiles(_dir, "*.corrupt-*"));
    }

    [Fact]
    public void ConcurrentWritersToOneProfileLoseNothing()
    {
        var tasks = Enumerable.Range(1, 16).Select(b => Task.Run(() =>
            Store().Save(TestModels.FakeProfile("cpu0", "m", (b, b * 1.0))))).ToArray();
        Task.WaitAll(tasks);
        var back = Assert.Single(Store().Load("m"));
        Assert.Equal(Enumerable.Range(1, 16), back.Table.Select(e => e.BatchSize));
    }
}
