using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Units.Backends;

namespace HeteroBatch.Engine.Execution;

/// <summary>A slice of the batch waiting to run, and the unit it was planned for.</summary>
internal readonly record struct WorkRange(int Offset, int Count, int Owner);

/// <summary>
/// The queue of sub-batches per unit. A unit takes from the front of its own queue; failed
/// units' work goes to a shared pool that the others drain; in dynamic mode an idle unit
/// takes the last sub-batch of the unit with the most queued.
/// </summary>
internal sealed class WorkBoard
{
    // _gate guards every mutable field below (queues, orphans, failed flags, running and unfinished counts, cancellation); waiters sleep on it
    private readonly object _gate = new();
    private readonly LinkedList<WorkRange>[] _queues;
    private readonly Queue<WorkRange> _orphans = new();
    private readonly int[] _limits;
    private readonly bool[] _failed;
    private readonly bool[] _pads;
    private readonly double[] _perRunMs;
    private readonly double[] _perSampleMs;
    private readonly bool _dynamic;
    private int _running;
    private bool _cancelled;
    private int _unfinished;

    public WorkBoard(BatchPlan plan, BalanceMode balance, int baseOffset = 0)
        : this(plan, new[] { (plan, baseOffset) }, balance) { }

    /// <summary>
    /// One board for successive planned batches: unit i (the i-th shard of <paramref name="plan"/>)
    /// queues its share of every chunk in order, so no unit waits for the others between chunks.
    /// </summary>
    public WorkBoard(BatchPlan plan, IReadOnlyList<(BatchPlan Plan, int Offset)> chunks, BalanceMode balance)
    {
        _dynamic = balance == BalanceMode.Dynamic;
        int k = plan.Shards.Count;
        _queues = new LinkedList<WorkRange>[k];
        _limits = new int[k];
        _failed = new bool[k];
        _pads = new bool[k];
        _perRunMs = new double[k];
        _perSampleMs = new double[k];
        for (int i = 0; i < k; i++)
        {
            var s = plan.Shards[i];
            _queues[i] = new LinkedList<WorkRange>();
            _limits[i] = Math.Max(1, Math.Min(s.SubBatchSize, s.Count));
            _pads[i] = UnitBackends.For(s.Unit).KeepsOneShape;
            _perRunMs[i] = s.PredictedMs / Math.Max(1, s.SubBatches);
            _perSampleMs[i] = s.PredictedMs / Math.Max(1, s.Count);
            foreach (var (chunk, baseOffset) in chunks)
            {
                var c = chunk.Shards.FirstOrDefault(x => x.UnitId == s.UnitId);
                if (c == null) continue;
                int size = Math.Max(1, c.SubBatchSize);
                // in dynamic mode, cut CPU shares into at least four pieces so that there is a tail to
                // take; accelerators keep their one shape
                if (_dynamic && !_pads[i]) size = Math.Max(1, Math.Min(size, (c.Count + 3) / 4));
                for (int o = 0; o < c.Count; o += size)
                    _queues[i].AddLast(new WorkRange(baseOffset + c.Offset + o, Math.Min(size, c.Count - o), i));
            }
        }
        _unfinished = chunks.Sum(c => c.Plan.BatchSize);
    }

    public bool AllDone { get { lock (_gate) return _unfinished == 0; } }
    public int Unfinished { get { lock (_gate) return _unfinished; } }

    /// <summary>The next range for unit <paramref name="me"/>, or null when there is nothing left it could do.</summary>
    public WorkRange? Take(int me)
    {
        lock (_gate)
        {
            while (true)
            {
                if (_failed[me] || _cancelled) return null;
                if (_queues[me].First is { } own) { _queues[me].RemoveFirst(); _running++; return own.Value; }
                if (_orphans.Count > 0) { _running++; return Fit(_orphans.Dequeue(), me, toOrphans: true); }
                if (_dynamic)
                {
                    // take the last queued sub-batch of the unit with the most predicted work left,
                    // but only if this unit would finish it before that one gets through its queue
                    var victim = Enumerable.Range(0, _queues.Length).Where(i => i != me && _queues[i].Count > 0)
                        .OrderByDescending(i => _queues[i].Sum(r => Cost(i, r))).FirstOrDefault(-1);
                    if (victim >= 0 && Cost(me, _queues[victim].Last!.Value) < _queues[victim].Sum(r => Cost(victim, r)))
                    {
                        var tail = _queues[victim].Last!.Value;
                        _queues[victim].RemoveLast();
                        _running++;
                        return Fit(tail, me, toOrphans: false, victim);
                    }
                }
                // nothing now; work can still appear while another live unit runs or has work queued (it may fail)
                if (_cancelled || (_running == 0 && _queues.All(q => q.Count == 0))) return null;
                Monitor.Wait(_gate);
            }
        }
    }

    /// <summary>Predicted time for unit <paramref name="i"/> to run a range: a padded run costs a whole run.</summary>
    private double Cost(int i, WorkRange r) =>
        _pads[i] ? _perRunMs[i] * Math.Ceiling((double)r.Count / _limits[i]) : _perSampleMs[i] * r.Count;

    /// <summary>Cuts a range to what unit <paramref name="me"/> runs at once; the rest goes back where it came from.</summary>
    private WorkRange Fit(WorkRange r, int me, bool toOrphans, int victim = -1)
    {
        if (r.Count <= _limits[me]) return r;
        var rest = new WorkRange(r.Offset + _limits[me], r.Count - _limits[me], r.Owner);
        if (toOrphans) _orphans.Enqueue(rest); else _queues[victim].AddLast(rest);
        return r with { Count = _limits[me] };
    }

    public void Cancel()
    {
        lock (_gate) { _cancelled = true; Monitor.PulseAll(_gate); }
    }

    public void Done(int me, WorkRange r)
    {
        lock (_gate) { _unfinished -= r.Count; _running--; Monitor.PulseAll(_gate); }
    }

    /// <summary>Unit <paramref name="me"/> failed on <paramref name="r"/>: it and everything still queued for the unit go to the others.</summary>
    public void Fail(int me, WorkRange r)
    {
        lock (_gate)
        {
            _failed[me] = true;
            _running--;
            _orphans.Enqueue(r);
            foreach (var q in _queues[me]) _orphans.Enqueue(q);
            _queues[me].Clear();
            Monitor.PulseAll(_gate);
        }
    }
}
