using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Units;

namespace HeteroBatch.Engine.Tests;

/// <summary>A plan scaled to fewer samples, or without some units, says everything the plan said.</summary>
public sealed class PlanCopyTests
{
    // what scaling is for: these follow the new batch
    private static readonly HashSet<string> Rescaled = new()
    {
        nameof(BatchPlan.BatchSize), nameof(BatchPlan.Shards), nameof(BatchPlan.PredictedMs), nameof(BatchPlan.BestSingleMs), nameof(BatchPlan.PredictedSpeedup),
    };

    private static IEnumerable<System.Reflection.PropertyInfo> Kept() =>
        typeof(BatchPlan).GetProperties().Where(p => p.CanWrite && p.GetSetMethod() != null && !Rescaled.Contains(p.Name));

    /// <summary>A value no new plan has; a property of a type not listed here fails the test until it is.</summary>
    private static object Sample(Type type, string name) =>
        type == typeof(string) ? $"{name} as set" : type == typeof(string[]) ? new[] { name, "x" } : type == typeof(bool) ? true
        : type == typeof(double) ? 12.5 : type == typeof(int) ? 7 : type.IsEnum ? Enum.GetValues(type).GetValue(Enum.GetValues(type).Length - 1)!
        : throw new NotSupportedException($"BatchPlan.{name} is a {type}: give it a sample value here");

    private static BatchPlan PlanWithEveryPropertySet()
    {
        var (a, b) = (new ComputeUnit { Id = "a", Name = "a" }, new ComputeUnit { Id = "b", Name = "b" });
        var plan = PlanLayout.Manual("m", "sha", new[] { new ShareSpec(a, 30, 10, 30), new ShareSpec(b, 10, 5, 20, InFlight: 2) });
        foreach (var p in Kept()) p.SetValue(plan, Sample(p.PropertyType, p.Name));
        plan.BestSingleMs = 80;
        plan.Shards[1].CostFactor = 1.5;
        return plan;
    }

    [Fact]
    public void AScaledPlanKeepsEveryPropertyButThoseOfItsSize()
    {
        var plan = PlanWithEveryPropertySet();
        Assert.Contains(nameof(BatchPlan.Note), Kept().Select(p => p.Name));
        Assert.Contains(nameof(BatchPlan.FellBackToSingle), Kept().Select(p => p.Name));
        var scaled = PlanScaling.Scale(plan, 20);
        foreach (var p in Kept()) Assert.True(Equals(p.GetValue(plan), p.GetValue(scaled)) || p.GetValue(plan) is string[] s && s.SequenceEqual((string[])p.GetValue(scaled)!), $"{p.Name} was not kept");
        Assert.Equal((20, 40.0), (scaled.BatchSize, scaled.BestSingleMs));
        Assert.Equal(new[] { 15, 5 }, scaled.Shards.Select(s => s.Count));
        Assert.Equal((2, 1.5), (scaled.Shards[1].InFlight, scaled.Shards[1].CostFactor));
        Assert.Equal(new[] { 30, 10 }, plan.Shards.Select(s => s.Count)); // the plan itself is as it was
    }

    [Fact]
    public void APlanWithoutAUnitKeepsEveryPropertyButThoseOfItsSize()
    {
        var plan = PlanWithEveryPropertySet();
        var without = PlanScaling.Without(plan, new[] { "a" })!;
        foreach (var p in Kept()) Assert.True(Equals(p.GetValue(plan), p.GetValue(without)) || p.GetValue(plan) is string[] s && s.SequenceEqual((string[])p.GetValue(without)!), $"{p.Name} was not kept");
        Assert.Equal((40, "b:40"), (without.BatchSize, without.Split));
        Assert.Equal(1.5, without.Shards.Single().CostFactor);
    }
}
