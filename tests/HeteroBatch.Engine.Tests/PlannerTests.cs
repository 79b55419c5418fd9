using HeteroBatch.Engine.Units;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Profiling;
using Xunit.Abstractions;

namespace HeteroBatch.Engine.Tests;

public class PlannerTests(ITestOutputHelper output)
{
    /// <summary>A random but plausible table: fixed overhead plus per-sample time, noise, efficiency bumps at some sizes.</summary>
    private static UnitProfile RandomProfile(Random rng, string id, int maxBatch)
    {
        double overhead = rng.NextDouble() * 5, perSample = 0.2 + rng.NextDouble() * 3;
        var sizes = ProfileSchedule.Default(maxBatch);
        var points = sizes.Select(b => (b, overhead + perSample * b * (0.7 + 0.6 * rng.NextDouble()))).ToArray();
        return TestModels.FakeProfile(id, "m", points);
    }

    private static IEnumerable<int[]> Compositions(int total, int parts)
    {
        if (parts == 1) { yield return new[] { total }; yield break; }
        for (int first = 0; first <= total; first++)
            foreach (var rest in Compositions(total - first, parts - 1))
                yield return new[] { first }.Concat(rest).ToArray();
    }

    [Fact]
    public void AGpuSplitsAShareAboveItsLargestBatchIntoEqualRunsNotAPaddedTail()
    {
        var gpu = TestModels.FakeProfile("gpu0", "m", (1, 1.0), (256, 30.0), (512, 53.6));
        gpu.Unit.Kind = UnitKind.Gpu;
        gpu.Unit.Provider = ExecutionProvider.CUDA;
        var table = new UnitCostModel(gpu).Table(1000);
        // two runs of 500 (interpolated: 30 + 23.6 × 244/256 = 52.49 ms each), not 512 and 488 padded to 512 (2 × 53.6)
        Assert.Equal(500, table.SubBatch[1000]);
        Assert.Equal(2 * (30 + 23.6 * 244 / 256), table.Cost[1000], 6);
        // 1100: three runs of 367 (the last padded by one sample)
        Assert.Equal(367, new UnitCostModel(gpu).Table(1100).SubBatch[1100]);
        var plan = Planner.Plan(new[] { gpu }, 1000);
        Assert.Equal(500, plan.Shards.Single().SubBatchSize);
    }

    [Fact]
    public void OptimalEqualsBruteForceOnSmallCases()
    {
        var rng = new Random(12345);
        for (int trial = 0; trial < 300; trial++)
        {
            int k = rng.Next(1, 5), batch = rng.Next(1, 14);
            var profiles = Enumerable.Range(0, k).Select(i => RandomProfile(rng, $"u{i}", rng.Next(1, 10))).ToList();
            var costs = profiles.Select(p => new UnitCostModel(p).Table(batch).Cost).ToList();
            double brute = Compositions(batch, k).Min(c => Planner.Makespan(costs, c));
            var plan = Planner.Plan(profiles, batch, PlanAlgorithm.Optimal);
            Assert.Equal(brute, plan.PredictedMs, 9);
            Assert.Equal(batch, plan.Shards.Sum(s => s.Count));
        }
    }

    [Theory]
    [InlineData(PlanAlgorithm.Optimal)]
    [InlineData(PlanAlgorithm.Greedy)]
    [InlineData(PlanAlgorithm.Proportional)]
    [InlineData(PlanAlgorithm.Even)]
    [InlineData(PlanAlgorithm.Single)]
    public void EveryPlanCoversTheBatchExactlyOnce(PlanAlgorithm algorithm)
    {
        var rng = new Random(7);
        for (int trial = 0; trial < 200; trial++)
        {
            int k = rng.Next(1, 9), batch = rng.Next(1, 3000);
            var profiles = Enumerable.Range(0, k).Select(i => RandomProfile(rng, $"u{i}", 1 << rng.Next(0, 10))).ToList();
            var plan = Planner.Plan(profiles, batch, algorithm);
            Assert.Equal(batch, plan.Shards.Sum(s => s.Count));
            int expected = 0;
            foreach (var s in plan.Shards)
            {
                Assert.Equal(expected, s.Offset);
                Assert.True(s.Count > 0);
                Assert.InRange(s.SubBatchSize, 1, s.Count);
                expected += s.Count;
            }
            Assert.Equal(k, plan.Shards.Count + plan.UnusedUnits.Length);
            if (algorithm != PlanAlgorithm.Even)
                Assert.True(plan.PredictedMs <= plan.BestSingleMs + 1e-9, $"{algorithm} predicted {plan.PredictedMs} > single {plan.BestSingleMs}");
        }
    }

