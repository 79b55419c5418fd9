using HeteroBatch.Engine.Planning;

namespace HeteroBatch.Engine.Tests;

/// <summary>The shapes a file job's pipeline takes: who infers, how many threads decode, and what limits it, from rates the test sets.</summary>
public sealed class PipelinePlannerTests
{
    private static PipelineUnit Gpu(string id, double rate, bool decodes) => new(id, rate, decodes, 0, NeedsHostThread: decodes);
    private static PipelineUnit Cpu(string id, double rate, int processors) => new(id, rate, false, processors);

    [Fact]
    public void GpusThatDecodeTheirOwnShareAreLimitedByInferenceAndTheCpuUnitStays()
    {
        // two GPUs decode their own images; 2 free processors read files; a 16-processor CPU unit infers 300/s
        var plan = PipelinePlanner.Plan(new[] { Gpu("gpu0", 8000, true), Gpu("gpu1", 8000, true), Cpu("cpu", 300, 16) }, decodeMsPerSample: 2, freeProcessors: 4);
        Assert.Equal(new[] { "gpu0", "gpu1", "cpu" }, plan.Inferring);
        Assert.Empty(plan.Dropped);
        // two free processors for the GPUs' decoding threads, two decode for the CPU unit: 1,000/s, more than its 300/s
        Assert.Equal(2, plan.DecodeThreads);
        Assert.Equal(16300, plan.SamplesPerSecond, 6);
        Assert.Equal("inference", plan.Limit);
    }

    [Fact]
    public void ACpuUnitOnEveryProcessorIsLeftOutWhereTheDecodingGpusNeedProcessorsOfTheirOwn()
    {
        // as on 2×H200 with the CPU as one unit on all but the GPUs' feeders: one processor left for two GPUs'
        // decoding threads; the CPU unit's 109/s costs the GPUs half their rate (measured: 9,631.5 against
        // 14,484.2 images/s without it)
        var plan = PipelinePlanner.Plan(new[] { Cpu("cpu", 109, 29), Gpu("gpu0", 11300, true), Gpu("gpu1", 11300, true) }, decodeMsPerSample: 5, freeProcessors: 1);
        Assert.Equal(new[] { "cpu" }, plan.Dropped);
        Assert.Equal(new[] { "gpu0", "gpu1" }, plan.Inferring);
        Assert.Equal(22600, plan.SamplesPerSecond, 6);
        Assert.Equal(28, plan.DecodeThreads);
    }

    [Fact]
    public void GpusFedByCpuDecodingTakeTheCpuUnitsProcessorsForDecoding()
    {
        // GPUs without nvJPEG: every image decoded on the CPU at 6 ms; the CPU unit's 16 processors feed them more than it infers
        var plan = PipelinePlanner.Plan(new[] { Gpu("gpu0", 8000, false), Gpu("gpu1", 8000, false), Cpu("cpu", 300, 16) }, decodeMsPerSample: 6, freeProcessors: 14);
        Assert.Equal(new[] { "gpu0", "gpu1" }, plan.Inferring);
        Assert.Equal(new[] { "cpu" }, plan.Dropped);
        Assert.Equal(30, plan.DecodeThreads);
        Assert.Equal(5000, plan.SamplesPerSecond, 6); // 30 threads × 1000 / 6 ms
        Assert.Equal("decoding", plan.Limit);
        Assert.Contains("cpu left out", plan.ToString());
    }

    [Fact]
    public void ACpuUnitStaysWhereDecodingIsCheapEnough()
    {
        // .npy inputs cost little to read: 0.05 ms a sample; 2 threads feed 40,000/s
        var plan = PipelinePlanner.Plan(new[] { Gpu("gpu0", 8000, false), Cpu("cpu", 300, 16) }, decodeMsPerSample: 0.05, freeProcessors: 2);
        Assert.Equal(new[] { "gpu0", "cpu" }, plan.Inferring);
        Assert.Equal(8300, plan.SamplesPerSecond, 6);
    }

    [Fact]
    public void OnlyAsManyCpuUnitsAreLeftOutAsPays()
    {
        // four CPU units of 4 processors; GPU fed at 4 ms a sample: leaving out the slowest two feeds the GPU
        // 2+8 threads = 2,500/s, and the fastest two still infer; leaving out a third would feed more than the GPU takes
        var units = new[] { Gpu("gpu0", 2000, false), Cpu("c1", 50, 4), Cpu("c2", 60, 4), Cpu("c3", 70, 4), Cpu("c4", 80, 4) };
        var plan = PipelinePlanner.Plan(units, decodeMsPerSample: 4, freeProcessors: 2);
        Assert.Equal(new[] { "c1", "c2" }, plan.Dropped);
        Assert.Equal(new[] { "gpu0", "c3", "c4" }, plan.Inferring);
        Assert.Equal(10, plan.DecodeThreads);
        Assert.Equal(2150, plan.SamplesPerSecond, 6); // min(2000 + 70 + 80, 2500)
        Assert.Equal("inference", plan.Limit);
    }

    [Fact]
    public void ACpuOnlyJobKeepsItsUnitsAndDecodesOnOneThreadBesideThem()
    {
        // every processor is a unit: leaving one out to decode would lose its inference for nothing it feeds faster
        var plan = PipelinePlanner.Plan(new[] { Cpu("cpu0", 40, 1), Cpu("cpu1", 40, 1) }, decodeMsPerSample: 2.5, freeProcessors: 0);
        Assert.Equal(new[] { "cpu0", "cpu1" }, plan.Inferring);
        Assert.Equal(1, plan.DecodeThreads);
        Assert.Equal(80, plan.SamplesPerSecond, 6);
    }

    [Fact]
    public void ARemoteUnitThatDecodesOnItsServerNeedsNoProcessorHere()
    {
        // a server decodes its share: the CPU unit beside it keeps its processors and infers
        var plan = PipelinePlanner.Plan(new[] { new PipelineUnit("remote0", 2000, true, 0), Cpu("cpu", 300, 2) }, decodeMsPerSample: 5, freeProcessors: 0);
        Assert.Equal(new[] { "remote0", "cpu" }, plan.Inferring);
        Assert.Equal(2200, plan.SamplesPerSecond, 6); // 2,000 + the CPU unit fed by one thread at 200/s
    }

    [Fact]
    public void NoUnitIsLeftOutWithoutEvidenceOrWhenTheUserChoseTheThreads()
    {
        var fed = new[] { Gpu("gpu0", 8000, false), Gpu("gpu1", 8000, false), Cpu("cpu", 300, 16) };
        Assert.Equal(new[] { "cpu" }, PipelinePlanner.Plan(fed, decodeMsPerSample: 6, freeProcessors: 14).Dropped);
        // the user gave -DecodeThreads: predicted only
        Assert.Empty(PipelinePlanner.Plan(fed, decodeMsPerSample: 6, freeProcessors: 14, mayLeaveOut: false).Dropped);
        // a unit's rate unknown (a plan without predictions): nothing is left out on a guess
        var unknown = new[] { Gpu("gpu0", 0, false), Cpu("cpu", 300, 16) };
        Assert.Empty(PipelinePlanner.Plan(unknown, decodeMsPerSample: 6, freeProcessors: 14).Dropped);
        // no gain, nobody left out: 8 threads at 10 ms feed 800/s; leaving out the 40/s unit feeds 1,200/s, but the GPU takes only 800
        var close = new[] { Gpu("gpu0", 800, false), Cpu("cpu", 40, 4) };
        Assert.Empty(PipelinePlanner.Plan(close, decodeMsPerSample: 10, freeProcessors: 8).Dropped);
    }
}
