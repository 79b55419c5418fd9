using System.Management.Automation.Language;
using HeteroBatch.Engine;

namespace HeteroBatch;

/// <summary>
/// The next command to run after an engine error, by ErrorId. The engine never names cmdlets;
/// this is where its errors meet the commands a user types. A suggested command keeps the
/// user's -ProfilePath.
/// </summary>
internal static class RecommendedActions
{
    public static string? For(HeteroBatchException e, HeteroBatchCmdlet cmdlet)
    {
        var store = cmdlet.ProfilePathGiven is { } path ? $" -ProfilePath {Quote(path)}" : "";
        var model = e.Target as string;
        return e.ErrorId switch
        {
            "ProfileNotFound" => $"Run: Get-ComputeUnit | Invoke-Profile -Model {Quote(model ?? "<model>")}{store}",
            "ProfileEmpty" => $"Run Invoke-Profile again for unit '{e.Target}'{(store.Length > 0 ? $" with{store}" : "")}.",
            "UnitsOverlap" => "Use units of one grouping: see Get-ComputeUnit -CpuGroup.",
            "ModelChanged" => "Profile and plan the model again: Invoke-Profile, then Get-BatchPlan.",
            _ => null,
        };
    }

    private static string Quote(string s) =>
        s.All(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.' or '/') ? s : "'" + CodeGeneration.EscapeSingleQuotedStringContent(s) + "'";
}
