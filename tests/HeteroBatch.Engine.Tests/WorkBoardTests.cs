using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Units;

namespace HeteroBatch.Engine.Tests;

/// <summary>The work board on its own: which ranges each unit gets, with no model and no runtime behind it.</summary>
public class WorkBoardTests
{
    private static ComputeUnit Cpu(int i) => new() { Id = $"cpu{i}", Kind = UnitKind.Cpu, Provider = ExecutionProvider.CPU, Processors = new[] { i } };
    private static ComputeUnit Gpu(int i) => new() { Id = $"gpu{i}", Kind = UnitKind.Gpu, Provider = ExecutionProvider.CUDA, DeviceId = i };

    private static BatchPlan Plan(params ShareSpec[] shares) => PlanLayout.Manual("m", "sha", shares);

    private static List<WorkRange> Drain(WorkBoard board, int me)
    {
        var taken = new List<WorkRange>();
        while (board.Take(me) is { } r) { taken.Add(r); board.Done(me, r); }
        return taken;
    }

    /// <summary>Every unit drains the board on its own thread, as workers do; returns what each took.</summary>
    private static List<WorkRange>[] RunUnits(WorkBoard board, int units)
    {
        var taken = Enumerable.Range(0, units).Select(_ => new List<WorkRange>()).ToArray();
        var threads = Enumerable.Range(0, units).Select(me => new Thread(() =>
        {
            while (board.Take(me) is { } r) { taken[me].Add(r); Thread.Sleep(1); board.Done(me, r); }
        })).ToList();
        threads.ForEach(t => t.Start());
        Assert.All(threads, t => Assert.True(t.Join(TimeSpan.FromSeconds(20)), "a unit never got an answer from the board"));
        return taken;
    }

    [Fact]
    public void StaticUnitsTakeTheirOwnShareInSubBatchesInOrder()
    {
        var board = new WorkBoard(Plan(new ShareSpec(Cpu(0), 10, 4, 1), new ShareSpec(Cpu(1), 5, 5, 1)), BalanceMode.Static, baseOffset: 100);
        var took = RunUnits(board, 2);
        Assert.Equal(new[] { (100, 4), (104, 4), (108, 2) }, took[0].Select(r => (r.Offset, r.Count)));
        Assert.Equal(new[] { (110, 5) }, took[1].Select(r => (r.Offset, r.Count)));
        Assert.True(board.AllDone);
    }

    [Fact]
    public void AFailedUnitsRangeAndQueueGoToTheOthers()
    {
        var board = new WorkBoard(Plan(new ShareSpec(Cpu(0), 6, 2, 1), new ShareSpec(Cpu(1), 6, 2, 1)), BalanceMode.Static);
        var first = board.Take(1)!.Value;
        board.Fail(1, first);
        Assert.Null(board.Take(1));
        var taken = Drain(board, 0);
        Assert.Equal(12, taken.Sum(r => r.Count));
        Assert.Equal(6, taken.Where(r => r.Owner == 1).Sum(r => r.Count));
        Assert.True(board.AllDone);
    }

    [Fact]
    public void OrphansAreCutToWhatTheTakerRunsAtOnce()
    {
        var board = new WorkBoard(Plan(new ShareSpec(Cpu(0), 2, 1, 1), new ShareSpec(Cpu(1), 8, 8, 1)), BalanceMode.Static);
        board.Fail(1, board.Take(1)!.Value);
        var taken = Drain(board, 0);
        Assert.All(taken, r => Assert.Equal(1, r.Count));
        Assert.Equal(10, taken.Count);
    }

    [Fact]
    public void DynamicBalanceStealsOnlyWhereTheThiefFinishesSooner()
    {
        // cpu0 is fast (1 ms a sample); cpu1 is slow (100 ms a sample) and has work queued
        var fast = new WorkBoard(Plan(new ShareSpec(Cpu(0), 4, 4, 4), new ShareSpec(Cpu(1), 8, 2, 800)), BalanceMode.Dynamic);
        Drain(fast, 0);
        Assert.True(fast.AllDone); // the fast unit took all of the slow one's queue
        // reversed: the slow unit never takes the fast one's work
        var slow = new WorkBoard(Plan(new ShareSpec(Cpu(0), 8, 2, 8), new ShareSpec(Cpu(1), 2, 2, 200)), BalanceMode.Dynamic);
        var took = RunUnits(slow, 2);
        Assert.All(took[1], r => Assert.Equal(1, r.Owner));
        Assert.Equal(10, took.Sum(t => t.Sum(r => r.Count)));
        Assert.True(slow.AllDone);
    }

    [Fact]
    public void AGpuThiefPaysAWholePaddedRun()
    {
        // gpu0 runs 64 at once in 10 ms, so even 1 sample costs it 10 ms; cpu0 has 2 samples left at 1 ms each: no steal
        var board = new WorkBoard(Plan(new ShareSpec(Gpu(0), 64, 64, 10), new ShareSpec(Cpu(0), 4, 1, 4)), BalanceMode.Dynamic);
        var took = RunUnits(board, 2);
        Assert.Equal(new[] { 64 }, took[0].Select(r => r.Count));
        Assert.Equal(4, took[1].Sum(r => r.Count));
        // with a tail worth stealing (a slow CPU), the GPU takes it, as one padded run; the turns are taken in an
        // order the test sets (on threads, the CPU could take its whole share before the GPU is back, on a busy machine)
        var slowCpu = new WorkBoard(Plan(new ShareSpec(Gpu(0), 64, 64, 10), new ShareSpec(Cpu(0), 40, 40, 4000)), BalanceMode.Dynamic);
        var own = slowCpu.Take(0)!.Value;
        Assert.Equal((0, 64), (own.Owner, own.Count));
        var first = slowCpu.Take(1)!.Value; // the CPU starts its share: a quarter of it (dynamic mode leaves a tail)
        Assert.Equal((1, 10), (first.Owner, first.Count));
        slowCpu.Done(0, own);
        var stolen = slowCpu.Take(0)!.Value;
        Assert.Equal(1, stolen.Owner);
        Assert.InRange(stolen.Count, 1, 64);
        slowCpu.Done(0, stolen);
        slowCpu.Done(1, first);
        var rest = RunUnits(slowCpu, 2);
        Assert.Equal(40, first.Count + stolen.Count + rest.Sum(t => t.Sum(r => r.Count)));
        Assert.True(slowCpu.AllDone);
    }

    [Fact]
    public void CancelWakesEveryone()
    {
        var board = new WorkBoard(Plan(new ShareSpec(Cpu(0), 2, 2, 1), new ShareSpec(Cpu(1), 2, 2, 1)), BalanceMode.Static);
        var r = board.Take(0)!.Value;
        board.Cancel();
        Assert.Null(board.Take(1));
        Assert.Null(board.Take(0));
        Assert.False(board.AllDone);
        Assert.Equal(4, board.Unfinished);
        _ = r;
    }
}
