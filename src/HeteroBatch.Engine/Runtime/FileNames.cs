namespace HeteroBatch.Engine.Runtime;

/// <summary>File names made from names HeteroBatch does not choose (models, units, output tensors).</summary>
public static class FileNames
{
    /// <summary>
    /// <paramref name="name"/> as part of a file name on every platform: letters, digits, '-', '_'
    /// and '.' kept, every other character (separators, spaces, ':' and the like) made '_'; an empty
    /// name becomes "_". Two names may give the same result; callers that need them apart add a hash.
    /// </summary>
    public static string Safe(string name) =>
        name.Length == 0 ? "_" : string.Create(name.Length, name, (span, s) =>
        {
            for (int i = 0; i < s.Length; i++) span[i] = char.IsLetterOrDigit(s[i]) || s[i] is '-' or '_' or '.' ? s[i] : '_';
        });
}
