using HeteroBatch.Engine;

namespace HeteroBatch;

/// <summary>
/// The one rule for cmdlets that write a file the user names (Export-InferenceModel,
/// Export-PerformanceChart): an existing file is replaced only with -Force, and -WhatIf says what
/// would be written.
/// </summary>
internal static class FileRule
{
    /// <summary>The FileExists error where <paramref name="path"/> exists and -Force was not given; else null.</summary>
    public static HeteroBatchException? Refuses(string path, bool force) =>
        File.Exists(path) && !force
            ? new HeteroBatchException("FileExists", FailureKind.WriteError, $"{path} exists; use -Force to replace it.", path)
            : null;
}
