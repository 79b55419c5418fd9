using System.Diagnostics;
using HeteroBatch.Engine.Profiling;

namespace HeteroBatch.Engine.Planning;

/// <summary>
/// Splits a batch across units so that the last one finishes soonest (min-max over the units'
/// cost models). No plan predicts worse than the best single unit: Optimal cannot, and Greedy
/// and Proportional fall back to it when they would.
/// </summary>
public static class Planner
{
    /// <summary>Plans with what runs taught (see <see cref="PlanCalibration"/>); null: the profiles alone.</summary>
    public static BatchPlan Plan(IReadOnlyList<UnitProfile> profiles, int batchSize, PlanAlgorithm algorithm, PlanCalibration? calibration) =>
        Plan(profiles, batchSize, algorithm, calibration?.Together, calibration?.Alone, calibration?.Set);

    /// <param name="calibration">Per unit id: the factor runs say its profiled times are off by, and from how many runs (see <see cref="Calibration"/>); none: the profiles alone.</param>
    /// <param name="aloneCalibration">Per unit id: the same from runs where the unit ran alone. A unit on its own is judged by these (its profile was measured alone too), so a split that made runs slower than the best unit alone falls back to that unit.</param>
    /// <param name="setCalibration">How the whole runs of exactly these units compared with their plans' predictions: the split is judged against the best unit alone with its prediction scaled by it.</param>
    public static BatchPlan Plan(IReadOnlyList<UnitProfile> profiles, int batchSize, PlanAlgorithm algorithm = PlanAlgorithm.Optimal,
        IReadOnlyDictionary<string, (double Factor, int Runs)>? calibration = null,
        IReadOnlyDictionary<string, (double Factor, int Runs)>? aloneCalibration = null,
        (double Factor, int Runs)? setCalibration = null)
    {
        var clock = Stopwatch.StartNew();
        if (batchSize < 1)
            throw new HeteroBatchException("BatchSizeInvalid", FailureKind.InvalidArgument, $"The batch size must be at least 1 (got {batchSize}).", batchSize);
        if (profiles.Count == 0)
            throw new HeteroBatchException("ProfileNotFound", FailureKind.ObjectNotFound, "No profiles to plan from.");
        CheckOneModel(profiles);
        // one profile per unit: the latest measured
        var units = ProfileSelection.LatestPerUnit(profiles);
        if (units.Count > 1 && algorithm != PlanAlgorithm.Single && units[0].BatchMode == Models.BatchMode.SamplesInteract)
            throw new HeteroBatchException("SamplesInteract", FailureKind.InvalidOperation,
                $"'{units[0].Model}' cannot be split across units: a sample's outputs depend on the other samples of its batch. Plan it for one unit (the Single algorithm, or one unit's profile).", units[0].Model);
        var models = units.Select(p => new UnitCostModel(p, calibration != null && calibration.TryGetValue(p.Unit.Id, out var c) && c.Runs > 0 ? c.Factor : 1)).ToList();
        // shares are planned in steps of one sample up to MaxExactBatch, coarser above it, so that
        // planning memory does not grow with the batch size
        int step = (int)Math.Max(1, ((long)batchSize + MaxExactBatch - 1) / MaxExactBatch);
        int steps = (int)(((long)batchSize + step - 1) / step);
        var tables = models.Select(m => m.Table(batchSize, step)).ToList();
        var costs = tables.Select(t => t.Cost).ToList();

        // each unit alone: its side-by-side factor swapped for its alone one (costs scale with the factor); a unit
        // that never ran alone keeps its side-by-side one, so that a unit runs showed slow (a core another
        // process keeps busy) is not taken for the best unit alone on its profile
        bool HasAloneRuns(int i) => aloneCalibration != null && aloneCalibration.TryGetValue(models[i].Unit.Id, out var a) && a.Runs > 0;
        double AloneFactor(int i) => HasAloneRuns(i) ? aloneCalibration![models[i].Unit.Id].Factor : models[i].Factor;
        var aloneMs = models.Select((m, i) => models.Count == 1 ? costs[i][steps] : costs[i][steps] / m.Factor * AloneFactor(i)).ToList();
        int single = ArgMin(aloneMs);
        int[] shares = algorithm switch
        {
            PlanAlgorithm.Optimal => Optimal(costs, steps),
            PlanAlgorithm.Greedy => Greedy(costs, steps),
            PlanAlgorithm.Proportional => Proportional(models.Select(m => m.BestThroughput).ToList(), steps),
            PlanAlgorithm.Even => Even(models.Count, steps),
            _ => SingleShares(models.Count, single, steps),
        };
        double singleMs = aloneMs[single];
        bool fellBack = false;
        string? note = null;
        double splitMs = Makespan(costs, shares);
        // runs of exactly these units that took longer than planned (a share keeping the run waiting, units slowing each other)
        double setFactor = models.Count > 1 && setCalibration is { Runs: > 0 } sc ? sc.Factor : 1;
        if (algorithm is PlanAlgorithm.Greedy or PlanAlgorithm.Proportional or PlanAlgorithm.Optimal && splitMs * setFactor > singleMs)
        {
            if (setFactor > 1 && splitMs <= singleMs)
                note = $"runs of {string.Join("+", models.Select(m => m.Unit.Id))} took x{setFactor:F3} their predicted time ({setCalibration!.Value.Runs} runs): " +
                       $"the split predicted {splitMs:F1} ms would take {splitMs * setFactor:F1}, {models[single].Unit.Id} alone {singleMs:F1} ms: the batch goes to {models[single].Unit.Id}";
            else if (models.Count > 1 && models.Any(m => m.Factor != 1))
                note = $"split over {string.Join("+", models.Where((m, i) => shares[i] > 0).Select(m => m.Unit.Id))} predicted {splitMs:F1} ms from runs side by side; " +
                       $"{models[single].Unit.Id} alone {singleMs:F1} ms{(HasAloneRuns(single) ? $" from its {aloneCalibration![models[single].Unit.Id].Runs} runs alone" : models[single].Factor != 1 ? " from its runs side by side" : " from its profile")}: the batch goes to {models[single].Unit.Id}";
            shares = SingleShares(models.Count, single, steps);
            fellBack = true;
        }
        var samples = ToSamples(shares, step, batchSize);

        var plan = new BatchPlan
        {
            Model = units[0].Model, ModelSha256 = units[0].ModelSha256, ModelPath = units[0].ModelPath, BatchSize = batchSize, Algorithm = algorithm,
            BestSingleUnit = models[single].Unit.Id, BestSingleMs = singleMs, FellBackToSingle = fellBack,
            BatchMode = units[0].BatchMode,
            // the store the profiles came from, when they all came from one: the plan's runs are recorded there
            ProfileFolder = units.Select(u => u.StoredIn).Distinct().Count() == 1 ? units[0].StoredIn : null,
            Units = models.Select(m => m.Unit.Id).ToArray(),
            CostsFrom = models.Any(m => m.Factor != 1)
                ? "profiles, calibrated by runs: " + string.Join(", ", models.Select(m =>
                    calibration != null && calibration.TryGetValue(m.Unit.Id, out var cc) && cc.Runs > 0 ? $"{m.Unit.Id} x{m.Factor:F3} ({cc.Runs} runs)" : $"{m.Unit.Id} x1 (no runs)"))
                : "profiles",
        };
        PlanLayout.Lay(plan, models.Select((m, i) => new ShareSpec(m.Unit, samples[i], tables[i].SubBatch[shares[i]],
            (fellBack || algorithm == PlanAlgorithm.Single) && i == single ? singleMs : costs[i][shares[i]], m.InFlightAt(tables[i].SubBatch[shares[i]]))).ToList());
        plan.Note = note;
        plan.Calibrated = fellBack && (setFactor != 1 || models.Any(m => m.Factor != 1)) ? "fell back"
            : models.Any(m => m.Factor != 1) ? $"{models.Where(m => m.Factor != 1).Max(m => calibration![m.Unit.Id].Runs)} runs"
            : "no";
        plan.UnusedUnits = models.Where((m, i) => samples[i] == 0).Select(m => m.Unit.Id).ToArray();
        foreach (var shard in plan.Shards)
        {
            int i = models.FindIndex(m => m.Unit.Id == shard.UnitId);
            shard.CostFactor = (fellBack || algorithm == PlanAlgorithm.Single) && i == single && models.Count > 1 ? AloneFactor(i) : models[i].Factor;
        }
        plan.PredictedSpeedup = plan.PredictedMs > 0 ? Math.Round(singleMs / plan.PredictedMs, 4) : 1;
        plan.PlanningMs = clock.Elapsed.TotalMilliseconds;
        return plan;
    }

