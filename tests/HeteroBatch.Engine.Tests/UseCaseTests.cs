using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Profiling;
using HeteroBatch.Serving;
using HeteroBatch.Engine.Sessions;
using HeteroBatch.Engine.UseCases;

namespace HeteroBatch.Engine.Tests;

/// <summary>The use cases: a plan knows the store its profiles came from, and every way of running it records there.</summary>
public sealed class UseCaseTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hb-usecases-").FullName;
    private readonly EngineContext _context = new(new EngineOptions { ModelCacheFolder = TestModels.Cache });

    public void Dispose()
    {
        _context.Dispose();
        Directory.Delete(_dir, true);
    }

    /// <summary>A store holding profiles of tinynet on this machine's two CPU units.</summary>
    private string StoreWithProfiles(string name)
    {
        var folder = Path.Combine(_dir, name);
        var store = new ProfileStore(folder);
        var tiny = TestModels.Tiny;
        foreach (var unit in TestModels.TwoCpuUnits())
        {
            var p = TestModels.FakeProfile(unit.Id, tiny.Name, (1, 1.0), (2, 2.0), (4, 4.0), (8, 8.0), (16, 16.0));
            p.Unit = unit;
            p.ModelSha256 = tiny.Sha256;
            p.ModelPath = tiny.Path;
            store.Save(p);
        }
        return store.Folder;
    }

    private static int ObservationsIn(string folder) =>
        Directory.Exists(Path.Combine(folder, "observations"))
            ? Directory.EnumerateFiles(Path.Combine(folder, "observations"), "*.jsonl").Sum(f => File.ReadAllLines(f).Count(l => l.Length > 0))
            : 0;

    [Fact]
    public void APlanFromAStoreRecordsItsRunsInThatStoreAndNoOther()
    {
        var x = StoreWithProfiles("x");
        var other = StoreWithProfiles("other");
        var inference = new Inference(_context);
        var plan = inference.PlanFromStore(new PlanRequest { Model = "tinynet", BatchSize = 16, ProfileFolder = x }).Plans[0];
        Assert.Equal(x, plan.ProfileFolder);
        Assert.Equal(2, plan.Shards.Count);

        var result = inference.RunBatch(plan, null, new RunSettings(), RecordPolicy.ToPlansStore);
        Assert.Equal(x, result.RecordedIn);
        Assert.Equal(2, ObservationsIn(x));
        Assert.Equal(0, ObservationsIn(other));

        // profiles read from a store and piped into planning: the plan records in their store too
        var piped = new ProfileStore(other).Load();
        var fromPiped = inference.PlanFromProfiles(piped, new PlanRequest { BatchSize = 16 }).Plans[0];
        Assert.Equal(other, fromPiped.ProfileFolder);
        inference.RunBatch(fromPiped, null, new RunSettings(), RecordPolicy.ToPlansStore);
        Assert.Equal(2, ObservationsIn(other));
        Assert.Equal(2, ObservationsIn(x));

        // the user's explicit store wins; calibration off records nothing
        var chosen = Path.Combine(_dir, "chosen");
        Assert.Equal(chosen, inference.RunBatch(plan, null, new RunSettings(), new RecordPolicy(true, chosen)).RecordedIn);
        var off = inference.RunBatch(plan, null, new RunSettings(), RecordPolicy.Off);
        Assert.Null(off.RecordedIn);
        Assert.NotNull(off.NotRecordedBecause);
        Assert.Equal(2, ObservationsIn(x));
    }

    [Fact]
    public void AServedRequestIsRecordedWhereThePlanCameFrom()
    {
        var x = StoreWithProfiles("served");
        var inference = new Inference(_context);
        var plan = inference.PlanFromStore(new PlanRequest { Model = "tinynet", BatchSize = 8, ProfileFolder = x }).Plans[0];
        using var server = new InferenceServer(_context, plan, inference.ModelFor(plan), new ServerSettings { Port = 1 });
        var input = server.Signature.Inputs[0];
        var batch = new TensorBatch(input.Name, input.SampleShape, 8, null, input.ElementType);
        var tensor = new InferenceProtocol.Tensor(input.Name, new long[] { 8 }.Concat(input.SampleShape).ToArray(),
            InferenceProtocol.DataTypeOf(input.ElementType), batch.Bytes(0, 8).ToArray());
        Assert.Equal(0, ObservationsIn(x));
        var result = server.RunRequest(new[] { tensor });
        Assert.Equal(8, result.Units.Sum(u => u.Count));
        Assert.Equal(x, result.RecordedIn);
        Assert.Equal(plan.Shards.Count, ObservationsIn(x));
    }

    [Fact]
    public void APlanOfAModelWhoseSamplesInteractKeepsThatThroughTheRegistryAndIsRefusedForSplitting()
    {
        var path = Path.Combine(_dir, "centred.onnx");
        File.WriteAllBytes(path, CustomGraphs.CentredOverTheBatch());
        var inference = new Inference(_context);
        var source = inference.Resolve(path);
        Assert.Equal(BatchMode.SamplesInteract, source.BatchMode);
        var p = TestModels.FakeProfile("cpu0", source.Name, (10, 1.0));
        p.ModelSha256 = source.Sha256;
        p.BatchMode = BatchMode.SamplesInteract;
        Assert.Equal(BatchMode.SamplesInteract, Planner.Plan(new[] { p }, 10).BatchMode);

        // a plan that arrives from elsewhere (piped, edited, read back from JSON) split over two units,
        // in a fresh context that never resolved the model: the model found for it keeps the plan's batch mode
        var units = TestModels.TwoCpuUnits();
        var plan = PlanLayout.Manual(source.Name, source.Sha256, new[] { new ShareSpec(units[0], 5, 5, 1), new ShareSpec(units[^1], 5, 5, 1) });
        plan.ModelPath = source.Path;
        plan.BatchMode = BatchMode.SamplesInteract;
        using var fresh = new EngineContext(new EngineOptions { ModelCacheFolder = _dir });
        var found = new Inference(fresh).ModelFor(plan);
        Assert.Equal(BatchMode.SamplesInteract, found.BatchMode);
        var e = Assert.Throws<HeteroBatchException>(() => new Inference(fresh).RunBatch(plan, null, new RunSettings(), RecordPolicy.Off));
        Assert.Equal("SamplesInteract", e.ErrorId);
    }

    [Fact]
    public void AModelIsHashedOnceAndAgainOnlyWhenItsFileChanges()
    {
        var path = Path.Combine(_dir, "tiny.onnx");
        File.Copy(TestModels.Tiny.Path, path);
        var inference = new Inference(_context);
        var first = inference.Resolve(path);
        Assert.Same(first, inference.Resolve(path));
        // a plan for it finds the same resolved model by its hash
        var plan = PlanLayout.Manual(first.Name, first.Sha256, new[] { new ShareSpec(TestModels.TwoCpuUnits()[0], 2, 2, 1) });
        plan.ModelPath = first.Path;
        Assert.Same(first, inference.ModelFor(plan));
        // the file changes: resolved again, with the new content's hash
        File.WriteAllBytes(path, CustomGraphs.CentredOverTheBatch());
        var second = inference.Resolve(path);
        Assert.NotEqual(first.Sha256, second.Sha256);
    }
}
