using System.Management.Automation;
using HeteroBatch.Engine;

namespace HeteroBatch.Commands;

/// <summary>The module's settings now: what was read from the environment at import, with this session's Set-HeteroBatchOption changes.</summary>
[Cmdlet(VerbsCommon.Get, "HeteroBatchOption")]
[OutputType(typeof(EngineOptions))]
public sealed class GetHeteroBatchOptionCommand : HeteroBatchCmdlet
{
    protected override void EndProcessing() => WriteObject(Context.Options);
}