    /// <summary>Throws ProfileModelMismatch unless every profile is of the same model (by content hash).</summary>
    public static void CheckOneModel(IReadOnlyList<UnitProfile> profiles)
    {
        var distinctModels = profiles.Select(p => p.ModelSha256).Distinct().Count();
        if (distinctModels > 1)
            throw new HeteroBatchException("ProfileModelMismatch", FailureKind.InvalidArgument,
                $"The profiles are of different models ({string.Join(", ", profiles.Select(p => p.Model).Distinct())}); plan one model at a time.");
    }

    /// <summary>Batches up to this size are planned sample by sample; larger ones in equal steps (at most this many).</summary>
    public const int MaxExactBatch = 1 << 16;

    /// <summary>Shares in steps as samples: the last step of the unit with the most is cut so that they sum to the batch.</summary>
    private static int[] ToSamples(int[] shares, int step, int batch)
    {
        var samples = shares.Select(s => (int)Math.Min((long)s * step, batch)).ToArray();
        long excess = samples.Sum(s => (long)s) - batch;
        while (excess > 0)
        {
            int most = ArgMax(samples);
            int cut = (int)Math.Min(excess, samples[most] - 1);
            if (cut <= 0) break;
            samples[most] -= cut;
            excess -= cut;
        }
        return samples;
    }

