using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using HeteroBatch.Engine.Units;
using HeteroBatch.Engine.Units.Backends;

namespace HeteroBatch;

/// <summary>Tab completion for unit ids (-Id, -Unit): the CPU as one unit and per core, and the accelerators found here.</summary>
public sealed class UnitIdCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var processors = CpuTopology.AllowedProcessors();
        var ids = new List<(string Id, string Tip)> { ("cpu", $"the whole CPU ({processors.Length} processors)") };
        ids.AddRange(processors.Select((p, i) => ($"cpu{i}", $"CPU group {i} (with -CpuGroup Core: processor {p})")));
        ids.AddRange(ModuleContext.Current.Presence.Accelerators.Where(u => u.Available).Select(u => (u.Id, $"{u.Name} ({UnitBackends.For(u).Name})")));
        foreach (var (id, tip) in ids)
            if (id.StartsWith(wordToComplete ?? "", StringComparison.OrdinalIgnoreCase))
                yield return new CompletionResult(id, id, CompletionResultType.ParameterValue, tip);
    }
}

/// <summary>Tab completion for -CpuGroup: the named groupings and the numbers of equal groups this machine allows.</summary>
public sealed class CpuGroupCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var values = Enum.GetNames<CpuGroupingMode>().Where(n => n != nameof(CpuGroupingMode.Count))
            .Concat(Enumerable.Range(2, Math.Max(0, CpuTopology.AllowedProcessors().Length - 1)).Select(n => n.ToString()));
        foreach (var v in values)
            if (v.StartsWith(wordToComplete ?? "", StringComparison.OrdinalIgnoreCase))
                yield return new CompletionResult(v, v, CompletionResultType.ParameterValue, v);
    }
}
