using System.Management.Automation;
using HeteroBatch.Engine;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Units;
using HeteroBatch.Engine.Units.Backends;

namespace HeteroBatch.Commands;

/// <summary>Lists the compute units of this machine (CPU core groups, NVIDIA GPUs, OpenVINO devices), or inference servers as remote units (-Endpoint).</summary>
[Cmdlet(VerbsCommon.Get, "ComputeUnit")]
[OutputType(typeof(ComputeUnit))]
public sealed class GetComputeUnitCommand : HeteroBatchCmdlet
{
    /// <summary>Unit ids to return (wildcards allowed).</summary>
    [Parameter(Position = 0)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(UnitIdCompleter))]
    public string[]? Id { get; set; }

    /// <summary>How to split the CPU: All (one unit), Core (one per processor), Numa, CoreType, or a number of equal groups.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(CpuGroupCompleter))]
    public string CpuGroup { get; set; } = "All";

    /// <summary>Run NVIDIA GPUs through TensorRT (with CUDA for what TensorRT cannot take), where TensorRT's libraries load.</summary>
    [Parameter]
    public SwitchParameter TensorRT { get; set; }

    /// <summary>The precision GPU units run at: Fp32 (default), Tf32 (TF32 tensor-core math) or Fp16 (the model converted, float32 inputs and outputs). CPU units stay Fp32.</summary>
    [Parameter]
    public Precision Precision { get; set; } = Precision.Fp32;

    /// <summary>The same as -Precision Tf32 (kept for scripts written before -Precision).</summary>
    [Parameter]
    public SwitchParameter AllowTf32 { get; set; }

    /// <summary>Inference servers that speak the Open Inference Protocol over REST (Triton, OpenVINO Model Server, KServe, HeteroBatch's Start-InferenceServer): one remote unit each, instead of this machine's units.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[]? Endpoint { get; set; }

    /// <summary>The model the servers at -Endpoint are to run (the name they serve it under): each is asked for its metadata and one sample, and one that cannot run it is not available.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Model { get; set; }

    /// <summary>The model at the servers of -Endpoint that takes a file job's images as files (one BYTES input: a Triton ensemble that decodes), where it is not named after the model with "_encoded".</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? EncodedModel { get; set; }

    /// <summary>The bearer token the servers at -Endpoint require; kept with each remote unit (default: $env:HETEROBATCH_REMOTE_TOKEN as read at import).</summary>
    [Parameter]
    [ValidateNotNull]
    public System.Security.SecureString? Token { get; set; }

    /// <summary>The same as -Token, from a credential's password (the user name is not used).</summary>
    [Parameter]
    [ValidateNotNull]
    [Credential]
    public PSCredential? Credential { get; set; }

    /// <summary>Also list units that cannot run here, with the reason.</summary>
    [Parameter]
    public SwitchParameter ListAvailable { get; set; }

    protected override void EndProcessing()
    {
        if (PipelineBoundNothing) return;
        if (!CpuGrouping.TryParse(CpuGroup, out var grouping))
            Fail(new HeteroBatchException("CpuGroupInvalid", FailureKind.InvalidArgument,
                $"-CpuGroup '{CpuGroup}' is not All, Core, Numa, CoreType or a positive number of groups.", CpuGroup));
        var request = new DiscoveryRequest
        {
            // servers that are not ready are errors (below) unless -ListAvailable lists them
            Grouping = grouping, IncludeUnavailable = ListAvailable || Endpoint != null, TensorRt = TensorRT, Precision = AllowTf32 ? Precision.Tf32 : Precision,
            Endpoints = Endpoint == null ? Array.Empty<Uri>() : Engine(() => Endpoint.Select(RemoteBackend.Parse).ToArray()),
            Model = Model, EncodedModel = EncodedModelGiven(), Token = TokenGiven() ?? Context.Options.RemoteToken, ExecutionProviderLibraries = Context.Options.ExecutionProviderLibraries,
        };
        var lines = new List<string>();
        IReadOnlyList<ComputeUnit> units = Engine(() => UnitDiscovery.Discover(request with { Log = lines.Add }));
        foreach (var line in lines) WriteVerbose(line);
        // more groups than processors: each processor is a group; say so rather than return fewer units silently
        int processors = Environment.ProcessorCount; // on Linux, the processors this process may run on
        if (grouping.Mode == CpuGroupingMode.Count && grouping.Count > processors)
            WriteWarning($"-CpuGroup {grouping.Count} asks for more groups than the {processors} processors this session may use; made {processors} groups of one processor.");
        // a server that is not ready, or cannot run -Model, is an error the caller can silence (the unit is listed with -ListAvailable)
        if (Endpoint != null && !ListAvailable)
        {
            foreach (var unit in units.Where(u => !u.Available))
                WriteFailure(new HeteroBatchException(unit.ReasonId ?? "RemoteUnavailable", FailureKind.ResourceUnavailable,
                    unit.ReasonId != null ? $"The inference server at {unit.Endpoint}: {unit.Reason}" : $"The inference server at {unit.Endpoint} is not ready: {unit.Reason}", unit.Endpoint));
            units = units.Where(u => u.Available).ToList();
        }
        foreach (var unit in units)
            if (Id == null || Id.Any(pattern => Wildcard.IsMatch(unit.Id, pattern)))
                WriteObject(unit);
        // an id without wildcards that matches no unit is an error the caller can silence
        foreach (var id in Id ?? Array.Empty<string>())
            if (!Wildcard.HasWildcards(id) && !units.Any(u => Wildcard.IsMatch(u.Id, id)))
                WriteFailure(new HeteroBatchException("UnitNotFound", FailureKind.ObjectNotFound,
                    $"No unit '{id}' here{(ListAvailable ? "" : " that can run (-ListAvailable also lists those that cannot)")}; units: {string.Join(", ", units.Select(u => u.Id))}.", id));
    }

    /// <summary>-EncodedModel (EncodedModelWithoutEndpoint without -Endpoint).</summary>
    private string? EncodedModelGiven()
    {
        if (EncodedModel != null && Endpoint == null)
            Fail(new HeteroBatchException("EncodedModelWithoutEndpoint", FailureKind.InvalidArgument, "-EncodedModel names a model of the servers of -Endpoint; this machine's units take none.", EncodedModel));
        return EncodedModel;
    }

    /// <summary>-Token or -Credential as a token (TokenConflict with both, TokenEmpty for an empty one; TokenWithoutEndpoint without -Endpoint).</summary>
    private BearerToken? TokenGiven()
    {
        var secret = Token ?? Credential?.Password;
        if (secret == null) return null;
        if (Token != null && Credential != null)
            Fail(new HeteroBatchException("TokenConflict", FailureKind.InvalidArgument, "Give -Token or -Credential, not both."));
        if (Endpoint == null)
            Fail(new HeteroBatchException("TokenWithoutEndpoint", FailureKind.InvalidArgument, "-Token and -Credential are for the servers of -Endpoint; this machine's units take none."));
        return Engine(() => new BearerToken(new System.Net.NetworkCredential("", secret).Password));
    }
}
