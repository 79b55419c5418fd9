using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Profiling;
using HeteroBatch.Engine.Units;

namespace HeteroBatch.Engine.Tests;

public sealed class PartitionedRunnerTests : IDisposable
{
    private readonly EngineContext _context = new();
    public void Dispose() => _context.Dispose();

    private static BatchPlan ManualPlan(int batch, params (ComputeUnit Unit, int Count, int Sub)[] shares)
    {
        var plan = PlanLayout.Manual("tinynet", TestModels.Tiny.Sha256, shares.Select(s => new ShareSpec(s.Unit, s.Count, s.Sub, 1)).ToList());
        Assert.Equal(batch, plan.BatchSize);
        return plan;
    }

    [Theory]
    [InlineData(BalanceMode.Static)]
    [InlineData(BalanceMode.Dynamic)]
    public void PartitionedOutputsEqualOneUnitsOutputsSampleBySample(BalanceMode balance)
    {
        var units = TestModels.TwoCpuUnits();
        var model = TestModels.Tiny;
        var single = PartitionedRunner.Run(_context, ManualPlan(37, (units[0], 37, 37)), model, null, new RunSettings { Seed = 7 });
        var split = PartitionedRunner.Run(_context, ManualPlan(37, (units[0], 20, 8), (units[^1], 17, 5)), model, null, new RunSettings { Seed = 7, Balance = balance });
        Assert.True(split.Complete);
        Assert.Equal(37, split.Units.Sum(u => u.Count));
        for (int i = 0; i < 37; i++)
        {
            var a = single.OutputOf(i);
            var b = split.OutputOf(i);
            for (int j = 0; j < a.Length; j++) Assert.Equal(a[j], b[j], 4);
        }
        Assert.Equal(single.Top1, split.Top1);
    }

    [Theory]
    [InlineData(BalanceMode.Static)]
    [InlineData(BalanceMode.Dynamic)]
    public void MoreInputsThanThePlansBatchRunAsSuccessiveBatchesOnOneBoard(BalanceMode balance)
    {
        var units = TestModels.TwoCpuUnits();
        var model = TestModels.Tiny;
        var inputs = Data.InputSet.Of(Data.SyntheticInput.Create(Models.ModelZoo.InputName, new long[] { 3, 32, 32 }, 25, 9));
        var single = PartitionedRunner.Run(_context, ManualPlan(25, (units[0], 25, 25)), model, inputs, new RunSettings());
        // a plan for 10: chunks of 10, 10 and 5 (the last one scaled down)
        var split = PartitionedRunner.Run(_context, ManualPlan(10, (units[0], 6, 3), (units[^1], 4, 2)), model, inputs, new RunSettings { Balance = balance });
        Assert.Equal(25, split.Units.Sum(u => u.Count));
        Assert.Equal(25, split.Units.Sum(u => u.PlannedCount));
        Assert.True(split.PredictedMs > 0);
        for (int i = 0; i < 25; i++)
        {
            var a = single.OutputOf(i);
            var b = split.OutputOf(i);
            for (int j = 0; j < a.Length; j++) Assert.Equal(a[j], b[j], 4);
        }
    }

    [Fact]
    public void AUnitFailingMidRunHandsItsSamplesToTheOthers()
    {
        var units = TestModels.TwoCpuUnits();
        var model = TestModels.Tiny;
        var reference = PartitionedRunner.Run(_context, ManualPlan(40, (units[0], 40, 40)), model, null, new RunSettings { Seed = 3 });
        var plan = ManualPlan(40, (units[0], 16, 4), (units[^1], 24, 4));
        var result = PartitionedRunner.Run(_context, plan, model, null, new RunSettings { Seed = 3, InjectFailure = (units[^1].Id, 2) });
        var failed = result.Units.Single(u => u.Failed);
        Assert.Equal(8, failed.Count);
        Assert.Equal(40, result.Units.Sum(u => u.Count));
        Assert.Equal(16, result.Units.Single(u => !u.Failed).TookOver);
        Assert.Equal(reference.Top1, result.Top1);
        for (int i = 0; i < 40; i++) Assert.Equal(reference.OutputOf(i), result.OutputOf(i));
    }