    [Fact]
    // On a non-decreasing cost model the seed's greedy (each next sample to the unit that would
    // finish it soonest) is optimal: it never picks a cost above T* while a unit below T* remains.
    public void GreedyMatchesOptimalOnTheMonotoneCostModel()
    {
        var rng = new Random(99);
        var ratios = new List<double>();
        for (int trial = 0; trial < 500; trial++)
        {
            int k = rng.Next(2, 9), batch = rng.Next(1, 1100);
            var profiles = Enumerable.Range(0, k).Select(i => RandomProfile(rng, $"u{i}", 1 << rng.Next(0, 10))).ToList();
            var optimal = Planner.Plan(profiles, batch, PlanAlgorithm.Optimal).PredictedMs;
            var greedy = Planner.Plan(profiles, batch, PlanAlgorithm.Greedy).PredictedMs;
            Assert.Equal(optimal, greedy, 9);
            ratios.Add(greedy / optimal);
        }
        ratios.Sort();
        output.WriteLine($"Greedy / Optimal predicted makespan over {ratios.Count} random tables: median {ratios[ratios.Count / 2]:F4}, p90 {ratios[(int)(ratios.Count * 0.9)]:F4}, worst {ratios[^1]:F4}");
    }

    [Fact]
    public void SharesAboveTheLargestBatchThatRanAreCutIntoSubBatches()
    {
        var p = TestModels.FakeProfile("gpu0", "m", (1, 2.0), (8, 4.0), (16, 6.0));
        p.FailedBatchSize = 17;
        var plan = Planner.Plan(new[] { p }, 100, PlanAlgorithm.Single);
        var shard = Assert.Single(plan.Shards);
        Assert.Equal(16, shard.SubBatchSize);
        Assert.Equal(7, shard.SubBatches);
        Assert.Equal(6 * 6.0 + (2.0 + 2.0 * 3 / 7), shard.PredictedMs, 9); // six runs of 16, one of 4 (interpolated between 1 and 8)
    }

    [Fact]
    public void AUnitThatWouldSlowTheBatchGetsNothing()
    {
        var fast = TestModels.FakeProfile("fast", "m", (1, 1.0), (2, 1.1), (4, 1.2), (8, 1.4));
        var slow = TestModels.FakeProfile("slow", "m", (1, 50.0), (2, 100.0), (4, 200.0), (8, 400.0));
        var plan = Planner.Plan(new[] { fast, slow }, 8);
        Assert.Equal(new[] { "slow" }, plan.UnusedUnits);
        Assert.Equal(8, Assert.Single(plan.Shards).Count);
    }

    [Fact]
    public void TwoEqualUnitsSplitABatchInHalf()
    {
        var a = TestModels.FakeProfile("a", "m", (1, 1.0), (50, 50.0), (100, 100.0));
        var b = TestModels.FakeProfile("b", "m", (1, 1.0), (50, 50.0), (100, 100.0));
        var plan = Planner.Plan(new[] { a, b }, 100);
        Assert.Equal(new[] { 50, 50 }, plan.Shards.Select(s => s.Count));
        Assert.Equal(2.0, plan.PredictedSpeedup, 6);
    }

    [Fact]
    public void RefusesBadInput()
    {
        var a = TestModels.FakeProfile("a", "m", (1, 1.0));
        Assert.Equal("BatchSizeInvalid", Assert.Throws<HeteroBatchException>(() => Planner.Plan(new[] { a }, 0)).ErrorId);
        Assert.Equal("ProfileNotFound", Assert.Throws<HeteroBatchException>(() => Planner.Plan(Array.Empty<UnitProfile>(), 5)).ErrorId);
        var other = TestModels.FakeProfile("b", "other", (1, 1.0));
        Assert.Equal("ProfileModelMismatch", Assert.Throws<HeteroBatchException>(() => Planner.Plan(new[] { a, other }, 5)).ErrorId);
    }

    [Fact]
    public void EachSubsetGivesOnePlanPerSubset()
    {
        var ps = new[] { "a", "b", "c" }.Select(id => TestModels.FakeProfile(id, "m", (1, 1.0), (8, 5.0))).ToList();
        var plans = Planner.PlanSubsets(ps, 16);
        Assert.Equal(7, plans.Count);
        Assert.Equal(7, plans.Select(p => string.Join(",", p.Units)).Distinct().Count());
    }
}
