using System.Management.Automation;
using HeteroBatch.Engine.Execution;

namespace HeteroBatch.Commands;

/// <summary>
/// Merges the output folders of a job run in shards (Invoke-PartitionedInference -Shard k/N) into one
/// folder equal to a one-process run of the whole job: predictions.csv, each output .npy and inputs.txt.
/// </summary>
[Cmdlet(VerbsData.Merge, "PartitionedOutput", SupportsShouldProcess = true)]
[OutputType(typeof(MergedOutput))]
public sealed class MergePartitionedOutputCommand : HeteroBatchCmdlet
{
    /// <summary>The shards' output folders, every shard of the job once, in any order; folders bind from the pipeline.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = Array.Empty<string>();

    /// <summary>The folder to write the merged outputs to.</summary>
    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string OutputPath { get; set; } = "";

    /// <summary>Replace output files already in -OutputPath.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    private readonly List<string> _folders = new();

    protected override void ProcessRecord()
    {
        base.ProcessRecord();
        _folders.AddRange(Path.Select(p => GetUnresolvedProviderPathFromPSPath(p)));
    }

    protected override void EndProcessing()
    {
        var output = GetUnresolvedProviderPathFromPSPath(OutputPath);
        if (!ShouldProcess(output, $"Merge {_folders.Count} shard folders")) return;
        WriteObject(Engine(() => ShardMerge.Merge(_folders, output, Force)));
    }
}
