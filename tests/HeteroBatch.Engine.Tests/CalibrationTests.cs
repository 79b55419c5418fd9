using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Profiling;

namespace HeteroBatch.Engine.Tests;

/// <summary>Observed runs, stored beside the profiles, correct later plans.</summary>
public sealed class CalibrationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hb-calibration-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static Observation Seen(UnitProfile p, double ms, double predicted, int minutesAgo = 0, params string[] alongside) => new()
    {
        Model = p.Model, ModelSha256 = p.ModelSha256, UnitId = p.Unit.Id, UnitFingerprint = p.Unit.Fingerprint,
        Samples = 10, SubBatchSize = 10, Ms = ms, PredictedMs = predicted, At = DateTimeOffset.UtcNow.AddMinutes(-minutesAgo), Alongside = alongside,
    };

    [Fact]
    public void APlanAfterRunsMovesWorkAwayFromTheUnitThatRanSlow()
    {
        var a = TestModels.FakeProfile("cpu0", "m", (1, 1.0), (100, 100.0));
        var b = TestModels.FakeProfile("cpu1", "m", (1, 1.0), (100, 100.0));
        b.ModelSha256 = a.ModelSha256;
        var before = Planner.Plan(new[] { a, b }, 100);
        Assert.Equal(50, before.Shards.Single(s => s.UnitId == "cpu1").Count);
        Assert.Equal("profiles", before.CostsFrom);

        var store = new ProfileStore(_dir);
        store.Record(new[] { Seen(a, 50, 50), Seen(b, 100, 50), Seen(b, 98, 50), Seen(b, 102, 50) });
        var calibration = new[] { a, b }.ToDictionary(p => p.Unit.Id, p => Calibration.Factor(store.Observations(p.Model, p.ModelSha256, p.Unit.Id, p.Unit.Fingerprint)));
        Assert.Equal((1.0, 1), calibration["cpu0"]);
        Assert.Equal(2.0, calibration["cpu1"].Factor, 3);
        var after = Planner.Plan(new[] { a, b }, 100, PlanAlgorithm.Optimal, calibration);
        Assert.True(after.Shards.Single(s => s.UnitId == "cpu1").Count < 40, after.Split);
        Assert.Contains("cpu1 x2.000 (3 runs)", after.CostsFrom);
        Assert.Equal(2.0, after.Shards.Single(s => s.UnitId == "cpu1").CostFactor, 3);
    }

    [Fact]
    public void ASplitThatRunsShowedSlowerThanOneUnitAloneGoesToThatUnitAndSaysWhy()
    {
        var a = TestModels.FakeProfile("cpu0", "m", (1, 1.0), (100, 100.0));
        var b = TestModels.FakeProfile("cpu1", "m", (1, 1.0), (100, 100.0));
        b.ModelSha256 = a.ModelSha256;
        // side by side each ran 2.5 times slower than profiled; cpu0 alone ran as profiled
        var together = new Dictionary<string, (double, int)> { ["cpu0"] = (2.5, 3), ["cpu1"] = (2.5, 3) };
        var alone = new Dictionary<string, (double, int)> { ["cpu0"] = (1.0, 2) };
        var plan = Planner.Plan(new[] { a, b }, 100, PlanAlgorithm.Optimal, together, alone);
        Assert.True(plan.FellBackToSingle);
        Assert.Equal("cpu0", Assert.Single(plan.Shards).UnitId);
        Assert.Equal(100, plan.PredictedMs, 6);
        Assert.True(plan.Note!.Contains("side by side"), plan.Note);
        Assert.True(plan.Note.Contains("cpu0 alone 100.0 ms from its 2 runs alone"), plan.Note);
        // with no runs alone, the split still wins when side by side costs little
        var mild = new Dictionary<string, (double, int)> { ["cpu0"] = (1.2, 3), ["cpu1"] = (1.2, 3) };
        var split = Planner.Plan(new[] { a, b }, 100, PlanAlgorithm.Optimal, mild, null);
        Assert.Equal(2, split.Shards.Count);
        Assert.Null(split.Note);
    }

    [Fact]
    public void APlanIsCalibratedByRunsBesideTheSameUnitsWhenThereAreAny()
    {
        var gpu0 = TestModels.FakeProfile("gpu0", "m", (1, 1.0), (100, 100.0));
        var gpu1 = TestModels.FakeProfile("gpu1", "m", (1, 1.0), (100, 100.0));
        var cpu = TestModels.FakeProfile("cpu", "m", (1, 1.0), (100, 100.0));
        gpu1.ModelSha256 = cpu.ModelSha256 = gpu0.ModelSha256;
        var store = new ProfileStore(_dir);
        // beside the CPU unit gpu0 ran 1.6 times its profile; beside gpu1 alone, 1.05 times
        store.Record(new[] { Seen(gpu0, 80, 50, 0, "cpu"), Seen(gpu0, 80, 50, 0, "gpu1", "cpu"), Seen(gpu0, 52.5, 50, 0, "gpu1") });
        var pair = Execution.RunObservations.Calibration(store, new[] { gpu0, gpu1 }).Together;
        Assert.Equal((1.05, 1), (Math.Round(pair["gpu0"].Factor, 3), pair["gpu0"].Runs));
        var all = Execution.RunObservations.Calibration(store, new[] { gpu0, gpu1, cpu }).Together;
        Assert.Equal((1.6, 1), (Math.Round(all["gpu0"].Factor, 3), all["gpu0"].Runs));
        // no run beside exactly these units: every side-by-side run counts
        var cpu1 = TestModels.FakeProfile("cpu1", "m", (1, 1.0), (100, 100.0));
        cpu1.ModelSha256 = gpu0.ModelSha256;
        var other = Execution.RunObservations.Calibration(store, new[] { gpu0, cpu1 }).Together;
        Assert.Equal((1.6, 3), (Math.Round(other["gpu0"].Factor, 3), other["gpu0"].Runs));
    }

    /// <summary>One run of gpu0 + cpu: each unit's observation carries the run's wall time and its plan's prediction.</summary>
    private static Observation[] Run(UnitProfile gpu, UnitProfile cpu, double wallMs, double predictedMs, int minutesAgo)
    {
        var id = Guid.NewGuid().ToString("N");
        var g = Seen(gpu, 9.5, 9.5, minutesAgo, cpu.Unit.Id);
        var c = Seen(cpu, 9.5, 9.5, minutesAgo, gpu.Unit.Id);
        foreach (var o in new[] { g, c }) { o.RunId = id; o.RunWallMs = wallMs; o.RunPredictedMs = predictedMs; }
        return new[] { g, c };
    }

    [Fact]
    public void WhenRunsOfASplitTookLongerThanItsBestUnitAloneTheNextPlanGivesThatUnitTheBatch_OneSlowRunDoesNot()
    {
        var gpu = TestModels.FakeProfile("gpu0", "m", (1, 1.0), (100, 10.0));
        var cpu = TestModels.FakeProfile("cpu", "m", (1, 5.0), (100, 400.0));
        cpu.ModelSha256 = gpu.ModelSha256;
        var split = Planner.Plan(new[] { gpu, cpu }, 100);
        Assert.Equal(2, split.Shards.Count);
        Assert.True(split.PredictedMs < 10, split.Split);
        var store = new ProfileStore(_dir);
        // one of three runs of the split took 1.5 times its prediction: the split holds
        store.Record(Run(gpu, cpu, 9.5, 9.5, 5).Concat(Run(gpu, cpu, 14.25, 9.5, 4)).Concat(Run(gpu, cpu, 9.6, 9.5, 3)));
        var calibration = Execution.RunObservations.Calibration(store, new[] { gpu, cpu });
        Assert.Equal((1.011, 3), (Math.Round(calibration.Set.Factor, 3), calibration.Set.Runs));
        Assert.Equal(2, Planner.Plan(new[] { gpu, cpu }, 100, PlanAlgorithm.Optimal, calibration).Shards.Count);
        // two of the last three did: the batch goes to the GPU alone, and the plan says why
        store.Record(Run(gpu, cpu, 14.7, 9.5, 2));
        calibration = Execution.RunObservations.Calibration(store, new[] { gpu, cpu });
        Assert.Equal((1.5, 3), (Math.Round(calibration.Set.Factor, 3), calibration.Set.Runs));
        var plan = Planner.Plan(new[] { gpu, cpu }, 100, PlanAlgorithm.Optimal, calibration);
        Assert.Equal("gpu0", Assert.Single(plan.Shards).UnitId);
        Assert.True(plan.FellBackToSingle);
        Assert.Contains("runs of gpu0+cpu took x1.500 their predicted time (3 runs)", plan.Note);
        // runs of another set (the GPU beside a second GPU) do not judge this one
        Assert.Equal(0, Execution.RunObservations.Calibration(store, new[] { gpu }).Set.Runs);
    }

    [Fact]
    public void OnlyTheLastFewRunsCountSoOldOnesAgeOut()
    {
        var p = TestModels.FakeProfile("cpu0", "m", (1, 1.0));
        var old = Enumerable.Range(0, 10).Select(i => Seen(p, 300, 100, 100 + i));
        var recent = Enumerable.Range(0, Calibration.Window).Select(i => Seen(p, 110, 100, i));
        Assert.Equal(1.1, Calibration.Factor(old.Concat(recent).ToList()).Factor, 3);
    }

    [Fact]
    public void ConcurrentWritersKeepEveryObservationAndATornLineIsSkipped()
    {
        var p = TestModels.FakeProfile("cpu0", "m", (1, 1.0));
        var store = new ProfileStore(_dir);
        Parallel.For(0, 8, w =>
        {
            var mine = new ProfileStore(_dir); // as separate commands would
            for (int i = 0; i < 10; i++) mine.Record(new[] { Seen(p, 10 + w, 10) });
        });
        Assert.Equal(80, store.Observations(p.Model, p.ModelSha256, p.Unit.Id, p.Unit.Fingerprint).Count);
        // a crash mid-append leaves half a line
        File.AppendAllText(store.ObservationPath(p.Model, p.ModelSha256, p.Unit.Id, p.Unit.Fingerprint), "{\"Model\": \"m\", \"Ms\": 1");
        Assert.Equal(80, store.Observations(p.Model, p.ModelSha256, p.Unit.Id, p.Unit.Fingerprint).Count);
        store.Record(new[] { Seen(p, 10, 10) }); // starts on a line of its own
        Assert.Equal(81, store.Observations(p.Model, p.ModelSha256, p.Unit.Id, p.Unit.Fingerprint).Count);
    }
}
