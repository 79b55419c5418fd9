using System.Management.Automation;
using HeteroBatch.Engine;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Runtime;

namespace HeteroBatch.Commands;

/// <summary>Writes a built-in network to an .onnx file (atomically: nothing half-written is ever left).</summary>
[Cmdlet(VerbsData.Export, "InferenceModel", SupportsShouldProcess = true)]
[OutputType(typeof(FileInfo))]
public sealed class ExportInferenceModelCommand : HeteroBatchCmdlet
{
    /// <summary>The built-in network to export.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(ModelNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = "";

    /// <summary>The file to write.</summary>
    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    /// <summary>Fix the batch dimension to this size instead of leaving it symbolic (as many exported models do).</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int FixedBatchSize { get; set; }

    /// <summary>Replace the file if it exists.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void ProcessRecord()
    {
        var target = GetUnresolvedProviderPathFromPSPath(Path);
        if (ModelZoo.Find(Name) is not { } zoo)
        {
            WriteFailure(new HeteroBatchException("ModelNotFound", FailureKind.ObjectNotFound,
                $"No built-in model is named '{Name}'. Built-in models: {string.Join(", ", ModelZoo.Names)}.", Name));
            return;
        }
        if (File.Exists(target) && !Force)
        {
            WriteFailure(new HeteroBatchException("FileExists", FailureKind.WriteError, $"{target} exists; use -Force to replace it.", target));
            return;
        }
        if (!ShouldProcess(target, $"Export {zoo.Name}")) return;
        try
        {
            long? fixedBatch = FixedBatchSize > 0 ? FixedBatchSize : null;
            AtomicFile.Write(target, s => Google.Protobuf.MessageExtensions.WriteTo(ModelZoo.Build(zoo.Name, fixedBatch), s));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            WriteFailure(new HeteroBatchException("ExportFailed", FailureKind.WriteError, $"Could not write {target}: {e.Message}", target, e));
            return;
        }
        WriteObject(new FileInfo(target));
    }
}
