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
        // beside the CPU unit gpu0 ran 1.6 times its profile; beside gpu1 alone, 1.05 times (three runs each: one alone would not count)
        store.Record(Enumerable.Range(0, 3).Select(i => Seen(gpu0, 52.5, 50, 9 - i, "gpu1"))
            .Concat(Enumerable.Range(3, 3).Select(i => Seen(gpu0, 80, 50, 9 - i, "cpu")))
            .Concat(Enumerable.Range(6, 3).Select(i => Seen(gpu0, 80, 50, 9 - i, "gpu1", "cpu"))));
        var pair = Execution.RunObservations.Calibration(store, new[] { gpu0, gpu1 }).Together;
        Assert.Equal((1.05, 3), (Math.Round(pair["gpu0"].Factor, 3), pair["gpu0"].Runs));
        var all = Execution.RunObservations.Calibration(store, new[] { gpu0, gpu1, cpu }).Together;
        Assert.Equal((1.6, 3), (Math.Round(all["gpu0"].Factor, 3), all["gpu0"].Runs));
        // no run beside exactly these units: every side-by-side run counts (the latest 8 are weighed; six agree on 1.6)
        var cpu1 = TestModels.FakeProfile("cpu1", "m", (1, 1.0), (100, 100.0));
        cpu1.ModelSha256 = gpu0.ModelSha256;
        var other = Execution.RunObservations.Calibration(store, new[] { gpu0, cpu1 }).Together;
        Assert.Equal((1.6, 6), (Math.Round(other["gpu0"].Factor, 3), other["gpu0"].Runs));
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
        // one of three runs of the split took 1.5 times its prediction: the split holds (the two that agree, 1.0 and
        // 1.0105, move the factor half-way from 1 towards 1.0105)
        store.Record(Run(gpu, cpu, 9.5, 9.5, 5).Concat(Run(gpu, cpu, 14.25, 9.5, 4)).Concat(Run(gpu, cpu, 9.6, 9.5, 3)));
        var calibration = Execution.RunObservations.Calibration(store, new[] { gpu, cpu });
        Assert.Equal((1.005, 2), (Math.Round(calibration.Set.Factor, 3), calibration.Set.Runs));
        var held = Planner.Plan(new[] { gpu, cpu }, 100, PlanAlgorithm.Optimal, calibration);
        Assert.Equal(2, held.Shards.Count);
        Assert.Equal("no", held.Calibrated);
        // the two latest and the earlier slow one agree (x1.5 to x1.55): the batch goes to the GPU alone, and the plan says why
        store.Record(Run(gpu, cpu, 14.7, 9.5, 2).Concat(Run(gpu, cpu, 14.5, 9.5, 1)));
        calibration = Execution.RunObservations.Calibration(store, new[] { gpu, cpu });
        Assert.Equal((1.526, 3), (Math.Round(calibration.Set.Factor, 3), calibration.Set.Runs));
        var plan = Planner.Plan(new[] { gpu, cpu }, 100, PlanAlgorithm.Optimal, calibration);
        Assert.Equal("gpu0", Assert.Single(plan.Shards).UnitId);
        Assert.True(plan.FellBackToSingle);
        Assert.Equal("fell back", plan.Calibrated);
        Assert.Contains("runs of gpu0+cpu took x1.526 their predicted time (3 runs)", plan.Note);
        // runs of another set (the GPU beside a second GPU) do not judge this one
        Assert.Equal(0, Execution.RunObservations.Calibration(store, new[] { gpu }).Set.Runs);
    }

    /// <summary>Two units with the same profile (1 ms a sample), and a fresh store.</summary>
    private (UnitProfile A, UnitProfile B, ProfileStore Store) Pair()
    {
        var a = TestModels.FakeProfile("cpu0", "m", (1, 1.0), (100, 100.0));
        var b = TestModels.FakeProfile("cpu1", "m", (1, 1.0), (100, 100.0));
        b.ModelSha256 = a.ModelSha256;
        return (a, b, new ProfileStore(_dir));
    }

    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>
    /// One plan -> run -> record round: the next plan from the store's runs, then a run of it in which each unit
    /// takes its true cost (its profile's time for its share times the factor the test says it is really
    /// slower by); the run is recorded, marked with the host load given, as the round-th run.
    /// </summary>
    private static (BatchPlan Plan, double MeasuredMs) Round(ProfileStore store, UnitProfile[] profiles, IReadOnlyDictionary<string, double> truth,
        int round, double? otherLoad = null, int batch = 64)
    {
        var plan = Planner.Plan(profiles, batch, PlanAlgorithm.Optimal, Execution.RunObservations.Calibration(store, profiles));
        var units = plan.Shards.Select(s => new Execution.UnitRun
        {
            UnitId = s.UnitId, Count = s.Count, PlannedCount = s.Count, PredictedMs = s.PredictedMs,
            Ms = s.PredictedMs / s.CostFactor * truth[s.UnitId],
        }).ToList();
        var result = new Execution.InferenceResult
        {
            Plan = plan, Model = plan.Model, BatchSize = batch, Units = units, WallMs = units.Max(u => u.Ms), PredictedMs = plan.PredictedMs, OtherLoad = otherLoad,
        };
        var observations = Execution.RunObservations.From(result);
        Assert.All(observations, o => Assert.Equal(otherLoad, o.OtherLoad));
        foreach (var o in observations) o.At = Start.AddMinutes(round);
        store.Record(observations);
        return (plan, result.WallMs);
    }

    private static int Share(BatchPlan plan, string unit) => plan.Shards.SingleOrDefault(s => s.UnitId == unit)?.Count ?? 0;

    [Fact]
    public void OneSlowRunAmongNormalOnesDoesNotChangeTheNextPlansSplit_ThreeConsistentSlowRunsDo()
    {
        var (a, b, store) = Pair();
        var profiles = new[] { a, b };
        var normal = new Dictionary<string, double> { ["cpu0"] = 1, ["cpu1"] = 1 };
        var slow = new Dictionary<string, double> { ["cpu0"] = 1, ["cpu1"] = 2.5 };
        var first = Planner.Plan(profiles, 64);
        int round = 0;
        for (; round < 4; round++) Assert.Equal(first.Split, Round(store, profiles, normal, round).Plan.Split);
        Round(store, profiles, slow, round++);
        var next = Planner.Plan(profiles, 64, PlanAlgorithm.Optimal, Execution.RunObservations.Calibration(store, profiles));
        Assert.Equal(first.Split, next.Split);
        Assert.Equal(first.PredictedMs, next.PredictedMs, 9);
        Assert.Equal("no", next.Calibrated);
        Assert.Equal("profiles", next.CostsFrom);
        // two more: three slow runs agree and outweigh the four older normal ones
        Round(store, profiles, slow, round++);
        Round(store, profiles, slow, round++);
        var calibration = Execution.RunObservations.Calibration(store, profiles);
        Assert.Equal((2.5, 3), (Math.Round(calibration.Together["cpu1"].Factor, 6), calibration.Together["cpu1"].Runs));
        var after = Planner.Plan(profiles, 64, PlanAlgorithm.Optimal, calibration);
        Assert.False(after.FellBackToSingle);
        Assert.Equal(18, Share(after, "cpu1")); // 64 / 3.5 = 18.3
        Assert.Equal(46, Share(after, "cpu0"));
        Assert.Equal("3 runs", after.Calibrated);
        Assert.Contains("cpu1 x2.500 (3 runs)", after.CostsFrom);
    }

    [Fact]
    public void ARunMarkedBusyCountsLess()
    {
        var shares = new List<int>();
        foreach (var load in new double?[] { null, 0.6 })
        {
            var (a, b, store) = Pair();
            var set = new[] { a, b };
            for (int round = 0; round < 4; round++) Round(store, set, new Dictionary<string, double> { ["cpu0"] = 1, ["cpu1"] = 1 }, round);
            // the same three slow runs, on an idle host and on one whose other processes used 60% of its processors
            for (int round = 4; round < 7; round++) Round(store, set, new Dictionary<string, double> { ["cpu0"] = 1, ["cpu1"] = 2.5 }, round, load);
            shares.Add(Share(Planner.Plan(set, 64, PlanAlgorithm.Optimal, Execution.RunObservations.Calibration(store, set)), "cpu1"));
            Directory.Delete(_dir, true);
            Directory.CreateDirectory(_dir);
        }
        Assert.Equal(18, shares[0]);
        Assert.Equal(32, shares[1]); // 0.4 of the weight each: 0.93 against the four normal runs' 1.16
        Assert.Equal(1, Calibration.LoadWeight(null));
        Assert.Equal(0.4, Calibration.LoadWeight(0.6), 9);
        Assert.Equal(0.25, Calibration.LoadWeight(1));
    }

    [Fact]
    public void TheCapNeedsConsistentEvidence()
    {
        Calibration.Evidence Ran(double ratio) => new(ratio, null);
        // one run ten times slower than profiled, fresh or among normal ones: nothing moves
        Assert.Equal((1.0, 1), Calibration.Estimate(new[] { Ran(10) }));
        Assert.Equal(1.0, Calibration.Estimate(new[] { Ran(1), Ran(1), Ran(1), Ran(10) }).Factor, 9);
        // two that agree: half-way (in log scale) to the cap; three: the cap
        Assert.Equal(2.0, Calibration.Estimate(new[] { Ran(10), Ran(12) }).Factor, 9);
        Assert.Equal((4.0, 3), Calibration.Estimate(new[] { Ran(10), Ran(12), Ran(9) }));
        // runs that scatter but agree the unit is slower count as agreeing: the weighted median of 2.2, 3.1, 5 and 2.6
        var scattered = Calibration.Estimate(new[] { Ran(2.2), Ran(3.1), Ran(5), Ran(2.6) });
        Assert.Equal((2.6, 4), (Math.Round(scattered.Factor, 9), scattered.Runs));
        // runs on both sides of the profile do not: one fast and one slow never move it
        Assert.Equal(1.0, Calibration.Estimate(new[] { Ran(1), Ran(1), Ran(0.5), Ran(2) }).Factor, 9);
    }

    [Fact]
    public void AUnitMadeLastinglyTwiceAsSlowLosesShareRunByRunAndIsPredictedWithin15PercentByTheFourthRun()
    {
        var (a, b, store) = Pair();
        var profiles = new[] { a, b };
        var truth = new Dictionary<string, double> { ["cpu0"] = 1, ["cpu1"] = 2 };
        var rounds = Enumerable.Range(0, 4).Select(r => Round(store, profiles, truth, r)).ToList();
        var shares = rounds.Select(r => Share(r.Plan, "cpu1")).ToList();
        Assert.All(rounds, r => Assert.Equal(2, r.Plan.Shards.Count(s => s.Count > 0)));
        Assert.All(rounds, r => Assert.False(r.Plan.FellBackToSingle));
        // one run moves nothing, two move half-way (x1.414: 26 of 64), three all the way (x2: 21 of 64)
        Assert.Equal(new[] { 32, 32, 26, 21 }, shares);
        var last = rounds[^1];
        Assert.True(Math.Abs(last.MeasuredMs - last.Plan.PredictedMs) <= 0.15 * last.MeasuredMs, $"{last.Plan.PredictedMs} predicted, {last.MeasuredMs} measured");
        // the first run took twice its prediction
        Assert.Equal(2.0, rounds[0].MeasuredMs / rounds[0].Plan.PredictedMs, 6);
    }

    [Fact]
    public void UnitsThatRanSlowAreNotCountedAgainstTheSplitASecondTime()
    {
        // cpu1 profiled twice as fast as cpu0; then the host gets busy: cpu0 runs 4 times its profile, cpu1 twice
        var a = TestModels.FakeProfile("cpu0", "m", (1, 1.0), (100, 100.0));
        var b = TestModels.FakeProfile("cpu1", "m", (1, 0.5), (100, 50.0));
        b.ModelSha256 = a.ModelSha256;
        var store = new ProfileStore(_dir);
        var profiles = new[] { a, b };
        var truth = new Dictionary<string, double> { ["cpu0"] = 4, ["cpu1"] = 2 };
        var rounds = Enumerable.Range(0, 2).Select(r => Round(store, profiles, truth, r)).ToList();
        // after two runs the units' factors are half-way (x2, x1.414): the runs' wall time over the plan's prediction
        // (x2) is what they do not explain yet, and judged by it the split would lose to cpu1 alone; over the runs'
        // slowest unit it is x1, and the split holds
        Assert.Equal((1.0, 2), Execution.RunObservations.Calibration(store, profiles).Set);
        rounds.AddRange(Enumerable.Range(2, 2).Select(r => Round(store, profiles, truth, r)));
        Assert.Equal(new[] { 21, 21, 16, 12 }, rounds.Select(r => Share(r.Plan, "cpu0")));
        Assert.All(rounds, r => Assert.False(r.Plan.FellBackToSingle));
        Assert.Equal(rounds[3].MeasuredMs, rounds[3].Plan.PredictedMs, 6);
    }

    [Fact]
    public void AUnitsFirstRunAloneDoesNotTakeItBackToItsProfile()
    {
        var (a, b, store) = Pair();
        var profiles = new[] { a, b };
        store.Record(Enumerable.Range(0, 3).Select(i => Seen(b, 20, 10, 9 - i, "cpu0")).Append(Seen(b, 10, 10, 1)));
        var calibration = Execution.RunObservations.Calibration(store, profiles);
        Assert.Equal((2.0, 3), (Math.Round(calibration.Together["cpu1"].Factor, 9), calibration.Together["cpu1"].Runs));
        Assert.Equal((2.0, 1), (Math.Round(calibration.Alone["cpu1"].Factor, 9), calibration.Alone["cpu1"].Runs));
        // three runs alone as profiled do
        store.Record(new[] { Seen(b, 10, 10, 0), Seen(b, 10, 10, 0) });
        Assert.Equal(1.0, Execution.RunObservations.Calibration(store, profiles).Alone["cpu1"].Factor, 9);
    }

    [Fact]
    public void OldSlowRunsStopCountingAfterEnoughNormalOnes()
    {
        var p = TestModels.FakeProfile("cpu1", "m", (1, 1.0));
        Observation At(double ratio, int minute) { var o = Seen(p, 10 * ratio, 10); o.At = Start.AddMinutes(minute); return o; }
        var history = Enumerable.Range(0, 5).Select(i => At(2, i)).ToList();
        Assert.Equal(2.0, Calibration.Factor(history).Factor, 9);
        // one normal run does not hijack it back
        history.Add(At(1, 5));
        Assert.Equal(2.0, Calibration.Factor(history).Factor, 9);
        // two outweigh the five fading slow ones and move it half-way; three bring it back to the profile
        history.Add(At(1, 6));
        Assert.Equal(Math.Sqrt(2), Calibration.Factor(history).Factor, 9);
        history.Add(At(1, 7));
        Assert.Equal((1.0, 3), Calibration.Factor(history));
        // and slow runs older than the window are not weighed at all
        var old = Enumerable.Range(0, 20).Select(i => At(3, i)).Concat(Enumerable.Range(20, Calibration.Window).Select(i => At(1.1, i))).ToList();
        Assert.Equal((1.1, Calibration.Window), (Math.Round(Calibration.Factor(old).Factor, 9), Calibration.Factor(old).Runs));
    }

    [Fact]
    public void HostLoadIsTheShareOfTheHostsProcessorsOtherProcessesUsed()
    {
        // 2 processors, 1 s at 100 ticks a second: 200 ticks; the host was busy for 150 of them (steal included), this process for 50
        const string self0 = "4242 (dotnet (x) y) S 1 2 3 0 -1 4194304 97 0 0 0 1000 200 0 0 20 0 9 0 40338";
        const string self1 = "4242 (dotnet (x) y) S 1 2 3 0 -1 4194304 97 0 0 0 1040 210 0 0 20 0 9 0 40338";
        var before = Runtime.HostLoad.Parse("cpu  5000 10 1000 9000 100 0 20 30 0 0\ncpu0 1 2 3 4\n", self0);
        var after = Runtime.HostLoad.Parse("cpu  5100 10 1030 9040 110 0 20 50 0 0\ncpu0 1 2 3 4\n", self1);
        Assert.Equal(new Runtime.HostLoad(6060, 15160, 1200), before);
        Assert.Equal(0.5, Runtime.HostLoad.OtherShare(before, after)!.Value, 9);
        // too short to tell, a snapshot missing, text that is not /proc's
        Assert.Null(Runtime.HostLoad.OtherShare(before, before));
        Assert.Null(Runtime.HostLoad.OtherShare(null, after));
        Assert.Null(Runtime.HostLoad.Parse("intr 1 2 3", self0));
        Assert.Null(Runtime.HostLoad.Parse("cpu  5000 10 1000 9000", "4242 dotnet S 1"));
        // an observation written before the load was recorded still loads, with none
        var o = System.Text.Json.JsonSerializer.Deserialize<Observation>("{\"Model\":\"m\",\"Samples\":1,\"Ms\":2,\"PredictedMs\":1}");
        Assert.Null(o!.OtherLoad);
        Assert.Equal((1.0, 1), Calibration.Factor(new[] { o }));
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
