using System.Text;
using System.Text.RegularExpressions;

namespace HeteroBatch.Engine.Runtime;

/// <summary>
/// PowerShell's wildcard dialect without PowerShell, the one every id and name filter uses:
/// * (any run), ? (one character), [abc] and [a-c] (one of a set), ` (escape), case-insensitive.
/// </summary>
public static class Wildcard
{
    public static bool IsMatch(string text, string pattern) =>
        Regex.IsMatch(text, ToRegex(pattern), RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

    public static bool HasWildcards(string pattern) => pattern.IndexOfAny(new[] { '*', '?', '[' }) >= 0;

    private static string ToRegex(string pattern)
    {
        var sb = new StringBuilder("^");
        for (int i = 0; i < pattern.Length; i++)
        {
            char c = pattern[i];
            if (c == '`' && i + 1 < pattern.Length) { sb.Append(Regex.Escape(pattern[++i].ToString())); continue; }
            if (c == '*') { sb.Append(".*"); continue; }
            if (c == '?') { sb.Append('.'); continue; }
            int close = c == '[' ? pattern.IndexOf(']', i + 1) : -1;
            if (close > i + 1)
            {
                var set = pattern[(i + 1)..close];
                sb.Append('[').Append(Regex.Escape(set).Replace("\\-", "-")).Append(']');
                i = close;
                continue;
            }
            sb.Append(Regex.Escape(c.ToString()));
        }
        return sb.Append('$').ToString();
    }
}
