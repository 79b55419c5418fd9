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
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(ModelNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Name { get; set; }

    /// <summary>Once for the names given (or all models when none), and once for each name piped in.</summary>
    protected override void ProcessRecord()
    {
        foreach (var m in ModelZoo.Models)
            if (Name == null || Name.Any(n => Wildcard.IsMatch(m.Name, n)))
                WriteObject(m);
        // a name without wildcards that matches nothing is an error the caller can silence
        foreach (var n in Name ?? Array.Empty<string>())
            if (!Wildcard.HasWildcards(n) && !ModelZoo.Models.Any(m => Wildcard.IsMatch(m.Name, n)))
                WriteFailure(new HeteroBatch.Engine.HeteroBatchException("ModelNotFound", HeteroBatch.Engine.FailureKind.ObjectNotFound,
                    $"No built-in model is named '{n}'. Built-in models: {string.Join(", ", ModelZoo.Names)}.", n));
    }
}
