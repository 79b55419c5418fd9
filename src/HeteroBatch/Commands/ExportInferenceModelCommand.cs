using System.Management.Automation;
using HeteroBatch.Engine;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Runtime;

namespace HeteroBatch.Commands;

/// <summary>Writes a built-in network, or a user's model at another precision, to an .onnx file (atomically: nothing half-written is ever left).</summary>
[Cmdlet(VerbsData.Export, "InferenceModel", SupportsShouldProcess = true)]
[OutputType(typeof(FileInfo))]
public sealed class ExportInferenceModelCommand : HeteroBatchCmdlet
{
    /// <summary>The built-in network to export, or the path of an .onnx file (to write it at another -Precision).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Name")]
    [ArgumentCompleter(typeof(ModelNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Model { get; set; } = "";

    /// <summary>The file to write.</summary>
    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    /// <summary>Fix the batch dimension to this size instead of leaving it symbolic (as many exported models do).</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int FixedBatchSize { get; set; }

    /// <summary>Fp16 writes the model converted to fp16 (inputs and outputs stay float32); Fp32 (default) and Tf32 write it as it is.</summary>
    [Parameter]
    public Precision Precision { get; set; } = Precision.Fp32;

    /// <summary>Replace the file if it exists.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void ProcessRecord()
    {
        var target = GetUnresolvedProviderPathFromPSPath(Path);
        if (FileRule.Refuses(target, Force) is { } exists) { WriteFailure(exists); return; }
        if (!ShouldProcess(target, $"Export {Model}{(Precision == Precision.Fp16 ? " at Fp16" : "")}")) return;
        Onnx.ModelProto model;
        try
        {
            model = ModelCatalog.ForExport(Model, FixedBatchSize > 0 ? FixedBatchSize : null, Precision, SessionState.Path.CurrentFileSystemLocation.Path);
        }
        catch (HeteroBatchException e)
        {
            WriteFailure(e);
            return;
        }
        try
        {
            AtomicFile.Write(target, s => Google.Protobuf.MessageExtensions.WriteTo(model, s));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            WriteFailure(new HeteroBatchException("ExportFailed", FailureKind.WriteError, $"Could not write {target}: {e.Message}", target, e));
            return;
        }
        WriteObject(new FileInfo(target));
    }
}
