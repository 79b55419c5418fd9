using System.Text;
using System.Text.RegularExpressions;

namespace HeteroBatch.Engine.Tests;

/// <summary>
/// One catalogue of ErrorIds (<see cref="ErrorIds"/>): every id the source raises is in it with the
/// kind it is raised with, every id in it is raised somewhere, and about_HeteroBatch's ERROR IDS
/// section is the catalogue written out (set HETEROBATCH_UPDATE_ABOUT=1 and run this test to write it).
/// </summary>
public class ErrorIdTests
{
    private static string Root()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "HeteroBatch.psd1"))) dir = dir.Parent;
        return dir?.FullName ?? throw new DirectoryNotFoundException("no HeteroBatch.psd1 above the test binaries");
    }

    /// <summary>The module's sources: engine, Serving, Reporting and cmdlets (the benchmark's own errors are not a user's).</summary>
    private static IEnumerable<(string File, string Text)> Sources() =>
        Directory.EnumerateFiles(Path.Combine(Root(), "src"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}")
                        && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}")
                        && !f.Contains("HeteroBatch.Bench")
                        && Path.GetFileName(f) != "ErrorIds.cs")
            .Select(f => (f, File.ReadAllText(f)));

    // an id literal followed by its kind: new HeteroBatchException("Id", FailureKind.X, ...) and the target-typed new("Id", FailureKind.X, ...)
    private static readonly Regex Raised = new(@"""(?<id>[A-Z][A-Za-z]+)""\s*,\s*(?:HeteroBatch\.Engine\.)?FailureKind\.(?<kind>\w+)");
    // the first argument of a HeteroBatchException or ErrorRecord that is a choice of literals (x ?? "Id", c ? "A" : "B")
    private static readonly Regex Call = new(@"(?:HeteroBatchException|ErrorRecord)\(\s*(?:[^,()]*,\s*)?(?<id>[^,]*""[A-Za-z]+""[^,]*),");
    // branches and recommended actions that name an id: ErrorId == "X", ErrorId is "X" or "Y", case "X" =>
    private static readonly Regex Named = new(@"ErrorId\s*(?:==|is)\s*(?<ids>""\w+""(?:\s*or\s*""\w+"")*)|^\s*""(?<arm>[A-Z][A-Za-z]+)""\s*=>", RegexOptions.Multiline);
    private static readonly Regex Literal = new(@"""([A-Z][A-Za-z]+)""");

    [Fact]
    public void EveryIdTheSourceRaisesIsInTheCatalogueWithTheKindItIsRaisedWith()
    {
        var problems = new List<string>();
        int found = 0;
        foreach (var (file, text) in Sources())
        {
            var name = Path.GetFileName(file);
            foreach (Match m in Raised.Matches(text))
            {
                found++;
                var entry = ErrorIds.Find(m.Groups["id"].Value);
                var kind = Enum.Parse<FailureKind>(m.Groups["kind"].Value);
                if (entry == null) problems.Add($"{name}: {m.Groups["id"].Value} is not in ErrorIds");
                else if (!entry.Kinds.Contains(kind)) problems.Add($"{name}: {entry.Id} raised as {kind}, catalogued as {string.Join("/", entry.Kinds)}");
            }
            foreach (Match m in Call.Matches(text))
                foreach (Match id in Literal.Matches(m.Groups["id"].Value))
                    if (ErrorIds.Find(id.Groups[1].Value) == null) problems.Add($"{name}: {id.Groups[1].Value} is not in ErrorIds");
            foreach (Match m in Named.Matches(text))
                foreach (Match id in Literal.Matches(m.Groups["ids"].Value + $"\"{m.Groups["arm"].Value}\""))
                    if (ErrorIds.Find(id.Groups[1].Value) == null) problems.Add($"{name}: names {id.Groups[1].Value}, which is not in ErrorIds");
        }
        Assert.True(found > 100, $"only {found} raised ids found: the scan is broken");
        Assert.True(problems.Count == 0, string.Join("\n", problems.Distinct()));
    }

    [Fact]
    public void EveryCatalogueIdIsRaisedSomewhere()
    {
        var literals = new HashSet<string>(Sources().SelectMany(s => Literal.Matches(s.Text).Select(m => m.Groups[1].Value)));
        var unused = ErrorIds.All.Select(e => e.Id).Where(id => !literals.Contains(id)).ToList();
        Assert.True(unused.Count == 0, "in ErrorIds but never raised: " + string.Join(", ", unused));
    }

    [Fact]
    public void EachIdIsCataloguedOnceInAKnownAreaWithOneLineOfMeaning()
    {
        Assert.Equal(ErrorIds.All.Count, ErrorIds.All.Select(e => e.Id).Distinct().Count());
        foreach (var e in ErrorIds.All)
        {
            Assert.Matches("^[A-Z][A-Za-z]+$", e.Id);
            Assert.Contains(e.Area, ErrorIds.Areas);
            Assert.False(string.IsNullOrWhiteSpace(e.Meaning), e.Id);
            Assert.DoesNotContain('\n', e.Meaning);
            Assert.NotEmpty(e.Kinds);
            Assert.Equal(e.Kinds.Count, e.Kinds.Distinct().Count());
        }
        // listed area by area, so the generated section reads in the catalogue's order
        var areas = ErrorIds.All.Select(e => Array.IndexOf(ErrorIds.Areas.ToArray(), e.Area)).ToList();
        Assert.Equal(areas.OrderBy(a => a), areas);
        Assert.Same(ErrorIds.All.First(e => e.Id == "UnitNotFound"), ErrorIds.Find("UnitNotFound"));
        Assert.Null(ErrorIds.Find("NoSuchId"));
    }

    [Fact]
    public void AboutHeteroBatchListsExactlyTheCatalogue()
    {
        var path = Path.Combine(Root(), "en-US", "about_HeteroBatch.help.txt");
        var text = File.ReadAllText(path).ReplaceLineEndings("\n");
        const string header = "\nERROR IDS\n";
        int start = text.IndexOf(header, StringComparison.Ordinal);
        Assert.True(start >= 0, "about_HeteroBatch has no ERROR IDS section");
        start += header.Length;
        var next = new Regex(@"^[A-Z][A-Z ]+$", RegexOptions.Multiline).Match(text, start);
        int end = next.Success ? next.Index : text.Length;
        var expected = AboutSection();
        var actual = text[start..end];
        if (actual != expected && Environment.GetEnvironmentVariable("HETEROBATCH_UPDATE_ABOUT") == "1")
        {
            File.WriteAllText(path, text[..start] + expected + text[end..]);
            return;
        }
        Assert.True(actual == expected, "about_HeteroBatch's ERROR IDS section differs from ErrorIds; run this test with HETEROBATCH_UPDATE_ABOUT=1 to write it. Expected:\n" + expected);
    }

    [Fact]
    public void TheSectionWriterWrapsAtTheHelpFilesWidthAndNamesEveryKind()
    {
        var section = AboutSection();
        foreach (var e in ErrorIds.All)
        {
            Assert.Matches($@"(?m)^      {e.Id} +\S", section);
            // the kinds close the entry's text, joined across wrapped lines
            Assert.Contains($"({string.Join(", or ", e.Kinds)})", Regex.Replace(section, @"\n +", " "));
        }
        Assert.All(section.Split('\n'), line => Assert.True(line.Length <= 94, line));
    }

    /// <summary>The ERROR IDS section's text, from its first line to the blank line before the next section.</summary>
    private static string AboutSection()
    {
        const int width = 94, idColumn = 6, meaningColumn = 34; // the width the rest of about_HeteroBatch keeps
        var sb = new StringBuilder();
        sb.Append("    Every error has a stable ErrorId (FullyQualifiedErrorId starts with it); scripts can test\n");
        sb.Append("    them: Should -Throw -ErrorId ModelNotFound. Per-item errors honour -ErrorAction. A command\n");
        sb.Append("    given pipeline input of which nothing bound writes PowerShell's binding errors and does\n");
        sb.Append("    nothing more (no default work, such as profiling every unit). -CpuGroup with more groups\n");
        sb.Append("    than processors makes one group per processor and says so in a warning. Each id is\n");
        sb.Append("    followed by what it means and, in parentheses, its ErrorCategory. The list is written from\n");
        sb.Append("    the engine's catalogue (HeteroBatch.Engine.ErrorIds); a test keeps them equal.\n");
        foreach (var area in ErrorIds.Areas)
        {
            sb.Append('\n').Append("    ").Append(area).Append('\n');
            foreach (var e in ErrorIds.All.Where(e => e.Area == area))
            {
                var words = $"{e.Meaning} ({string.Join(", or ", e.Kinds)})".Split(' ');
                var line = new StringBuilder(new string(' ', idColumn) + e.Id);
                line.Append(' ', Math.Max(1, meaningColumn - line.Length));
                bool first = true;
                foreach (var word in words)
                {
                    if (!first && line.Length + 1 + word.Length > width)
                    {
                        sb.Append(line).Append('\n');
                        line.Clear().Append(' ', meaningColumn);
                        first = true;
                    }
                    if (!first) line.Append(' ');
                    line.Append(word);
                    first = false;
                }
                sb.Append(line).Append('\n');
            }
        }
        sb.Append('\n');
        return sb.ToString();
    }

    [Fact]
    public void NoCodeBranchesOnAnErrorIdString()
    {
        // what a failure means for the code (retry, fail over, which status) is its kind; the id is for people and scripts
        var branch = new System.Text.RegularExpressions.Regex(@"\.ErrorId\s*(==|!=|is\s+"")");
        var found = Sources().SelectMany(s => s.Text.Split('\n').Select((line, n) => (s.File, Line: n + 1, Text: line)))
            .Where(l => branch.IsMatch(l.Text)).Select(l => $"{Path.GetFileName(l.File)}:{l.Line}: {l.Text.Trim()}").ToList();
        Assert.True(found.Count == 0, "branches on an ErrorId string:\n" + string.Join("\n", found));
    }
}
