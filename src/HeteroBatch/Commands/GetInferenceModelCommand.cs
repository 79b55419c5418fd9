using System.Management.Automation;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Runtime;

namespace HeteroBatch.Commands;

/// <summary>Lists the built-in networks: name, input shape, parameters, GFLOPs per image.</summary>
[Cmdlet(VerbsCommon.Get, "InferenceModel")]
[OutputType(typeof(ZooModel))]
public sealed class GetInferenceModelCommand : HeteroBatchCmdlet
{
    /// <summary>Names to return (wildcards allowed).</summary>
    [Parameter(Position = 0)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(ModelNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Name { get; set; }

    protected override void EndProcessing()
    {
        foreach (var m in ModelZoo.Models)
            if (Name == null || Name.Any(n => Wildcard.IsMatch(m.Name, n)))
                WriteObject(m);
    }
}
