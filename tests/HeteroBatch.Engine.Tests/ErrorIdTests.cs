using System.Text.RegularExpressions;

namespace HeteroBatch.Engine.Tests;

/// <summary>Every ErrorId the code can raise is documented in about_HeteroBatch.</summary>
public class ErrorIdTests
{
    private static string Root()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "HeteroBatch.psd1"))) dir = dir.Parent;
        return dir?.FullName ?? throw new DirectoryNotFoundException("no HeteroBatch.psd1 above the test binaries");
    }

    [Fact]
    public void EveryErrorIdThrownInTheSourceIsInAboutHeteroBatch()
    {
        var root = Root();
        var about = File.ReadAllText(Path.Combine(root, "en-US", "about_HeteroBatch.help.txt"));
        // the first argument of every HeteroBatchException and ErrorRecord: a literal, or a choice of literals
        var call = new Regex(@"(?:HeteroBatchException|ErrorRecord)\(\s*(?:[^,()]*,\s*)?(?<id>[^,]*""[A-Za-z]+""[^,]*),", RegexOptions.Compiled);
        var literal = new Regex(@"""([A-Z][A-Za-z]+)""");
        var ids = new SortedSet<string>();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(root, "src"), "*.cs", SearchOption.AllDirectories))
        {
            if (file.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") || file.Contains("HeteroBatch.Bench")) continue;
            foreach (Match m in call.Matches(File.ReadAllText(file)))
                foreach (Match id in literal.Matches(m.Groups["id"].Value)) ids.Add(id.Groups[1].Value);
        }
        Assert.True(ids.Count > 40, $"only {ids.Count} ids found: the scan is broken");
        var missing = ids.Where(id => !Regex.IsMatch(about, $@"\b{id}\b")).ToList();
        Assert.True(missing.Count == 0, "not in about_HeteroBatch: " + string.Join(", ", missing));
    }
}