    [Fact]
    public void AllUnitsFailingIsAnError()
    {
        var units = TestModels.TwoCpuUnits();
        var plan = ManualPlan(8, (units[0], 8, 4));
        var e = Assert.Throws<HeteroBatchException>(() =>
            PartitionedRunner.Run(_context, plan, TestModels.Tiny, null, new RunSettings { InjectFailure = (units[0].Id, 0) }));
        Assert.Equal("AllUnitsFailed", e.ErrorId);
    }

    [Fact]
    public void WorkersArePinnedToTheirUnitsProcessors()
    {
        foreach (var unit in TestModels.TwoCpuUnits())
        {
            var worker = _context.Workers.For(unit);
            Assert.True(worker.Pinned);
            Assert.Equal(new[] { unit.Processors[0] }, worker.Affinity);
        }
    }

    [Fact]
    public async Task ProfilingMeasuresEveryScheduledSize()
    {
        var unit = TestModels.TwoCpuUnits()[0];
        var profile = await Profiler.RunAsync(_context, unit, TestModels.Tiny, new ProfileSettings { BatchSizes = new[] { 1, 4, 9 }, PointBudget = TimeSpan.FromMilliseconds(100) });
        Assert.Equal(new[] { 1, 4, 9 }, profile.Table.Select(e => e.BatchSize));
        Assert.All(profile.Table, e => Assert.True(e.MedianMs > 0 && e.Samples >= 3 && e.P10Ms <= e.MedianMs && e.MedianMs <= e.P90Ms));
        Assert.Equal(9, profile.MaxBatchSize);
    }
}

public sealed class DynamicBalanceTests : IDisposable
{
    private readonly EngineContext _context = new();
    public void Dispose() => _context.Dispose();

    [Fact]
    public void AUnitTakesNoWorkItWouldFinishLaterThanItsOwner()
    {
        var units = TestModels.TwoCpuUnits();
        var model = TestModels.Tiny;
        // the second unit is predicted a million times slower per sample: stealing any of the first unit's work would only delay it
        var plan = PlanLayout.Manual("tinynet", model.Sha256, new[] { new ShareSpec(units[0], 200, 200, 10), new ShareSpec(units[^1], 2, 2, 50_000) });
        var r = PartitionedRunner.Run(_context, plan, model, null, new RunSettings { Balance = BalanceMode.Dynamic });
        Assert.Equal(0, r.Units[1].TookOver);                      // the slow unit never took the fast one's work
        Assert.Equal(200 + r.Units[0].TookOver, r.Units[0].Count);  // (the fast one may take the slow one's)
        Assert.Equal(202, r.Units.Sum(u => u.Count));
    }
}

public sealed class CancellationRaceTests
{
    [Fact]
    public void ACancelThatLandsAsARunEndsNeverStopsTheNextRun()
    {
        // a Ctrl+C that arrives just as a run finishes must not leave the session's terminate flag
        // set for the next run (which would then fail at once)
        using var context = new EngineContext();
        var unit = TestModels.TwoCpuUnits()[0];
        var worker = context.Workers.For(unit);
        worker.Invoke(() =>
        {
            var session = worker.Load(TestModels.Tiny);
            var inputs = session.SyntheticInputs(2, 1);
            var outputs = session.AllocateOutputs(2);
            session.Run(inputs, outputs, 0, 2);
            var rng = new Random(3);
            for (int i = 0; i < 400; i++)
            {
                using var cts = new CancellationTokenSource();
                var canceller = Task.Run(() => { Thread.SpinWait(rng.Next(0, 20000)); cts.Cancel(); });
                try { session.Run(inputs, outputs, 0, 2, cancel: cts.Token); }
                catch (OperationCanceledException) { }
                canceller.Wait();
                session.Run(inputs, outputs, 0, 2); // must run
            }
            return true;
        }).GetAwaiter().GetResult();
    }
}
