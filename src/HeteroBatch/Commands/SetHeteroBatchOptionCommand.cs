using System.Management.Automation;
using HeteroBatch.Engine;

namespace HeteroBatch.Commands;

/// <summary>
/// Changes the module's settings for this session (until the module is removed or imported again,
/// when they are read from the environment anew). One parameter per option that can change while
/// the module is loaded; the others are fixed at import.
/// </summary>
[Cmdlet(VerbsCommon.Set, "HeteroBatchOption", SupportsShouldProcess = true)]
[OutputType(typeof(EngineOptions))]
public sealed class SetHeteroBatchOptionCommand : HeteroBatchCmdlet
{
    /// <summary>The profile store folder commands use without -ProfilePath (a PowerShell path).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ProfilePath { get; set; }

    /// <summary>The folder built-in models and prepared forms of model files are written to (a PowerShell path).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ModelCachePath { get; set; }

    /// <summary>Seconds a profile store writer waits for another process's lock before ProfileStoreBusy.</summary>
    [Parameter]
    public double? StoreLockSeconds { get; set; }

    /// <summary>The bearer token of remote units listed afterwards by Get-ComputeUnit without -Token or -Credential.</summary>
    [Parameter]
    [ValidateNotNull]
    public System.Security.SecureString? RemoteToken { get; set; }

    /// <summary>Remove the default bearer token.</summary>
    [Parameter]
    public SwitchParameter NoRemoteToken { get; set; }

    /// <summary>Also write the settings that result.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void EndProcessing()
    {
        if (RemoteToken != null && NoRemoteToken)
            Fail(new HeteroBatchException("OptionInvalid", FailureKind.InvalidArgument, "Give -RemoteToken or -NoRemoteToken, not both.", nameof(RemoteToken)));
        // PowerShell paths (relative to the current location, ~, PSDrives) become file-system paths here, on the pipeline thread
        var store = ProfilePath == null ? null : GetUnresolvedProviderPathFromPSPath(ProfilePath);
        var cache = ModelCachePath == null ? null : GetUnresolvedProviderPathFromPSPath(ModelCachePath);
        var token = RemoteToken == null ? null : Engine(() => new BearerToken(new System.Net.NetworkCredential("", RemoteToken).Password));
        if (!ShouldProcess("HeteroBatch settings of this session", "Set")) return;
        var now = Engine(() => Context.Configure(o => o with
        {
            ProfileStorePath = store ?? o.ProfileStorePath,
            ModelCacheFolder = cache ?? o.ModelCacheFolder,
            StoreLockSeconds = StoreLockSeconds ?? o.StoreLockSeconds,
            RemoteToken = NoRemoteToken ? null : token ?? o.RemoteToken,
        }));
        if (PassThru) WriteObject(now);
    }
}
