namespace HeteroBatch.Engine.Models;

/// <summary>A model ready to load: a file on disk and the hash of its bytes (which keys stored profiles).</summary>
public sealed class ModelSource
{
    /// <summary>The zoo name, or the file name without extension for a user model.</summary>
    public string Name { get; set; } = "";
    public string Path { get; set; } = "";
    /// <summary>SHA-256 of the file, lower-case hex.</summary>
    public string Sha256 { get; set; } = "";
    public bool IsBuiltIn { get; set; }
    /// <summary>How the model takes a batch (see <see cref="Models.BatchMode"/>).</summary>
    public BatchMode BatchMode { get; set; } = BatchMode.Native;
    /// <summary>The file the user gave, where <see cref="Path"/> is a rewritten copy.</summary>
    public string? OriginalPath { get; set; }
    /// <summary>What was done to make the model batch, or why it cannot.</summary>
    public string? Note { get; set; }

    /// <summary>The model cache this model's derived forms (fp16) are written to.</summary>
    public string? CacheFolder { get; set; }

    /// <summary>Short content hash (first 12 hex digits) for display and file names.</summary>
    public string ShortHash => Sha256.Length >= 12 ? Sha256[..12] : Sha256;

    public override string ToString() => Name;
}