    private static int ArgMax(int[] values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    /// <summary>One plan per non-empty subset of the units: what each unit adds.</summary>
    public static IReadOnlyList<BatchPlan> PlanSubsets(IReadOnlyList<UnitProfile> profiles, int batchSize, PlanAlgorithm algorithm = PlanAlgorithm.Optimal,
        IReadOnlyDictionary<string, (double Factor, int Runs)>? calibration = null,
        IReadOnlyDictionary<string, (double Factor, int Runs)>? aloneCalibration = null)
    {
        var units = ProfileSelection.LatestPerUnit(profiles);
        if (units.Count > 12)
            throw new HeteroBatchException("TooManyUnits", FailureKind.InvalidArgument, $"{units.Count} units give {(1L << units.Count) - 1} subsets; restrict them with -Unit (at most 12).");
        var plans = new List<BatchPlan>();
        for (int mask = 1; mask < 1 << units.Count; mask++)
            plans.Add(Plan(units.Where((u, i) => (mask & (1 << i)) != 0).ToList(), batchSize, algorithm, calibration, aloneCalibration));
        return plans.OrderBy(p => p.Units.Length).ThenBy(p => p.PredictedMs).ToList();
    }

    public static double Makespan(IReadOnlyList<double[]> costs, int[] shares)
    {
        double m = 0;
        for (int i = 0; i < shares.Length; i++) m = Math.Max(m, costs[i][shares[i]]);
        return m;
    }

    /// <summary>Exact min-max for non-decreasing costs: the least T with Σ cap_i(T) ≥ B, found by bisection and snapped to a real cost value.</summary>
    public static int[] Optimal(IReadOnlyList<double[]> costs, int batch)
    {
        int k = costs.Count;
        double hi = costs.Min(c => c[batch]), lo = 0;
        for (int iter = 0; iter < 200 && hi - lo > hi * 1e-12; iter++)
        {
            double mid = (lo + hi) / 2;
            long total = 0;
            for (int i = 0; i < k; i++) total += Capacity(costs[i], mid);
            if (total >= batch) hi = mid; else lo = mid;
        }
        var shares = new int[k];
        long sum = 0;
        for (int i = 0; i < k; i++) { shares[i] = Capacity(costs[i], hi); sum += shares[i]; }
        // give back the surplus, always from the unit predicted to finish last
        while (sum > batch)
        {
            int worst = -1;
            for (int i = 0; i < k; i++)
                if (shares[i] > 0 && (worst < 0 || costs[i][shares[i]] > costs[worst][shares[worst]])) worst = i;
            shares[worst]--; sum--;
        }
        return shares;
    }

    /// <summary>The most samples a unit finishes within t (costs non-decreasing).</summary>
    private static int Capacity(double[] cost, double t)
    {
        int lo = 0, hi = cost.Length - 1;
        if (cost[hi] <= t) return hi;
        while (hi - lo > 1)
        {
            int mid = (lo + hi) / 2;
            if (cost[mid] <= t) lo = mid; else hi = mid;
        }
        return lo;
    }

    /// <summary>The seed's greedy: each next sample to the unit whose finishing time with it is least.</summary>
    public static int[] Greedy(IReadOnlyList<double[]> costs, int batch)
    {
        var shares = new int[costs.Count];
        for (int n = 0; n < batch; n++)
        {
            int best = 0;
            for (int i = 1; i < costs.Count; i++)
                if (costs[i][shares[i] + 1] < costs[best][shares[best] + 1]) best = i;
            shares[best]++;
        }
        return shares;
    }

    public static int[] Proportional(IReadOnlyList<double> throughputs, int batch)
    {
        double total = throughputs.Sum();
        var exact = throughputs.Select(t => batch * t / total).ToArray();
        var shares = exact.Select(e => (int)Math.Floor(e)).ToArray();
        int left = batch - shares.Sum();
        foreach (var i in Enumerable.Range(0, shares.Length).OrderByDescending(i => exact[i] - shares[i]).Take(left)) shares[i]++;
        return shares;
    }

    public static int[] Even(int units, int batch) =>
        Enumerable.Range(0, units).Select(i => batch / units + (i < batch % units ? 1 : 0)).ToArray();

    private static int[] SingleShares(int units, int single, int batch)
    {
        var shares = new int[units];
        shares[single] = batch;
        return shares;
    }

    private static int ArgMin(IReadOnlyList<double> values)
    {
        int best = 0;
        for (int i = 1; i < values.Count; i++) if (values[i] < values[best]) best = i;
        return best;
    }
}
