using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using HeteroBatch.Engine.Models;

namespace HeteroBatch;

/// <summary>Tab completion for -Model: the built-in networks.</summary>
public sealed class ModelNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        foreach (var m in ModelZoo.Models)
            if (m.Name.StartsWith(wordToComplete ?? "", StringComparison.OrdinalIgnoreCase))
                yield return new CompletionResult(m.Name, m.Name, CompletionResultType.ParameterValue, $"{m.Description}: {m.Parameters:N0} parameters");
    }
}
