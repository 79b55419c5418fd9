using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using HeteroBatch.Engine.Models;

namespace HeteroBatch;

/// <summary>Tab completion for -Model: the built-in networks, and .onnx files and folders by path.</summary>
public sealed class ModelNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var word = (wordToComplete ?? "").Trim('\'', '"');
        foreach (var m in ModelZoo.Models)
            if (m.Name.StartsWith(word, StringComparison.OrdinalIgnoreCase))
                yield return new CompletionResult(m.Name, m.Name, CompletionResultType.ParameterValue, $"{m.Description}: {m.Parameters:N0} parameters");
        foreach (var path in OnnxPaths(word))
            yield return new CompletionResult(path.Contains(' ') ? $"'{path}'" : path, System.IO.Path.GetFileName(path.TrimEnd('/')), CompletionResultType.ProviderItem, path);
    }

    /// <summary>Folders and .onnx files whose path starts with what was typed (relative to the current folder as typed).</summary>
    private static IEnumerable<string> OnnxPaths(string word)
    {
        var dir = System.IO.Path.GetDirectoryName(word);
        var prefix = System.IO.Path.GetFileName(word);
        // relative paths are relative to PowerShell's current folder, not the process's
        string here;
        try
        {
            using var ps = PowerShell.Create(RunspaceMode.CurrentRunspace);
            here = ps.AddCommand("Get-Location").AddParameter("PSProvider", "FileSystem").Invoke<PathInfo>().FirstOrDefault()?.ProviderPath ?? Directory.GetCurrentDirectory();
        }
        catch (Exception e) when (e is InvalidOperationException or PSInvalidOperationException) { here = Directory.GetCurrentDirectory(); }
        var search = System.IO.Path.Combine(here, string.IsNullOrEmpty(dir) ? "." : dir);
        if (!Directory.Exists(search)) yield break;
        IEnumerable<string> entries;
        try
        {
            entries = Directory.EnumerateDirectories(search).Select(d => d + "/")
                .Concat(Directory.EnumerateFiles(search, "*.onnx")).OrderBy(e => e, StringComparer.Ordinal).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { yield break; }
        foreach (var e in entries)
        {
            var name = System.IO.Path.GetFileName(e.TrimEnd('/'));
            if (!name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)) continue;
            yield return (string.IsNullOrEmpty(dir) ? name : System.IO.Path.Combine(dir, name)) + (e.EndsWith('/') ? "/" : "");
        }
    }
}
