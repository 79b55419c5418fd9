using System.Management.Automation;
using HeteroBatch.Engine;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Profiling;
using HeteroBatch.Reporting;

namespace HeteroBatch.Commands;

/// <summary>Draws profiles (throughput by batch size per unit) or a plan or result (time per unit, predicted beside measured) to a PNG or SVG file.</summary>
[Cmdlet(VerbsData.Export, "PerformanceChart", SupportsShouldProcess = true)]
[OutputType(typeof(FileInfo))]
public sealed class ExportPerformanceChartCommand : HeteroBatchCmdlet
{
    /// <summary>Profiles (from Invoke-Profile or Get-PerformanceProfile), a plan (from Get-BatchPlan) or a result (from Invoke-PartitionedInference).</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true)]
    [ValidateNotNull]
    public object? InputObject { get; set; }

    /// <summary>The file to write: .png or .svg.</summary>
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    /// <summary>Width in pixels.</summary>
    [Parameter]
    [ValidateRange(100, 10000)]
    public int Width { get; set; } = 900;

    /// <summary>Height in pixels.</summary>
    [Parameter]
    [ValidateRange(100, 10000)]
    public int Height { get; set; } = 520;

    /// <summary>Replace the file if it exists.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    private readonly List<UnitProfile> _profiles = new();
    private BatchPlan? _plan;
    private InferenceResult? _result;

    protected override void ProcessRecord()
    {
        var value = InputObject is PSObject ps ? ps.BaseObject : InputObject;
        if (value is PSCustomObject && InputObject is PSObject shell) value = FromDeserialized(shell) ?? value;
        switch (value)
        {
            case UnitProfile p: _profiles.Add(p); break;
            case BatchPlan plan: _plan = plan; break;
            case InferenceResult r: _result = r; _plan = r.Plan; break;
            default:
                WriteFailure(new HeteroBatchException("ChartInputUnsupported", FailureKind.InvalidArgument,
                    $"Export-PerformanceChart draws profiles, plans and results; it got {value?.GetType().Name ?? "nothing"}.", value));
                break;
        }
    }

    /// <summary>
    /// An object back from Import-Clixml, ConvertFrom-Json or a job: a result (it has Plan, Units
    /// and WallMs; its outputs are not needed to draw it), or a plan or profile; null if none.
    /// </summary>
    private object? FromDeserialized(PSObject o)
    {
        bool isResult = o.Properties["Plan"] != null && o.Properties["Units"] != null && o.Properties["WallMs"] != null;
        var engine = (EngineIntrinsics)SessionState.PSVariable.GetValue("ExecutionContext");
        try
        {
            if (!isResult) return new JsonObjectAttribute().Transform(engine, o) is { } t and not PSObject ? t : null;
            var json = JsonObjectAttribute.ToJson(engine, o);
            if (json == null) return null;
            var node = System.Text.Json.Nodes.JsonNode.Parse(json)!.AsObject();
            node.Remove("Outputs");
            var plan = new JsonObjectAttribute().Transform(engine, node["Plan"]!.ToJsonString()) as BatchPlan;
            node.Remove("Plan");
            var result = System.Text.Json.JsonSerializer.Deserialize<InferenceResult>(node.ToJsonString(), JsonObjectAttribute.Options);
            if (result != null && plan != null) result.Plan = plan;
            return result;
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or ArgumentTransformationMetadataException or InvalidOperationException) { return null; }
    }

    protected override void EndProcessing()
    {
        var path = GetUnresolvedProviderPathFromPSPath(Path);
        if (_profiles.Count == 0 && _plan == null) return;
        if (FileRule.Refuses(path, Force) is { } exists) { WriteFailure(exists); return; }
        if (!ShouldProcess(path, _profiles.Count > 0 ? $"Draw {_profiles.Count} profiles" : "Draw the plan's time per unit")) return;
        string written;
        if (_profiles.Count > 0) written = Engine(() => Charts.Throughput(_profiles, path, Width, Height));
        else if (_plan != null) written = Engine(() => Charts.Timeline(_plan, _result, path, Width, Height));
        else return;
        WriteObject(new FileInfo(written));
    }
}
